"""smsadmin parsers: the seed document's examples verbatim, every documented code, MD5, and property tests."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal
from urllib.parse import parse_qsl, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smsrelay.vendors import (
    InvalidInput,
    Outcome,
    RawRequest,
    ReportStatus,
    VendorParseError,
    VendorRequestError,
)
from smsrelay.vendors.base import CHINA_TZ
from smsrelay.vendors.smsadmin import (
    CODES,
    SmsAdminAdapter,
    encode_gb2312,
    form_encode,
    inbound_from_record,
    parse_balance_answer,
    parse_code_answer,
    parse_form,
    parse_mgz_answer,
    parse_push_fields,
    parse_send_answer,
    report_from_record,
    split_records,
)

ADAPTER = SmsAdminAdapter({"base_url": "http://127.0.0.1:9/api", "uid": "ID", "password": "123456"})

# --------------------------------------------------------------------------- the document's examples, verbatim

# 9. 短信回复推送 — the example, with the PDF's line wrap inside the LinkId kept as extracted.
DOC_MO_EXAMPLE = (
    "http://pushURL?Class=mo&SmsName=ID&Mobile=13802102102&Message=test&LinkId=1234  \n"
    "56789& RevertTime=0000-00-00 00:00:00"
)
# 10. 状态报告推送
DOC_RPT_EXAMPLE = (
    "http://pushURL?Class=rpt&SmsName=ID&Mobile=138xxxxxxx&LinkId=123456789&Report=DELIVRD"
    "&ReportTime=0000-00-00 00:00:00"
)
# Send answers (sections 2-4), balance (5), mgz (6), pull (7, 8): as the document's tables write them.
DOC_SEND_ANSWERS = {
    "0 发送成功!": "0",
    "2 余额不足!": "2",
    "1 用户名或密码错误!": "1",
    "3 超过发送最大量 100 条": "3",
    "3 超过发送最大量 1000 条": "3",
    "4 此用户不允许发送!": "4",
    "5 手机号或发送信息不能为空!": "5",
    "7 超过 XX 个字,请修改后发送!": "7",
    "8 用户已冻结, 请联系客服人员!": "8",
}
DOC_BALANCE = "用户 ID=uid 剩余资费=XXX"
DOC_MGZ_FOUND = "敏感字:敏感字 1;敏感字 2;敏感字 3;"
DOC_MGZ_NONE = "不含敏感字"
DOC_REVE = (
    "手机号 1/日期 1/流水号 1/回复内容 1/子码 1 \\n 手机号 2/日期 2/流水号 2/回复内容 2/子码 2 \\n "
    "手机号 3/日期 3/流水号 3/回复内容 3/子码 3 \\n 手机号 20/日期 20/流水号 20/回复内容 20/子码 20 \\n"
)


def query_of(url_text: str) -> dict[str, str]:
    """The query of a document example URL; the PDF's line wrap ('  \\n') is an extraction artefact."""
    query = url_text.replace("  \n", "").split("?", 1)[1]
    return dict(parse_qsl(query, keep_blank_values=True))


def test_doc_mo_push_example_as_a_raw_query_string() -> None:
    """Finding 5: the example URL's query string itself (HTTP API's rawQueryString), by GET and
    by POST; the key ' RevertTime' keeps the document's space, the time its raw space."""
    raw = DOC_MO_EXAMPLE.replace("  \n", "").split("?", 1)[1]
    for method in ("GET", "POST"):
        request = RawRequest(method, raw_query=raw)
        assert ADAPTER.check_push_credentials(request)
        (msg,) = ADAPTER.parse_push(request).inbound
        assert (msg.from_, msg.content, msg.vendor_ref, msg.received_at) == (
            "+8613802102102",
            "test",
            "123456789",
            None,
        )


def test_gb2312_text_in_the_raw_query_is_read_as_gb18030() -> None:
    message = quote_plus("退订，谢谢".encode("gb2312"))
    raw = f"Class=mo&SmsName=ID&Mobile=13802102102&Message={message}&LinkId=123456789"
    # what API Gateway REST hands over beside it: the same bytes decoded as UTF-8, garbled
    garbled = dict(parse_qsl(raw))
    assert garbled["Message"] != "退订，谢谢"
    (msg,) = ADAPTER.parse_push(RawRequest("GET", query=garbled, raw_query=raw)).inbound
    assert msg.content == "退订，谢谢"


