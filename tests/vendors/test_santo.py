"""santo adapter against the santo simulator: every operation, pushes, refusals, transport errors."""

from __future__ import annotations

import socket
import time
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
import requests
from smsrelay.vendors import (
    InvalidInput,
    Outcome,
    RawRequest,
    ReportQuery,
    ReportStatus,
    SendOptions,
    VendorRequestError,
)
from smsrelay.vendors.errors import VendorConnectError, VendorHTTPError, VendorParseError, VendorTimeout
from smsrelay.vendors.santo import SantoAdapter
from smsrelay_local.simulators.base import Accepted, Fate
from smsrelay_local.simulators.santo import SantoSimulator

from tests.helpers import wait_until

from .conftest import receiver_fixtures, simulator_fixtures
from .push_receiver import PushReceiver

# --------------------------------------------------------------------------- a push receiver


class Receiver(PushReceiver):
    def __init__(self) -> None:
        super().__init__("santo", SantoAdapter.push_ack.body)

    def wait_for_ref(self, ref: str | None, count: int, timeout: float = 5.0) -> list[RawRequest]:
        """Pushes about one message (a report of an earlier test may still be on its way)."""

        def mine() -> list[RawRequest]:
            return [r for r in self.requests if r.query.get("msgid") == ref]

        with self._cond:
            self._cond.wait_for(lambda: len(mine()) >= count, timeout)
            assert len(mine()) >= count, f"expected {count} pushes, got {len(mine())}"
            return mine()


_receiver_server, receiver = receiver_fixtures(Receiver)
_sim_server, sim = simulator_fixtures(
    "santo",
    receiver="_receiver_server",
    balance=100.0,
    report_delay_s=0.05,
    slow_report_s=0.6,
    slow_answer_s=0.8,
    seed=7,
)


@pytest.fixture
def adapter(sim: SantoSimulator) -> SantoAdapter:
    return SantoAdapter(sim.settings())


def submits(sim: SantoSimulator) -> list[dict[str, str]]:
    return [r["args"] for r in sim.requests if r["path"] == "/submit"]


def raw_get(sim: SantoSimulator, path: str, **params: str) -> requests.Response:
    return requests.get(sim.base_url + path, params=params, timeout=5)


def form(text: str) -> dict[str, str]:
    return dict(parse_qsl(text, keep_blank_values=True))


# --------------------------------------------------------------------------- send


