"""kxt3 protocol: the seed document's examples verbatim, its code table, MD5, timestamps, robustness."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from smsrelay.vendors import Outcome, RawRequest, ReportStatus, VendorParseError, VendorRequestError
from smsrelay.vendors.base import CHINA_TZ
from smsrelay.vendors.kxt3 import (
    CODES,
    Kxt3Adapter,
    TimestampSource,
    parse_answer,
    parse_balance_answer,
    parse_send_answer,
    sign,
)
from smsrelay_local.simulators.kxt3 import Kxt3Simulator

from .conftest import simulator_fixtures

SETTINGS = {
    "base_url": "http://127.0.0.1:9/webservice/http/service",
    "cid": "12345678",
    "uid": "test",
    "password": "kxt3-secret",
    "push_uid": "abc",
    "push_pwd": "123",
}
ADAPTER = Kxt3Adapter(SETTINGS)

# --------------------------------------------------------------------------- the document, verbatim

# 2.2 请求样例 (login), message value
DOC_LOGIN_MESSAGE = """{ "cid": "12345678", "uid": "test", "pwd": "0723d239c0c8007f09aaaeabb2807e977", "timestamp": "201501242011311000" }"""
# 2.4 响应样例
DOC_LOGIN_ANSWER = """{ "stateCode": 0, "message": "操作成功", "smBalance": 0, "mmBalance": 0 }"""
# 3.2 请求样例 (sendSm), message value
DOC_SEND_MESSAGE = """{ "cid": "12345678", "uid": "test", "pwd": "0723d239c0c8007f09aaebbb2807e977", "timestamp": "201501242011311000", "mobiles": ["13708600860", "18930612517"], "content": "周末参加不了培训了", "atTime": "", "dailyBeginTime": "08:00:00", "dailyEndTime": "18:00:00" }"""
# 3.4 响应样例
DOC_SEND_ANSWER = """{
  "stateCode":0,
  "message":"操作成功",
  "token":376,
  "fee":1
}"""
# 4.6 推送消息样例 (the document's notation: key=value pairs)
DOC_REPORT_PUSH = """{
  uid="abc",
  pwd="123",
  type="report",
  jsonData=[
    {
      "token":7331,
      "mobile":"13500000000",
      "resultCode":"0",
      "success":true
    },
    {
      "token":8469,
      "mobile":"13700000000",
      "resultCode":"2:46",
      "success":false
    }
  ]
}"""
DOC_REPORT_JSONDATA = DOC_REPORT_PUSH[DOC_REPORT_PUSH.index("[") : DOC_REPORT_PUSH.rindex("]") + 1]
# 5.6 推送消息样例
DOC_MO_PUSH = """{
  uid="abc",
  pwd="123",
  type="mo",
  jsonData=[
    {
      "mobile":"13500000000",
      "content":"你好吗",
      "smgRecvDate":"2015-01-01 12:00:00"
    },
    {
      "mobile":"13700000000",
      "content":"我不好",
      "smgRecvDate":"2015-01-01 12:00:00"
    }
  ]
}"""
DOC_MO_JSONDATA = DOC_MO_PUSH[DOC_MO_PUSH.index("[") : DOC_MO_PUSH.rindex("]") + 1]


def test_doc_login_answer() -> None:
    balance = parse_balance_answer(DOC_LOGIN_ANSWER)
    assert (balance.vendor, balance.balance, balance.unit) == ("kxt3", Decimal(0), "messages")
    assert balance.raw == {"stateCode": 0, "message": "操作成功", "smBalance": 0, "mmBalance": 0}


def test_doc_send_answer() -> None:
    assert parse_send_answer(DOC_SEND_ANSWER) == "376"


def _expect_doc_reports(request: RawRequest) -> None:
    assert ADAPTER.check_push_credentials(request)
    batch = ADAPTER.parse_push(request)
    assert batch.inbound == []
    first, second = batch.reports
    assert (first.vendor_ref, first.to, first.status, first.code) == (
        "7331",
        "+8613500000000",
        ReportStatus.DELIVERED,
        "0",
    )
    assert (second.vendor_ref, second.to, second.status, second.code) == (
        "8469",
        "+8613700000000",
        ReportStatus.UNDELIVERED,
        "2:46",
    )
    assert second.raw == {"token": 8469, "mobile": "13700000000", "resultCode": "2:46", "success": False}


def test_doc_report_push_as_written() -> None:
    _expect_doc_reports(RawRequest("POST", body=DOC_REPORT_PUSH.encode()))


def test_doc_report_push_as_form_fields() -> None:
    body = urlencode({"uid": "abc", "pwd": "123", "type": "report", "jsonData": DOC_REPORT_JSONDATA}).encode()
    _expect_doc_reports(RawRequest("POST", {"Content-Type": "application/x-www-form-urlencoded"}, body=body))


def test_doc_report_push_as_json_object() -> None:
    body = json.dumps(
        {"uid": "abc", "pwd": "123", "type": "report", "jsonData": json.loads(DOC_REPORT_JSONDATA)}
    )
    _expect_doc_reports(RawRequest("POST", {"Content-Type": "application/json"}, body=body.encode()))
    # jsonData as a JSON string inside the object
    body = json.dumps({"uid": "abc", "pwd": "123", "type": "report", "jsonData": DOC_REPORT_JSONDATA})
    _expect_doc_reports(RawRequest("POST", body=body.encode()))


def test_doc_report_push_with_a_broken_item_keeps_the_others() -> None:
    """Finding 1: the document's two reports plus an item without a token, as one array."""
    items = [*json.loads(DOC_REPORT_JSONDATA), {"mobile": "13900000000", "resultCode": "0", "success": True}]
    body = urlencode({"uid": "abc", "pwd": "123", "type": "report", "jsonData": json.dumps(items)}).encode()
    batch = ADAPTER.parse_push(RawRequest("POST", body=body))
    assert [(r.vendor_ref, r.to) for r in batch.reports] == [
        ("7331", "+8613500000000"),
        ("8469", "+8613700000000"),
    ]
    assert len(batch.unreadable) == 1 and "13900000000" in batch.unreadable[0].raw