def test_doc_mo_push_example() -> None:
    query = query_of(DOC_MO_EXAMPLE)
    batch = ADAPTER.parse_push(RawRequest("POST", query=query))
    msg = batch.inbound[0]
    assert (msg.from_, msg.content, msg.vendor_ref) == ("+8613802102102", "test", "123456789")
    assert msg.received_at is None  # '0000-00-00 00:00:00' is a placeholder, not a time
    assert batch.reports == []
    assert ADAPTER.check_push_credentials(RawRequest("POST", query=query))  # SmsName=ID is our uid
    # The same fields as the POST form body the vendor really sends (GB2312).
    body = "&".join(f"{k}={quote_plus(v.encode('gb2312'))}" for k, v in query.items()).encode()
    assert ADAPTER.parse_push(RawRequest("POST", body=body)).inbound[0] == msg


def test_doc_rpt_push_example() -> None:
    query = query_of(DOC_RPT_EXAMPLE)
    # The document masks the number ('138xxxxxxx'): a report without a readable number cannot be matched.
    with pytest.raises(VendorParseError, match="mobile"):
        ADAPTER.parse_push(RawRequest("POST", query=query))
    query["Mobile"] = "13800000001"
    report = ADAPTER.parse_push(RawRequest("POST", query=query)).reports[0]
    assert (report.to, report.vendor_ref, report.status, report.code) == (
        "+8613800000001",
        "123456789",
        ReportStatus.DELIVERED,
        "DELIVRD",
    )
    assert report.raw["SmsName"] == "ID"


@pytest.mark.parametrize(("answer", "code"), DOC_SEND_ANSWERS.items())
def test_doc_send_answers(answer: str, code: str) -> None:
    assert parse_code_answer(answer)[0] == code
    if code == "0":
        assert parse_send_answer(answer) == "0"
    else:
        with pytest.raises(VendorRequestError) as err:
            parse_send_answer(answer)
        assert err.value.code == code and err.value.outcome == DOC_CODES[code]
        assert err.value.description == f"{CODES.lookup(code).description} ({answer.split(' ', 1)[1]})"


def test_doc_balance_answer() -> None:
    # The document's placeholder 'XXX' is not a number: unreadable; a real value reads.
    with pytest.raises(VendorParseError):
        parse_balance_answer(DOC_BALANCE)
    assert parse_balance_answer(DOC_BALANCE.replace("XXX", "1234.50")) == Decimal("1234.50")
    assert parse_balance_answer("用户ID=acme 剩余资费=-3") == Decimal("-3")
    with pytest.raises(VendorRequestError) as err:
        parse_balance_answer("1 用户名或密码错误!")
    assert err.value.code == "1"


def test_doc_mgz_answers() -> None:
    found = parse_mgz_answer(DOC_MGZ_FOUND)
    assert found.ok is False and found.words == ["敏感字 1", "敏感字 2", "敏感字 3"]
    assert parse_mgz_answer(DOC_MGZ_NONE).ok is True
    with pytest.raises(VendorRequestError):
        parse_mgz_answer("1 用户名或密码错误!")


def test_doc_pull_answer_shape() -> None:
    # The table writes a literal '\n' between records; with real numbers and dates it reads as 4 records.
    text = DOC_REVE.replace(" \\n ", "\n").replace(" \\n", "\n")
    text = text.replace("手机号 ", "1380000000").replace("日期 1", "2017-09-28 10:00:01")
    text = text.replace("日期 2", "2017-09-28 10:00:02").replace("日期 3", "2017-09-28 10:00:03")
    text = text.replace("日期 20", "2017-09-28 10:00:20")
    records, skipped, handed = split_records(text, "150", continued=True)
    assert [r["linkid"] for r in records] == ["流水号 1", "流水号 2", "流水号 3", "流水号 20"]
    assert [r["body"] for r in records] == ["回复内容 1", "回复内容 2", "回复内容 3", "回复内容 20"]
    assert records[3]["subcode"] == "子码 20" and records[3]["mobile"] == "138000000020"
    assert (skipped, handed) == ([], 4)
    (message,) = [inbound_from_record(r) for r in records[:1]]
    assert message.to == "子码 1"  # Finding 10: the 子码 (extension) is the reply's `to`


@pytest.mark.parametrize(("empty", "text"), [("150", "150"), ("160", "160"), ("160", "160\n")])
def test_empty_pull_codes(empty: str, text: str) -> None:
    assert split_records(text, empty) == ([], [], 0)


def test_pull_record_splits_three_left_one_right() -> None:
    records, _, _ = split_records("13800000001/2024-05-01 12:00:00/abc/a/b/c/01\n", "150", continued=True)
    assert records[0]["body"] == "a/b/c" and records[0]["subcode"] == "01" and records[0]["linkid"] == "abc"
    # A date written with '/' does not shift the fields.
    slashed = split_records("13800000001/2024/05/01 12:00:00/abc/DELIVRD/\n", "160")[0][0]
    assert slashed["date"] == "2024/05/01 12:00:00" and slashed["body"] == "DELIVRD"


