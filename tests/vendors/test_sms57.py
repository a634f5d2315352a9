"""sms57 adapter against the sms57 simulator: every operation, pushes, refusals, transport errors."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from smsrelay.vendors import Outcome, ReportStatus, VendorRequestError
from smsrelay.vendors.base import CHINA_TZ
from smsrelay.vendors.errors import VendorConnectError, VendorHTTPError, VendorParseError, VendorTimeout
from smsrelay.vendors.sms57 import Sms57Adapter
from smsrelay_local.simulators.sms57 import Sms57Simulator

from tests.helpers import wait_until

from .conftest import simulator_fixtures
from .push_receiver import PushReceiver

# --------------------------------------------------------------------------- helpers


class Receiver(PushReceiver):
    def __init__(self, reply: str = "OK"):
        super().__init__("sms57", reply)


class Wire:
    """Records the form bodies the adapter puts on the wire (a response hook on its Session)."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.bodies: list[dict[str, str]] = []
        self.session.hooks["response"].append(self._hook)

    def _hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        body = response.request.body or ""
        text = body.decode() if isinstance(body, bytes) else body
        self.bodies.append({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})


# Waits for the previous test's reports (a timer due later would fire into this one).
_sim_server, sim = simulator_fixtures(
    "sms57",
    settle=lambda s: wait_until(lambda: not s._timers),
    report_delay_s=0.01,
    slow_answer_s=1.0,
    seed=7,
)


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def adapter(sim: Sms57Simulator, wire: Wire) -> Sms57Adapter:
    return Sms57Adapter(sim.settings(), session=wire.session)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recv = Receiver().start()
    yield recv
    recv.stop()


@pytest.fixture
def push_sim(sim: Sms57Simulator, receiver: Receiver) -> Sms57Simulator:
    sim.push_url = receiver.url
    return sim


# --------------------------------------------------------------------------- send


def test_send_returns_one_result_per_recipient_with_the_vendor_mid(
    sim: Sms57Simulator, adapter: Sms57Adapter, wire: Wire
) -> None:
    results = adapter.send(["+8613800000001", "+8613800000002"], "【测试】您好")

    assert [r.to for r in results] == ["+8613800000001", "+8613800000002"]
    assert all(r.outcome is Outcome.OK and r.code == "0" for r in results)
    kept = {a.mobile: a.vendor_ref for a in sim.accepted}
    assert [r.vendor_ref for r in results] == [kept["13800000001"], kept["13800000002"]]
    assert all(len(r.vendor_ref or "") == 16 for r in results)
    sent = wire.bodies[-1]
    assert sent["action"] == "send" and sent["rt"] == "json"
    assert sent["mobile"] == "13800000001,13800000002"
    assert sent["extno"] == "10690231221" and sent["account"] == "922011"
    # MD5("123456" + "10690231221" + "【测试】您好" + "13800000001,13800000002"), computed apart
    assert sent["password"] == "f7209c17cabcdb447a7728392c74f21d"


def test_mids_are_unique_across_requests(adapter: Sms57Adapter) -> None:
    first = adapter.send(["+8613800000001", "+8613800000002"], "a")
    second = adapter.send(["+8613800000001"], "b")
    refs = [r.vendor_ref for r in first + second]
    assert len(set(refs)) == 3


def test_non_chinese_numbers_are_refused_without_a_call(adapter: Sms57Adapter, wire: Wire) -> None:
    results = adapter.send(["+12025550100", "+862087654321"], "hi")
    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.PERMANENT]
    assert all(r.code == "NOT_CN_MOBILE" for r in results)
    assert wire.bodies == []


def test_mixed_numbers_keep_request_order(adapter: Sms57Adapter) -> None:
    results = adapter.send(["+12025550100", "+8613800000001", "+8613800004220"], "hi")
    assert [r.to for r in results] == ["+12025550100", "+8613800000001", "+8613800004220"]
    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.OK, Outcome.PERMANENT]


