"""Exactly once, tried as an adversary would: retry every entry point, kill the send function
at every AWS call of an acceptance, race duplicates, feed the biggest inputs, sweep at the worst
moments -- then count what the vendors accepted and compare the counters with the items."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import pytest

from tests.helpers import TEXT, Crash, accepted_numbers, assert_promises, reconfigure, sends, settle

from .harness import Harness


@pytest.fixture(autouse=True)
def leases_end_with_their_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead invocation's leases end at its deadline (no slack): the tests wait less."""
    from smsrelay.service import accept

    monkeypatch.setattr(accept, "LEASE_SLACK_S", 0.0)


class Killer:
    """Kill the send/dispatch invocation at its k-th AWS call: before the call is made, or
    after its answer came back and before the code could use it. Once dead, every later call
    of that invocation fails too (its `finally` blocks cannot clean up, as in a real death)."""

    SERVICES = ("dynamodb", "sqs", "s3", "events")

    def __init__(self, at: int, after: bool):
        self.at, self.after = at, after
        self.calls = 0
        self.dead = False
        self.fired = False

    def install(self) -> Killer:
        from smsrelay.aws import client

        for service in self.SERVICES:
            events = client(service).meta.events
            events.register("before-call", self._before, unique_id=f"killer-before-{service}")
            events.register("after-call", self._after, unique_id=f"killer-after-{service}")
        return self

    def uninstall(self) -> None:
        from smsrelay.aws import client

        for service in self.SERVICES:
            events = client(service).meta.events
            events.unregister("before-call", unique_id=f"killer-before-{service}")
            events.unregister("after-call", unique_id=f"killer-after-{service}")

    def restart(self) -> None:
        """A new invocation: alive again (the k-th call has been used)."""
        self.dead = False

    def _before(self, **_: Any) -> None:
        if self.dead:
            raise Crash("dead")
        self.calls += 1
        if not self.after and self.calls == self.at and not self.fired:
            self.fired = self.dead = True
            raise Crash(f"killed before call {self.at}")

    def _after(self, **_: Any) -> None:
        if self.after and self.calls == self.at and not self.fired:
            self.fired = self.dead = True
            raise Crash(f"killed after call {self.at}")


def numbers_for(run: int, count: int) -> list[str]:
    return [f"+86139{run:03d}{n:04d}1"[:14] for n in range(count)]


def post(env: Harness, body: dict) -> tuple[int, Any]:
    return env.api("POST", "/messages", body=json.dumps(body))


def request_counts(env: Harness, request_id: str) -> dict:
    return env.request(request_id, limit="1000")


def count_calls(env: Harness, body: dict) -> int:
    """How many AWS calls a clean acceptance of `body` makes (API call, then the queues)."""
    killer = Killer(at=10**9, after=False).install()
    try:
        status, _ = post(env, body)
        assert status == 202
        env.drain("send", "send")
        return killer.calls
    finally:
        killer.uninstall()


# --------------------------------------------------------------------------- crashes


