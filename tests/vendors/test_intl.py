"""intl adapter against the running intl simulator: every operation, refusals, pushes, transport errors."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from decimal import Decimal
from typing import Any

import pytest
import requests
from smsrelay.vendors import (
    Outcome,
    RawRequest,
    ReportQuery,
    ReportStatus,
    SendOptions,
    VendorConnectError,
    VendorHTTPError,
    VendorParseError,
    VendorRequestError,
    VendorTimeout,
    VendorUnsupported,
)
from smsrelay.vendors.base import CHINA_TZ
from smsrelay.vendors.intl import IntlAdapter
from smsrelay_local.simulators.intl import BALANCE_PATH, SEND_PATH, STATUS_PATH, IntlSimulator

from tests.helpers import wait_until

from .conftest import receiver_fixtures, simulator_fixtures
from .push_receiver import PushReceiver

SECRET_MD5 = "E99A18C428CB38D5F260853678922E03"  # the document's MD5("abc123"), upper case


class IntlReceiver(PushReceiver):
    def __init__(self) -> None:
        super().__init__("intl", '{"code":0,"msg":"ok"}', "application/json")


_receiver_server, receiver = receiver_fixtures(IntlReceiver)
_sim_server, sim = simulator_fixtures(
    "intl", report_delay_s=0.05, slow_report_s=0.6, slow_answer_s=1.0, seed=1
)
_push_sim_server, push_sim = simulator_fixtures(
    "intl",
    name="push_sim",
    receiver="_receiver_server",
    report_delay_s=0.05,
    push_retry_interval_s=0.05,
    seed=1,
)


@pytest.fixture
def adapter(sim: IntlSimulator) -> IntlAdapter:
    return IntlAdapter(sim.settings())


def raw_post(sim: IntlSimulator, path: str, body: Any, **headers: str) -> dict[str, Any]:
    """Call the simulator directly, with the document's headers unless overridden."""
    sent = {
        "Accept": "application/json",
        "Content-Type": "application/json;charset=utf-8",
        "appKey": sim.app_key,
        "appSecret": SECRET_MD5,
        **headers,
    }
    response = requests.post(sim.root_url + path, data=json.dumps(body), headers=sent, timeout=5)
    return response.json()


# --------------------------------------------------------------------------- send


def test_send_one_msgid_for_every_recipient_and_vendor_number_format(
    adapter: IntlAdapter, sim: IntlSimulator
) -> None:
    results = adapter.send(["+8613800000001", "+2348031000010"], "【Acme】code 4711")

    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    assert [r.to for r in results] == ["+8613800000001", "+2348031000010"]
    assert results[0].vendor_ref and results[0].vendor_ref == results[1].vendor_ref
    kept = {a.mobile: a for a in sim.accepted}
    assert set(kept) == {"8613800000001", "2348031000010"}  # country code, no '+'
    assert all(
        a.vendor_ref == results[0].vendor_ref and a.content == "【Acme】code 4711" for a in kept.values()
    )