@pytest.mark.parametrize("json_data", ["", "null", "{}", "[1, 2", '"x"'])
def test_a_push_whose_jsondata_cannot_be_read_is_refused_whole(json_data: str) -> None:
    body = urlencode({"uid": "abc", "pwd": "123", "type": "report", "jsonData": json_data}).encode()
    with pytest.raises(VendorParseError):
        ADAPTER.parse_push(RawRequest("POST", body=body))


@pytest.mark.parametrize("form", [False, True])
def test_doc_mo_push(form: bool) -> None:
    if form:
        body = urlencode({"uid": "abc", "pwd": "123", "type": "mo", "jsonData": DOC_MO_JSONDATA}).encode()
    else:
        body = DOC_MO_PUSH.encode()
    request = RawRequest("POST", body=body)
    assert ADAPTER.check_push_credentials(request)
    batch = ADAPTER.parse_push(request)
    assert batch.reports == []
    first, second = batch.inbound
    noon = dt.datetime(2015, 1, 1, 4, 0, tzinfo=dt.UTC)  # 12:00 UTC+8
    assert (first.from_, first.content, first.received_at) == ("+8613500000000", "你好吗", noon)
    assert (second.from_, second.content, second.received_at) == ("+8613700000000", "我不好", noon)
    assert first.raw["smgRecvDate"] == "2015-01-01 12:00:00"


_doc_sim_server, doc_sim = simulator_fixtures(
    "kxt3", name="doc_sim", cid="12345678", uid="test", password="kxt3-secret"
)


def _post(sim: Kxt3Simulator, op: str, message: str) -> dict[str, object]:
    response = requests.post(sim.base_url, data={"op": op, "message": message}, timeout=5)
    return json.loads(response.content.decode("utf-8"))


def test_doc_request_examples_reach_the_password_check(doc_sim: Kxt3Simulator) -> None:
    # The examples' pwd values are not MD5 of our password (the login one is even 33 chars): the
    # simulator reads everything else and refuses on the password, 200.
    assert _post(doc_sim, "login", DOC_LOGIN_MESSAGE)["stateCode"] == 200
    send = DOC_SEND_MESSAGE.replace("201501242011311000", "201501242011312000")
    assert _post(doc_sim, "sendSm", send)["stateCode"] == 200


def test_doc_send_example_with_a_correct_pwd_is_accepted(doc_sim: Kxt3Simulator) -> None:
    timestamp = "201501242011313000"
    message = DOC_SEND_MESSAGE.replace("0723d239c0c8007f09aaebbb2807e977", sign("kxt3-secret", timestamp))
    message = message.replace("201501242011311000", timestamp)
    answer = _post(doc_sim, "sendSm", message)
    assert answer["stateCode"] == 0 and isinstance(answer["token"], int) and answer["fee"] == 2
    accepted = doc_sim.tokens[str(answer["token"])]
    assert [a.mobile for a in accepted] == ["13708600860", "18930612517"]
    assert accepted[0].extra == {"at_time": "", "daily_begin": "08:00:00", "daily_end": "18:00:00"}


# --------------------------------------------------------------------------- the code table (6.2)

