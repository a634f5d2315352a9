"""kxt3 adapter against the kxt3 simulator: every operation, the pushes, refusals, transport errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import threading
from typing import Any

import pytest
import requests
from smsrelay.vendors import (
    InvalidInput,
    Outcome,
    RawRequest,
    ReportStatus,
    SendOptions,
    VendorRequestError,
)
from smsrelay.vendors.base import CHINA_TZ
from smsrelay.vendors.errors import VendorConnectError, VendorHTTPError, VendorParseError, VendorTimeout
from smsrelay.vendors.kxt3 import Kxt3Adapter
from smsrelay_local.simulators import VendorSimulator
from smsrelay_local.simulators.kxt3 import Kxt3Simulator

from tests.helpers import wait_until

from .conftest import receiver_fixtures, simulator_fixtures
from .push_receiver import PushReceiver

# --------------------------------------------------------------------------- a push receiver


class Receiver(PushReceiver):
    def __init__(self, reply: str = "0"):
        super().__init__("kxt3", reply)


def _let_reports_go_out(sim: VendorSimulator) -> None:
    """Reports of the previous test are pushed before the next starts (kxt3 batches them)."""
    wait_until(lambda: not sim._timers and not sim._outbox, timeout_s=5)  # type: ignore[attr-defined]
    threading.Event().wait(0.05)


_receiver_server, receiver = receiver_fixtures(Receiver)
_sim_server, sim = simulator_fixtures(
    "kxt3",
    receiver="_receiver_server",
    settle=_let_reports_go_out,
    report_delay_s=0.02,
    slow_answer_s=1.0,
    seed=1,
)


@pytest.fixture
def adapter(sim: Kxt3Simulator) -> Kxt3Adapter:
    return Kxt3Adapter(sim.settings())


def raw_post(sim: Kxt3Simulator, form: dict[str, str] | None = None, method: str = "POST") -> dict[str, Any]:
    response = requests.request(method, sim.base_url, data=form, timeout=5)
    assert response.status_code == 200
    return json.loads(response.content.decode("utf-8"))


_counter = iter(range(1000, 10_000))


def signed(sim: Kxt3Simulator, **fields: Any) -> dict[str, Any]:
    """A message with valid auth fields (unique timestamp), `fields` added or overriding."""
    timestamp = dt.datetime.now(CHINA_TZ).strftime("%Y%m%d%H%M%S") + f"{next(_counter):04d}"
    message = {
        "cid": sim.cid,
        "uid": sim.uid,
        "pwd": hashlib.md5((sim.password + timestamp).encode()).hexdigest(),
        "timestamp": timestamp,
    }
    message.update(fields)
    return message


def send_raw(sim: Kxt3Simulator, **fields: Any) -> dict[str, Any]:
    return raw_post(sim, {"op": "sendSm", "message": json.dumps(signed(sim, **fields), ensure_ascii=False)})


# --------------------------------------------------------------------------- balance


def test_balance_is_sm_balance_in_messages_and_drops_by_the_fee(
    adapter: Kxt3Adapter, sim: Kxt3Simulator
) -> None:
    before = adapter.balance()
    assert before.vendor == "kxt3"
    assert before.unit == "messages"
    assert before.balance == 1_000_000
    assert before.raw["mmBalance"] == 0
    adapter.send(["+8613800000001", "+8613800000002"], "hello")
    assert adapter.balance().balance == 1_000_000 - 2


def test_balance_with_wrong_password_is_a_configuration_error(sim: Kxt3Simulator) -> None:
    bad = Kxt3Adapter({**sim.settings(), "password": "wrong"})
    with pytest.raises(VendorRequestError) as info:
        bad.balance()
    assert info.value.code == "200"
    assert info.value.outcome is Outcome.CONFIGURATION  # our setup, not the recipients' fault
    assert info.value.description.startswith("authentication error")
    assert info.value.may_have_reached is False


# --------------------------------------------------------------------------- sending


def test_send_one_token_for_all_recipients_and_domestic_numbers(
    adapter: Kxt3Adapter, sim: Kxt3Simulator
) -> None:
    results = adapter.send(["+8613800000001", "+8613900000002"], "周末参加不了培训了")
    assert [r.to for r in results] == ["+8613800000001", "+8613900000002"]
    assert all(r.outcome is Outcome.OK for r in results)
    refs = {r.vendor_ref for r in results}
    assert len(refs) == 1
    (token,) = refs
    assert token in sim.tokens
    assert [a.mobile for a in sim.tokens[token]] == ["13800000001", "13900000002"]
    assert sim.tokens[token][0].content == "周末参加不了培训了"
    # a second request gets a new token
    again = adapter.send(["+8613800000001"], "x")
    assert again[0].vendor_ref != token


def test_numbers_the_vendor_cannot_take_are_refused_without_a_call(
    adapter: Kxt3Adapter, sim: Kxt3Simulator
) -> None:
    results = adapter.send(["+12025550100", "+8613800000001", "+861012345678"], "hi")
    by_to = {r.to: r for r in results}
    assert by_to["+12025550100"].outcome is Outcome.PERMANENT
    assert by_to["+12025550100"].vendor_ref is None
    assert by_to["+861012345678"].outcome is Outcome.PERMANENT
    assert by_to["+8613800000001"].outcome is Outcome.OK
    assert [a.mobile for a in sim.accepted] == ["13800000001"]

    sim.requests.clear()
    only_foreign = adapter.send(["+4915112345678"], "hi")
    assert only_foreign[0].outcome is Outcome.PERMANENT
    assert sim.requests == []


def test_content_limits_are_checked_before_the_call(adapter: Kxt3Adapter, sim: Kxt3Simulator) -> None:
    with pytest.raises(InvalidInput):
        adapter.send(["+8613800000001"], "字" * 1001)
    with pytest.raises(InvalidInput):
        adapter.send(["+8613800000001"], "")
    assert sim.requests == []
    assert adapter.send(["+8613800000001"], "字" * 1000)[0].outcome is Outcome.OK


def test_send_at_and_daily_window_reach_the_vendor_in_china_time(
    adapter: Kxt3Adapter, sim: Kxt3Simulator
) -> None:
    options = SendOptions(
        send_at=dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC),
        daily_window=(dt.time(8, 0), dt.time(18, 0)),
    )
    results = adapter.send(["+8613800000001"], "later", options)
    assert results[0].outcome is Outcome.OK
    assert sim.accepted[0].extra == {
        "at_time": "2026-12-01 09:00:00",
        "daily_begin": "08:00:00",
        "daily_end": "18:00:00",
    }


def test_batches_follow_max_batch(sim: Kxt3Simulator) -> None:
    adapter = Kxt3Adapter({**sim.settings(), "max_batch": 2})
    assert Kxt3Adapter.max_batch == 10_000
    results = adapter.send([f"+86138000000{i:02d}" for i in range(1, 6)], "hi")
    assert len(results) == 5
    assert len({r.vendor_ref for r in results}) == 3
    assert len(sim.tokens) == 3


def test_refused_test_number_fails_the_whole_request_with_310(
    adapter: Kxt3Adapter, sim: Kxt3Simulator
) -> None:
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000001", "+8613800004220"], "hi")
    assert info.value.code == "310"
    assert info.value.outcome is Outcome.PERMANENT
    assert sim.accepted == []


def test_balance_too_low_is_400(receiver: Receiver) -> None:
    with Kxt3Simulator(balance=1) as poor:
        adapter = Kxt3Adapter(poor.settings())
        with pytest.raises(VendorRequestError) as info:
            adapter.send(["+8613800000001", "+8613800000002"], "hi")
        assert (info.value.code, info.value.outcome) == ("400", Outcome.PERMANENT)
        assert adapter.send(["+8613800000001"], "hi")[0].outcome is Outcome.OK
        assert adapter.balance().balance == 0


def test_repeated_timestamp_is_retried_once_with_a_fresh_one(sim: Kxt3Simulator) -> None:
    class Stub:
        def __init__(self, values: list[str]):
            self.values = values

        def next(self) -> str:
            return self.values.pop(0) if len(self.values) > 1 else self.values[0]

    used = "202601010900000001"
    sim.timestamps_seen.add(used)
    adapter = Kxt3Adapter(sim.settings(), timestamps=Stub([used, "202601010900000002"]))  # type: ignore[arg-type]
    assert adapter.send(["+8613800000001"], "hi")[0].outcome is Outcome.OK

    stuck = Kxt3Adapter(sim.settings(), timestamps=Stub([used]))  # type: ignore[arg-type]
    with pytest.raises(VendorRequestError) as info:
        stuck.balance()
    assert (info.value.code, info.value.outcome) == ("230", Outcome.TRANSIENT)


# --------------------------------------------------------------------------- pushes


def test_reports_are_pushed_in_one_batch_and_parse_to_the_sent_refs(
    adapter: Kxt3Adapter, sim: Kxt3Simulator, receiver: Receiver
) -> None:
    results = adapter.send(["+8613800000001", "+8613800004040", "+8613800000000"], "hi")
    token = results[0].vendor_ref
    (push,) = receiver.wait_for(1)
    assert push.method == "POST"
    assert push.header("content-type").startswith("application/x-www-form-urlencoded")
    assert adapter.check_push_credentials(push)
    batch = adapter.parse_push(push)
    assert batch.inbound == []
    reports = {r.to: r for r in batch.reports}
    assert set(reports) == {"+8613800000001", "+8613800004040"}  # 0000: no report ever
    ok, bad = reports["+8613800000001"], reports["+8613800004040"]
    assert (ok.status, ok.code, ok.vendor_ref) == (ReportStatus.DELIVERED, "0", token)
    assert (bad.status, bad.code, bad.vendor_ref) == (ReportStatus.UNDELIVERED, "2:46", token)
    assert ok.match_key == results[0].match_key
    assert bad.raw["success"] is False
    wait_until(lambda: sim.pushes)  # recorded once the push's answer is back
    assert sim.pushes[0]["status"] == 200 and sim.pushes[0]["body"] == "0"
    assert Kxt3Adapter.push_ack.body == "0" and Kxt3Adapter.push_ack.status_code == 200


def test_a_malformed_item_in_a_push_leaves_the_others_readable(
    adapter: Kxt3Adapter, sim: Kxt3Simulator, receiver: Receiver
) -> None:
    """Finding 1: kxt3 has no pull, so a push refused whole would lose its reports for good."""
    sim.malformed_push_records = True
    results = adapter.send(["+8613800000001", "+8613800004040"], "hi")
    (push,) = receiver.wait_for(1)
    batch = adapter.parse_push(push)
    assert {(r.to, r.status, r.vendor_ref) for r in batch.reports} == {
        ("+8613800000001", ReportStatus.DELIVERED, results[0].vendor_ref),
        ("+8613800004040", ReportStatus.UNDELIVERED, results[0].vendor_ref),
    }
    (skipped,) = batch.unreadable
    assert "13500000000" in skipped.raw and "error" in skipped.reason


def test_inbound_is_pushed_as_mo(adapter: Kxt3Adapter, sim: Kxt3Simulator, receiver: Receiver) -> None:
    sim.inject_inbound("13900000001", "你好吗")
    (push,) = receiver.wait_for(1)
    assert adapter.check_push_credentials(push)
    batch = adapter.parse_push(push)
    assert batch.reports == []
    (message,) = batch.inbound
    assert message.from_ == "+8613900000001"
    assert message.content == "你好吗"
    assert message.received_at is not None and message.received_at.utcoffset() == dt.timedelta(hours=8)
    assert abs((dt.datetime.now(dt.UTC) - message.received_at).total_seconds()) < 5


def test_without_push_url_reports_stay_pending() -> None:
    with Kxt3Simulator(report_delay_s=0.01) as quiet:
        Kxt3Adapter(quiet.settings()).send(["+8613800000001"], "hi")
        wait_until(lambda: quiet.pending_reports)
        assert [r.mobile for r in quiet.pending_reports] == ["13800000001"]
        assert quiet.pushes == []


def test_unacknowledged_push_keeps_the_reports(sim: Kxt3Simulator) -> None:
    nack = Receiver(reply="error").start()
    try:
        sim.push_url = nack.url
        Kxt3Adapter(sim.settings()).send(["+8613800000001"], "hi")
        nack.wait_for(1)
        wait_until(lambda: sim.pending_reports)
        assert [r.mobile for r in sim.pending_reports] == ["13800000001"]
    finally:
        nack.stop()


@pytest.mark.parametrize(
    ("uid", "pwd", "expected"),
    [("abc", "123", True), ("abc", "124", False), ("abd", "123", False), ("", "", False), ("abc", "", False)],
)
def test_push_credentials(adapter: Kxt3Adapter, uid: str, pwd: str, expected: bool) -> None:
    body = f"uid={uid}&pwd={pwd}&type=report&jsonData=%5B%5D".encode()
    assert adapter.check_push_credentials(RawRequest("POST", body=body)) is expected
    as_json = json.dumps({"uid": uid, "pwd": pwd, "type": "report", "jsonData": []}).encode()
    assert adapter.check_push_credentials(RawRequest("POST", body=as_json)) is expected


def test_push_credentials_fail_closed(sim: Kxt3Simulator) -> None:
    unconfigured = Kxt3Adapter({k: v for k, v in sim.settings().items() if k not in ("push_uid", "push_pwd")})
    body = b"uid=&pwd=&type=report&jsonData=%5B%5D"
    assert unconfigured.check_push_credentials(RawRequest("POST", body=body)) is False
    configured = Kxt3Adapter(sim.settings())
    assert configured.check_push_credentials(RawRequest("POST", body=b"\xff\xfe")) is False
    assert configured.check_push_credentials(RawRequest("POST", body=b"type=report")) is False


# --------------------------------------------------------------------------- simulator refusals


def test_get_is_refused_with_130(sim: Kxt3Simulator) -> None:
    assert raw_post(sim, method="GET")["stateCode"] == 130


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"message": "{}"}, 120),
        ({"op": "login"}, 120),
        ({"op": "sendMm", "message": "{}"}, 100),
        ({"op": "login", "message": "{not json"}, 110),
        ({"op": "login", "message": "[1, 2]"}, 110),
        ({"op": "login", "message": json.dumps({"cid": "12345678", "uid": "test"})}, 120),
    ],
)
def test_envelope_refusals(sim: Kxt3Simulator, form: dict[str, str], code: int) -> None:
    assert raw_post(sim, form)["stateCode"] == code


def test_auth_refusals(sim: Kxt3Simulator) -> None:
    login = {"op": "login"}
    assert raw_post(sim, {**login, "message": json.dumps(signed(sim))})["stateCode"] == 0
    assert raw_post(sim, {**login, "message": json.dumps(signed(sim, pwd="0" * 32))})["stateCode"] == 200
    good = signed(sim)
    upper = {**good, "pwd": good["pwd"].upper()}
    assert raw_post(sim, {**login, "message": json.dumps(upper)})["stateCode"] == 200
    assert raw_post(sim, {**login, "message": json.dumps(signed(sim, uid="other"))})["stateCode"] == 240
    assert raw_post(sim, {**login, "message": json.dumps(signed(sim, cid="1"))})["stateCode"] == 240
    short = signed(sim)
    short["timestamp"] = short["timestamp"][:14]
    assert raw_post(sim, {**login, "message": json.dumps(short)})["stateCode"] == 230
    month13 = "20151324201131" + "1000"
    bad_date = {**signed(sim), "timestamp": month13}
    bad_date["pwd"] = hashlib.md5((sim.password + month13).encode()).hexdigest()
    assert raw_post(sim, {**login, "message": json.dumps(bad_date)})["stateCode"] == 230
    reused = signed(sim)
    assert raw_post(sim, {**login, "message": json.dumps(reused)})["stateCode"] == 0
    assert raw_post(sim, {**login, "message": json.dumps(reused)})["stateCode"] == 230


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"content": "hi"}, 120),
        ({"mobiles": ["13800000001"]}, 120),
        ({"mobiles": "13800000001", "content": "hi"}, 110),
        ({"mobiles": [], "content": "hi"}, 300),
        ({"mobiles": ["13800000001"] * 10_001, "content": "hi"}, 300),
        ({"mobiles": ["1380000000"], "content": "hi"}, 310),
        ({"mobiles": ["+8613800000001"], "content": "hi"}, 310),
        ({"mobiles": ["13800000001", "13800004220"], "content": "hi"}, 310),
        ({"mobiles": ["13800000001"], "content": ""}, 320),
        ({"mobiles": ["13800000001"], "content": "x" * 1001}, 320),
        ({"mobiles": ["13800000001"], "content": "hi", "atTime": "2015-04-01 12:00"}, 330),
        ({"mobiles": ["13800000001"], "content": "hi", "atTime": "2015-04-31 12:00:00"}, 330),
        ({"mobiles": ["13800000001"], "content": "hi", "dailyBeginTime": "9:30:00"}, 340),
        ({"mobiles": ["13800000001"], "content": "hi", "dailyEndTime": "24:00:00"}, 340),
        (
            {
                "mobiles": ["13800000001"],
                "content": "hi",
                "dailyBeginTime": "18:00:00",
                "dailyEndTime": "08:00:00",
            },
            340,
        ),
    ],
)
def test_send_refusals(sim: Kxt3Simulator, fields: dict[str, Any], code: int) -> None:
    assert send_raw(sim, **fields)["stateCode"] == code
    assert sim.accepted == []


def test_accepted_send_answers_token_and_fee(sim: Kxt3Simulator) -> None:
    answer = send_raw(
        sim, mobiles=["13800000001", "13800000002"], content="x" * 71, atTime="2015-04-01 12:00:00"
    )
    assert answer["stateCode"] == 0
    assert isinstance(answer["token"], int)
    assert answer["fee"] == 4  # two numbers, two parts each
    assert len(sim.accepted) == 2


# --------------------------------------------------------------------------- transport errors


def test_connect_refused_never_reached() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = Kxt3Adapter({"base_url": f"http://127.0.0.1:{port}/x", "cid": "1", "uid": "u", "password": "p"})
    with pytest.raises(VendorConnectError) as info:
        adapter.send(["+8613800000001"], "hi")
    assert info.value.may_have_reached is False


def test_timeout_after_accept_may_have_reached(sim: Kxt3Simulator) -> None:
    adapter = Kxt3Adapter({**sim.settings(), "timeout_s": 0.3})
    sim.inject_fault("timeout_after_accept")
    with pytest.raises(VendorTimeout) as info:
        adapter.send(["+8613800000001"], "hi")
    assert info.value.may_have_reached is True
    wait_until(
        lambda: [a.mobile for a in sim.accepted] == ["13800000001"], what="the vendor to keep the message"
    )


def test_slow_answer_number_times_out_after_accept(sim: Kxt3Simulator) -> None:
    adapter = Kxt3Adapter({**sim.settings(), "timeout_s": 0.3})
    with pytest.raises(VendorTimeout):
        adapter.send(["+8613800005040"], "hi")
    assert [a.mobile for a in sim.accepted] == ["13800005040"]


def test_http500_is_an_http_error(adapter: Kxt3Adapter, sim: Kxt3Simulator) -> None:
    sim.inject_fault("http500")
    with pytest.raises(VendorHTTPError) as info:
        adapter.send(["+8613800000001"], "hi")
    assert info.value.status_code == 500
    assert info.value.outcome is Outcome.TRANSIENT
    assert sim.accepted == []


@pytest.mark.parametrize("fault", ["html", "empty", "malformed"])
def test_unreadable_answers_are_parse_errors(adapter: Kxt3Adapter, sim: Kxt3Simulator, fault: str) -> None:
    sim.inject_fault(fault)
    with pytest.raises(VendorParseError) as info:
        adapter.send(["+8613800000001"], "hi")
    assert info.value.may_have_reached is True
    sim.inject_fault(fault)
    with pytest.raises(VendorParseError):
        adapter.balance()