def test_pull_reply_with_line_break_is_glued() -> None:
    text = "13800000001/2024-05-01 12:00:00/L1/第一行\n第二行/01\n13800000002/2024-05-01 12:00:01/L2/ok/\n"
    records, skipped, handed = split_records(text, "150", continued=True)
    assert [r["body"] for r in records] == ["第一行\n第二行", "ok"]
    assert (skipped, handed) == ([], 2)


def test_a_report_line_never_absorbs_the_next() -> None:
    """Finding 3: a line that does not read as a report (here a leading space, then garbage) is
    read on its own or set aside: it never glues onto the delivered report before it."""
    text = (
        "13800000001/2024-05-01 12:00:00/L1/DELIVRD/\n"
        " 13800000002/2024-05-01 12:00:01/L2/DELIVRD/\n"
        "garbage without fields\n"
        "13800000003/2024-05-01 12:00:02/L3/DELIVRD/01\n"
    )
    records, skipped, handed = split_records(text, "160")
    reports = [report_from_record(r) for r in records]
    assert [(r.to, r.status) for r in reports] == [
        ("+8613800000001", ReportStatus.DELIVERED),
        ("+8613800000002", ReportStatus.DELIVERED),
        ("+8613800000003", ReportStatus.DELIVERED),
    ]
    assert [u.raw for u in skipped] == ["garbage without fields"] and handed == 4
    # a stray first line does not make the answer unreadable: the records after it are kept
    records, skipped, _ = split_records("garbage\n" + text, "160")
    assert len(records) == 3 and [u.raw for u in skipped] == ["garbage", "garbage without fields"]


def test_a_report_line_with_an_extra_field_is_set_aside_not_read_as_undelivered() -> None:
    records, skipped, _ = split_records("13800000001/2024-05-01 12:00:00/L1/DELIV/RD/01\n", "160")
    assert records == [] and len(skipped) == 1


def test_a_reply_continues_only_while_its_record_is_not_whole() -> None:
    text = (
        "13800000001/2024-05-01 12:00:00/L1/好的/01\n"  # whole: the next line does not continue it
        "stray line\n"
        "13800000002/2024-05-01 12:00:01/L2/第一行\n"
        "\n"
        "第三行/02\n"
    )
    records, skipped, _ = split_records(text, "150", continued=True)
    assert [(r["body"], r["subcode"]) for r in records] == [("好的", "01"), ("第一行\n\n第三行", "02")]
    assert [u.raw for u in skipped] == ["stray line"]


def test_report_record_values() -> None:
    record = split_records("13800000001/2024-05-01 12:00:00/L1/UNDELIV/\n", "160")[0][0]
    report = report_from_record(record)
    assert (
        report.status == ReportStatus.UNDELIVERED
        and report.code == "UNDELIV"
        and report.to == "+8613800000001"
    )
    assert report.occurred_at == dt.datetime(2024, 5, 1, 12, 0, tzinfo=CHINA_TZ)
    for delivered in ("DELIVRD", "0", "DELIVERED"):
        rec = {**record, "body": delivered}
        assert report_from_record(rec).status == ReportStatus.DELIVERED


# --------------------------------------------------------------------------- codes

DOC_CODES = {
    "0": Outcome.OK,
    "1": Outcome.CONFIGURATION,  # 用户名或密码错误
    "2": Outcome.PERMANENT,
    "3": Outcome.PERMANENT,
    "4": Outcome.CONFIGURATION,  # 此用户不允许发送
    "5": Outcome.PERMANENT,
    "7": Outcome.PERMANENT,
    "8": Outcome.CONFIGURATION,  # 用户已冻结
    "150": Outcome.OK,
    "160": Outcome.OK,
    "DELIVRD": Outcome.OK,
}


@pytest.mark.parametrize(("code", "outcome"), DOC_CODES.items())
def test_every_documented_code_classified(code: str, outcome: Outcome) -> None:
    assert code in CODES
    info = CODES.lookup(code)
    assert info.outcome == outcome and info.description


def test_code_table_has_exactly_the_documented_codes() -> None:
    assert set(CODES) == set(DOC_CODES)


def test_unknown_code_is_transient() -> None:
    assert CODES.outcome("6") == Outcome.TRANSIENT
    with pytest.raises(VendorRequestError) as err:
        parse_send_answer("99 未知错误")
    assert err.value.outcome == Outcome.TRANSIENT


def test_push_ack_is_ok() -> None:
    assert (ADAPTER.push_ack.status_code, ADAPTER.push_ack.body) == (200, "OK")


# --------------------------------------------------------------------------- MD5 and wire encoding


def test_pwd_md5_hand_computed() -> None:
    assert ADAPTER._pwd_md5() == "e10adc3949ba59abbe56e057f20f883e"  # md5("123456")
    other = SmsAdminAdapter({"base_url": "http://x", "uid": "u", "password": "abc123"})
    assert other._pwd_md5() == "e99a18c428cb38d5f260853678922e03"  # md5("abc123"), lower case


