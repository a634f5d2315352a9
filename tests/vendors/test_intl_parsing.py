"""intl: the seed document's examples verbatim, its codes, the MD5 form, and parser robustness."""

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
from smsrelay.vendors import (
    Outcome,
    RawRequest,
    ReportQuery,
    ReportStatus,
    SendOptions,
    VendorParseError,
    VendorRequestError,
)
from smsrelay.vendors.base import CHINA_TZ, md5_hex
from smsrelay.vendors.intl import (
    CODES,
    IntlAdapter,
    parse_answer,
    parse_balance_answer,
    parse_push_body,
    parse_send_answer,
    parse_status_answer,
)
from smsrelay_local.simulators.intl import md5_upper

# --------------------------------------------------------------------------- the document's examples

# 1.2 失败响应示例
FAILURE_ANSWER = """{ 
"code": 1001,
"msg": "Illegal cell phone"
}"""  # noqa: W291 - verbatim from the document

# 1.3 / 4.4 curl bodies (status query)
STATUS_REQUEST_13 = """{ 
     "data": [
             {
              "msgId" : "20240914171086",
              "mobile" : "2348031000010"
               },
              { 
              "msgId" : "20240914165122", 
              "mobile" : "2348031000010"
               }
         ]
}"""  # noqa: W291 - verbatim from the document
STATUS_REQUEST_44 = """{ 
     "data": [
             {
              "msgId" : "20240914171086",
              "mobile" : "2346568526367"
               },
              { 
              "msgId" : "20240914165122", 
              "mobile" : "2346568526369"
               }
         ]
}"""  # noqa: W291 - verbatim from the document

# 2.4 请求体示例
SEND_REQUEST = """{
    "mobile": "2348031000010",
    "content": "The Special code is 279275,it is not advisable to share.kindly use in five minutes",
    "senderID": "Univasa",
    "sendTime": "20240924100212"
}"""

# 2.6 响应体示例
SEND_ANSWER = """{
    "msg": "ok",
    "code": 0,
    "data": {
        "msgId": "240924162017564896"
    }
}"""

# 3.5 响应体示例
BALANCE_ANSWER = """{
    "msg": "ok",
    "code": 0,
    "data": {
        "balance": 1,
      "currencyName": "人民币",
      "currencyCode": "CNY"
    }
}"""

# 4.6 响应体示例
STATUS_ANSWER = """{
    "code": 0,
    "data": [
        {
            "desc": "",
            "errorCode": "16",
            "mobile": "99121244155",
            "msgId": "240924170907169917",
            "status": 2,
            "timestamp": "20240924050907"
        }
    ],
    "msg": "ok"
}"""

# 5.5 请求体示例 (push)
PUSH_BODY = """   {
            "desc": "",
            "errorCode": "16",
            "mobile": "99121244155",
            "msgId": "240924170907169917",
            "status": 2,
            "timestamp": "20240924050907"
  }"""

# 5.7 响应体示例 (our reply)
PUSH_REPLY = """{
    "code": 0,
    "msg": "ok"
}"""

DOC_SETTINGS = {"base_url": "http://39.107.123.194:9118", "app_key": "10002", "app_secret": "abc123"}


class CannedSession(requests.Session):
    """Records what the adapter sends and answers a fixed body (no network)."""

    def __init__(self, answer: str) -> None:
        super().__init__()
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append({"method": method, "url": url, **kwargs})
        response = requests.Response()
        response.status_code = 200
        response._content = self.answer.encode("utf-8")
        response.url = url
        return response


def test_document_md5_example() -> None:
    # 1.1: "如abc123加密后为 E99A18C428CB38D5F260853678922E03"
    assert md5_hex("abc123", upper=True) == "E99A18C428CB38D5F260853678922E03"
    assert md5_upper("abc123") == "E99A18C428CB38D5F260853678922E03"
    assert md5_hex("", upper=True) == "D41D8CD98F00B204E9800998ECF8427E"  # hand-checked: MD5 of ""


def test_send_request_and_answer_match_the_document() -> None:
    session = CannedSession(SEND_ANSWER)
    adapter = IntlAdapter(DOC_SETTINGS, session=session)
    content = "The Special code is 279275,it is not advisable to share.kindly use in five minutes"
    send_at = dt.datetime(2024, 9, 24, 10, 2, 12, tzinfo=CHINA_TZ)

    (result,) = adapter.send(["+2348031000010"], content, SendOptions(sender_id="Univasa", send_at=send_at))

    (call,) = session.calls
    assert call["method"] == "POST"
    assert call["url"] == "http://39.107.123.194:9118/api/v1/international/sms/send"
    assert json.loads(call["data"]) == json.loads(SEND_REQUEST)
    assert call["headers"]["appKey"] == "10002"
    assert call["headers"]["appSecret"] == "E99A18C428CB38D5F260853678922E03"
    assert result.outcome == Outcome.OK
    assert result.vendor_ref == "240924162017564896"
    assert result.match_key == "intl#240924162017564896#+2348031000010"


