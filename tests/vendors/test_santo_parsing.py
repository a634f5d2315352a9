"""santo: the seed document's examples verbatim, the code table, the encodings, and property tests."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from smsrelay.vendors import Outcome, RawRequest, ReportQuery, ReportStatus, VendorRequestError
from smsrelay.vendors.errors import VendorParseError
from smsrelay.vendors.santo import (
    CODES,
    SantoAdapter,
    decode_report_text,
    parse_balance_answer,
    parse_pricing_answer,
    parse_rptstatus_answer,
    parse_submit_answer,
    parse_verify_answer,
    read_answer,
)

# --------------------------------------------------------------------------- the document, verbatim
# (copied with the line breaks the PDF extraction put in them)

SINGLE_OK = """command=MT_RESPONSE&cpid=Test101&cppwd=000&mtmsgid=21426847850888196661&mtstat=ACCEPT

D&mterrcode=000"""

SINGLE_FAIL = """command=MT_RESPONSE&cpid=Test101&mtmsgid=21426847850888196661&mtstat=REJECTD&mterrcode

=错误代码"""

MULTI_OK = """command=MULTI_MT_RESPONSE&cpid=Test101&cppwd=000&mtmsgid=21426847850888196661&mtstat=ACCEPTD
&mtterrcode=000"""

MULTI_FAIL = """command=MULTI_MT_RESPONSE&cpid=Test101&mtmsgid=21426847850888196661&mtstat=REJECTD&mt
errcode=错误代码"""

PUSH_URL = """http://.../?command=RT_REQUEST&msgid=0513594772db8c&da=8618688888888&dc=1
5&sm=30353133353934373732646238637c307c44454c495652447c7c&rsm=0513594772d
b8c|0|DELIVRD||"""

BALANCE = """{"cpid":"Test101","errcode":"000","mtstat":"ACCEPTD","balance":100.00}"""

PRICING = (
    """{"cpid":"Test101","errcode":"000","mtstat":"ACCEPTD","country":"China","mtPrice":0.08,"prefix":"86"}"""
)

RPTSTATUS = """[{"cpid":"Test101","errcode":"000","mtstat":"success","msgid":"054322165bafe3","da":"8615711586282"}]"""

VERIFY = """{"cpid":"Test101","errcode":"000","mtstat":"ACCEPTD","country":"CN","isValid":1,"da":"8613910825657"}"""

# Section 5.1 and 5.2, with the outcome each one must have.
DOCUMENT_CODES = {
    "000": Outcome.OK,
    "0101": Outcome.PERMANENT,
    "0100": Outcome.PERMANENT,
    "0104": Outcome.CONFIGURATION,  # 账号信息错误
    "0106": Outcome.CONFIGURATION,  # 账号密码错误
    "0107": Outcome.PERMANENT,
    "0108": Outcome.CONFIGURATION,  # IP 未在白名单中
    "0110": Outcome.PERMANENT,
    "0111": Outcome.PERMANENT,
    "0112": Outcome.PERMANENT,
    "0600": Outcome.TRANSIENT,
    "0": Outcome.OK,
    "DELIVRD": Outcome.OK,
    "400": Outcome.PERMANENT,
    "401": Outcome.PERMANENT,
    "402": Outcome.PERMANENT,
    "403": Outcome.PERMANENT,
    "404": Outcome.PERMANENT,
    "500": Outcome.TRANSIENT,
    "501": Outcome.TRANSIENT,
}


def unwrap(text: str) -> str:
    """Undo the PDF line wrapping of a URL."""
    return text.replace("\n", "")


class CannedSession(requests.Session):
    """Answers every request with one canned body and keeps the requests made."""

    def __init__(self, body: str):
        super().__init__()
        self.body = body
        self.sent: list[requests.PreparedRequest] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        prepared = requests.Request(str(method), str(url), params=kwargs.get("params")).prepare()
        self.sent.append(prepared)
        response = requests.Response()
        response.status_code = 200
        response._content = self.body.encode("utf-8")
        response.url = prepared.url or ""
        return response


def canned(body: str) -> tuple[SantoAdapter, CannedSession]:
    session = CannedSession(body)
    adapter = SantoAdapter(
        {"base_url": "http://api2.santo.cc", "cpid": "Test101", "cppwd": "Test101"}, session=session
    )
    return adapter, session


def sent_query(session: CannedSession) -> tuple[str, str]:
    parts = urlsplit(session.sent[-1].url or "")
    return parts.path, parts.query


# --------------------------------------------------------------------------- send answers


def test_single_success_example() -> None:
    adapter, session = canned(SINGLE_OK)
    (result,) = adapter.send(["+8613910825657"], "测试内容")
    assert (
        result.outcome is Outcome.OK and result.vendor_ref == "21426847850888196661" and result.code == "000"
    )
    path, query = sent_query(session)
    # the document's request: /submit?command=MT_REQUEST&cpid=Test101&cppwd=Test101&da=8613910825657&sm=测试内容
    assert path == "/submit"
    assert dict(parse_qsl(query)) == {
        "command": "MT_REQUEST",
        "cpid": "Test101",
        "cppwd": "Test101",
        "da": "8613910825657",
        "sm": "测试内容",
    }
    assert "sm=%E6%B5%8B%E8%AF%95%E5%86%85%E5%AE%B9" in query  # urlencode(utf8), by hand


def test_multi_success_example_with_misspelled_code_key() -> None:
    adapter, session = canned(MULTI_OK)
    results = adapter.send(["+8613910825657", "+8618820828080", "+8613309382910"], "中文测试")
    assert {r.vendor_ref for r in results} == {"21426847850888196661"}
    assert all(r.outcome is Outcome.OK for r in results)
    _, query = sent_query(session)
    assert dict(parse_qsl(query))["da"] == "8613910825657,8618820828080,8613309382910"
    assert "command=MULTI_MT_REQUEST" in query and "sm=%E4%B8%AD%E6%96%87%E6%B5%8B%E8%AF%95" in query


@pytest.mark.parametrize("text", [SINGLE_FAIL, MULTI_FAIL])
def test_failure_examples_refuse_the_request(text: str) -> None:
    # The examples carry the placeholder "错误代码": an unknown code, kept raw, transient.
    with pytest.raises(VendorRequestError) as info:
        parse_submit_answer(text)
    assert info.value.code == "错误代码" and info.value.outcome is Outcome.TRANSIENT


@pytest.mark.parametrize("text", [SINGLE_FAIL, MULTI_FAIL])
def test_failure_examples_with_a_real_code(text: str) -> None:
    adapter, _ = canned(text.replace("错误代码", "0106"))
    with pytest.raises(VendorRequestError) as info:
        adapter.send(["+8613910825657", "+8618820828080"], "x")
    assert info.value.code == "0106" and info.value.outcome is Outcome.CONFIGURATION


@pytest.mark.parametrize(
    "text",
    [
        "command=MT_RESPONSE&cpid=Test101&mtstat=ACCEPTD&mterrcode=000",  # accepted without an id
        "command=MT_RESPONSE&cpid=Test101&mtmsgid=1&mtstat=ACCEPTD&mterrcode=0106",  # contradiction
        "command=MT_RESPONSE&cpid=Test101&mtmsgid=1",
        "<html><body>502 Bad Gateway</body></html>",
        "",
        "OK",
    ],
)
def test_unclear_send_answers_are_parse_errors(text: str) -> None:
    adapter, _ = canned(text)
    with pytest.raises(VendorParseError) as info:
        adapter.send(["+8613910825657"], "x")
    assert info.value.may_have_reached is True


# --------------------------------------------------------------------------- JSON answers


def test_balance_example() -> None:
    adapter, session = canned(BALANCE)
    balance = adapter.balance()
    assert balance.balance == Decimal("100.00") and str(balance.balance) == "100.00" and balance.unit == "CNY"
    assert balance.raw == {"cpid": "Test101", "errcode": "000", "mtstat": "ACCEPTD", "balance": "100.00"}
    # the document's request: /verifyPhoneNumber?cpid=Test101&cppwd=Test101
    assert sent_query(session) == ("/verifyPhoneNumber", "cpid=Test101&cppwd=Test101")


def test_pricing_example() -> None:
    adapter, session = canned(PRICING)
    price = adapter.pricing("CN")
    assert (price.country, price.prefix, price.price) == ("China", "86", Decimal("0.08"))
    assert sent_query(session) == ("/get-pricing", "cpid=Test101&cppwd=Test101&countryCode=CN")


def test_rptstatus_example() -> None:
    adapter, session = canned(RPTSTATUS)
    reports = adapter.query_reports(
        [
            ReportQuery(vendor_ref="054322165bafe3", to="+8615711586282"),
            ReportQuery(vendor_ref="054322165bafe3", to="+8613910825657"),
        ]
    )
    # asked without da: the record names its number
    first = reports[0]
    assert (first.vendor_ref, first.to, first.status) == (
        "054322165bafe3",
        "+8615711586282",
        ReportStatus.DELIVERED,
    )
    assert first.raw["msgid"] == "054322165bafe3"
    assert sent_query(session)[0] == "/get-rptstatus"


def test_rptstatus_example_asked_with_da() -> None:
    """Finding 4: the document asks with da=8613910825657 and answers a record for
    8615711586282: the record is that number's, never relabelled to the number asked."""
    adapter, session = canned(RPTSTATUS)
    (report,) = adapter.query_reports([ReportQuery(vendor_ref="054322165bafe3", to="+8613910825657")])
    assert report.to == "+8615711586282" and report.status is ReportStatus.DELIVERED
    assert sent_query(session) == (
        "/get-rptstatus",
        "cpid=Test101&cppwd=Test101&msgid=054322165bafe3&da=8613910825657",
    )