@pytest.mark.slow
@pytest.mark.parametrize("size", ["small", "big"])
def test_killed_at_any_step_of_acceptance_then_retried_sends_each_recipient_once(
    env: Harness, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    """Kill the invocation before its first AWS call, and after each AWS call k of an
    acceptance (the API call; for a big request also the reading job and each part; acceptance
    makes no other calls, so "after call k" is also "before call k+1"). The caller retries with
    the same client_ref, the queue redelivers; then everything is sent: every recipient
    accepted by the vendor exactly once, the counters equal to the items, the rejection
    counted once."""
    from smsrelay.service import accept

    monkeypatch.setattr(accept, "JOB_MARGIN_S", 0.0)  # the reading job never pauses here (tested apart)
    reconfigure(monkeypatch, PART_SIZE="2", SYNC_ACCEPT_LIMIT="3" if size == "big" else "100")
    env.timeout_s = 0.2
    probe = [*numbers_for(999, 4), "12345"]
    steps = count_calls(env, {"recipients": probe, "content": TEXT, "vendor": "sms57", "client_ref": "probe"})
    assert steps >= 6
    requests: dict[str, list[str]] = {}
    for k in range(0, steps + 1):
        numbers = numbers_for(k, 4)
        body = {"recipients": [*numbers, "12345"], "content": TEXT, "vendor": "sms57", "client_ref": f"r{k}"}
        killer = Killer(at=max(k, 1), after=k > 0).install()
        try:
            try:
                status, answer = post(env, body)
            except Crash:
                killer.restart()
                time.sleep(env.timeout_s + 0.05)
                status, answer = post(env, body)  # the caller retries
            assert status == 202, answer
            settle(env, killer, queues=("send",))
        finally:
            killer.uninstall()
        assert killer.fired, f"step {k} was never reached"
        requests[answer["request_id"]] = numbers
    settle(env)  # now send them all
    got = accepted_numbers(env)
    for request_id, numbers in requests.items():
        view = request_counts(env, request_id)
        assert view["state"] == "accepted" and view["total"] == 4 and view["rejected_count"] == 1, view
        assert set(assert_promises(env, request_id).values()) == {"submitted"}
        assert [got[n[-10:]] for n in numbers] == [1, 1, 1, 1], request_id


@pytest.mark.slow
def test_killed_mid_acceptance_without_a_retry_is_finished_by_the_sweeper(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller never retries: the sweeper finds the stalled acceptance, resumes it from its
    stored rows, and every recipient goes out once; the counters never go negative."""
    reconfigure(monkeypatch, PART_SIZE="2", ACCEPT_STALE_S="1")
    env.timeout_s = 0.4
    numbers = numbers_for(1, 5)
    killer = Killer(at=6, after=True).install()  # in the middle of writing the parts
    try:
        with pytest.raises(Crash):
            post(
                env,
                {"recipients": numbers, "content": TEXT, "vendor": "sms57", "client_ref": "never-retried"},
            )
    finally:
        killer.uninstall()
    from smsrelay.dal import derived_id

    request_id = derived_id("client_ref", "never-retried")
    view = request_counts(env, request_id)
    assert view["state"] == "accepting"
    assert all(v >= 0 for v in view["counts"].values())
    time.sleep(1.2)
    assert env.invoke("sweep", {})["resumed_requests"] == 1
    settle(env)
    assert request_counts(env, request_id)["state"] == "accepted"
    assert set(assert_promises(env, request_id).values()) == {"submitted"}
    assert sum(accepted_numbers(env).values()) == 5


def test_an_sqs_request_redelivered_after_a_crash_is_the_same_request(env: Harness) -> None:
    """No client_ref: the SQS message id names the request, so a redelivery resumes it."""
    env.timeout_s = 0.4
    body = json.dumps({"recipients": numbers_for(7, 3), "content": TEXT, "vendor": "sms57"})
    record = env.sqs_record({"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": body}, "send")
    killer = Killer(at=4, after=False).install()
    try:
        with pytest.raises(Crash):
            env.invoke("send", {"Records": [record]})
    finally:
        killer.uninstall()
    time.sleep(0.5)
    for _ in range(3):  # redelivered, and once more for good measure
        assert env.invoke("send", {"Records": [record]}) == {"batchItemFailures": []}
    settle(env)
    from smsrelay.dal import derived_id

    assert set(assert_promises(env, derived_id("sqs", "m-1")).values()) == {"submitted"}
    assert sum(accepted_numbers(env).values()) == 3


# --------------------------------------------------------------------------- duplicates


def test_the_same_client_ref_sent_twenty_times_at_once_is_sent_once(env: Harness) -> None:
    numbers = numbers_for(2, 3)
    body = {"recipients": numbers, "content": TEXT, "vendor": "sms57", "client_ref": "order-42-otp"}
    answers: list[tuple[int, Any]] = []
    start = threading.Barrier(20)

    def one() -> None:
        start.wait()
        answers.append(post(env, body))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {status for status, _ in answers} <= {202, 409}
    assert len({a["request_id"] for _, a in answers}) == 1
    assert all(a["state"] == "accepting" for status, a in answers if status == 409)
    settle(env)
    assert sum(accepted_numbers(env).values()) == 3
    assert_promises(env, answers[0][1]["request_id"])


def test_every_entry_point_retried_is_one_request(env: Harness) -> None:
    """An API retry with a client_ref, an SQS redelivery, the same EventBridge event and SNS
    message delivered twice, a Lambda retry of an async invoke: one request each."""
    request = {"recipients": numbers_for(3, 2), "content": TEXT, "vendor": "sms57"}
    first = [post(env, request | {"client_ref": "api"})[1] for _ in range(3)]
    assert len({a["request_id"] for a in first}) == 1
    event = {"version": "0", "id": "ev-1", "detail-type": "Send SMS", "source": "orders", "detail": request}
    sns = {"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(request)}
    for n, body in enumerate([json.dumps(event), json.dumps(event), json.dumps(sns), json.dumps(sns)]):
        record = env.sqs_record({"MessageId": f"sqs-{n}", "ReceiptHandle": "r", "Body": body}, "send")
        assert env.invoke("send", {"Records": [record]}) == {"batchItemFailures": []}
    plain = env.sqs_record({"MessageId": "same", "ReceiptHandle": "r", "Body": json.dumps(request)}, "send")
    env.invoke("send", {"Records": [plain]})
    env.invoke("send", {"Records": [plain]})
    from .harness import Context, load_function

    context = Context("send")
    load_function("send").handler(request, context)
    load_function("send").handler(request, context)  # Lambda retries an async invoke with its request id
    settle(env)
    requests = env.ddb.scan(
        TableName=env.table, FilterExpression="sk = :r", ExpressionAttributeValues={":r": {"S": "R"}}
    )["Items"]
    assert len(requests) == 5  # api, event, sns, sqs, invoke
    got = accepted_numbers(env)
    assert got == Counter({n[-10:]: 5 for n in request["recipients"]})


# --------------------------------------------------------------------------- bounded answers


@pytest.mark.slow
def test_a_big_answer_with_a_client_ref_is_bounded_and_a_retry_sends_nothing(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 invalid numbers and a valid one: the answer names the first 100 rejections and
    counts them all; every retry (API, SQS) returns the same answer and sends nothing."""
    invalid = [f"12{n:05d}" for n in range(5_000)]
    body = {
        "recipients": [*invalid, "+8613800000001"],
        "content": TEXT,
        "vendor": "sms57",
        "client_ref": "big",
    }
    status, answer = post(env, body)
    assert status == 202 and answer["state"] == "accepting"
    settle(env)
    for _ in range(3):
        status, again = post(env, body)
        assert status == 202
        assert again["request_id"] == answer["request_id"] and again["state"] == "accepted"
        assert again["accepted"] == 1 and again["rejected_count"] == 5_000
        assert len(again["rejected"]) == 100 and again["rejected"][0] == {
            "to": "1200000",
            "reason": again["rejected"][0]["reason"],
            "index": 0,
        }
        assert len(json.dumps(again)) < 20_000
    record = env.sqs_record({"MessageId": "x", "ReceiptHandle": "r", "Body": json.dumps(body)}, "send")
    env.invoke("send", {"Records": [record]})
    settle(env)
    assert len(sends(env, "sms57")) == 1
    item = env.ddb.get_item(
        TableName=env.table, Key={"pk": {"S": f"R#{answer['request_id']}"}, "sk": {"S": "R"}}
    )
    assert len(json.dumps(item["Item"])) < 40_000  # the stored answer is bounded too


@pytest.mark.slow
def test_every_rejection_is_read_back_page_by_page(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    reconfigure(monkeypatch, PART_SIZE="100")
    rows = [f"12{n:05d}" if n % 3 else f"+86139{n:07d}1" for n in range(450)]
    _, answer = post(env, {"recipients": rows, "content": TEXT, "vendor": "sms57"})
    settle(env)
    found, token = [], None
    while True:
        query = {"limit": "70"} | ({"next_token": token} if token else {})
        status, page = env.api("GET", f"/requests/{answer['request_id']}/rejections", query=query)
        assert status == 200, page
        found += page["rejected"]
        token = page.get("next_token")
        if not token:
            break
    expected = [n for n in range(450) if n % 3]
    assert [r["index"] for r in found] == expected
    assert all(r["reason"].startswith("invalid_number") for r in found)
    assert page["rejected_count"] == len(expected)
    status, _ = env.api("GET", f"/requests/{answer['request_id']}/rejections", query={"next_token": "Zm9v"})
    assert status == 400


def test_a_big_post_answers_before_taking_the_rows_in(env: Harness) -> None:
    """100,000 numbers: the API stores the rows and answers `accepting` with a handful of calls
    (no per-recipient work before the answer); an answer for 40,000 invalid numbers is small."""
    counter = Killer(at=10**9, after=False).install()  # counts the calls, kills nothing
    try:
        rows = [f"+86139{n:07d}1" for n in range(100_000)]
        status, answer = post(env, {"recipients": rows, "content": TEXT, "vendor": "sms57"})
    finally:
        counter.uninstall()
    assert status == 202 and answer["state"] == "accepting"
    assert counter.calls <= 6, counter.calls  # read, store the rows, create, queue the job, release
    status, answer = post(env, {"recipients": [f"12{n:05d}" for n in range(40_000)], "content": TEXT})
    assert status == 202 and len(json.dumps(answer)) < 1_000


# --------------------------------------------------------------------------- hostile input


def test_hostile_bodies_get_400_naming_the_field(env: Harness) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    for body, field in [
        (deep.encode(), "(body)"),
        ('{"recipients": ' + deep + ', "content": "x"}', "(body)"),
        (b"\xff\xfe{\x00", "(body)"),
    ]:
        status, answer = env.api("POST", "/messages", body=body)
        assert status == 400, answer
        assert answer["errors"][0]["field"] == field
    far = "2036-12-01T09:00:00+08:00"
    status, answer = post(env, {"recipients": ["+8613800000001"], "content": TEXT, "send_at": far})
    assert status == 400 and answer["errors"][0]["field"] == "send_at"
    assert "30 days" in answer["errors"][0]["error"]


@pytest.mark.parametrize(
    "token",
    [
        "eyJwayI6IHsiUyI6ICJ4In19",  # {"pk": {"S": "x"}}: a key DynamoDB would refuse
        "W10=",  # []
        "!!!",
        "eyJncGsiOnsiUyI6IlNVUCJ9LCJnc2siOnsiUyI6IisxIn0sInBrIjp7IlMiOiJSIzEifSwic2siOnsiUyI6IlMifX0=",
    ],
)
def test_a_tampered_page_token_is_a_400(env: Harness, token: str) -> None:
    status, answer = env.api("GET", "/suppressions", query={"next_token": token})
    assert status == 400 and answer["message"].startswith("next_token")


def test_messages_scheduled_ahead_live_past_their_send_time_and_report_window(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    reconfigure(monkeypatch, RETENTION_DAYS="1", REPORT_WINDOW_HOURS="72")
    at = dt.datetime.now(dt.UTC) + dt.timedelta(days=20)
    _, answer = post(
        env, {"recipients": ["+8613800000001"], "content": TEXT, "vendor": "sms57", "send_at": at.isoformat()}
    )
    item = env.ddb.get_item(
        TableName=env.table, Key={"pk": {"S": f"M#{answer['request_id']}#0"}, "sk": {"S": "0000000"}}
    )
    assert int(item["Item"]["expires_at"]["N"]) >= at.timestamp() + 72 * 3600
