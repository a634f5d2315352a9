"""sms57 against its document: the examples verbatim, every code, the password forms, robust parsers."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from smsrelay.vendors import Outcome, RawRequest, ReportStatus, VendorRequestError
from smsrelay.vendors.base import CHINA_TZ
from smsrelay.vendors.errors import VendorParseError
from smsrelay.vendors.sms57 import (
    Sms57Adapter,
    read_balance_answer,
    read_pull_answer,
    read_record,
    read_send_answer,
    read_status,
    stat_description,
)
from smsrelay_local.simulators.sms57 import Sms57Simulator

from .conftest import simulator_fixtures

# --------------------------------------------------------------------------- the document's examples, verbatim

# 1.3: the send answer, cut by the extraction (only the end of the list survives).
DOC_SEND_ANSWER_FRAGMENT = """},
{
    "mid": "4C2CA88382720004",
    "mobile": "18983437011",
    "result": 0
}
]"""

# 2.3: the p2p answer; the extraction lost three `{` and a `}`.
DOC_P2P_ANSWER = """{
    "status": "0",
    "balance": -153278280,
    "list": [
         {
             "mid": "4C372C4382720007",
             "mobile": "13800000001",
             "result": 0
         },
             "mid": "4C372C4382720008",
             "mobile": "13800000002",
             "result": 0
         },
             "mid": "4C372C4382720009",
             "mobile": "13800000003",
             "result": 0
         },
         {
             "mid": "4C372C438272000A",
             "mobile": "13800000004",
             "result": 0
    ]
}"""

# 2.2: the p2p request example, as extracted (LaTeX-ish `\\`, `\&` and `$` are extraction artefacts).
DOC_P2P_REQUEST = r"""$http://192.168.1.4:7822/sms?action=p2p\&rt=json\&account=922011\&password=123456\&mobileContentList=138\\00000001\%23\%e4\%b8\%8b\%e5\%8f\%91\%e5\%86\%85\%e5\%ae\%b91\%0d13800000002\%23\%e4\%b8\%8b\%e5\%8f\%91\%e5\%86\%85\%e5\%ae\%b92\%0d13800000003\%23\%e4\%b8\%8b\%e5\%8f\%91\%e5\%86\%85\%e5\%ae\%b92\%0d13800000003\%23\%e4\%b8\%8b\%e5\%8f\%91\%e5\%86\%85\%e5\%ae\%b93\%0d13800000004\%23\%e4\%b8\%8b\%e5\%8f\%91\%e5\%86\%85\%e5\%ae\%b94\%0d\&extno=10690231221$"""

# 3.3
DOC_BALANCE_ANSWER = """{"status":0,"balance":-153278040,"chargeType":"POSTCHARGE"}"""

# 4.2.1: the report answer is cut; its last record survives whole.
DOC_REPORT_RECORD = """{

"flag": 1,

"mid": "4C36654382720006",

"spid": "922011",

"accessCode": "106901234",

"mobile": "18983437011",

"stat": "MA:0029",

"time": "2017-04-12 01:38:21"

}"""

# 5.3: the mo answer; the extraction lost the last `}` of the list.
DOC_MO_ANSWER = """{
    "status": "0",
    "balance": -153278040,
    "list": [
        {
             "flag": 0,
             "mid": "4C36654382720005",
             "spid": "922011",
             "accessCode": "10690",
             "mobile": "18983437010",
             "content": "上行内容 1",
             "time": "2017-04-12 01:38:21"
        },
         {
             "flag": 0,
             "mid": "4C36654382720006",
             "spid": "922011",
             "accessCode": "10690",
             "mobile": "18983437011",
             "content": "上行内容 2",
             "time": "2017-04-12 01:38:21"
    ]
}"""

# 6.2: the push; the extraction lost both records' `{`.
DOC_PUSH = """[
             "flag": 0,
             "mid": "4C36654382720005",
             "spid": "922011",
             "accessCode": "10690",
             "mobile": "18983437010",
             "content": "上行内容",
             "time": "2017-04-12 01:38:21"
        },
             "flag": 1,
             "mid": "4C36654382720006",
             "spid": "922011",
             "accessCode": "10690",
             "mobile": "18983437011",
             "stat": "DELIVRD",
             "time": "2017-04-12 01:38:21"
    ]"""

