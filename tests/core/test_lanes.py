"""The priority lane: one-time codes never wait behind a blast; bulk is paced per vendor; a code
dispatched straight from `send` is still claimed first and never sent twice."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from smsrelay.deps import Deps

from tests.helpers import TEXT, assert_promises, reconfigure, route, sends, vendor_settings

from .harness import Harness

BLAST = "【Acme】Spring sale: 20% off everything"


def numbers(count: int, start: int = 1) -> list[str]:
    return [f"+86138{start + i:08d}" for i in range(count)]


@pytest.fixture
def lanes(env: Harness, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """The stack as deployed: a priority queue beside the bulk queue."""
    reconfigure(monkeypatch, PRIORITY_QUEUE_URL=env.queues["priority"], PRIORITY_MAX_RECIPIENTS="10")
    return env


def queued(env: Harness, queue: str) -> list[dict]:
    """The chunks waiting in a queue (taken off it)."""
    bodies: list[dict] = []
    while True:
        got = env.sqs.receive_message(QueueUrl=env.queues[queue], MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(json.loads(message["Body"]))
            env.sqs.delete_message(QueueUrl=env.queues[queue], ReceiptHandle=message["ReceiptHandle"])


def test_codes_and_small_requests_take_the_priority_queue_bulk_the_bulk_queue(lanes: Harness) -> None:
    env = lanes
    code = env.send({"recipients": numbers(1), "content": TEXT, "category": "transactional"})
    receipts = env.send({"recipients": numbers(20, 100), "content": TEXT, "category": "transactional"})
    small = env.send({"recipients": numbers(10, 200), "content": TEXT})
    big = env.send({"recipients": numbers(11, 300), "content": BLAST})
    tiny_marketing = env.send({"recipients": numbers(2, 400), "content": BLAST, "category": "marketing"})

    priority, bulk = queued(env, "priority"), queued(env, "dispatch")
    by_request = {c["request_id"]: c["lane"] for c in priority + bulk}
    assert {c["request_id"] for c in priority} == {
        code["request_id"],
        receipts["request_id"],
        small["request_id"],
    }
    assert {c["request_id"] for c in bulk} == {big["request_id"], tiny_marketing["request_id"]}
    assert by_request[code["request_id"]] == "priority" and by_request[big["request_id"]] == "bulk"


def test_a_code_goes_out_while_a_blast_still_waits_in_its_queue(lanes: Harness) -> None:
    env = lanes
    vendor_settings(env, {"sms57": {"max_batch": 10}})
    blast = env.send({"recipients": numbers(60), "content": BLAST, "vendor": "sms57"})
    code = env.send({"recipients": ["+8613900000001"], "content": TEXT, "vendor": "sms57"})
    env.drain("priority", "dispatch")  # dispatch's priority mapping, while bulk chunks wait
    (sent,) = sends(env, "sms57")
    assert b"13900000001" in sent["body"]
    assert env.message(code["message_ids"][0])["status"] == "submitted"
    assert env.request(blast["request_id"])["counts"]["queued"] == 60
    env.drain("dispatch", "dispatch")
    assert set(assert_promises(env, blast["request_id"]).values()) == {"submitted"}


def test_a_codes_fail_over_stays_in_the_priority_lane(
    lanes: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = lanes
    route(monkeypatch, "sms57", "kxt3")
    vendor_settings(env, {"sms57": {"base_url": "http://127.0.0.1:9/sms"}})  # refused: fail over
    code = env.send({"recipients": ["+8613900000002"], "content": TEXT, "category": "transactional"})
    env.drain("priority", "dispatch")
    assert queued(env, "dispatch") == []  # no follow-up went to the bulk queue
    env.drain("priority", "dispatch")
    message = env.message(code["message_ids"][0])
    assert message["status"] == "submitted" and message["vendor"] == "kxt3"


# --------------------------------------------------------------------------- direct dispatch


def test_direct_dispatch_sends_before_the_answer_and_a_retry_never_sends_again(
    lanes: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = lanes
    reconfigure(monkeypatch, DIRECT_DISPATCH="true")
    request = {"recipients": ["+8613900000003"], "content": TEXT, "client_ref": "otp-1", "vendor": "sms57"}
    first = env.send(request)
    assert env.message(first["message_ids"][0])["status"] == "submitted"  # no queue hop
    assert queued(env, "priority") == []
    for _ in range(3):  # the caller retries; Lambda retries
        assert env.send(request) == first
    env.run_all()
    assert len(env.simulators["sms57"].accepted) == 1


def test_direct_dispatch_interrupted_after_the_vendor_call_is_resumed_without_a_second_send(
    lanes: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`send` dies after the vendor took the code but before the part was marked enqueued: the
    retry rebuilds the chunk, whose claim says it is done."""
    from smsrelay.dal import RequestStore, StoreError

    env = lanes
    reconfigure(monkeypatch, DIRECT_DISPATCH="true")
    original = RequestStore.mark_part_enqueued
    failures = iter([True])

    def dies_once(self: RequestStore, request_id: str, part: int) -> None:
        if next(failures, False):
            raise StoreError("DynamoDB UpdateItem failed: InternalServerError")
        original(self, request_id, part)

    monkeypatch.setattr(RequestStore, "mark_part_enqueued", dies_once)
    request = {"recipients": ["+8613900000004"], "content": TEXT, "client_ref": "otp-2", "vendor": "sms57"}
    with pytest.raises(StoreError):
        env.send(request)
    assert len(env.simulators["sms57"].accepted) == 1
    answer = env.send(request)  # the caller's retry
    env.run_all()
    assert set(assert_promises(env, answer["request_id"]).values()) == {"submitted"}
    assert len(env.simulators["sms57"].accepted) == 1