def test_send_time_is_converted_to_utc8() -> None:
    session = CannedSession(SEND_ANSWER)
    adapter = IntlAdapter(DOC_SETTINGS, session=session)
    adapter.send(
        ["+2348031000010"], "x", SendOptions(send_at=dt.datetime(2024, 9, 24, 2, 2, 12, tzinfo=dt.UTC))
    )
    assert json.loads(session.calls[0]["data"])["sendTime"] == "20240924100212"
    assert "senderID" not in json.loads(session.calls[0]["data"])


def test_failure_example_is_a_request_error() -> None:
    with pytest.raises(VendorRequestError) as info:
        IntlAdapter(DOC_SETTINGS, session=CannedSession(FAILURE_ANSWER)).send(["+2348031000010"], "x")
    assert info.value.code == "1001"
    assert info.value.outcome == Outcome.PERMANENT
    assert info.value.description == "ParamError: bad parameter (Illegal cell phone)"


def test_balance_example() -> None:
    session = CannedSession(BALANCE_ANSWER)
    balance = IntlAdapter(DOC_SETTINGS, session=session).balance()

    assert session.calls[0]["method"] == "GET"
    assert session.calls[0]["url"].endswith("/api/v1/international/sms/balance")
    assert balance.balance == Decimal(1)
    assert balance.unit == "CNY"
    assert balance.raw["currencyName"] == "人民币"


def test_balance_data_as_array_as_the_table_types_it() -> None:
    answer = '{"code":0,"msg":"ok","data":[{"balance":12.5,"currencyName":"美元","currencyCode":"USD"}]}'
    balance = parse_balance_answer(answer)
    assert (balance.balance, balance.unit) == (Decimal("12.5"), "USD")


@pytest.mark.parametrize("request_body", [STATUS_REQUEST_13, STATUS_REQUEST_44])
def test_status_request_matches_the_document(request_body: str) -> None:
    session = CannedSession(STATUS_ANSWER)
    adapter = IntlAdapter(DOC_SETTINGS, session=session)
    pairs = json.loads(request_body)["data"]

    adapter.query_reports([ReportQuery(vendor_ref=p["msgId"], to="+" + p["mobile"]) for p in pairs])

    (call,) = session.calls
    assert call["url"] == "http://39.107.123.194:9118/api/v1/international/sms/status"
    assert json.loads(call["data"]) == json.loads(request_body)
    assert call["headers"]["Content-Type"] == "application/json;charset=utf-8"


def _check_document_report(report: Any) -> None:
    assert report.vendor == "intl"
    assert report.vendor_ref == "240924170907169917"
    assert report.to == "+99121244155"
    assert report.status == ReportStatus.UNDELIVERED
    assert report.code == "16"
    assert report.occurred_at == dt.datetime(2024, 9, 24, 5, 9, 7, tzinfo=CHINA_TZ)
    assert report.raw["errorCode"] == "16"


def test_status_answer_example() -> None:
    (report,) = parse_status_answer(STATUS_ANSWER).reports
    _check_document_report(report)


def test_an_undelivered_report_without_desc_is_described_by_its_code() -> None:
    """Finding 10: the examples' desc is "": the message must not keep the send answer's "OK"."""
    (report,) = parse_status_answer(STATUS_ANSWER).reports
    assert report.description == "undelivered (errorCode 16)"
    (pushed,) = parse_push_body(PUSH_BODY).reports
    assert pushed.description == "undelivered (errorCode 16)"


def test_a_queried_record_is_matched_by_its_own_msgid_and_mobile() -> None:
    """The 4.4 request asks for two pairs; the 4.6 answer speaks of a third: it keeps its own."""
    session = CannedSession(STATUS_ANSWER)
    pairs = json.loads(STATUS_REQUEST_44)["data"]
    (report,) = IntlAdapter(DOC_SETTINGS, session=session).query_reports(
        [ReportQuery(vendor_ref=p["msgId"], to="+" + p["mobile"]) for p in pairs]
    )
    assert (report.vendor_ref, report.to) == ("240924170907169917", "+99121244155")