DOC_BALANCE_REQUEST = "http://host:port/sms?action=balance&account=账号&password=密码&rt=json"
DOC_REPORT_REQUEST = "http://host:port/sms?action=report&account=账号&password=密码&size=10&rt=json"
DOC_MO_REQUEST = "http://host:port/sms?action=mo&account=账号&password=密码&size=10&rt=json"

DOC_TIME = dt.datetime(2017, 4, 12, 1, 38, 21, tzinfo=CHINA_TZ)


def restore_braces(text: str) -> str:
    """Put back the braces the extraction dropped (each record's `{` after `},` or `[`, the last `}`)."""
    lines = text.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        previous = out[-1].strip() if out else ""
        if line.strip().startswith('"') and previous in ("},", "["):
            out.append("{")
        if line.strip() == "]" and not previous.startswith("}") and i > 0:
            out.append("}")
        out.append(line)
    return "\n".join(out)


def test_doc_send_answer_fragment() -> None:
    with pytest.raises(VendorParseError):  # the fragment as extracted is not an answer
        read_send_answer(DOC_SEND_ANSWER_FRAGMENT, [("+8618983437011", "18983437011")])
    first = '{"status": "0", "balance": -153278280, "list": [{"mid": "4C2CA88382720003", "mobile": "18983437010", "result": 0'
    answer = first + DOC_SEND_ANSWER_FRAGMENT + "}"
    results = read_send_answer(answer, [("+8618983437010", "18983437010"), ("+8618983437011", "18983437011")])
    assert [(r.to, r.vendor_ref, r.outcome, r.code) for r in results] == [
        ("+8618983437010", "4C2CA88382720003", Outcome.OK, "0"),
        ("+8618983437011", "4C2CA88382720004", Outcome.OK, "0"),
    ]


def test_doc_p2p_answer() -> None:
    sent = [(f"+861380000000{i}", f"1380000000{i}") for i in range(1, 5)]
    with pytest.raises(VendorParseError):
        read_send_answer(DOC_P2P_ANSWER, sent)
    results = read_send_answer(restore_braces(DOC_P2P_ANSWER), sent)
    assert [r.vendor_ref for r in results] == [
        "4C372C4382720007",
        "4C372C4382720008",
        "4C372C4382720009",
        "4C372C438272000A",
    ]
    assert [r.to for r in results] == [to for to, _ in sent]
    assert all(r.outcome is Outcome.OK for r in results)


def test_doc_balance_answer() -> None:
    balance = read_balance_answer(DOC_BALANCE_ANSWER)
    assert balance.balance == Decimal("-153278.04") and balance.unit == "CNY"
    assert balance.raw["balance_li"] == "-153278040" and balance.raw["chargeType"] == "POSTCHARGE"


def test_doc_report_record() -> None:
    report = read_record(json.loads(DOC_REPORT_RECORD))
    assert report.vendor_ref == "4C36654382720006" and report.to == "+8618983437011"
    assert report.status is ReportStatus.UNDELIVERED and report.code == "MA:0029"
    assert report.description == "number range on the channel blacklist"
    assert report.occurred_at == DOC_TIME
    pulled = read_pull_answer("report", '{"status": 0, "balance": 1, "list": [' + DOC_REPORT_RECORD + "]}")
    assert pulled.reports == [report] and pulled.inbound == []


def test_doc_mo_answer() -> None:
    with pytest.raises(VendorParseError):
        read_pull_answer("mo", DOC_MO_ANSWER)
    inbound = read_pull_answer("mo", restore_braces(DOC_MO_ANSWER)).inbound
    assert [(m.from_, m.to, m.content, m.vendor_ref, m.received_at) for m in inbound] == [
        ("+8618983437010", "10690", "上行内容 1", "4C36654382720005", DOC_TIME),
        ("+8618983437011", "10690", "上行内容 2", "4C36654382720006", DOC_TIME),
    ]