def test_direct_dispatch_of_a_busy_vendor_falls_back_to_the_queue(
    lanes: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = lanes
    reconfigure(monkeypatch, DIRECT_DISPATCH="true")
    env.simulators["sms57"].inject_fault("http503")
    answer = env.send({"recipients": ["+8613900000006"], "content": TEXT, "vendor": "sms57"})
    assert env.message(answer["message_ids"][0])["status"] == "queued"  # "not now": the queue retries
    env.drain("priority", "dispatch")
    assert set(assert_promises(env, answer["request_id"]).values()) == {"submitted"}
    assert len(env.simulators["sms57"].accepted) == 1


# --------------------------------------------------------------------------- pacing


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("rate", [20, None])
def test_bulk_keeps_to_the_vendors_rate_across_dispatchers(env: Harness, rate: int | None) -> None:
    """Two dispatchers (two Lambdas) share the vendor's schedule: counted in one-second windows
    of a fake clock, the vendor never gets more than the rate plus one chunk."""
    from smsrelay.models import DispatchChunk
    from smsrelay.service.dispatch import Dispatcher
    from smsrelay.service.pacing import Pacer

    vendor_settings(env, {"sms57": {"max_batch": 10} | ({"bulk_rate_per_s": rate} if rate else {})})
    blast = env.send({"recipients": numbers(100), "content": BLAST, "vendor": "sms57"})
    chunks = [DispatchChunk.model_validate(c) for c in queued(env, "dispatch")]
    assert len(chunks) == 10
    clock = FakeClock()
    dispatchers = [
        Dispatcher(deps, Pacer(deps.store, clock=clock, sleep=clock.sleep))
        for deps in (Deps.from_env(), Deps.from_env())
    ]
    sim = env.simulators["sms57"]
    sent_at: list[tuple[float, int]] = []
    for n, chunk in enumerate(chunks):
        before = len(sim.accepted)
        assert dispatchers[n % 2].dispatch(chunk) == "sent"
        sent_at.append((clock.now, len(sim.accepted) - before))
    assert sum(count for _, count in sent_at) == 100
    busiest = max(sum(c for t, c in sent_at if start <= t < start + 1) for start, _ in sent_at)
    if rate is None:
        assert busiest == 100  # unpaced: the whole blast in one instant
    else:
        assert busiest <= rate + 10
        assert sent_at[-1][0] - sent_at[0][0] >= (100 - 10) / rate
    assert set(assert_promises(env, blast["request_id"]).values()) == {"submitted"}


def test_a_chunk_far_from_its_slot_waits_in_the_queue_and_codes_are_not_paced(
    lanes: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:

    env = lanes
    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    vendor_settings(env, {"sms57": {"bulk_rate_per_s": 1}})
    Deps.from_env().store.pacing.move("sms57", None, time.time() + 600)  # a blast took the next 10 minutes
    blast = env.send({"recipients": numbers(20), "content": BLAST, "vendor": "sms57"})
    code = env.send({"recipients": ["+8613900000005"], "content": TEXT, "vendor": "sms57"})
    env.drain("dispatch", "dispatch")  # paced: back to the queue with a delay, claim held
    env.drain("priority", "dispatch")
    assert env.message(code["message_ids"][0])["status"] == "submitted"
    assert env.request(blast["request_id"])["counts"]["queued"] == 20
    time.sleep(1.2)
    assert env.invoke("sweep", {})["requeued"] == 0  # a paced chunk is held: the sweeper leaves it
    counts = Counter(b"13900000005" in r["body"] for r in sends(env, "sms57"))
    assert counts == {True: 1}


@pytest.mark.parametrize(("back_after_s", "new_slot"), [(5.0, False), (12.0, True)])
def test_a_held_chunk_keeps_its_slot_unless_it_comes_back_late(
    env: Harness, back_after_s: float, new_slot: bool
) -> None:
    """One reservation per chunk: back on time it is sent in its slot without asking again (a
    long blast does not churn); back late (a busy queue) it takes a new slot."""
    from smsrelay.models import DispatchChunk
    from smsrelay.service.dispatch import Dispatcher
    from smsrelay.service.pacing import Pacer

    vendor_settings(env, {"sms57": {"max_batch": 50, "bulk_rate_per_s": 10}})  # 5 s a chunk
    env.send({"recipients": numbers(100), "content": BLAST, "vendor": "sms57"})
    first, second = (DispatchChunk.model_validate(c) for c in queued(env, "dispatch"))
    deps, clock = Deps.from_env(), FakeClock()
    store = deps.store
    dispatcher = Dispatcher(deps, Pacer(store, clock=clock, sleep=clock.sleep))
    start = clock.now
    assert dispatcher.dispatch(first) == "sent"
    assert dispatcher.dispatch(second) == "paced"  # its slot starts in 5 s: back to the queue
    assert store.pacing.get("sms57") == pytest.approx(start + 10)
    clock.sleep(back_after_s)
    assert dispatcher.dispatch(second) == "sent"
    expected = clock.now + 5 if new_slot else start + 10
    assert store.pacing.get("sms57") == pytest.approx(expected)
    assert len(env.simulators["sms57"].accepted) == 100


def test_a_retry_held_for_its_slot_sends_only_the_recipients_it_still_owns(env: Harness) -> None:
    """An attempt recorded one recipient, then the chunk was left to retry (`retry` claim); held
    for its pacing slot meanwhile, it must not send that recipient again when its slot comes."""
    from smsrelay.chunk_state import ChunkState, Claim
    from smsrelay.dal import Transition, utcnow
    from smsrelay.models import DispatchChunk, Status
    from smsrelay.service.dispatch import Dispatcher
    from smsrelay.service.pacing import Pacer

    vendor_settings(env, {"sms57": {"bulk_rate_per_s": 1}})
    answer = env.send(
        {"recipients": numbers(3), "content": BLAST, "vendor": "sms57", "category": "marketing"}
    )
    (chunk,) = (DispatchChunk.model_validate(c) for c in queued(env, "dispatch"))
    deps, clock = Deps.from_env(), FakeClock()
    store = deps.store
    inflight = store.claims.move(Claim.none(chunk.chunk_id), ChunkState.INFLIGHT, vendor="sms57")
    assert inflight is not None
    first = chunk.items[0]
    store.apply_transitions(
        [
            Transition(
                request_id=chunk.request_id,
                index=first.index,
                previous=Status.QUEUED,
                status=Status.SUBMITTED,
                at=utcnow(),
                to=first.to,
                vendor="sms57",
                vendor_ref="earlier-attempt",
                owner=chunk.chunk_id,
            )
        ]
    )
    assert store.claims.move(inflight, ChunkState.RETRY) is not None
    store.pacing.move("sms57", None, clock.now + 60)  # its slot is a minute away
    dispatcher = Dispatcher(deps, Pacer(store, clock=clock, sleep=clock.sleep))
    assert dispatcher.dispatch(chunk) == "paced"
    clock.sleep(60)
    assert dispatcher.dispatch(chunk) == "sent"
    sent = [a.mobile for a in env.simulators["sms57"].accepted]
    assert len(sent) == 2 and not any(first.to.endswith(m[-10:]) for m in sent)
    assert set(assert_promises(env, answer["request_id"]).values()) == {"submitted"}
