"""The sweeper: nothing waits forever, and sweeping never sends anybody a message twice."""

from __future__ import annotations

import time

import pytest

from .harness import Harness
from .test_faults import TEXT, assert_promises, messages, reconfigure, sends, wait_for


def _lose_the_chunk(env: Harness) -> str:
    """Take the chunk off the dispatch queue as if SQS had lost it; returns its body."""
    message = env.sqs.receive_message(QueueUrl=env.queues["dispatch"])["Messages"][0]
    env.sqs.delete_message(QueueUrl=env.queues["dispatch"], ReceiptHandle=message["ReceiptHandle"])
    return message["Body"]


def test_queued_past_the_limit_is_dispatched_again_and_the_old_chunk_is_swept(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    answer = env.send(
        {"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "sms57"}
    )
    lost = _lose_the_chunk(env)
    assert env.invoke("sweep", {})["requeued"] == 0  # not stale yet
    time.sleep(1.1)
    assert env.invoke("sweep", {})["requeued"] == 2
    env.drain("dispatch", "dispatch")
    rid = answer["request_id"]
    assert {m["status"] for m in messages(env, rid)} == {"submitted"}
    from smsrelay.dal import Store
    from smsrelay.models import DispatchChunk

    old = DispatchChunk.model_validate_json(lost).chunk_id
    assert Store().get_chunk(old)["state"] == "swept"
    env.sqs.send_message(QueueUrl=env.queues["dispatch"], MessageBody=lost)  # the lost chunk turns up
    env.drain("dispatch", "dispatch")
    assert env.invoke("sweep", {})["requeued"] == 0
    assert_promises(env, rid)
    assert len(sends(env, "sms57")) == 1 and len(env.simulators["sms57"].accepted) == 2


def test_sweeper_leaves_a_chunk_being_sent_and_never_resends_a_dead_attempt(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smsrelay.service.dispatch import Dispatcher

    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")

    def dies(self: Dispatcher, *args: object, **kwargs: object) -> None:
        raise RuntimeError("Lambda timed out")

    monkeypatch.setattr(Dispatcher, "_record", dies)
    answer = env.send({"recipients": ["+8613800000001"], "content": TEXT, "vendor": "sms57"})
    message = env.sqs.receive_message(QueueUrl=env.queues["dispatch"])["Messages"][0]
    env.invoke("dispatch", {"Records": [env.sqs_record(message, "dispatch")]})  # accepted, then died
    env.sqs.delete_message(QueueUrl=env.queues["dispatch"], ReceiptHandle=message["ReceiptHandle"])
    time.sleep(1.1)  # past both the queued limit and the lease
    summary = env.invoke("sweep", {})
    assert summary["requeued"] == 0 and summary["unknown_dispatch"] == 1
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"unknown"} and len(sends(env, "sms57")) == 1


def test_submitted_without_report_becomes_unknown_and_a_late_report_settles_it(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconfigure(monkeypatch, REPORT_WINDOW_HOURS="0.0001")  # 0.36 s
    answer = env.send({"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "kxt3"})
    env.drain("dispatch", "dispatch")  # no callback server yet: the reports wait at the vendor
    rid = answer["request_id"]
    assert {m["status"] for m in messages(env, rid)} == {"submitted"}
    time.sleep(0.5)
    assert env.invoke("sweep", {})["expired"] == 2
    assert {m["status"] for m in messages(env, rid)} == {"unknown"}
    events = [e["detail"] for e in env.events() if e["detail-type"] == "SMS Status Changed"]
    expired = [e for e in events if e["status"] == "unknown"]
    assert len(expired) == 2 and {e["previous_status"] for e in expired} == {"submitted"}
    assert {e["vendor_code"] for e in expired} == {"NO_REPORT"}
    assert_promises(env, rid)
    env.start_callback_server()
    sim = env.simulators["kxt3"]
    sim.push_reports(list(sim.accepted))  # the reports come at last
    wait_for(lambda: {m["status"] for m in messages(env, rid)} == {"delivered"}, what="late reports")
    history = [h["status"] for h in env.message(answer["message_ids"][0])["history"]]
    assert history == ["queued", "submitted", "unknown", "delivered"]
    assert env.invoke("sweep", {})["expired"] == 0
    assert_promises(env, rid)


def test_sweeper_follows_a_fail_over_chunk_and_never_sends_twice(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages handed to a fail-over chunk point at it: the sweeper takes that chunk over (a
    late delivery of it then sends nothing) and resends to the vendor it was meant for."""
    from .test_faults import route, vendor_settings

    route(monkeypatch, "sms57", "kxt3")
    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    vendor_settings(env, {"sms57": {"base_url": "http://127.0.0.1:9/sms"}})
    answer = env.send({"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT})
    env.drain("dispatch", "dispatch", max_rounds=3)  # three refused attempts, then the hand-over
    rid = answer["request_id"]
    assert {(m["status"], m["vendor"]) for m in messages(env, rid)} == {("queued", "kxt3")}
    time.sleep(1.1)  # the fail-over chunk is late
    assert env.invoke("sweep", {})["requeued"] == 2
    env.drain("dispatch", "dispatch")  # the swept copy and the late fail-over chunk
    final = assert_promises(env, rid)
    assert set(final.values()) == {"submitted"} and len(sends(env, "kxt3")) == 1


def test_a_swept_chunk_keeps_the_sender_id_and_the_quiet_hours(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    import datetime as dt
    from zoneinfo import ZoneInfo

    here = dt.datetime.now(ZoneInfo("Asia/Singapore"))  # a window open now, so nothing is held
    window = {
        "start": (here - dt.timedelta(hours=1)).strftime("%H:%M"),
        "end": (here + dt.timedelta(hours=2)).strftime("%H:%M"),
    }
    env.send(
        {
            "recipients": ["+6591234567"],
            "content": TEXT,
            "vendor": "santo",
            "sender_id": "Acme",
            "window": window,
        }
    )
    lost = _lose_the_chunk(env)
    time.sleep(1.1)
    assert env.invoke("sweep", {})["requeued"] == 1
    from smsrelay.models import DispatchChunk

    body = env.sqs.receive_message(QueueUrl=env.queues["dispatch"])["Messages"][0]["Body"]
    again, before = DispatchChunk.model_validate_json(body), DispatchChunk.model_validate_json(lost)
    assert again.chunk_id != before.chunk_id
    assert (again.sender_id, again.window, again.zone) == ("Acme", before.window, "Asia/Singapore")