def test_doc_push() -> None:
    adapter = Sms57Adapter({"base_url": "http://host:1", "account": "922011", "password": "123456"})
    with pytest.raises(VendorParseError):
        adapter.parse_push(RawRequest("POST", body=DOC_PUSH.encode()))
    batch = adapter.parse_push(RawRequest("POST", body=restore_braces(DOC_PUSH).encode()))
    (message,) = batch.inbound
    (report,) = batch.reports
    assert (message.from_, message.to, message.content, message.vendor_ref) == (
        "+8618983437010",
        "10690",
        "上行内容",
        "4C36654382720005",
    )
    assert message.received_at == DOC_TIME
    assert (report.vendor_ref, report.to, report.status, report.code) == (
        "4C36654382720006",
        "+8618983437011",
        ReportStatus.DELIVERED,
        "DELIVRD",
    )
    assert report.occurred_at == DOC_TIME and report.raw["spid"] == "922011"
    assert adapter.push_ack.body == "OK"  # 6.3


# --------------------------------------------------------------------------- the document's requests


_doc_sim_server, doc_sim = simulator_fixtures(
    "sms57", name="doc_sim", password_mode="plain", report_delay_s=0.01
)


def test_doc_p2p_request_is_accepted(doc_sim: Sms57Simulator) -> None:
    url = DOC_P2P_REQUEST.strip("$").replace("\\\\", "").replace("\\", "")
    url = url.replace("http://192.168.1.4:7822", doc_sim.root_url)
    answer = requests.get(url).json()
    assert answer["status"] == "0"
    assert [(i["mobile"], i["result"]) for i in answer["list"]] == [
        ("13800000001", 0),
        ("13800000002", 0),
        ("13800000003", 0),
        ("13800000003", 0),
        ("13800000004", 0),
    ]
    kept = [(a.mobile, a.content) for a in doc_sim.accepted[-5:]]
    assert kept[0] == ("13800000001", "下发内容1") and kept[-1] == ("13800000004", "下发内容4")


@pytest.mark.parametrize("example", [DOC_BALANCE_REQUEST, DOC_REPORT_REQUEST, DOC_MO_REQUEST])
def test_doc_query_requests(example: str) -> None:
    with Sms57Simulator(account="账号", password="密码", password_mode="plain") as simulator:
        answer = requests.get(example.replace("http://host:port", simulator.root_url)).json()
        wrong = requests.get(
            example.replace("http://host:port", simulator.root_url).replace("密码", "x")
        ).json()
    assert str(answer["status"]) == "0" and "balance" in answer
    assert str(wrong["status"]) == "3"


# --------------------------------------------------------------------------- codes

STATUS_CODES = {
    "0": Outcome.OK,
    "1": Outcome.PERMANENT,
    "2": Outcome.CONFIGURATION,  # IP 鉴权错误
    "3": Outcome.CONFIGURATION,  # 账号密码不正确
    "4": Outcome.CONFIGURATION,  # 版本号错误
    "5": Outcome.TRANSIENT,
    "6": Outcome.CONFIGURATION,  # 接入点错误 (a CMPP account)
    "7": Outcome.CONFIGURATION,  # 账号已停用
    "21": Outcome.TRANSIENT,
    "100": Outcome.TRANSIENT,
    "102": Outcome.TRANSIENT,  # nothing accepted; the adapter resends in halves first
}
RESULT_CODES = {
    "0": Outcome.OK,
    "10": Outcome.CONFIGURATION,  # extno 错误: the setting, not the number
    "15": Outcome.PERMANENT,
    "17": Outcome.PERMANENT,
}
STAT_CODES = [
    "DELIVRD",
    "EXPIRED",
    "DELETED",
    "REJECTED",
    *[f"MA:{n:04d}" for n in (1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30)],
    "MO:200",
    "MO:0254",
    "MO:0255",
]


@pytest.mark.parametrize(("code", "outcome"), sorted({**STATUS_CODES, **RESULT_CODES}.items()))
def test_status_and_result_codes_are_classified(code: str, outcome: Outcome) -> None:
    info = Sms57Adapter.codes.lookup(code)
    assert code in Sms57Adapter.codes and info.outcome is outcome and info.description