DOC_CODES = {
    "0": Outcome.OK,
    "1": Outcome.TRANSIENT,
    "100": Outcome.PERMANENT,
    "110": Outcome.PERMANENT,
    "120": Outcome.PERMANENT,
    "130": Outcome.PERMANENT,
    "200": Outcome.CONFIGURATION,  # 认证错
    "210": Outcome.TRANSIENT,
    "220": Outcome.CONFIGURATION,  # 无效来源 (IP refused)
    "230": Outcome.TRANSIENT,
    "240": Outcome.CONFIGURATION,  # 认证失败
    "250": Outcome.CONFIGURATION,  # 账户已停用
    "260": Outcome.CONFIGURATION,  # 机构已停用
    "300": Outcome.PERMANENT,
    "310": Outcome.PERMANENT,
    "320": Outcome.PERMANENT,
    "330": Outcome.PERMANENT,
    "340": Outcome.PERMANENT,
    "350": Outcome.PERMANENT,
    "360": Outcome.PERMANENT,
    "400": Outcome.PERMANENT,
}


def test_code_table_is_exactly_the_documents() -> None:
    assert set(CODES) == set(DOC_CODES)


@pytest.mark.parametrize(("code", "outcome"), sorted(DOC_CODES.items()))
def test_code_classified(code: str, outcome: Outcome) -> None:
    assert CODES.outcome(code) is outcome
    assert CODES.lookup(code).description
    if code == "0":
        return
    for parse in (parse_send_answer, parse_balance_answer):
        with pytest.raises(VendorRequestError) as info:
            parse(json.dumps({"stateCode": int(code), "message": "错误"}, ensure_ascii=False))
        assert (info.value.code, info.value.outcome) == (code, outcome)
        assert info.value.may_have_reached is False


def test_unknown_code_is_transient() -> None:
    assert CODES.outcome("999") is Outcome.TRANSIENT
    with pytest.raises(VendorRequestError) as info:
        parse_send_answer('{"stateCode": "999"}')
    assert info.value.outcome is Outcome.TRANSIENT


def test_state_code_as_string_and_missing_token() -> None:
    assert parse_send_answer('{"stateCode": "0", "token": "abc-1"}') == "abc-1"
    with pytest.raises(VendorParseError) as info:
        parse_send_answer('{"stateCode": 0, "message": "操作成功"}')
    assert info.value.may_have_reached is True


# --------------------------------------------------------------------------- MD5 (6.1)


def test_signature_hand_computed() -> None:
    # printf '%s' test201501242011311000 | md5sum
    assert sign("test", "201501242011311000") == "ff64dd50f403968a945ea865181d9f65"
    # printf '%s' kxt3-secret202601010900000042 | md5sum
    assert sign("kxt3-secret", "202601010900000042") == "61461e9bf7569cd42e09a6348d9e4f9e"


def test_adapter_request_carries_the_signed_message() -> None:
    class Fixed:
        def next(self) -> str:
            return "202601010900000042"

    captured: dict[str, str] = {}

    class Session(requests.Session):
        def request(self, method: str, url: str, **kwargs: object) -> requests.Response:  # type: ignore[override]
            captured.update(kwargs["data"])  # type: ignore[arg-type]
            response = requests.Response()
            response.status_code = 200
            response._content = DOC_LOGIN_ANSWER.encode()
            return response

    adapter = Kxt3Adapter(SETTINGS, session=Session(), timestamps=Fixed())  # type: ignore[arg-type]
    assert adapter.balance().balance == 0
    assert captured["op"] == "login"
    assert json.loads(captured["message"]) == {
        "cid": "12345678",
        "uid": "test",
        "pwd": "61461e9bf7569cd42e09a6348d9e4f9e",
        "timestamp": "202601010900000042",
    }


# --------------------------------------------------------------------------- timestamps


def test_timestamps_are_18_digits_in_china_time_and_unique() -> None:
    source = TimestampSource()
    values = [source.next() for _ in range(3000)]
    assert len(set(values)) == 3000
    assert all(len(v) == 18 and v.isdigit() for v in values)
    now = dt.datetime.now(CHINA_TZ)
    assert (
        abs(
            (
                dt.datetime.strptime(values[-1][:14], "%Y%m%d%H%M%S").replace(tzinfo=CHINA_TZ) - now
            ).total_seconds()
        )
        < 5
    )


