"""The fault matrix: the two promises under every fault we can make.

Every case ends with `assert_promises`: each accepted recipient is in a defined status (never
left `queued`), no number was accepted twice by the simulators (across all vendors, so a
fail-over that re-sends an accepted message would be caught), and the request's counters
equal its messages' statuses."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
from smsrelay.deps import Deps

from tests.helpers import (
    TEXT,
    accepted_numbers,
    assert_promises,
    drain_until_settled,
    messages,
    route,
    sends,
    vendor_settings,
    wait_until,
)

from .harness import VENDORS, Harness

# --------------------------------------------------------------------------- vendor HTTP faults


@pytest.mark.parametrize("kind", ["http503", "http429"])
def test_busy_answer_is_retried_and_succeeds(env: Harness, kind: str) -> None:
    env.simulators["sms57"].inject_fault(kind, count=2)
    answer = env.send(
        {"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "sms57"}
    )
    env.drain("dispatch", "dispatch")
    assert len(sends(env, "sms57")) == 3  # two "not now" answers, then the fault clears
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"}
    assert accepted_numbers(env) == Counter({"3800000001": 1, "3800000002": 1})


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("kind", ["http500", "http502", "http504"])
def test_an_answer_that_may_follow_an_accept_is_never_resent(env: Harness, vendor: str, kind: str) -> None:
    """A 500/502/504 can come after the vendor took the request (a proxy in front of it, an
    error after the insert): the recipients become unknown and the chunk is never sent again;
    the vendor's reports still settle them. smsadmin is no exception."""
    number = "+6591234561" if vendor in ("intl", "santo") else "+8613800000001"
    env.simulators[vendor].inject_fault(f"accepted_then_{kind}", count=1)
    answer = env.send({"recipients": [number], "content": TEXT, "vendor": vendor})
    for _ in range(3):
        env.drain("dispatch", "dispatch")
    assert len(sends(env, vendor)) == 1
    assert sum(accepted_numbers(env).values()) == 1  # the vendor took it once
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"unknown"}
    assert env.message(answer["message_ids"][0])["code"] == kind.upper()


def test_an_ambiguous_smsadmin_send_is_settled_by_its_linkid_report(env: Harness) -> None:
    env.simulators["smsadmin"].inject_fault("accepted_then_http502", count=1)
    answer = env.send({"recipients": ["+8613800000001"], "content": TEXT, "vendor": "smsadmin"})
    env.drain("dispatch", "dispatch")
    assert set(assert_promises(env, answer["request_id"]).values()) == {"unknown"}
    wait_until(lambda: env.poll()["reports"]["applied"] == 1, what="the pulled report")
    assert set(assert_promises(env, answer["request_id"]).values()) == {"delivered"}
    assert len(sends(env, "smsadmin")) == 1