@pytest.mark.parametrize(
    ("mtstat", "status"),
    [
        ("success", ReportStatus.DELIVERED),
        ("failed", ReportStatus.UNDELIVERED),
        ("none", ReportStatus.PENDING),
    ],
)
def test_rptstatus_states(mtstat: str, status: ReportStatus) -> None:
    ((record, _), *_), _ = parse_rptstatus_answer(RPTSTATUS.replace('"success"', f'"{mtstat}"'))
    adapter, _ = canned(RPTSTATUS.replace('"success"', f'"{mtstat}"'))
    (report,) = adapter.query_reports([ReportQuery(vendor_ref="054322165bafe3", to="+8615711586282")])
    assert record.mtstat == mtstat and report.status is status


def test_rptstatus_record_without_da_is_set_aside_not_guessed() -> None:
    answer = '[{"cpid":"Test101","errcode":"000","mtstat":"failed","msgid":"054322165bafe3"}]'
    adapter, _ = canned(answer)
    (batch,) = adapter.query_report_batches([ReportQuery(vendor_ref="054322165bafe3", to="+8613910825657")])
    assert batch.reports == [] and len(batch.unreadable) == 1


def test_rptstatus_refusal() -> None:
    with pytest.raises(VendorRequestError) as info:
        parse_rptstatus_answer('{"cpid":"Test101","errcode":"0106","mtstat":"REJECTD"}')
    assert info.value.code == "0106"