def test_send_one_number_uses_mt_request(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    results = adapter.send(["+8613800000001"], "测试内容 & more")

    assert len(results) == 1
    result = results[0]
    assert result.outcome is Outcome.OK and result.code == "000"
    assert result.to == "+8613800000001"
    kept = sim.accepted_for("8613800000001")
    assert [k.vendor_ref for k in kept] == [result.vendor_ref]
    assert kept[0].content == "测试内容 & more"
    args = submits(sim)[0]
    assert args["command"] == "MT_REQUEST" and args["da"] == "8613800000001"
    assert "sa" not in args  # "如非特别清楚含义, 不要传这个字段"


def test_send_several_numbers_is_one_multi_request_with_one_msgid(
    sim: SantoSimulator, adapter: SantoAdapter
) -> None:
    numbers = ["+8613910825657", "+8618820828080", "+8613309382910"]
    results = adapter.send(numbers, "中文测试")

    assert [r.to for r in results] == numbers
    assert all(r.outcome is Outcome.OK for r in results)
    refs = {r.vendor_ref for r in results}
    assert len(refs) == 1
    (args,) = submits(sim)
    assert args["command"] == "MULTI_MT_REQUEST"
    assert args["da"] == "8613910825657,8618820828080,8613309382910"
    assert {a.mobile for a in sim.accepted if a.vendor_ref in refs} == {n[1:] for n in numbers}


def test_multi_answer_really_uses_the_misspelled_key(sim: SantoSimulator) -> None:
    # The simulator must exercise the adapter on the document's `mtterrcode`.
    answer = raw_get(
        sim,
        "/submit",
        command="MULTI_MT_REQUEST",
        cpid="Test101",
        cppwd="Test101",
        da="8613800000001,8613800000002",
        sm="x",
    )
    fields = form(answer.text)
    assert fields["mtterrcode"] == "000" and "mterrcode" not in fields
    assert fields["command"] == "MULTI_MT_RESPONSE" and fields["mtstat"] == "ACCEPTD"


def test_more_than_100_numbers_are_split_into_requests(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    numbers = [f"+86138{i:08d}" for i in range(1, 151)]
    results = adapter.send(numbers, "hello")

    assert len(results) == 150 and all(r.outcome is Outcome.OK for r in results)
    assert [len(a["da"].split(",")) for a in submits(sim)] == [100, 50]
    assert len({r.vendor_ref for r in results}) == 2


def test_sender_from_options_then_settings(sim: SantoSimulator) -> None:
    adapter = SantoAdapter({**sim.settings(), "sender": "12345678901234"})
    adapter.send(["+8613800000001"], "a", SendOptions(sender_id="Acme"))
    adapter.send(["+8613800000002"], "b")

    assert [a.get("sa") for a in submits(sim)] == ["Acme", "12345678901234"]
    assert [a.extra["sa"] for a in sim.accepted] == ["Acme", "12345678901234"]


@pytest.mark.parametrize("sender", ["TooLongName1", "12345678901234567", "Ac me", "Acme!", "闪通"])
def test_bad_sender_is_refused_before_any_call(
    sim: SantoSimulator, adapter: SantoAdapter, sender: str
) -> None:
    with pytest.raises(InvalidInput):
        adapter.send(["+8613800000001"], "a", SendOptions(sender_id=sender))
    assert submits(sim) == []


def test_numbers_santo_cannot_take_are_refused_without_a_call(
    sim: SantoSimulator, adapter: SantoAdapter
) -> None:
    numbers = ["13800000001", "+8613800000001", "+0123456789", "+86138000000x1"]
    results = adapter.send(numbers, "a")

    assert [r.to for r in results] == numbers
    assert [r.outcome for r in results] == [
        Outcome.PERMANENT,
        Outcome.OK,
        Outcome.PERMANENT,
        Outcome.PERMANENT,
    ]
    assert {results[i].code for i in (0, 2, 3)} == {"0110"}
    assert [a["da"] for a in submits(sim)] == ["8613800000001"]


def test_refused_number_alone_is_a_permanent_result(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    (result,) = adapter.send(["+8613800004220"], "a")
    assert result.outcome is Outcome.PERMANENT and result.code == "0110" and result.vendor_ref is None
    assert sim.accepted == []


def test_refused_number_in_a_multi_request_does_not_sink_the_others(
    sim: SantoSimulator, adapter: SantoAdapter
) -> None:
    results = adapter.send(["+8613800000001", "+8613800004220", "+8613800000002"], "a")

    assert [(r.to, r.outcome) for r in results] == [
        ("+8613800000001", Outcome.OK),
        ("+8613800004220", Outcome.PERMANENT),
        ("+8613800000002", Outcome.OK),
    ]
    # the multi request was refused whole (0110), then each number went alone
    assert [a["command"] for a in submits(sim)] == ["MULTI_MT_REQUEST"] + ["MT_REQUEST"] * 3
    assert sorted(a.mobile for a in sim.accepted) == ["8613800000001", "8613800000002"]


@pytest.mark.parametrize(("field", "value", "code"), [("cpid", "Nobody", "0104"), ("cppwd", "wrong", "0106")])
def test_wrong_credentials_refuse_the_request(sim: SantoSimulator, field: str, value: str, code: str) -> None:
    adapter = SantoAdapter({**sim.settings(), field: value})
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000001", "+8613800000002"], "a")
    assert info.value.code == code and info.value.outcome is Outcome.CONFIGURATION
    assert info.value.may_have_reached is False
    with pytest.raises(VendorRequestError) as info:
        adapter.balance()
    assert info.value.code == code
    assert sim.accepted == []


def test_empty_content_is_refused_0111(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000001"], "")
    assert info.value.code == "0111" and info.value.outcome is Outcome.PERMANENT


def test_balance_too_low_is_refused_0107(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    sim.balance = 0.1  # one CN message costs 0.08
    adapter.send(["+8613800000001"], "a")
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000002"], "a")
    assert info.value.code == "0107" and info.value.outcome is Outcome.PERMANENT


def test_0112_sends_the_non_china_numbers_of_a_mixed_chunk_once(
    sim: SantoSimulator, adapter: SantoAdapter
) -> None:
    """Finding 8: 0112 refuses the whole request for its +86 numbers and accepts nothing."""
    sim.cn_templates = ["【Acme】"]
    numbers = ["+6591234567", "+8613800000001", "+447911123456", "+8613800000002"]
    with pytest.raises(VendorRequestError) as info:
        adapter.send(numbers, "no template")
    assert info.value.code == "0112" and info.value.outcome is Outcome.PERMANENT
    assert {r.to: r.outcome for r in info.value.partial} == {
        "+6591234567": Outcome.OK,
        "+447911123456": Outcome.OK,
    }
    assert sorted(a.mobile for a in sim.accepted) == ["447911123456", "6591234567"]  # each once
    assert [a["da"] for a in submits(sim)] == [
        "6591234567,8613800000001,447911123456,8613800000002",
        "6591234567,447911123456",
    ]


def test_domestic_numbers_without_template_are_refused_0112(
    sim: SantoSimulator, adapter: SantoAdapter
) -> None:
    sim.cn_templates = ["【Acme】"]
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000001"], "no template")
    assert info.value.code == "0112"
    assert adapter.send(["+8613800000001"], "【Acme】code 4711")[0].outcome is Outcome.OK
    assert adapter.send(["+60129855877"], "no template needed abroad")[0].outcome is Outcome.OK


def test_ip_not_whitelisted_is_refused_0108(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    sim.allowed_ips = ["10.0.0.1"]
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613800000001"], "a")
    assert info.value.code == "0108" and info.value.outcome is Outcome.CONFIGURATION
    assert info.value.description == "our source IP is not on the vendor's whitelist"


# --------------------------------------------------------------------------- the simulator's own refusals


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"command": "mt_request"}, "0101"),  # "需大写"
        ({"command": "Multi_MT_Request"}, "0101"),
        ({"command": "VO_REQUEST"}, "0101"),  # voice is out of scope
        ({"command": None}, "0101"),
        ({"cppwd": "bad"}, "0106"),
        ({"cpid": "bad"}, "0104"),
        ({"cpid": None}, "0100"),
        ({"da": None}, "0100"),
        ({"sa": "ABCDEFGHIJKL"}, "0100"),
        ({"sm": ""}, "0111"),
        ({"da": "8613800000001,8613800000002"}, "0110"),  # MT_REQUEST takes one number
        ({"da": "6001129855877"}, "0110"),  # the document's own wrong example
        ({"da": "+8613800000001"}, "0110"),
    ],
)
def test_simulator_refuses_single_requests(
    sim: SantoSimulator, params: dict[str, str | None], code: str
) -> None:
    base = {"command": "MT_REQUEST", "cpid": "Test101", "cppwd": "Test101", "da": "8613800000001", "sm": "x"}
    query = {k: v for k, v in {**base, **params}.items() if v is not None}
    fields = form(raw_get(sim, "/submit", **query).text)
    assert fields["mtstat"] == "REJECTD" and fields["mterrcode"] == code
    assert fields["mtmsgid"]  # the document's failure example carries an id too
    assert sim.accepted == []


def test_simulator_refuses_more_than_100_numbers(sim: SantoSimulator) -> None:
    da = ",".join(f"86138{i:08d}" for i in range(101))
    fields = form(
        raw_get(
            sim, "/submit", command="MULTI_MT_REQUEST", cpid="Test101", cppwd="Test101", da=da, sm="x"
        ).text
    )
    assert fields == {
        "command": "MULTI_MT_RESPONSE",
        "cpid": "Test101",
        "mtmsgid": fields["mtmsgid"],
        "mtstat": "REJECTD",
        "mterrcode": "0110",
    }
    ok = raw_get(
        sim,
        "/submit",
        command="MULTI_MT_REQUEST",
        cpid="Test101",
        cppwd="Test101",
        da=da.rsplit(",", 1)[0],
        sm="x",
    )
    assert form(ok.text)["mtstat"] == "ACCEPTD" and len(sim.accepted) == 100


def test_simulator_refuses_a_whole_multi_request_for_one_bad_number(sim: SantoSimulator) -> None:
    fields = form(
        raw_get(
            sim,
            "/submit",
            command="MULTI_MT_REQUEST",
            cpid="Test101",
            cppwd="Test101",
            da="8613800000001,8613800004220",
            sm="x",
        ).text
    )
    assert fields["mterrcode"] == "0110" and sim.accepted == []


def test_simulator_answers_get_only(sim: SantoSimulator) -> None:
    answer = requests.post(sim.base_url + "/submit", data={"command": "MT_REQUEST"}, timeout=5)
    assert answer.status_code == 405


def test_simulator_json_refusals(sim: SantoSimulator) -> None:
    assert raw_get(sim, "/verifyPhoneNumber", cpid="Test101", cppwd="no").json()["errcode"] == "0106"
    assert (
        raw_get(sim, "/get-pricing", cpid="Test101", cppwd="Test101", countryCode="cn").json()["errcode"]
        == "0100"
    )
    assert raw_get(sim, "/get-rptstatus", cpid="Test101", cppwd="Test101").json()["errcode"] == "0100"


# --------------------------------------------------------------------------- balance, pricing, number check


def test_balance_is_read_exactly_and_goes_down_with_sends(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    first = adapter.balance()
    assert first.balance == Decimal("100.00") and first.unit == "CNY" and first.vendor == "santo"
    assert first.raw["errcode"] == "000"
    adapter.send(["+8613800000001", "+8613800000002"], "a")
    assert adapter.balance().balance == Decimal("99.84")
    # Section 4.4: the balance query is /verifyPhoneNumber without da
    balance_calls = [r for r in sim.requests if r["path"] == "/verifyPhoneNumber"]
    assert balance_calls and all("da" not in r["args"] for r in balance_calls)


def test_pricing(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    price = adapter.pricing("cn")
    assert (price.country, price.prefix, price.price) == ("China", "86", Decimal("0.08"))
    assert sim.requests[-1]["args"]["countryCode"] == "CN"  # upper case, as the document asks
    with pytest.raises(VendorRequestError) as info:
        adapter.pricing("ZZ")
    assert info.value.code == "0100"
    with pytest.raises(InvalidInput):
        adapter.pricing("CHN")


def test_verify_number(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    good = adapter.verify_number("+8613910825657")
    assert good.valid is True and good.country == "CN" and good.number == "+8613910825657"
    assert sim.requests[-1]["args"]["da"] == "8613910825657"
    bad = adapter.verify_number("+6001129855877")
    assert bad.valid is False and bad.country == ""


# --------------------------------------------------------------------------- reports


def test_pushed_reports_parse_to_delivered_and_undelivered(
    sim: SantoSimulator, adapter: SantoAdapter, receiver: Receiver
) -> None:
    results = adapter.send(["+8613800000001", "+8613800004040"], "a")
    pushes = receiver.wait_for_ref(results[0].vendor_ref, 2)

    reports = {r.to: r for push in pushes for r in adapter.parse_push(push).reports}
    ok, failed = reports["+8613800000001"], reports["+8613800004040"]
    assert ok.status is ReportStatus.DELIVERED and ok.code == "DELIVRD"
    assert failed.status is ReportStatus.UNDELIVERED and failed.code == "404"
    assert {ok.match_key, failed.match_key} == {r.match_key for r in results}
    for push in pushes:  # the vendor's form: a GET with the hex report in GBK (dc=15)
        assert push.method == "GET" and push.query["command"] == "RT_REQUEST" and push.query["dc"] == "15"
        assert bytes.fromhex(push.query["sm"]).decode("gbk") == push.query["rsm"]
    wait_until(lambda: len(sim.pushes) >= 2)
    assert all(p["status"] == 200 and p["body"] == "OK" for p in sim.pushes)


def test_query_reports_pending_then_settled(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    sim.push_url = None  # reports stay with the vendor: only the query tells
    numbers = ["+8613800005030", "+8613800004040", "+8613800000000"]  # slow, undelivered, silent
    results = adapter.send(numbers, "a")
    queries = [ReportQuery(vendor_ref=r.vendor_ref or "", to=r.to) for r in results]

    first = {r.to: r.status for r in adapter.query_reports(queries)}
    assert first == {n: ReportStatus.PENDING for n in numbers}
    wait_until(lambda: all(a.report_sent for a in sim.accepted if not a.mobile.endswith("0000")), timeout_s=3)
    later = {r.to: r for r in adapter.query_reports(queries)}
    assert later["+8613800005030"].status is ReportStatus.DELIVERED
    assert (
        later["+8613800004040"].status is ReportStatus.UNDELIVERED
        and later["+8613800004040"].code == "failed"
    )
    assert later["+8613800000000"].status is ReportStatus.PENDING
    assert {r.vendor_ref for r in later.values()} == {results[0].vendor_ref}
    # one call per message (da optional), not one per number
    calls = [r["args"] for r in sim.requests if r["path"] == "/get-rptstatus"]
    assert len(calls) == 2 and all("da" not in c for c in calls)


def test_query_matches_each_record_by_its_own_da(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    """Finding 4: asked about one number, the vendor answers every number of the message (as
    4.6's example answers another da): a failed number is never recorded delivered."""
    sim.push_url = None
    delivered, failed = adapter.send(["+8613800000001", "+8613800004040"], "a")
    wait_until(lambda: all(a.report_sent for a in sim.accepted), timeout_s=3)
    reports = adapter.query_reports([ReportQuery(vendor_ref=failed.vendor_ref or "", to=failed.to)])
    assert {(r.to, r.status) for r in reports} == {
        ("+8613800000001", ReportStatus.DELIVERED),
        ("+8613800004040", ReportStatus.UNDELIVERED),
    }
    assert {r.match_key for r in reports} == {delivered.match_key, failed.match_key}


def test_references_are_the_send_examples_20_digits_and_match_as_given(
    sim: SantoSimulator, adapter: SantoAdapter, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 10: mtmsgid like 21426847850888196661 (past 64 bits; here with a leading zero)
    comes back in pushes and queries exactly as answered."""
    monkeypatch.setattr(sim, "new_msgid", lambda: "01426847850888196661")
    (result,) = adapter.send(["+6591234567"], "a")
    assert result.vendor_ref == "01426847850888196661"
    (push,) = receiver.wait_for_ref(result.vendor_ref, 1)
    (pushed,) = adapter.parse_push(push).reports
    (queried,) = adapter.query_reports([ReportQuery(vendor_ref=result.vendor_ref, to=result.to)])
    assert pushed.match_key == queried.match_key == result.match_key


def test_simulator_references_have_the_send_examples_form(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    refs = {r.vendor_ref or "" for r in (adapter.send([f"+65912345{i:02d}"], "a")[0] for i in range(5))}
    assert len(refs) == 5 and all(len(ref) == 20 and ref.isdigit() for ref in refs)


# 4.6, verbatim: the request asks for one da, the answer is about another
DOC_RPTSTATUS_REQUEST = (
    "http://api2.santo.cc/get-rptstatus?cpid=Test101&cppwd=Test101&msgid=054322165bafe3&da=8613910825657"
)
DOC_RPTSTATUS_ANSWER = (
    '[{"cpid":"Test101","errcode":"000","mtstat":"success","msgid":"054322165bafe3","da":"8615711586282"}]'
)


def test_simulator_answers_the_documents_report_query_as_the_document_does(sim: SantoSimulator) -> None:
    """Finding 10: a message of 8615711586282, asked about with da=8613910825657 as 4.6 asks."""
    record = Accepted("054322165bafe3", "8615711586282", "测试内容", Fate.DELIVERED, report_sent=True)
    with sim.lock:
        sim.by_msgid["054322165bafe3"] = [record]
    answer = requests.get(DOC_RPTSTATUS_REQUEST.replace("http://api2.santo.cc", sim.base_url), timeout=5)
    assert answer.text == DOC_RPTSTATUS_ANSWER


def test_simulator_answers_every_number_of_the_message(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    sim.push_url = None
    results = adapter.send(["+6591234567", "+447911123456", "+8613800000001"], "a")
    answer = raw_get(
        sim,
        "/get-rptstatus",
        cpid="Test101",
        cppwd="Test101",
        msgid=results[0].vendor_ref or "",
        da="6591234567",
    )
    assert [r["da"] for r in answer.json()] == ["6591234567", "447911123456", "8613800000001"]


def test_query_one_number_passes_da(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    (result,) = adapter.send(["+8613800000001"], "a")
    wait_until(lambda: sim.accepted[0].report_sent)
    (report,) = adapter.query_reports([ReportQuery(vendor_ref=result.vendor_ref or "", to=result.to)])
    assert report.status is ReportStatus.DELIVERED and report.to == "+8613800000001"
    assert sim.requests[-1]["args"] == {
        "cpid": "Test101",
        "cppwd": "Test101",
        "msgid": result.vendor_ref,
        "da": "8613800000001",
    }


def test_query_unknown_message_gives_nothing(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    assert adapter.query_reports([ReportQuery(vendor_ref="ffffffffffffff", to="+8613800000001")]) == []


def test_silent_number_gets_no_push(sim: SantoSimulator, adapter: SantoAdapter, receiver: Receiver) -> None:
    (result, _) = adapter.send(["+8613800000000", "+8613800000001"], "a")
    (push,) = receiver.wait_for_ref(result.vendor_ref, 1)
    time.sleep(0.2)
    assert push.query["da"] == "8613800000001"
    assert [r.query["da"] for r in receiver.requests if r.query.get("msgid") == result.vendor_ref] == [
        "8613800000001"
    ]


# --------------------------------------------------------------------------- transport errors


def test_connect_refused(sim: SantoSimulator) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = SantoAdapter({**sim.settings(), "base_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(VendorConnectError) as info:
        adapter.send(["+8613800000001"], "a")
    assert info.value.may_have_reached is False


def test_timeout_after_accept_keeps_the_message(sim: SantoSimulator) -> None:
    adapter = SantoAdapter({**sim.settings(), "timeout_s": 0.3})
    sim.inject_fault("timeout_after_accept", path="/submit")
    with pytest.raises(VendorTimeout) as info:
        adapter.send(["+8613800000001"], "a")
    assert info.value.may_have_reached is True
    wait_until(
        lambda: [a.mobile for a in sim.accepted] == ["8613800000001"], what="the vendor to keep the message"
    )
    time.sleep(sim.slow_answer_s)  # let the held answer finish before the next test


def test_slow_answer_number_times_out_after_accept(sim: SantoSimulator) -> None:
    adapter = SantoAdapter({**sim.settings(), "timeout_s": 0.3})
    with pytest.raises(VendorTimeout):
        adapter.send(["+8613800005040"], "a")
    assert [a.mobile for a in sim.accepted] == ["8613800005040"]
    time.sleep(sim.slow_answer_s)


def test_http_500(sim: SantoSimulator, adapter: SantoAdapter) -> None:
    sim.inject_fault("http500")
    with pytest.raises(VendorHTTPError) as info:
        adapter.send(["+8613800000001"], "a")
    assert info.value.status_code == 500 and info.value.outcome is Outcome.TRANSIENT


@pytest.mark.parametrize("kind", ["html", "empty", "malformed"])
def test_unreadable_send_answers(sim: SantoSimulator, adapter: SantoAdapter, kind: str) -> None:
    sim.inject_fault(kind)
    with pytest.raises(VendorParseError) as info:
        adapter.send(["+8613800000001"], "a")
    assert info.value.may_have_reached is True


@pytest.mark.parametrize("kind", ["html", "empty"])
def test_unreadable_balance_answers(sim: SantoSimulator, adapter: SantoAdapter, kind: str) -> None:
    sim.inject_fault(kind)
    with pytest.raises(VendorParseError):
        adapter.balance()