def test_connect_refused_retries_then_fails_over(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    route(monkeypatch, "sms57", "kxt3")
    vendor_settings(env, {"sms57": {"base_url": "http://127.0.0.1:9/sms"}})  # nothing listens there
    answer = env.send({"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"}
    first = env.message(answer["message_ids"][0])
    assert first["vendor"] == "kxt3" and len(sends(env, "kxt3")) == 1


def test_connect_refused_everywhere_ends_failed(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    route(monkeypatch, "sms57", "kxt3")
    closed = {"base_url": "http://127.0.0.1:9/x"}
    vendor_settings(env, {"sms57": closed, "kxt3": closed})
    answer = env.send({"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"failed"}
    message = env.message(answer["message_ids"][0])
    steps = [(h["status"], h["vendor"], h["code"]) for h in message["history"]]
    assert steps == [
        ("queued", None, None),
        ("queued", "sms57", "VendorConnectError"),  # handed to the next vendor, with the reason
        ("failed", "kxt3", "VendorConnectError"),
    ]


def test_vendor_down_for_the_whole_run_fails_over_then_fails(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(monkeypatch, "sms57", "smsadmin")
    env.simulators["sms57"].inject_fault("http503", count=1000)
    env.simulators["smsadmin"].inject_fault("http503", count=1000)
    answer = env.send({"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"failed"}
    assert len(sends(env, "sms57")) == 3 and len(sends(env, "smsadmin")) == 3  # max_attempts each
    assert env.message(answer["message_ids"][0])["code"] == "HTTP503"


def test_read_timeout_after_accept_becomes_unknown_and_is_never_resent(
    env: Harness, restore_sims: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(monkeypatch, "sms57", "kxt3")  # a fall-back exists, and still nothing is resent
    vendor_settings(env, {"sms57": {"timeout_s": 0.5}})
    sim = env.simulators["sms57"]
    sim.slow_answer_s = 1.5
    sim.inject_fault("timeout_after_accept")
    answer = env.send({"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT})
    body = env.sqs.receive_message(QueueUrl=env.queues["dispatch"])["Messages"][0]["Body"]
    env.drain("dispatch", "dispatch")
    env.sqs.send_message(QueueUrl=env.queues["dispatch"], MessageBody=body)  # a late redelivery
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"unknown"}
    assert len(sim.accepted) == 2 and len(sends(env, "sms57")) == 1 and not sends(env, "kxt3")
    assert env.message(answer["message_ids"][0])["code"]


@pytest.mark.parametrize("kind", ["malformed", "empty", "html"])
def test_unreadable_answer_becomes_unknown(env: Harness, kind: str) -> None:
    env.simulators["smsadmin"].inject_fault(kind)
    answer = env.send({"recipients": ["+8613800000001"], "content": TEXT, "vendor": "smsadmin"})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"unknown"}  # it may have been accepted: never resent blind
    assert len(sends(env, "smsadmin")) == 1


def test_partial_success_in_one_batch(env: Harness) -> None:
    env.start_callback_server()
    numbers = ["+8613800000001", "+8613800004220", "+8613800000002"]
    answer = env.send({"recipients": numbers, "content": TEXT, "vendor": "sms57"})
    env.drain("dispatch", "dispatch")
    assert len(sends(env, "sms57")) == 1
    rid = answer["request_id"]
    wait_until(lambda: "submitted" not in {m["status"] for m in messages(env, rid)}, what="reports")
    final = assert_promises(env, rid)
    assert final == {numbers[0]: "delivered", numbers[1]: "rejected", numbers[2]: "delivered"}
    refused = env.message(answer["message_ids"][1])
    assert refused["code"] and [h["status"] for h in refused["history"]] == ["queued", "rejected"]


def test_balance_running_out_mid_batch_rejects_the_rest_with_the_vendor_code(
    env: Harness, restore_sims: dict
) -> None:
    sim = env.simulators["sms57"]
    sim.balance = 2 * sim.price_li  # two messages' worth
    numbers = [f"+861380000000{n}" for n in range(1, 6)]
    answer = env.send({"recipients": numbers, "content": TEXT, "vendor": "sms57"})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert list(final.values()) == ["submitted"] * 2 + ["rejected"] * 3
    assert {env.message(m)["code"] for m in answer["message_ids"][2:]} == {"15"}


def test_balance_running_out_between_chunks_fails_over_with_the_code_kept(
    env: Harness, restore_sims: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(monkeypatch, "kxt3", "smsadmin")
    vendor_settings(env, {"kxt3": {"max_batch": 2}})
    env.simulators["kxt3"].balance = 2  # the first chunk of two takes it all
    numbers = [f"+861380000000{n}" for n in range(1, 5)]
    answer = env.send({"recipients": numbers, "content": TEXT})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"}
    vendors = [env.message(m)["vendor"] for m in answer["message_ids"]]
    assert vendors == ["kxt3", "kxt3", "smsadmin", "smsadmin"]
    moved = env.message(answer["message_ids"][3])
    assert [(h["status"], h["vendor"], h["code"]) for h in moved["history"]] == [
        ("queued", None, None),
        ("queued", "kxt3", "400"),  # the fail-over keeps the vendor's code
        ("submitted", "smsadmin", "0"),
    ]


# --------------------------------------------------------------------------- the store


def test_store_throttled_before_the_vendor_call_is_retried_safely(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smsrelay import dal

    original, failures = dal.Table.call, []

    def throttled(table: dal.Table, operation: str, **kwargs: Any) -> Any:
        key = json.dumps(kwargs.get("Key", {}))
        if operation == "update_item" and '"C#' in key and not failures:
            failures.append(operation)  # the claim write fails once, past boto's own retries
            raise dal.StoreError("DynamoDB update_item failed: ProvisionedThroughputExceededException")
        return original(table, operation, **kwargs)

    monkeypatch.setattr(dal.Table, "call", throttled)
    answer = env.send({"recipients": ["+8613800000001"], "content": TEXT, "vendor": "kxt3"})
    drain_until_settled(env, answer["request_id"])
    assert failures == ["update_item"]
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"} and len(sends(env, "kxt3")) == 1


def test_store_throttled_while_recording_never_resends(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from smsrelay import dal

    original, failures = dal.Table.call, []

    def throttled(table: dal.Table, operation: str, **kwargs: Any) -> Any:
        if operation == "transact_write_items" and not failures:
            failures.append(operation)
            raise dal.StoreError("DynamoDB transact_write_items failed: ThrottlingException")
        return original(table, operation, **kwargs)

    answer = env.send({"recipients": ["+8613800000001"], "content": TEXT, "vendor": "kxt3"})
    monkeypatch.setattr(dal.Table, "call", throttled)  # dispatch's recording fails once
    drain_until_settled(env, answer["request_id"])
    assert failures == ["transact_write_items"]
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"unknown"} and len(sends(env, "kxt3")) == 1


def test_conditional_check_failure_keeps_counters_right(env: Harness) -> None:
    """A message moved by someone else while dispatch was calling: dispatch's write conflicts,
    the counters (moved in the same transaction) stay equal to the items."""
    from smsrelay.dal import Transition, utcnow
    from smsrelay.models import Status

    answer = env.send(
        {"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "smsadmin"}
    )
    rid = answer["request_id"]
    Deps.from_env().store.apply_transitions(
        [
            Transition(
                request_id=rid, index=1, previous=Status.QUEUED, status=Status.FAILED, at=utcnow(), to="x"
            )
        ]
    )
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, rid)
    assert list(final.values()) == ["submitted", "failed"]


# --------------------------------------------------------------------------- duplicate delivery


def test_same_chunk_delivered_twice_sends_once(env: Harness) -> None:
    answer = env.send({"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "kxt3"})
    body = env.sqs.receive_message(QueueUrl=env.queues["dispatch"])["Messages"][0]["Body"]
    env.sqs.send_message(QueueUrl=env.queues["dispatch"], MessageBody=body)  # at-least-once: twice
    assert env.drain("dispatch", "dispatch") == 2
    env.sqs.send_message(QueueUrl=env.queues["dispatch"], MessageBody=body)  # and once more, later
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"} and len(sends(env, "kxt3")) == 1


def test_same_chunk_delivered_concurrently_sends_once(env: Harness) -> None:
    from smsrelay.models import DispatchChunk
    from smsrelay.service.dispatch import Dispatcher, Redeliver

    answer = env.send({"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "intl"})
    body = env.sqs.receive_message(QueueUrl=env.queues["dispatch"])["Messages"][0]["Body"]
    chunk = DispatchChunk.model_validate_json(body)
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def worker() -> None:
        start.wait()
        try:
            outcomes.append(Dispatcher(Deps.from_env()).dispatch(chunk))
        except Redeliver:
            outcomes.append("redeliver")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("sent") == 1, outcomes
    env.drain("dispatch", "dispatch")  # the queue's own copy comes after: nothing more to do
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"} and len(sends(env, "intl")) == 1


def test_dispatch_dying_after_accept_makes_recipients_unknown(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smsrelay.service.dispatch import Dispatcher

    original, deaths = Dispatcher._record, []

    def dies_once(self: Dispatcher, *args: Any, **kwargs: Any) -> Any:
        if not deaths:
            deaths.append(1)
            raise RuntimeError("Lambda timed out")  # after the vendor call, before any write
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Dispatcher, "_record", dies_once)
    answer = env.send(
        {"recipients": ["+8613800000001", "+8613800000002"], "content": TEXT, "vendor": "sms57"}
    )
    env.drain("dispatch", "dispatch")  # dies; the redelivery inside the lease waits
    assert len(env.simulators["sms57"].accepted) == 2
    assert {m["status"] for m in messages(env, answer["request_id"])} == {"queued"}
    time.sleep(1.1)  # DISPATCH_LEASE_S=1
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"unknown"} and len(sends(env, "sms57")) == 1
    assert env.message(answer["message_ids"][0])["code"] == "CLAIMED_NOT_RECORDED"

    # The vendor did send them: its reports (pulled by poll) carry references we never recorded,
    # and still settle the one unknown message of that vendor and number.
    wait_until(lambda: len(env.simulators["sms57"].pending_reports) == 2, what="reports at the vendor")
    env.poll()
    settled = {m["to"]: (m["status"], m["vendor_ref"]) for m in messages(env, answer["request_id"])}
    refs = {f"+86{a.mobile}": a.vendor_ref for a in env.simulators["sms57"].accepted}
    assert settled == {to: ("delivered", refs[to]) for to in refs}
    assert_promises(env, answer["request_id"])


@pytest.mark.slow
def test_attempt_outliving_its_lease_still_records_the_vendor_reference(
    env: Harness, restore_sims: dict
) -> None:
    """A slow vendor call outlives the lease: a redelivery marks the chunk unknown (it cannot know
    better); when the slow attempt then gets its answer, the messages get their references, so
    their reports can settle them."""
    from smsrelay.models import DispatchChunk
    from smsrelay.service.dispatch import Dispatcher

    env.start_callback_server()
    sim = env.simulators["kxt3"]
    sim.slow_answer_s = 1.4  # under the 5 s read timeout, over the 1 s lease
    answer = env.send({"recipients": ["+8613800005040"], "content": TEXT, "vendor": "kxt3"})
    body = env.sqs.receive_message(QueueUrl=env.queues["dispatch"])["Messages"][0]["Body"]
    chunk = DispatchChunk.model_validate_json(body)
    slow = threading.Thread(target=lambda: Dispatcher(Deps.from_env()).dispatch(chunk))
    slow.start()
    time.sleep(1.1)
    assert Dispatcher(Deps.from_env()).dispatch(chunk) == "unknown"
    slow.join()
    rid = answer["request_id"]
    wait_until(lambda: messages(env, rid)[0]["status"] == "delivered", what="the report")
    assert_promises(env, rid)
    assert len(sends(env, "kxt3")) == 1
    env.drain("dispatch", "dispatch")
    assert len(sends(env, "kxt3")) == 1


# --------------------------------------------------------------------------- reports


def test_report_before_its_message_is_stored(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The vendor's push overtakes dispatch's write: the report is kept, then applied."""
    from smsrelay.service.dispatch import Dispatcher

    env.start_callback_server()
    sim = env.simulators["kxt3"]
    original = Dispatcher._record

    def slow_record(self: Dispatcher, *args: Any, **kwargs: Any) -> Any:
        wait_until(lambda: any(p["status"] == 200 for p in sim.pushes), what="the early push")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Dispatcher, "_record", slow_record)
    answer = env.send({"recipients": ["+8613800000001"], "content": TEXT, "vendor": "kxt3"})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert final == {"+8613800000001": "delivered"}
    history = [h["status"] for h in env.message(answer["message_ids"][0])["history"]]
    assert history == ["queued", "submitted", "delivered"]

    assert not Deps.from_env().store.references.early_of("kxt3")  # the kept report is gone once applied


def _delivered_kxt3(env: Harness, numbers: list[str]) -> dict:
    env.start_callback_server()
    answer = env.send({"recipients": numbers, "content": TEXT, "vendor": "kxt3"})
    env.drain("dispatch", "dispatch")
    rid = answer["request_id"]
    wait_until(
        lambda: {m["status"] for m in messages(env, rid)} <= {"delivered", "undelivered"}, what="reports"
    )
    return answer


def status_events(env: Harness, message_id: str) -> list[tuple[str, str]]:
    return [
        (e["detail"]["previous_status"], e["detail"]["status"])
        for e in env.events()
        if e["detail-type"] == "SMS Status Changed" and e["detail"]["message_id"] == message_id
    ]


def test_same_report_three_times_changes_nothing(env: Harness) -> None:
    answer = _delivered_kxt3(env, ["+8613800000001"])
    sim = env.simulators["kxt3"]
    record = sim.accepted[0]
    for _ in range(3):
        sim.push_reports([record])
    assert [p["status"] for p in sim.pushes] == [200] * 4
    mid = answer["message_ids"][0]
    assert [h["status"] for h in env.message(mid)["history"]] == ["queued", "submitted", "delivered"]
    assert status_events(env, mid) == [("queued", "submitted"), ("submitted", "delivered")]
    assert_promises(env, answer["request_id"])


def test_reports_out_of_order_never_move_a_final_status(env: Harness) -> None:
    answer = _delivered_kxt3(env, ["+8613800000001", "+8613800004040"])
    sim = env.simulators["kxt3"]
    good, bad = sim.accepted_for("13800000001")[0], sim.accepted_for("13800004040")[0]
    sim.push_reports(
        [dataclasses.replace(good, fate="undelivered"), dataclasses.replace(bad, fate="delivered")]
    )
    final = assert_promises(env, answer["request_id"])
    assert list(final.values()) == ["delivered", "undelivered"]
    for mid in answer["message_ids"]:
        assert len(env.message(mid)["history"]) == 3


def test_overlapping_polls_apply_each_report_once(env: Harness) -> None:
    from smsrelay.service import poll

    numbers = [f"+86138000000{n:02d}" for n in range(1, 11)]
    answer = env.send({"recipients": numbers, "content": TEXT, "vendor": "sms57"})
    env.drain("dispatch", "dispatch")
    sim = env.simulators["sms57"]
    wait_until(lambda: len(sim.pending_reports) == 10, what="reports ready for pull")
    with sim.lock:  # the vendor hands the same reports out again (both pollers see each one)
        sim.pending_reports.extend(list(sim.pending_reports))
    start = threading.Barrier(2)
    summaries: list[Any] = []

    def poller() -> None:
        start.wait()
        summaries.append(poll.run(Deps.from_env(), budget_s=5))

    threads = [threading.Thread(target=poller) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(s.reports.applied for s in summaries) == 10
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"delivered"}
    for mid in answer["message_ids"]:
        assert [h["status"] for h in env.message(mid)["history"]] == ["queued", "submitted", "delivered"]
    delivered = [
        e
        for e in env.events()
        if e["detail-type"] == "SMS Status Changed" and e["detail"]["status"] == "delivered"
    ]
    assert len(delivered) == 10