def test_an_unreadable_record_of_a_status_answer_is_set_aside() -> None:
    answer = json.loads(STATUS_ANSWER)
    answer["data"].append({"mobile": "8613800000001", "status": 0})  # no msgId
    batch = parse_status_answer(json.dumps(answer))
    assert [r.vendor_ref for r in batch.reports] == ["240924170907169917"]
    assert len(batch.unreadable) == 1 and "msgId" in batch.unreadable[0].reason


def test_push_example_and_reply() -> None:
    adapter = IntlAdapter(DOC_SETTINGS)
    request = RawRequest(
        "POST",
        {"appKey": "10002", "appSecret": "E99A18C428CB38D5F260853678922E03"},
        body=PUSH_BODY.encode("utf-8"),
    )

    assert adapter.check_push_credentials(request)
    batch = adapter.parse_push(request)
    (report,) = batch.reports
    _check_document_report(report)
    assert batch.inbound == []
    assert json.loads(adapter.push_ack.body) == json.loads(PUSH_REPLY)
    assert adapter.push_ack.body == '{"code":0,"msg":"ok"}'  # design.md, exactly
    assert adapter.push_ack.status_code == 200


# --------------------------------------------------------------------------- readings


@pytest.mark.parametrize(
    ("status", "pushed", "expected"),
    [
        (0, True, ReportStatus.DELIVERED),
        (1, True, ReportStatus.UNDELIVERED),  # push table: 1 = failed
        (2, True, ReportStatus.UNDELIVERED),  # push example: 2
        ("0", True, ReportStatus.DELIVERED),
        (0, False, ReportStatus.DELIVERED),
        (1, False, ReportStatus.PENDING),  # pull: no report yet
        (2, False, ReportStatus.UNDELIVERED),
        (7, False, ReportStatus.UNDELIVERED),
    ],
)
def test_status_values(status: Any, pushed: bool, expected: ReportStatus) -> None:
    record = {"mobile": "8613800000001", "msgId": "m1", "status": status, "errorCode": "X", "timestamp": ""}
    if pushed:
        (report,) = parse_push_body(json.dumps(record)).reports
    else:
        (report,) = parse_status_answer(json.dumps({"code": 0, "msg": "ok", "data": [record]})).reports
    assert report.status == expected
    assert report.to == "+8613800000001"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("202211042057", dt.datetime(2022, 11, 4, 20, 57, tzinfo=CHINA_TZ)),  # the table's 12 digits
        ("20221104205701", dt.datetime(2022, 11, 4, 20, 57, 1, tzinfo=CHINA_TZ)),  # the examples' 14
        ("", None),
        ("2022-11-04", None),
        ("20221304205701", None),
    ],
)
def test_timestamps(timestamp: str, expected: dt.datetime | None) -> None:
    (report,) = parse_push_body(
        json.dumps({"mobile": "1", "msgId": "m", "status": 0, "timestamp": timestamp})
    ).reports
    assert report.occurred_at == expected


def test_vendor_time_zone_is_configurable() -> None:
    adapter = IntlAdapter({**DOC_SETTINGS, "vendor_utc_offset_min": 0})
    batch = adapter.parse_push(RawRequest("POST", body=PUSH_BODY.encode()))
    assert batch.reports[0].occurred_at == dt.datetime(2024, 9, 24, 5, 9, 7, tzinfo=dt.UTC)


def test_status_answer_no_report_code_means_no_records() -> None:
    assert parse_status_answer('{"code":1012,"msg":"NoReportError"}').reports == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html></html>",
        b"[]",
        b'{"msgId":"m","status":0}',  # no mobile
        b'{"mobile":"","msgId":"m","status":0}',
        b'{"mobile":"1","msgId":"","status":0}',
        b'{"mobile":"1","msgId":"m","status":"ok"}',
        b'{"mobile":"1","msgId":"m","status":true}',
        b'{"mobile":"1","msgId":"m","status":0',
        b"\xff\xfe{",
        b"[" * 100_000,  # deep nesting: json raises RecursionError, which must not escape
    ],
)
def test_unreadable_pushes(body: bytes) -> None:
    with pytest.raises(VendorParseError):
        IntlAdapter(DOC_SETTINGS).parse_push(RawRequest("POST", body=body))


def test_a_list_push_keeps_its_readable_records() -> None:
    body = json.dumps([1, json.loads(PUSH_BODY), {"msgId": "m", "status": 0}]).encode()
    batch = IntlAdapter(DOC_SETTINGS).parse_push(RawRequest("POST", body=body))
    assert [r.vendor_ref for r in batch.reports] == ["240924170907169917"]
    assert len(batch.unreadable) == 2


def test_push_by_get_is_unreadable() -> None:
    with pytest.raises(VendorParseError):
        IntlAdapter(DOC_SETTINGS).parse_push(RawRequest("GET", body=PUSH_BODY.encode()))