def test_timestamps_unique_across_threads() -> None:
    source = TimestampSource()
    out: list[list[str]] = [[] for _ in range(4)]

    def work(bucket: list[str]) -> None:
        bucket.extend(source.next() for _ in range(1000))

    threads = [threading.Thread(target=work, args=(b,)) for b in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged = [v for bucket in out for v in bucket]
    assert len(set(merged)) == 4000


def test_all_suffixes_of_a_second_spent_waits_for_the_next_second() -> None:
    second = [dt.datetime(2026, 1, 1, 9, 0, 0, tzinfo=CHINA_TZ)]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        second[0] += dt.timedelta(seconds=1)

    source = TimestampSource(now=lambda: second[0], sleep=sleep)
    values = [source.next() for _ in range(10_000)]
    assert len(set(values)) == 10_000
    assert {v[:14] for v in values} == {"20260101090000"}
    assert sleeps == []
    assert source.next().startswith("20260101090001")
    assert len(sleeps) == 1


def test_clock_stepping_back_does_not_reuse_a_second() -> None:
    times = [
        dt.datetime(2026, 1, 1, 9, 0, 1, tzinfo=CHINA_TZ),
        dt.datetime(2026, 1, 1, 9, 0, 0, tzinfo=CHINA_TZ),
    ]
    clock = iter(times)
    source = TimestampSource(now=lambda: next(clock))
    first, second = source.next(), source.next()
    assert first[:14] == second[:14] == "20260101090001"
    assert first != second


# --------------------------------------------------------------------------- robustness (hypothesis)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
item_keys = st.sampled_from(["token", "mobile", "resultCode", "success", "content", "smgRecvDate", "x"])
items = st.dictionaries(item_keys, json_values, max_size=5)
envelopes = st.fixed_dictionaries(
    {"type": st.sampled_from(["report", "mo", "MO", "other", ""]) | json_values},
    optional={
        # SETTINGS' push credentials (as text, number or float) drawn often enough to be tested
        "uid": st.sampled_from(["abc", "abd", ""]) | json_values,
        "pwd": st.sampled_from(["123", 123, 123.0, "124"]) | json_values,
        "jsonData": st.lists(items, max_size=4) | json_values | st.lists(items, max_size=3).map(json.dumps),
    },
)
# Push credentials no generated input holds: on arbitrary input the check must answer no.
STRANGER = Kxt3Adapter({**SETTINGS, "push_uid": "uid-5c1e09b7f2a4", "push_pwd": "pwd-93d0e6a1b87f"})


def _requests_from(envelope: dict[str, object]) -> list[tuple[RawRequest, bool]]:
    """The envelope as a JSON body and as a form body, each with whether it carries SETTINGS'
    push credentials: a JSON field may be a string or a number (123.0 reads as 123); a form
    field is the text sent (non-strings go as their JSON)."""

    def json_text(value: object) -> str | None:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, float):
            return str(int(value)) if value.is_integer() else None
        return str(value) if isinstance(value, int | str) else None

    def form_text(value: object) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    def carries(text: Callable[[object], str | None]) -> bool:
        if "uid" not in envelope or "pwd" not in envelope:
            return False
        return text(envelope["uid"]) == "abc" and text(envelope["pwd"]) == "123"

    as_json = json.dumps(envelope).encode()
    form = urlencode({k: form_text(v) for k, v in envelope.items()}).encode()
    return [
        (RawRequest("POST", body=as_json), carries(json_text)),
        (RawRequest("POST", body=form), carries(form_text)),
    ]


def _only_parse_errors(request: RawRequest) -> None:
    with contextlib.suppress(VendorParseError):
        ADAPTER.parse_push(request)
    assert STRANGER.check_push_credentials(request) is False


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["POST", "GET", "PUT"]),
    body=st.binary(max_size=300),
    query=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=5),
)
def test_parse_push_arbitrary_bytes(method: str, body: bytes, query: dict[str, str]) -> None:
    _only_parse_errors(RawRequest(method, query=query, body=body))


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=300), prefix=st.sampled_from(["", "{", "uid=abc&type=report&jsonData=", "{uid="])
)
def test_parse_push_arbitrary_text(text: str, prefix: str) -> None:
    _only_parse_errors(RawRequest("POST", body=(prefix + text).encode("utf-8", "surrogatepass")))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(envelope=envelopes)
def test_parse_push_near_valid_envelopes(envelope: dict[str, object]) -> None:
    for request, has_credentials in _requests_from(envelope):
        _only_parse_errors(request)
        assert ADAPTER.check_push_credentials(request) is has_credentials


@settings(max_examples=300, deadline=None)
@given(
    query=st.fixed_dictionaries({"type": st.sampled_from(["report", "mo"]), "jsonData": st.text(max_size=80)})
)
def test_parse_push_query_dicts(query: dict[str, str]) -> None:
    _only_parse_errors(RawRequest("GET", query=query))


answer_texts = (
    st.text(max_size=200)
    | json_values.map(json.dumps)
    | st.dictionaries(
        st.sampled_from(["stateCode", "message", "token", "fee", "smBalance", "mmBalance"]),
        json_values,
        max_size=6,
    ).map(json.dumps)
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(text=answer_texts)
def test_answer_parsers_raise_only_vendor_errors(text: str) -> None:
    with contextlib.suppress(VendorParseError):
        parse_answer(text)
    for parse in (parse_send_answer, parse_balance_answer):
        with contextlib.suppress(VendorParseError, VendorRequestError):
            parse(text)
