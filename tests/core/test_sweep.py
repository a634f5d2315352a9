"""The sweeper: nothing waits forever, and sweeping never sends anybody a message twice."""

from __future__ import annotations

import time

import pytest

from tests.helpers import (
    TEXT,
    assert_promises,
    messages,
    reconfigure,
    route,
    sends,
    vendor_settings,
    wait_until,
)

from .harness import Harness


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
    from smsrelay.deps import Deps
    from smsrelay.models import DispatchChunk

    old = DispatchChunk.model_validate_json(lost).chunk_id
    assert Deps.from_env().store.claims.get(old).state == "swept"
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
    wait_until(lambda: {m["status"] for m in messages(env, rid)} == {"delivered"}, what="late reports")
    history = [h["status"] for h in env.message(answer["message_ids"][0])["history"]]
    assert history == ["queued", "submitted", "unknown", "delivered"]
    assert env.invoke("sweep", {})["expired"] == 0
    assert_promises(env, rid)


def test_sweeper_follows_a_fail_over_chunk_and_never_sends_twice(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages handed to a fail-over chunk point at it: the sweeper takes that chunk over (a
    late delivery of it then sends nothing) and resends to the vendor it was meant for."""
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


def _answer_without_the_last_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vendor takes every number but its answer leaves the last one out."""
    from smsrelay.vendors.sms57 import Sms57Adapter

    original = Sms57Adapter.send_chunk

    def short(self: Sms57Adapter, *args: object, **kwargs: object) -> list:
        return original(self, *args, **kwargs)[:-1]  # type: ignore[arg-type]

    monkeypatch.setattr(Sms57Adapter, "send_chunk", short)


def _sweep_twice_at_once(env: Harness) -> list[dict]:
    import threading

    results: list[dict] = []
    start = threading.Barrier(2)

    def sweep() -> None:
        start.wait()
        results.append(env.invoke("sweep", {}))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_recipient_the_vendor_answer_left_out_is_unknown_and_never_resent(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    _answer_without_the_last_result(monkeypatch)
    answer = env.send(
        {"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "sms57"}
    )
    env.drain("dispatch", "dispatch")
    time.sleep(1.1)
    for _ in range(2):
        assert sum(r["requeued"] for r in _sweep_twice_at_once(env)) == 0
        env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert sorted(final.values()) == ["submitted", "unknown"]
    assert len(sends(env, "sms57")) == 1 and len(env.simulators["sms57"].accepted) == 2
    assert env.message(answer["message_ids"][1])["code"] == "NO_RESULT"


def test_a_recipient_left_queued_under_a_finished_chunk_is_made_unknown_never_resent(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever left it there (here: a dispatcher that ignored a missing result, as ours once
    did), a queued recipient under a chunk that is done is never sent again by the sweeper."""
    from smsrelay.service.dispatch import Dispatcher

    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    _answer_without_the_last_result(monkeypatch)
    move = Dispatcher._move

    def forgets_the_unheard(self: Dispatcher, chunk, items, status, code, description) -> None:
        if code != "NO_RESULT":
            move(self, chunk, items, status, code, description)

    monkeypatch.setattr(Dispatcher, "_move", forgets_the_unheard)
    answer = env.send(
        {"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "sms57"}
    )
    env.drain("dispatch", "dispatch")
    time.sleep(1.1)
    results = _sweep_twice_at_once(env)
    assert sum(r["requeued"] for r in results) == 0 and sum(r["unknown_dispatch"] for r in results) == 1
    env.drain("dispatch", "dispatch")
    assert sorted(assert_promises(env, answer["request_id"]).values()) == ["submitted", "unknown"]
    assert len(sends(env, "sms57")) == 1


@pytest.mark.slow
def test_two_sweeps_at_once_take_a_lost_chunk_over_once(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    answer = env.send(
        {"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "sms57"}
    )
    lost = _lose_the_chunk(env)
    time.sleep(1.1)
    assert sum(r["requeued"] for r in _sweep_twice_at_once(env)) == 2
    env.sqs.send_message(QueueUrl=env.queues["dispatch"], MessageBody=lost)  # and the lost one turns up
    env.drain("dispatch", "dispatch")
    time.sleep(1.1)
    assert sum(r["requeued"] for r in _sweep_twice_at_once(env)) == 0
    assert set(assert_promises(env, answer["request_id"]).values()) == {"submitted"}
    assert len(sends(env, "sms57")) == 1 and len(env.simulators["sms57"].accepted) == 2


@pytest.mark.slow
def test_a_split_chunk_is_never_resent_by_the_sweeper(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """kxt3 refuses a request for one unnamed bad number (310): the chunk is split until it
    stands alone. Two sweeps at once after every step (each waiting half counts as late here)
    may take a half over, never a split chunk: every good number is accepted once."""
    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    numbers = ["+8613800000001", "+8613800004220", "+8613800000003"]
    answer = env.send({"recipients": numbers, "content": TEXT, "vendor": "kxt3"})
    for _ in range(4):
        env.drain("dispatch", "dispatch", max_rounds=1)
        time.sleep(1.1)
        _sweep_twice_at_once(env)
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert sorted(final.values()) == ["rejected", "submitted", "submitted"]
    assert sorted(a.mobile for a in env.simulators["kxt3"].accepted) == ["13800000001", "13800000003"]