def test_refused_test_number_gets_a_per_recipient_result(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    ok, refused = adapter.send(["+8613800000001", "+8613800004220"], "hi")
    assert ok.outcome is Outcome.OK
    assert refused.outcome is Outcome.PERMANENT and refused.code == "15" and refused.vendor_ref is None
    assert sim.accepted_for("13800004220") == []


def test_send_is_chunked_at_the_document_limit(
    sim: Sms57Simulator, adapter: Sms57Adapter, wire: Wire
) -> None:
    numbers = [f"+86139{i:08d}" for i in range(501)]
    results = adapter.send(numbers, "hi")
    assert len(results) == 501 and all(r.outcome is Outcome.OK for r in results)
    assert [len(b["mobile"].split(",")) for b in wire.bodies] == [500, 1]


def test_max_batch_setting_lowers_the_chunk(sim: Sms57Simulator, wire: Wire) -> None:
    adapter = Sms57Adapter({**sim.settings(), "max_batch": 200}, session=wire.session)
    adapter.send([f"+86139{i:08d}" for i in range(250)], "hi")
    assert [len(b["mobile"].split(",")) for b in wire.bodies] == [200, 50]


def test_plain_password_mode(sim: Sms57Simulator, wire: Wire) -> None:
    sim.password_mode = "plain"
    adapter = Sms57Adapter(sim.settings(), session=wire.session)
    assert adapter.send(["+8613800000001"], "hi")[0].outcome is Outcome.OK
    assert adapter.balance().balance > 0
    assert {b["password"] for b in wire.bodies} == {"123456"}


# --------------------------------------------------------------------------- p2p


def test_send_personalised_uses_p2p(sim: Sms57Simulator, adapter: Sms57Adapter, wire: Wire) -> None:
    results = adapter.send_personalised([("+8613800000001", "内容一"), ("+8613800000002", "内容二")])

    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    assert {(a.mobile, a.content) for a in sim.accepted} == {
        ("13800000001", "内容一"),
        ("13800000002", "内容二"),
    }
    sent = wire.bodies[-1]
    assert sent["action"] == "p2p"
    assert sent["mobileContentList"] == "13800000001#内容一\r13800000002#内容二"  # CR, as the example
    # MD5("123456" + "10690231221" + "13800000001#内容一13800000002#内容二")
    assert sent["password"] == "545fe3482e483325b6d1286df7d5ebe6"


@pytest.mark.parametrize(
    ("separator", "error"),
    [
        ("lf", VendorParseError),  # one record whose text holds the rest: one result comes back
        ("crlf", VendorRequestError),  # the second record starts with LF: STATUS 1
    ],
)
def test_p2p_separator_setting_changes_the_list_not_the_password(
    sim: Sms57Simulator, wire: Wire, separator: str, error: type[Exception]
) -> None:
    adapter = Sms57Adapter({**sim.settings(), "p2p_separator": separator}, session=wire.session)
    with pytest.raises(error):  # this simulator takes CR only, as the document's example
        adapter.send_personalised([("+8613800000001", "内容一"), ("+8613800000002", "内容二")])
    sent = wire.bodies[-1]
    line_break = {"lf": "\n", "crlf": "\r\n"}[separator]
    assert sent["mobileContentList"] == f"13800000001#内容一{line_break}13800000002#内容二"
    assert sent["password"] == "545fe3482e483325b6d1286df7d5ebe6"  # the hash never sees the separator


def test_p2p_records_are_separated_by_cr_as_the_example(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    """Finding 6: joined with LF, a CR-only gateway reads one record whose text holds the rest."""
    adapter.send_personalised([("+8613800000001", "内容一"), ("+8613800000002", "内容二")])
    assert [(a.mobile, a.content) for a in sim.accepted] == [
        ("13800000001", "内容一"),
        ("13800000002", "内容二"),
    ]


def test_p2p_chunks_at_500_and_falls_back_to_send_for_line_breaks(
    sim: Sms57Simulator, adapter: Sms57Adapter, wire: Wire
) -> None:
    messages = [(f"+86139{i:08d}", f"m{i}") for i in range(501)] + [("+8613700000001", "two\nlines")]
    results = adapter.send_personalised([*messages, ("+12025550100", "x")])
    assert len(results) == 503
    assert [r.to for r in results] == [to for to, _ in messages] + ["+12025550100"]
    assert results[-1].outcome is Outcome.PERMANENT
    assert [b["action"] for b in wire.bodies] == ["p2p", "p2p", "send"]
    assert sim.accepted_for("13700000001")[0].content == "two\nlines"


def test_p2p_content_may_hold_a_hash(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    adapter.send_personalised([("+8613800000001", "order #42")])
    assert sim.accepted_for("13800000001")[0].content == "order #42"


# --------------------------------------------------------------------------- balance


def test_balance_in_yuan_decreases_per_accepted_message(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    before = adapter.balance()
    adapter.send(["+8613800000001", "+8613800000002", "+8613800004220"], "hi")
    after = adapter.balance()
    assert before.unit == "CNY" and before.balance == Decimal("1000")
    assert before.balance - after.balance == Decimal("0.1")  # two accepted at 50 厘 each
    assert after.raw["balance_li"] == "999900"
    assert after.raw["chargeType"] == "PRECHARGE"


def test_status_type_varies_like_the_document(sim: Sms57Simulator) -> None:
    url = sim.base_url + "/sms"
    balance = requests.post(
        url, data={"action": "balance", "account": "922011", "password": "x", "rt": "json"}
    )
    mo = requests.post(url, data={"action": "mo", "account": "922011", "password": "x", "rt": "json"})
    assert balance.json()["status"] == 3  # a number, as in the balance example
    assert mo.json()["status"] == "3"  # a string, as in the mo example


# --------------------------------------------------------------------------- pulls


def test_pull_reports_delivered_and_undelivered(
    sim: Sms57Simulator, adapter: Sms57Adapter, wire: Wire
) -> None:
    sent = adapter.send(["+8613800000001", "+8613800004040", "+8613800000000"], "hi")
    wait_until(lambda: len(sim.pending_reports) == 2)

    batch = adapter.pull_reports()
    reports = {r.to: r for r in batch.reports}

    assert wire.bodies[-1]["action"] == "report" and wire.bodies[-1]["size"] == "1000"
    assert set(reports) == {"+8613800000001", "+8613800004040"}  # 0000: no report ever
    ok, failed = reports["+8613800000001"], reports["+8613800004040"]
    assert ok.status is ReportStatus.DELIVERED and ok.code == "DELIVRD"
    assert ok.match_key == sent[0].match_key
    assert failed.status is ReportStatus.UNDELIVERED and failed.code == "MA:0029"
    assert failed.vendor_ref == sent[1].vendor_ref
    assert ok.occurred_at is not None and ok.occurred_at.utcoffset() == CHINA_TZ.utcoffset(None)
    assert batch.more and not batch.unreadable
    empty = adapter.pull_reports()  # each handed out once
    assert (empty.reports, empty.more) == ([], False)


def test_pull_reports_respects_size(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    adapter.send([f"+86139{i:08d}" for i in range(1, 16)], "hi")  # 0000 would never report
    wait_until(lambda: len(sim.pending_reports) == 15)
    response = requests.post(
        sim.base_url + "/sms",
        data={
            "action": "report",
            "account": "922011",
            "password": adapter.password_for(),
            "size": "3",
            "rt": "json",
        },
    )
    assert len(response.json()["list"]) == 10  # the document's minimum size
    assert len(adapter.pull_reports().reports) == 5


def test_pull_inbound_sends_size_and_szie(sim: Sms57Simulator, adapter: Sms57Adapter, wire: Wire) -> None:
    sim.inject_inbound("13800000001", "退订")
    inbound = adapter.pull_inbound().inbound
    sent = wire.bodies[-1]
    assert sent["action"] == "mo" and sent["size"] == sent["szie"] == "1000"
    assert len(inbound) == 1
    message = inbound[0]
    assert message.from_ == "+8613800000001" and message.to == "10690231221" and message.content == "退订"
    assert message.received_at is not None and message.vendor_ref
    assert adapter.pull_inbound().inbound == []


def test_simulator_takes_the_misspelt_szie(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    for i in range(12):
        sim.inject_inbound(f"138000000{i:02d}", "hi")
    data = {
        "action": "mo",
        "account": "922011",
        "password": adapter.password_for(),
        "szie": "10",
        "rt": "json",
    }
    assert len(requests.post(sim.base_url + "/sms", data=data).json()["list"]) == 10


# --------------------------------------------------------------------------- push


def test_push_mixes_reports_and_inbound_in_one_array(
    push_sim: Sms57Simulator, receiver: Receiver, wire: Wire
) -> None:
    adapter = Sms57Adapter(push_sim.settings(), session=wire.session)
    sent = adapter.send(["+8613800000001", "+8613800004040"], "hi")
    push_sim.inject_inbound("13800000009", "好的")

    pushes = receiver.wait_for(1)
    wait_until(lambda: sum(len(json.loads(p.body)) for p in receiver.requests) == 3)
    batches = [adapter.parse_push(p) for p in receiver.requests]

    assert all(p.method == "POST" and isinstance(json.loads(p.body), list) for p in pushes)
    reports = {r.to: r for b in batches for r in b.reports}
    inbound = [m for b in batches for m in b.inbound]
    assert reports["+8613800000001"].status is ReportStatus.DELIVERED
    assert reports["+8613800000001"].vendor_ref == sent[0].vendor_ref
    assert reports["+8613800004040"].status is ReportStatus.UNDELIVERED
    assert [(m.from_, m.content) for m in inbound] == [("+8613800000009", "好的")]
    assert adapter.push_ack.body == "OK" and adapter.push_ack.status_code == 200
    assert all(p["body"] == "OK" for p in push_sim.pushes)
    assert not push_sim.pending_reports  # pushed, not kept for pull


def test_unacknowledged_push_is_not_pushed_again(push_sim: Sms57Simulator, receiver: Receiver) -> None:
    """6.3 only asks the client to answer OK: nothing in the document pushes a second time."""
    receiver.reply_body = "FAIL"
    push_sim.inject_inbound("13800000001", "hi")
    receiver.wait_for(1)
    time.sleep(0.3)
    assert len(receiver.requests) == 1


def test_a_malformed_record_in_a_push_leaves_the_others_readable(
    push_sim: Sms57Simulator, receiver: Receiver, adapter: Sms57Adapter
) -> None:
    """Finding 1: one record without `mid` costs that record only, not the array."""
    push_sim.malformed_push_records = True
    sent = adapter.send(["+8613800000001"], "hi")
    push_sim.inject_inbound("13800000009", "好的", mid=None)  # an inbound `mid` may be left out
    wait_until(lambda: sum(len(json.loads(p.body)) for p in receiver.requests) >= 3)
    batches = [adapter.parse_push(p) for p in receiver.requests]
    reports = [r for b in batches for r in b.reports]
    assert [(r.vendor_ref, r.status) for r in reports] == [(sent[0].vendor_ref, ReportStatus.DELIVERED)]
    assert [m.content for b in batches for m in b.inbound] == ["好的"]
    skipped = [u for b in batches for u in b.unreadable]
    assert skipped and all("mid" in u.reason for u in skipped)


# --------------------------------------------------------------------------- refusals


def test_wrong_password_is_status_3(sim: Sms57Simulator) -> None:
    adapter = Sms57Adapter({**sim.settings(), "password": "wrong"})
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800000001"], "hi")
    assert err.value.code == "3" and err.value.outcome is Outcome.CONFIGURATION
    assert not err.value.may_have_reached and err.value.description
    with pytest.raises(VendorRequestError) as err:
        adapter.balance()
    assert err.value.code == "3"
    assert sim.accepted == []


def test_plain_password_on_an_md5_account_is_refused(sim: Sms57Simulator) -> None:
    adapter = Sms57Adapter({**sim.settings(), "password_mode": "plain"})
    with pytest.raises(VendorRequestError) as err:
        adapter.pull_reports()
    assert err.value.code == "3"


def test_wrong_account_is_status_3(sim: Sms57Simulator) -> None:
    with pytest.raises(VendorRequestError) as err:
        Sms57Adapter({**sim.settings(), "account": "999"}).pull_inbound()
    assert err.value.code == "3"


def test_more_than_500_numbers_is_status_102(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    mobile = ",".join(f"139{i:08d}" for i in range(501))
    data = {
        "action": "send",
        "account": "922011",
        "password": adapter.password_for("10690231221" + "hi" + mobile),
        "mobile": mobile,
        "content": "hi",
        "extno": "10690231221",
        "rt": "json",
    }
    answer = requests.post(sim.base_url + "/sms", data=data).json()
    assert answer["status"] == "102" and sim.accepted == []


def test_p2p_with_more_than_500_lines_is_status_102(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    listing = "\r".join(f"139{i:08d}#m" for i in range(501))
    data = {
        "action": "p2p",
        "account": "922011",
        "password": adapter.password_for("10690231221" + listing.replace("\r", "")),
        "mobileContentList": listing,
        "extno": "10690231221",
        "rt": "json",
    }
    assert requests.post(sim.base_url + "/sms", data=data).json()["status"] == "102"


def test_102_halves_the_request_sends_each_number_once_and_keeps_the_smaller_size(
    sim: Sms57Simulator, adapter: Sms57Adapter, wire: Wire
) -> None:
    """Finding 7: a gateway that enforces the advised 200 answers 102 (nothing accepted)."""
    sim.max_numbers = 200
    numbers = [f"+86139{i:08d}" for i in range(1, 501)]
    results = adapter.send(numbers, "hi")
    assert [r.to for r in results] == numbers and {r.outcome for r in results} == {Outcome.OK}
    assert sorted(a.mobile for a in sim.accepted) == sorted(n[3:] for n in numbers)  # each once
    assert [len(b["mobile"].split(",")) for b in wire.bodies] == [500, 250, 125, 125, 125, 125]
    assert adapter.batch_limit == 125  # remembered for this vendor's next requests
    wire.bodies.clear()
    adapter.send_personalised([(n, f"m{i}") for i, n in enumerate(numbers[:300])])
    assert [len(b["mobileContentList"].split("\r")) for b in wire.bodies] == [125, 125, 50]


def test_102_with_an_error_midway_keeps_what_was_accepted_as_partial(
    sim: Sms57Simulator, adapter: Sms57Adapter
) -> None:
    sim.max_numbers = 200
    sim.inject_fault("http503", path="/sms", after=3)  # 500 -> 102, 250 -> 102, 125 ok, then 503
    numbers = [f"+86139{i:08d}" for i in range(1, 501)]
    with pytest.raises(VendorHTTPError) as err:
        adapter.send(numbers, "hi")
    assert [r.to for r in err.value.partial] == numbers[:125]
    assert len(sim.accepted) == 125


def test_empty_content_is_refused(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800000001"], "")
    assert err.value.code == "1" and err.value.outcome is Outcome.PERMANENT
    assert sim.accepted == []


def test_wrong_extno_is_result_10(sim: Sms57Simulator) -> None:
    adapter = Sms57Adapter({**sim.settings(), "extno": "10655"})
    (result,) = adapter.send(["+8613800000001"], "hi")
    assert result.outcome is Outcome.CONFIGURATION and result.code == "10"  # our settings, not the number
    assert sim.accepted == []


def test_extension_of_the_access_number_is_accepted(sim: Sms57Simulator) -> None:
    adapter = Sms57Adapter({**sim.settings(), "extno": "1069023122188"})
    assert adapter.send(["+8613800000001"], "hi")[0].outcome is Outcome.OK


def test_missing_signature_is_result_17(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    sim.require_signature = True
    unsigned, signed = adapter.send_personalised([("+8613800000001", "hi"), ("+8613800000002", "【Acme】hi")])
    assert unsigned.code == "17" and unsigned.outcome is Outcome.PERMANENT
    assert signed.outcome is Outcome.OK


def test_prepaid_balance_too_low_is_result_15_and_postpaid_goes_negative(
    sim: Sms57Simulator, adapter: Sms57Adapter
) -> None:
    sim.balance = 60
    first, second = adapter.send(["+8613800000001", "+8613800000002"], "hi")
    assert first.outcome is Outcome.OK and second.code == "15" and second.outcome is Outcome.PERMANENT
    sim.balance, sim.charge_type = 60, "POSTCHARGE"
    adapter.send(["+8613800000001", "+8613800000002"], "hi")
    balance = adapter.balance()
    assert balance.balance == Decimal("-0.04") and balance.raw["chargeType"] == "POSTCHARGE"


def test_disabled_account_is_status_7(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    sim.disabled = True
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800000001"], "hi")
    assert err.value.code == "7" and err.value.outcome is Outcome.CONFIGURATION
    assert err.value.description == "account disabled at the vendor"


def test_malformed_requests_are_status_1(sim: Sms57Simulator) -> None:
    url = sim.base_url + "/sms"
    assert (
        requests.post(url, data={"action": "send", "account": "922011"}).json()["status"] == "1"
    )  # no rt=json
    assert requests.post(url, data={"action": "nope", "rt": "json"}).json()["status"] == 1
    sim.password_mode = "plain"
    data = {"action": "send", "account": "922011", "password": "123456", "rt": "json", "extno": "10690231221"}
    bad_number = requests.post(url, data={**data, "mobile": "12345", "content": "x"})
    by_get = requests.get(url, params={**data, "mobile": "13800000001", "content": "x"})
    assert bad_number.json()["status"] == "1"
    assert by_get.json()["status"] == "0"  # GET is allowed as well as POST


# --------------------------------------------------------------------------- transport


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_a_connect_error() -> None:
    adapter = Sms57Adapter(
        {"base_url": f"http://127.0.0.1:{_free_port()}", "account": "a", "password": "p", "extno": "1"}
    )
    with pytest.raises(VendorConnectError) as err:
        adapter.send(["+8613800000001"], "hi")
    assert err.value.may_have_reached is False


def test_timeout_after_accept_may_have_reached(sim: Sms57Simulator) -> None:
    adapter = Sms57Adapter({**sim.settings(), "timeout_s": 0.3})
    sim.inject_fault("timeout_after_accept")
    with pytest.raises(VendorTimeout) as err:
        adapter.send(["+8613800000001"], "hi")
    assert err.value.may_have_reached is True
    wait_until(
        lambda: len(sim.accepted_for("13800000001")) == 1, what="the vendor to keep the message"
    )  # the vendor did keep it


def test_slow_answer_test_number_times_out_but_is_kept(sim: Sms57Simulator) -> None:
    adapter = Sms57Adapter({**sim.settings(), "timeout_s": 0.3})
    with pytest.raises(VendorTimeout):
        adapter.send(["+8613800005040"], "hi")
    assert len(sim.accepted_for("13800005040")) == 1


def test_http_500_is_an_http_error(sim: Sms57Simulator, adapter: Sms57Adapter) -> None:
    sim.inject_fault("http500")
    with pytest.raises(VendorHTTPError) as err:
        adapter.balance()
    assert err.value.status_code == 500 and err.value.outcome is Outcome.TRANSIENT


@pytest.mark.parametrize("fault", ["html", "empty", "malformed"])
def test_unreadable_send_answer_is_a_parse_error(
    sim: Sms57Simulator, adapter: Sms57Adapter, fault: str
) -> None:
    sim.inject_fault(fault)
    with pytest.raises(VendorParseError) as err:
        adapter.send(["+8613800000001"], "hi")
    assert err.value.may_have_reached is True