@pytest.mark.parametrize("code", [c for c in STATUS_CODES if c != "0"])
@pytest.mark.parametrize("as_number", [True, False])
def test_request_level_status_raises_with_its_outcome(code: str, as_number: bool) -> None:
    status: Any = int(code) if as_number else code
    with pytest.raises(VendorRequestError) as err:
        read_status("send", json.dumps({"status": status, "balance": 0}))
    assert err.value.code == code and err.value.outcome is STATUS_CODES[code]
    assert err.value.may_have_reached is False


@pytest.mark.parametrize("code", ["10", "15", "17"])
def test_result_codes_refuse_one_recipient(code: str) -> None:
    answer = {
        "status": "0",
        "list": [
            {"mid": "4C2CA88382720003", "mobile": "13800000001", "result": 0},
            {"mid": "4C2CA88382720004", "mobile": "13800000002", "result": int(code)},
        ],
    }
    ok, refused = read_send_answer(
        json.dumps(answer), [("+8613800000001", "13800000001"), ("+8613800000002", "13800000002")]
    )
    assert ok.outcome is Outcome.OK and ok.vendor_ref == "4C2CA88382720003"
    assert refused.outcome is RESULT_CODES[code] and refused.code == code and refused.vendor_ref is None


@pytest.mark.parametrize("stat", STAT_CODES)
def test_stat_codes_are_classified(stat: str) -> None:
    info = Sms57Adapter.codes.lookup(stat)
    expected = Outcome.OK if stat == "DELIVRD" else Outcome.PERMANENT
    assert stat in Sms57Adapter.codes and info.outcome is expected and info.description
    report = read_record({"flag": 1, "mid": "1", "mobile": "13800000001", "stat": stat, "time": ""})
    assert report.status is (ReportStatus.DELIVERED if stat == "DELIVRD" else ReportStatus.UNDELIVERED)
    assert report.code == stat and report.occurred_at is None


def test_unknown_and_upstream_codes() -> None:
    assert Sms57Adapter.codes.outcome("999") is Outcome.TRANSIENT
    assert stat_description("MO:1234") == "upstream gateway code 1234"  # MO:NNNN: the upstream's own code
    report = read_record({"flag": 1, "mid": "1", "mobile": "13800000001", "stat": "MO:1234"})
    assert report.status is ReportStatus.UNDELIVERED


def test_answer_missing_a_recipient_may_have_reached() -> None:
    answer = {"status": "0", "list": [{"mid": "A1", "mobile": "13800000001", "result": 0}]}
    with pytest.raises(VendorParseError) as err:
        read_send_answer(
            json.dumps(answer), [("+8613800000001", "13800000001"), ("+8613800000002", "13800000002")]
        )
    assert [r.vendor_ref for r in err.value.partial] == ["A1"] and err.value.may_have_reached


# --------------------------------------------------------------------------- passwords


def test_password_forms() -> None:
    md5 = Sms57Adapter(
        {"base_url": "http://h", "account": "922011", "password": "123456", "extno": "10690231221"}
    )
    plain = Sms57Adapter({**md5.settings.model_dump(), "password": "123456", "password_mode": "plain"})
    assert md5.password_for() == "e10adc3949ba59abbe56e057f20f883e"  # MD5("123456"), the well-known value
    assert (
        md5.password_for("10690231221【测试】您好13800000001,13800000002")
        == "f7209c17cabcdb447a7728392c74f21d"
    )
    assert plain.password_for("anything") == "123456"
    assert "123456" not in repr(md5.settings)  # the secret never prints


# --------------------------------------------------------------------------- robust parsers