def test_form_is_gb2312_percent_encoded() -> None:
    assert form_encode([("msg", "中文 a+b")]) == "msg=%D6%D0%CE%C4+a%2Bb"
    assert parse_form(b"msg=%D6%D0%CE%C4+a%2Bb") == {"msg": "中文 a+b"}


def test_encode_gb2312_names_the_character() -> None:
    with pytest.raises(InvalidInput, match="'€'"):
        encode_gb2312("price €5", "content")
    assert encode_gb2312("【签名】", "content") == "【签名】".encode("gb2312")


def test_linkid_rules() -> None:
    assert SmsAdminAdapter.linkid("abcDEF123") == "abcDEF123"
    # Finding 10: "不得重复": a new attempt of the same chunk takes a new linkid, stably
    assert SmsAdminAdapter.linkid("abcDEF123", 2) == SmsAdminAdapter.linkid("abcDEF123", 2)
    assert len({SmsAdminAdapter.linkid("abcDEF123", n) for n in (1, 2, 3)}) == 3
    assert SmsAdminAdapter.linkid("a" * 33) == SmsAdminAdapter.linkid("a" * 33) != "a" * 33
    assert len(SmsAdminAdapter.linkid("req#1")) == 32
    generated = SmsAdminAdapter.linkid(None)
    assert len(generated) == 32 and generated.isalnum()


def test_push_field_names_case_and_spaces() -> None:
    batch = parse_push_fields({"class": "RPT", " mobile ": "13800000001", "LINKID": "x", "report": "MK:0001"})
    assert batch.reports[0].status == ReportStatus.UNDELIVERED and batch.reports[0].code == "MK:0001"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Class=xyz",
        b"Class=rpt&Mobile=13800000001",  # no LinkId
        b"Class=mo&Mobile=13800000001",  # no Message
        b"Class=mo&Mobile=abc&Message=x",
        b"Class=rpt&Mobile=%FF%FF&LinkId=x",
        b"Class=mo&Mobile=13800000001&Message=%81",  # a lone GB lead byte
    ],
)
def test_bad_pushes_raise_parse_error(body: bytes) -> None:
    with pytest.raises(VendorParseError):
        ADAPTER.parse_push(RawRequest("POST", body=body))


# --------------------------------------------------------------------------- property tests

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)
_fields = st.dictionaries(
    st.sampled_from(["Class", "SmsName", "Mobile", "Message", "LinkId", "Report", "ReportTime", "RevertTime"])
    | _text,
    st.sampled_from(["rpt", "mo", "13800000001", "DELIVRD", "2024-01-01 00:00:00", ""]) | _text,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), query=_fields, method=st.sampled_from(["POST", "GET", "PUT"]))
def test_parse_push_raises_only_parse_errors(body: bytes, query: dict[str, str], method: str) -> None:
    with contextlib.suppress(VendorParseError):
        ADAPTER.parse_push(RawRequest(method, query=query, body=body))
    ADAPTER.check_push_credentials(RawRequest(method, query=query, body=body))  # never raises
    raw = body.decode("latin-1")
    with contextlib.suppress(VendorParseError):
        ADAPTER.parse_push(RawRequest(method, raw_query=raw))
    ADAPTER.check_push_credentials(RawRequest(method, raw_query=raw))


@settings(max_examples=300, deadline=None)
@given(fields=_fields)
def test_parse_push_form_raises_only_parse_errors(fields: dict[str, str]) -> None:
    body = "&".join(f"{quote_plus(k)}={quote_plus(v.encode('gb18030'))}" for k, v in fields.items()).encode()
    try:
        batch = ADAPTER.parse_push(RawRequest("POST", body=body))
    except VendorParseError:
        return
    assert len(batch.reports) + len(batch.inbound) == 1


_answers = st.one_of(
    _text,
    st.binary(max_size=200).map(lambda b: b.decode("gb18030", "replace")),
    st.lists(
        st.tuples(_text, _text, _text, _text, _text).map("/".join),
        max_size=5,
    ).map("\n".join),
)


@settings(max_examples=300, deadline=None)
@given(text=_answers)
def test_answer_parsers_raise_only_vendor_errors(text: str) -> None:
    for parse in (
        parse_send_answer,
        parse_balance_answer,
        parse_mgz_answer,
        lambda t: split_records(t, "150", continued=True),
        lambda t: [records_to_models(r) for r in split_records(t, "160")[0]],
    ):
        with contextlib.suppress(VendorParseError, VendorRequestError):
            parse(text)


def records_to_models(record: dict[str, str]) -> object:
    try:
        report_from_record(record)
        return inbound_from_record(record)
    except VendorParseError:
        return None