def test_every_call_carries_the_document_headers(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    adapter.send(["+8613800000001"], "hi")
    adapter.balance()
    adapter.query_reports([ReportQuery(vendor_ref="1", to="+8613800000001")])

    assert len(sim.headers_seen) == 3
    for headers in sim.headers_seen:
        assert headers["Accept"] == "application/json"
        assert headers["Content-Type"] == "application/json;charset=utf-8"
        assert headers["Appkey"] == "10002"
        assert headers["Appsecret"] == SECRET_MD5


def test_sender_id_from_settings_and_from_options(sim: IntlSimulator) -> None:
    adapter = IntlAdapter({**sim.settings(), "sender_id": "Univasa"})
    adapter.send(["+8613800000001"], "a")
    adapter.send(["+8613800000002"], "b", SendOptions(sender_id="Acme"))

    assert sim.accepted_for("8613800000001")[0].extra["sender_id"] == "Univasa"
    assert sim.accepted_for("8613800000002")[0].extra["sender_id"] == "Acme"


def test_send_at_becomes_sendtime_in_utc8(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    send_at = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    result = adapter.send(["+8613800000001"], "later", SendOptions(send_at=send_at))

    kept = sim.accepted_for("8613800000001")[0]
    assert kept.extra["send_at"] == dt.datetime(2030, 1, 2, 11, 4, 5, tzinfo=CHINA_TZ)
    # Not sent before its time: no report yet even after the report delay.
    time.sleep(0.2)
    (report,) = adapter.query_reports(
        [ReportQuery(vendor_ref=result[0].vendor_ref or "", to="+8613800000001")]
    )
    assert report.status == ReportStatus.PENDING


def test_numbers_the_vendor_cannot_take_are_refused_without_a_call(
    adapter: IntlAdapter, sim: IntlSimulator
) -> None:
    results = adapter.send(["13800000001", "+0123456789", "+86abc"], "hi")

    assert [r.outcome for r in results] == [Outcome.PERMANENT] * 3
    assert {r.code for r in results} == {"1007"}
    assert sim.requests == []


def test_mixed_numbers_keep_input_order(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    results = adapter.send(["bad", "+8613800000001"], "hi")

    assert [(r.to, r.outcome) for r in results] == [
        ("bad", Outcome.PERMANENT),
        ("+8613800000001", Outcome.OK),
    ]
    assert len(sim.accepted) == 1


def test_number_ending_4220_refuses_the_whole_request(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000001", "+8613800004220", "bad"], "hi")

    assert info.value.code == "1007"
    assert info.value.outcome == Outcome.PERMANENT
    assert info.value.may_have_reached is False
    assert [r.to for r in info.value.partial] == ["bad"]  # the locally refused one is still reported
    assert sim.accepted == []


def test_big_sends_are_split_by_batch_limit(sim: IntlSimulator) -> None:
    adapter = IntlAdapter({**sim.settings(), "max_batch": 2})
    numbers = [f"+86138000000{i:02d}" for i in range(1, 6)]
    results = adapter.send(numbers, "hi")

    sends = [r for r in sim.requests if r["path"] == SEND_PATH]
    assert len(sends) == 3
    assert len({r.vendor_ref for r in results}) == 3
    assert IntlAdapter.max_batch == 1000


# --------------------------------------------------------------------------- simulator refusals


def test_wrong_app_key_is_1002(sim: IntlSimulator) -> None:
    adapter = IntlAdapter({**sim.settings(), "app_key": "nope"})
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000001"], "hi")
    assert (info.value.code, info.value.outcome) == ("1002", Outcome.CONFIGURATION)
    assert sim.accepted == []


def test_wrong_secret_is_1003(sim: IntlSimulator) -> None:
    adapter = IntlAdapter({**sim.settings(), "app_secret": "wrong"})
    with pytest.raises(VendorRequestError) as info:
        adapter.balance()
    assert (info.value.code, info.value.outcome) == ("1003", Outcome.CONFIGURATION)


def test_lower_case_md5_secret_is_refused(sim: IntlSimulator) -> None:
    answer = raw_post(
        sim, SEND_PATH, {"mobile": "8613800000001", "content": "x"}, appSecret=SECRET_MD5.lower()
    )
    assert answer == {"code": 1003, "msg": "PasswordError"}


def test_empty_content_is_1006(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000001"], "  ")
    assert (info.value.code, info.value.outcome) == ("1006", Outcome.PERMANENT)
    assert sim.accepted == []


def test_more_than_1000_numbers_is_1007(sim: IntlSimulator) -> None:
    mobiles = ",".join(f"86138{i:08d}" for i in range(1001))
    assert raw_post(sim, SEND_PATH, {"mobile": mobiles, "content": "x"})["code"] == 1007
    assert sim.accepted == []
    mobiles = ",".join(f"86138{i:08d}" for i in range(1000))
    assert raw_post(sim, SEND_PATH, {"mobile": mobiles, "content": "x"})["code"] == 0


@pytest.mark.parametrize("mobile", ["+8613800000001", "013800000001", "86138000000a1", "", "86,"])
def test_bad_number_forms_are_1007(sim: IntlSimulator, mobile: str) -> None:
    assert raw_post(sim, SEND_PATH, {"mobile": mobile, "content": "x"})["code"] == 1007


@pytest.mark.parametrize(
    "send_time", ["2024-09-24 10:02:12", "202409241002", "20241324100212", 20240924100212]
)
def test_bad_send_time_is_1011(sim: IntlSimulator, send_time: Any) -> None:
    answer = raw_post(sim, SEND_PATH, {"mobile": "8613800000001", "content": "x", "sendTime": send_time})
    assert answer["code"] == 1011
    assert "data" not in answer  # failures carry no data


def test_missing_fields_and_non_json_are_1001(sim: IntlSimulator) -> None:
    assert raw_post(sim, SEND_PATH, {"content": "x"})["code"] == 1001
    response = requests.post(
        sim.root_url + SEND_PATH,
        data=b"mobile=1",
        headers={"Content-Type": "application/json", "appKey": sim.app_key, "appSecret": SECRET_MD5},
        timeout=5,
    )
    assert response.json()["code"] == 1001


def test_balance_too_low_is_1009(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    sim.balance = 0.06  # one message at 0.05 fits, two do not
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000001", "+8613800000002"], "hi")
    assert (info.value.code, info.value.outcome) == ("1009", Outcome.PERMANENT)
    assert adapter.send(["+8613800000001"], "hi")[0].outcome == Outcome.OK


# --------------------------------------------------------------------------- balance


def test_balance_is_read_and_goes_down_per_message(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    before = adapter.balance()
    adapter.send(["+8613800000001", "+8613800000002"], "hi")
    after = adapter.balance()

    assert before.unit == "CNY" and before.raw["currencyName"] == "人民币"
    assert before.balance - after.balance == Decimal("0.10")


# --------------------------------------------------------------------------- status query


def _query(adapter: IntlAdapter, ref: str, *numbers: str) -> dict[str, Any]:
    return {r.to: r for r in adapter.query_reports([ReportQuery(vendor_ref=ref, to=n) for n in numbers])}


def test_query_follows_each_fate(adapter: IntlAdapter) -> None:
    numbers = ["+8613800000001", "+8613800004040", "+8613800005030", "+8613800000000"]
    ref = adapter.send(numbers, "hi")[0].vendor_ref or ""

    first = _query(adapter, ref, *numbers)
    assert {n: r.status for n, r in first.items()}["+8613800005030"] == ReportStatus.PENDING
    wait_until(lambda: _query(adapter, ref, numbers[0])[numbers[0]].status == ReportStatus.DELIVERED)
    mid = _query(adapter, ref, *numbers)
    assert mid["+8613800000001"].code == "DELIVRD"
    assert mid["+8613800000001"].occurred_at is not None
    assert mid["+8613800004040"].status == ReportStatus.UNDELIVERED
    assert mid["+8613800004040"].code == "UNDELIV"
    assert mid["+8613800005030"].status == ReportStatus.PENDING  # slow report not due yet
    wait_until(lambda: _query(adapter, ref, numbers[2])[numbers[2]].status == ReportStatus.DELIVERED)
    assert _query(adapter, ref, numbers[3])[numbers[3]].status == ReportStatus.PENDING  # 0000: never reported


def test_query_unknown_is_pending_and_all_unknown_is_no_report(
    adapter: IntlAdapter, sim: IntlSimulator
) -> None:
    ref = adapter.send(["+8613800000001"], "hi")[0].vendor_ref or ""
    mixed = _query(adapter, ref, "+8613800000001", "+8613800000009")
    assert mixed["+8613800000009"].status == ReportStatus.PENDING

    assert adapter.query_reports([ReportQuery(vendor_ref="nope", to="+8613800000001")]) == []
    assert raw_post(sim, STATUS_PATH, {"data": [{"msgId": "nope", "mobile": "1"}]})["code"] == 1012


def test_query_older_than_30_days_is_not_found(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    ref = adapter.send(["+8613800000001"], "hi")[0].vendor_ref or ""
    sim.accepted[0].accepted_at -= 31 * 24 * 3600
    assert adapter.query_reports([ReportQuery(vendor_ref=ref, to="+8613800000001")]) == []


def test_query_is_split_by_500_and_more_is_refused(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    ref = adapter.send(["+8613800000001"], "hi")[0].vendor_ref or ""
    queries = [ReportQuery(vendor_ref=ref, to="+8613800000001")]
    queries += [ReportQuery(vendor_ref="x", to=f"+86139{i:08d}") for i in range(1100)]

    reports = adapter.query_reports(queries)

    assert len([r for r in sim.requests if r["path"] == STATUS_PATH]) == 3
    assert len(reports) == 500  # chunks 2 and 3 know nothing: 1012, no records
    too_many = [{"msgId": "x", "mobile": "1"}] * 501
    assert raw_post(sim, STATUS_PATH, {"data": too_many})["code"] == 1001


# --------------------------------------------------------------------------- pushes


def test_pushes_reports_with_credentials_and_adapter_reads_them(
    push_sim: IntlSimulator, receiver: PushReceiver
) -> None:
    adapter = IntlAdapter(push_sim.settings())
    ref = adapter.send(["+8613800000001", "+8613800004040"], "hi")[0].vendor_ref

    wait_until(lambda: len(receiver.requests) == 2)
    time.sleep(0.1)
    assert len(receiver.requests) == 2  # acknowledged: no re-push
    reports = {}
    for request in receiver.requests:
        assert request.method == "POST"
        assert adapter.check_push_credentials(request)
        (report,) = adapter.parse_push(request).reports
        reports[report.to] = report
    assert reports["+8613800000001"].status == ReportStatus.DELIVERED
    assert reports["+8613800004040"].status == ReportStatus.UNDELIVERED
    assert {r.vendor_ref for r in reports.values()} == {ref}
    assert all(r.occurred_at is not None for r in reports.values())


def test_push_credentials_checked(push_sim: IntlSimulator, receiver: PushReceiver) -> None:
    adapter = IntlAdapter(push_sim.settings())
    adapter.send(["+8613800000001"], "hi")
    wait_until(lambda: len(receiver.requests) == 1)
    pushed = receiver.requests[0]
    lower = RawRequest("POST", {k.lower(): v for k, v in pushed.headers.items()}, body=pushed.body)

    assert adapter.check_push_credentials(lower)  # header names are case-insensitive
    other_key = IntlAdapter({**push_sim.settings(), "app_key": "10003"})
    other_secret = IntlAdapter({**push_sim.settings(), "app_secret": "abc124"})
    assert not other_key.check_push_credentials(pushed)
    assert not other_secret.check_push_credentials(pushed)
    assert not adapter.check_push_credentials(RawRequest("POST", {"appKey": "10002"}, body=pushed.body))
    assert not adapter.check_push_credentials(
        RawRequest("POST", {"appKey": "10002", "appSecret": "é" * 32}, body=pushed.body)
    )


@pytest.mark.parametrize(("status", "body"), [(200, '{"code":1,"msg":"busy"}'), (500, "oops"), (200, "OK")])
def test_push_not_acknowledged_is_pushed_twice_more(
    push_sim: IntlSimulator, receiver: PushReceiver, status: int, body: str
) -> None:
    receiver.reply_status, receiver.reply_body = status, body
    IntlAdapter(push_sim.settings()).send(["+8613800000001"], "hi")

    wait_until(lambda: len(receiver.requests) == 3)
    time.sleep(0.2)
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1  # the same report each time


def test_push_to_unreachable_receiver_tries_three_times() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    simulator = IntlSimulator(
        push_url=f"http://127.0.0.1:{port}/x", report_delay_s=0.01, push_retry_interval_s=0.02
    )
    simulator.start()
    try:
        IntlAdapter(simulator.settings()).send(["+8613800000001"], "hi")
        wait_until(lambda: len(simulator.pushes) == 3)
        time.sleep(0.1)
        assert [p["status"] for p in simulator.pushes] == [None, None, None]
    finally:
        simulator.stop()


def test_no_inbound_in_this_vendor(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    with pytest.raises(NotImplementedError):
        sim.inject_inbound("8613800000001", "hello")
    with pytest.raises(VendorUnsupported):
        adapter.pull_inbound()
    with pytest.raises(VendorUnsupported):
        adapter.pull_reports()


# --------------------------------------------------------------------------- transport


def test_connect_refused_is_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = IntlAdapter({"base_url": f"http://127.0.0.1:{port}", "app_key": "k", "app_secret": "s"})
    with pytest.raises(VendorConnectError) as info:
        adapter.send(["+8613800000001"], "hi")
    assert info.value.may_have_reached is False


def test_timeout_after_accept_may_have_reached(sim: IntlSimulator) -> None:
    adapter = IntlAdapter({**sim.settings(), "timeout_s": 0.3})
    sim.inject_fault("timeout_after_accept")
    with pytest.raises(VendorTimeout) as info:
        adapter.send(["+8613800000001"], "hi")
    assert info.value.may_have_reached is True
    wait_until(
        lambda: [a.mobile for a in sim.accepted] == ["8613800000001"], what="the vendor to keep the message"
    )


def test_slow_answer_number_times_out_but_is_kept(sim: IntlSimulator) -> None:
    adapter = IntlAdapter({**sim.settings(), "timeout_s": 0.3})
    with pytest.raises(VendorTimeout):
        adapter.send(["+8613800005040"], "hi")
    assert [a.mobile for a in sim.accepted] == ["8613800005040"]


def test_http500_is_http_error(adapter: IntlAdapter, sim: IntlSimulator) -> None:
    sim.inject_fault("http500")
    with pytest.raises(VendorHTTPError) as info:
        adapter.send(["+8613800000001"], "hi")
    assert info.value.status_code == 500 and info.value.outcome == Outcome.TRANSIENT


@pytest.mark.parametrize("fault", ["html", "empty", "malformed"])
def test_unreadable_send_answer_is_parse_error(adapter: IntlAdapter, sim: IntlSimulator, fault: str) -> None:
    sim.inject_fault(fault)
    with pytest.raises(VendorParseError) as info:
        adapter.send(["+8613800000001"], "hi")
    assert info.value.may_have_reached is True


@pytest.mark.parametrize("fault", ["html", "empty"])
def test_unreadable_balance_and_status_are_parse_errors(
    adapter: IntlAdapter, sim: IntlSimulator, fault: str
) -> None:
    sim.inject_fault(fault, path=BALANCE_PATH)
    with pytest.raises(VendorParseError):
        adapter.balance()
    sim.inject_fault(fault, path=STATUS_PATH)
    with pytest.raises(VendorParseError):
        adapter.query_reports([ReportQuery(vendor_ref="1", to="+8613800000001")])