@pytest.mark.parametrize(
    "body",
    ['{"code":0,"msg":"ok"}', '{"code":0,"data":{}}', '{"code":"x","data":{"msgId":"1"}}', "[0]", "NaN"],
)
def test_unreadable_send_answers(body: str) -> None:
    with pytest.raises(VendorParseError):
        parse_send_answer(body)


def test_unreadable_balance_answers() -> None:
    for body in ['{"code":0,"data":{"balance":NaN}}', '{"code":0,"data":{"balance":"x"}}', '{"code":0}']:
        with pytest.raises(VendorParseError):
            parse_balance_answer(body)


# --------------------------------------------------------------------------- codes

DOCUMENT_CODES = {
    "0": Outcome.OK,
    "1001": Outcome.PERMANENT,
    "1002": Outcome.CONFIGURATION,  # AppKeyError
    "1003": Outcome.CONFIGURATION,  # PasswordError
    "1004": Outcome.CONFIGURATION,  # BindIpError
    "1005": Outcome.CONFIGURATION,  # AccountStop
    "1006": Outcome.PERMANENT,
    "1007": Outcome.PERMANENT,
    "1008": Outcome.PERMANENT,
    "1009": Outcome.PERMANENT,
    "1010": Outcome.PERMANENT,
    "1011": Outcome.PERMANENT,
    "1012": Outcome.TRANSIENT,
    "9999": Outcome.TRANSIENT,
}


@pytest.mark.parametrize(("code", "outcome"), DOCUMENT_CODES.items())
def test_document_codes(code: str, outcome: Outcome) -> None:
    assert code in CODES
    info = CODES.lookup(code)
    assert info.outcome == outcome
    assert info.description
    if code not in ("0", "1012"):
        with pytest.raises(VendorRequestError) as error:
            parse_send_answer(json.dumps({"code": int(code), "msg": "m"}))
        assert (error.value.code, error.value.outcome) == (code, outcome)


def test_code_table_has_exactly_the_document_codes() -> None:
    assert set(CODES) == set(DOCUMENT_CODES)
    assert CODES.outcome("4242") == Outcome.TRANSIENT


def test_string_code_is_read_like_a_number() -> None:
    assert parse_send_answer('{"code":"0","msg":"ok","data":{"msgId":"7"}}') == "7"
    assert parse_answer('{"code": 1003}').code == "1003"


# --------------------------------------------------------------------------- robustness

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
_report_like = st.fixed_dictionaries(
    {},
    optional={
        "mobile": st.one_of(st.text(max_size=16), st.integers(), st.none()),
        "msgId": st.one_of(st.text(max_size=20), st.integers(), st.none()),
        "status": st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.none(), st.floats()),
        "timestamp": st.one_of(st.text(max_size=16), st.integers(), st.none()),
        "desc": st.one_of(st.text(max_size=10), st.none(), st.integers()),
        "errorCode": st.one_of(st.text(max_size=10), st.integers(), st.none()),
    },
)
_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    _json.map(lambda v: json.dumps(v).encode()),
    _report_like.map(lambda v: json.dumps(v).encode()),
    st.lists(_report_like, max_size=3).map(lambda v: json.dumps(v).encode()),
)
_answers = st.one_of(
    st.text(max_size=200),
    _json.map(json.dumps),
    st.fixed_dictionaries(
        {"code": st.one_of(st.integers(), st.text(max_size=4), st.just(0))},
        optional={"msg": _json, "data": st.one_of(_json, st.lists(_report_like, max_size=3), _report_like)},
    ).map(json.dumps),
)
_headers = st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["POST", "GET", "post", ""]),
    headers=_headers,
    query=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
    body=_bodies,
)
def test_parse_push_raises_only_parse_errors(
    method: str, headers: dict[str, str], query: dict[str, str], body: bytes
) -> None:
    adapter = IntlAdapter(DOC_SETTINGS)
    request = RawRequest(method, headers, query, body)
    try:
        batch = adapter.parse_push(request)
    except VendorParseError:
        pass
    else:
        assert batch.reports or batch.unreadable
        assert all(r.to.startswith("+") and r.vendor_ref for r in batch.reports)
    assert isinstance(adapter.check_push_credentials(request), bool)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(_answers, st.binary(max_size=200)))
def test_answer_parsers_raise_only_vendor_errors(body: str | bytes) -> None:
    for parser in (parse_send_answer, parse_balance_answer, parse_status_answer):
        with contextlib.suppress(VendorParseError, VendorRequestError):
            parser(body)