def test_verify_example() -> None:
    adapter, session = canned(VERIFY)
    check = adapter.verify_number("+8613910825657")
    assert check.valid is True and check.country == "CN"
    assert sent_query(session) == ("/verifyPhoneNumber", "cpid=Test101&cppwd=Test101&da=8613910825657")
    invalid = parse_verify_answer(VERIFY.replace('"isValid":1', '"isValid":0').replace('"CN"', '""'))
    assert invalid.isValid is False


@pytest.mark.parametrize("text", ['{"cpid":"Test101","errcode":"000"}', '{"balance":"lots"}', "[1,2]", "{"])
def test_unreadable_balance(text: str) -> None:
    with pytest.raises(VendorParseError):
        parse_balance_answer(text)


# --------------------------------------------------------------------------- the push


def test_push_example_get() -> None:
    query = dict(parse_qsl(urlsplit(unwrap(PUSH_URL)).query))
    batch = SantoAdapter.parse_push(canned("")[0], RawRequest(method="GET", query=query))
    (report,) = batch.reports
    assert batch.inbound == []
    assert (
        report.vendor == "santo" and report.vendor_ref == "0513594772db8c" and report.to == "+8618688888888"
    )
    assert report.status is ReportStatus.DELIVERED and report.code == "DELIVRD"
    assert report.raw["text"] == "0513594772db8c|0|DELIVRD||" and report.raw["dc"] == "15"