ADAPTER = Sms57Adapter({"base_url": "http://h", "account": "a", "password": "p", "extno": "1"})
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
record_keys = st.sampled_from(
    ["flag", "mid", "spid", "accessCode", "mobile", "stat", "content", "time", "status"]
)
records = st.dictionaries(record_keys, json_values, max_size=9)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=200),
    query=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    method=st.sampled_from(["POST", "GET", "PUT"]),
)
def test_parse_push_raises_only_parse_errors_on_bytes(
    body: bytes, query: dict[str, str], method: str
) -> None:
    with contextlib.suppress(VendorParseError):
        ADAPTER.parse_push(
            RawRequest(method, headers={"Content-Type": "application/json"}, query=query, body=body)
        )


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(json_values, st.lists(records, max_size=4), records))
def test_parse_push_raises_only_parse_errors_on_json(payload: Any) -> None:
    with contextlib.suppress(VendorParseError):
        ADAPTER.parse_push(RawRequest("POST", body=json.dumps(payload).encode()))


answers = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {
            "status": st.sampled_from(["0", 0, "3", None, 1.5]),
            "balance": json_values,
            "list": st.lists(records),
        }
    ).map(json.dumps),
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(text=answers)
def test_answer_readers_raise_only_vendor_errors(text: str) -> None:
    readers = [
        lambda: read_send_answer(text, [("+8613800000001", "13800000001")]),
        lambda: read_balance_answer(text),
        lambda: read_pull_answer("report", text),
        lambda: read_pull_answer("mo", text),
        lambda: read_send_answer(text.encode("utf-8", "surrogatepass"), []),
    ]
    for read in readers:
        with contextlib.suppress(VendorParseError, VendorRequestError):  # a refusal is a well-formed answer
            read()


def test_pull_and_push_keep_the_readable_records_of_an_array() -> None:
    """Finding 1: a record without mid (or mobile) costs itself only; 6.3 promises no re-push."""
    good = {"flag": 1, "mid": "A1", "mobile": "13800000001", "stat": "DELIVRD", "time": "2017-04-12 01:38:21"}
    bad = {"flag": 1, "mid": "A2", "stat": "DELIVRD"}  # no mobile
    no_mid = {"flag": 1, "mobile": "13800000002", "stat": "DELIVRD"}
    pulled = read_pull_answer("report", json.dumps({"status": 0, "list": [good, bad]}))
    assert [r.vendor_ref for r in pulled.reports] == ["A1"]  # pulled records are handed out once: keep A1
    pushed = ADAPTER.parse_push(RawRequest("POST", body=json.dumps([bad, good, no_mid]).encode()))
    assert [r.vendor_ref for r in pushed.reports] == ["A1"]
    assert [u.reason for u in pushed.unreadable] == [
        "sms57: report lacks mid, mobile or stat",
        "sms57: report lacks mid, mobile or stat",
    ]
    assert '"mobile": "13800000002"' in pushed.unreadable[1].raw  # kept for the (masked) log


def test_inbound_mid_may_be_left_out() -> None:
    """5.3: an inbound message's mid "可忽略"."""
    record = {"flag": 0, "mobile": "18983437010", "content": "上行内容", "time": "2017-04-12 01:38:21"}
    batch = ADAPTER.parse_push(RawRequest("POST", body=json.dumps([record]).encode()))
    assert [(m.from_, m.content, m.vendor_ref) for m in batch.inbound] == [
        ("+8618983437010", "上行内容", None)
    ]
    assert not batch.unreadable


@pytest.mark.parametrize("body", [b"{}", b"null", b'"OK"', b"[1, 2", b"\xff"])
def test_an_unreadable_envelope_is_refused_whole(body: bytes) -> None:
    with pytest.raises(VendorParseError):
        ADAPTER.parse_push(RawRequest("POST", body=body))


def test_push_records_without_flag_are_told_apart_and_status_may_be_a_number() -> None:
    batch = ADAPTER.parse_push(
        RawRequest(
            "POST",
            body=json.dumps(
                [
                    {"mid": 7, "mobile": 13800000001, "stat": "EXPIRED"},
                    {"flag": "0", "mid": "M1", "mobile": "13800000002", "content": "hi", "accessCode": 10690},
                ]
            ).encode(),
        )
    )
    assert [(r.vendor_ref, r.to, r.status) for r in batch.reports] == [
        ("7", "+8613800000001", ReportStatus.UNDELIVERED)
    ]
    assert [(m.from_, m.to) for m in batch.inbound] == [("+8613800000002", "10690")]