def test_push_example_as_post_form() -> None:
    body = urlsplit(unwrap(PUSH_URL)).query.encode()
    (report,) = canned("")[0].parse_push(RawRequest(method="POST", body=body)).reports
    assert (report.vendor_ref, report.to, report.status) == (
        "0513594772db8c",
        "+8618688888888",
        ReportStatus.DELIVERED,
    )


def test_push_hex_is_gbk_of_the_text() -> None:
    # by hand: "0513594772db8c|0|DELIVRD||" as bytes, hex
    assert (
        "0513594772db8c|0|DELIVRD||".encode("gbk").hex()
        == "30353133353934373732646238637c307c44454c495652447c7c"
    )
    assert decode_report_text("30353133353934373732646238637c307c44454c495652447c7c", "15") == (
        "0513594772db8c|0|DELIVRD||"
    )
    assert decode_report_text("d7b4ccac", "15") == "状态"  # GBK, two bytes per character
    assert decode_report_text("72b66001", "8") == "状态"  # UCS-2 big endian


@pytest.mark.parametrize(
    ("rsm", "status", "code"),
    [
        ("0513594772db8c 0 DELIVRD", ReportStatus.DELIVERED, "DELIVRD"),  # section 4.3's table
        ("0513594772db8c 400 404", ReportStatus.UNDELIVERED, "404"),
        ("0513594772db8c|400|401||", ReportStatus.UNDELIVERED, "401"),
        ("0513594772db8c|500|501||", ReportStatus.UNDELIVERED, "501"),
    ],
)
def test_push_falls_back_to_rsm(rsm: str, status: ReportStatus, code: str) -> None:
    query = {
        "command": "RT_REQUEST",
        "msgid": "0513594772db8c",
        "da": "8618688888888",
        "dc": "15",
        "sm": "zz",
        "rsm": rsm,
    }
    (report,) = canned("")[0].parse_push(RawRequest(method="GET", query=query)).reports
    assert report.status is status and report.code == code
    assert report.description == CODES.lookup(code).description


def test_failed_report_from_hex() -> None:
    text = "0513594772db8c|400|402||"
    query = {"command": "RT_REQUEST", "msgid": "0513594772db8c", "da": "8618688888888", "dc": "15"}
    query["sm"] = text.encode("gbk").hex()
    (report,) = canned("")[0].parse_push(RawRequest(method="GET", query=query)).reports
    assert report.status is ReportStatus.UNDELIVERED and report.code == "402"


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"command": "RT_REQUEST", "msgid": "1", "da": "8618688888888"},  # no report text
        {"command": "RT_REQUEST", "msgid": "1", "rsm": "1|0|DELIVRD||"},  # no number
        {"command": "MO_REQUEST", "msgid": "1", "da": "8618688888888", "rsm": "1|0|DELIVRD||"},
        {"command": "RT_REQUEST", "msgid": "1", "da": "8618688888888", "rsm": "1|what|ever"},
    ],
)
def test_unreadable_pushes(query: dict[str, str]) -> None:
    with pytest.raises(VendorParseError):
        canned("")[0].parse_push(RawRequest(method="GET", query=query))


def test_push_ack() -> None:
    assert (SantoAdapter.push_ack.status_code, SantoAdapter.push_ack.body) == (200, "OK")


# --------------------------------------------------------------------------- codes


@pytest.mark.parametrize(("code", "outcome"), DOCUMENT_CODES.items())
def test_every_document_code_is_classified(code: str, outcome: Outcome) -> None:
    assert code in CODES
    info = CODES.lookup(code)
    assert info.outcome is outcome and info.description


def test_code_table_has_no_undocumented_codes() -> None:
    assert set(CODES) == set(DOCUMENT_CODES)


def test_unknown_code_is_transient() -> None:
    assert CODES.outcome("0999") is Outcome.TRANSIENT


# --------------------------------------------------------------------------- property tests

_text = st.text(max_size=300)
_fieldish = st.sampled_from(["command", "msgid", "da", "dc", "sm", "rsm", "x"])
_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["RT_REQUEST", "15", "8", "0", "3", "8618688888888", "0|DELIVRD", "1|400|404||"]),
    st.binary(max_size=30).map(bytes.hex),
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", ""]),
    query=st.dictionaries(st.one_of(_fieldish, st.text(max_size=10)), _values, max_size=8),
    body=st.one_of(st.binary(max_size=200), _text.map(lambda t: t.encode("utf-8"))),
)
def test_parse_push_raises_only_parse_errors(method: str, query: dict[str, str], body: bytes) -> None:
    adapter = canned("")[0]
    try:
        batch = adapter.parse_push(RawRequest(method=method, query=query, body=body))
    except VendorParseError:
        return
    assert len(batch.reports) == 1 and batch.reports[0].to.startswith("+")


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(_text, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_answer_parsers_raise_only_vendor_errors(text: str) -> None:
    for parser in (
        read_answer,
        parse_submit_answer,
        parse_balance_answer,
        parse_pricing_answer,
        parse_verify_answer,
        parse_rptstatus_answer,
    ):
        with contextlib.suppress(VendorParseError, VendorRequestError):
            parser(text)


_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
_json_obj = st.dictionaries(
    st.sampled_from(
        ["cpid", "errcode", "mtstat", "balance", "mtPrice", "country", "prefix", "isValid", "msgid", "da"]
    ),
    st.one_of(_json_scalar, st.lists(_json_scalar, max_size=2)),
)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(_json_obj, st.lists(_json_obj, max_size=3)))
def test_json_answer_parsers_on_shaped_json(data: Any) -> None:

    text = json.dumps(data)
    for parser in (parse_balance_answer, parse_pricing_answer, parse_verify_answer, parse_rptstatus_answer):
        with contextlib.suppress(VendorParseError, VendorRequestError):
            parser(text)


@settings(max_examples=300, deadline=None)
@given(sm=st.text(max_size=80), dc=st.text(max_size=3))
def test_decode_report_text_never_raises(sm: str, dc: str) -> None:
    assert decode_report_text(sm, dc) is None or isinstance(decode_report_text(sm, dc), str)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    msgid=st.text(alphabet="0123456789abcdef", min_size=1, max_size=20),
    number=st.from_regex(r"[1-9][0-9]{7,14}", fullmatch=True),
    verdict=st.sampled_from([("0", "DELIVRD"), ("400", "401"), ("400", "404"), ("500", "501")]),
    dc=st.sampled_from(["15", "8"]),
    post=st.booleans(),
)
def test_push_round_trip(msgid: str, number: str, verdict: tuple[str, str], dc: str, post: bool) -> None:
    from urllib.parse import urlencode

    text = f"{msgid}|{verdict[0]}|{verdict[1]}||"
    charset = "gbk" if dc == "15" else "utf-16-be"
    fields = {
        "command": "RT_REQUEST",
        "msgid": msgid,
        "da": number,
        "dc": dc,
        "sm": text.encode(charset).hex(),
    }
    request = (
        RawRequest(method="POST", body=urlencode(fields).encode())
        if post
        else RawRequest(method="GET", query=fields)
    )
    (report,) = canned("")[0].parse_push(request).reports
    assert (report.vendor_ref, report.to, report.code) == (msgid, "+" + number, verdict[1])
    expected = ReportStatus.DELIVERED if verdict[0] == "0" else ReportStatus.UNDELIVERED
    assert report.status is expected


def test_us_number_in_a_push_stays_american() -> None:
    # da is always country code + number: 1 + 10 digits is NANP, not a domestic Chinese number
    query = {"command": "RT_REQUEST", "msgid": "ab", "da": "12025550123", "rsm": "ab|0|DELIVRD||"}
    (report,) = canned("")[0].parse_push(RawRequest(method="GET", query=query)).reports
    assert report.to == "+12025550123"
