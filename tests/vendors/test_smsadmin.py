"""smsadmin adapter against the running smsadmin simulator: every operation, refusals, pushes, transport errors."""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import quote_plus

import pytest
import requests
from smsrelay.vendors import (
    Capability,
    InvalidInput,
    Outcome,
    RawRequest,
    ReportStatus,
    SendOptions,
    VendorConnectError,
    VendorHTTPError,
    VendorParseError,
    VendorRequestError,
    VendorTimeout,
)
from smsrelay.vendors.base import CHINA_TZ
from smsrelay.vendors.smsadmin import SmsAdminAdapter
from smsrelay_local.simulators.smsadmin import SmsAdminSimulator

from tests.helpers import wait_until

from .conftest import simulator_fixtures
from .push_receiver import PushReceiver

PASSWORD = "123456"
PASSWORD_MD5 = "e10adc3949ba59abbe56e057f20f883e"  # md5("123456"), the well-known value
TEXT = "【Acme】您的验证码是4711"


class SmsAdminReceiver(PushReceiver):
    def __init__(self) -> None:
        super().__init__("smsadmin", SmsAdminAdapter.push_ack.body)


_sim_server, sim = simulator_fixtures(
    "smsadmin", uid="acme", password=PASSWORD, report_delay_s=0.01, slow_answer_s=1.0, seed=1
)


@pytest.fixture
def adapter(sim: SmsAdminSimulator) -> SmsAdminAdapter:
    return SmsAdminAdapter({**sim.settings(), "pull_interval_s": 0})


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    with SmsAdminReceiver() as rec:
        yield rec


@pytest.fixture
def push_sim(receiver: PushReceiver) -> Iterator[SmsAdminSimulator]:
    simulator = SmsAdminSimulator(uid="acme", password=PASSWORD, report_delay_s=0.01, push_url=receiver.url)
    simulator.start()
    yield simulator
    simulator.stop()


def last_send_fields(sim: SmsAdminSimulator) -> dict[str, str]:
    return next(c["fields"] for c in reversed(sim.calls) if "send" in c["route"])


# --------------------------------------------------------------------------- send


def test_settings_point_at_the_simulator(sim: SmsAdminSimulator) -> None:
    settings = sim.settings()
    assert settings["base_url"].endswith("/smsmarketing/wwwroot/api")
    assert settings["uid"] == "acme" and settings["password"] == PASSWORD


def test_send_one_text_to_many(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    results = adapter.send(["+8613800000001", "+8613800000002"], TEXT, SendOptions(reference="chunk42"))
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    assert {r.vendor_ref for r in results} == {"chunk42"}
    assert [r.to for r in results] == ["+8613800000001", "+8613800000002"]
    kept = sim.accepted_for("13800000001")
    assert len(kept) == 1 and kept[0].content == TEXT and kept[0].vendor_ref == "chunk42"
    call = next(c for c in sim.calls if c["route"] == "post_send_md5")
    assert call["method"] == "POST"
    assert call["fields"]["pwd"] == PASSWORD_MD5
    assert call["fields"]["mobile"] == "13800000001;13800000002"


def test_send_body_is_gb2312(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    adapter.send(["+8613800000001"], "中文")
    call = next(c for c in sim.calls if c["route"] == "post_send_md5")
    assert call["fields"]["msg"] == "中文"  # the simulator decodes strictly as GB2312


def test_linkid_generated_when_no_reference_and_never_reused(adapter: SmsAdminAdapter) -> None:
    first = adapter.send(["+8613800000001"], TEXT)[0].vendor_ref
    second = adapter.send(["+8613800000001"], TEXT)[0].vendor_ref
    assert first and second and first != second
    assert len(first) <= 32 and first.isalnum()


def test_long_reference_becomes_stable_32_char_linkid(adapter: SmsAdminAdapter) -> None:
    ref = "request-7f3a/chunk-0001/with-punctuation-and-more-than-32"
    a = adapter.send(["+8613800000001"], TEXT, SendOptions(reference=ref))[0].vendor_ref
    assert a == SmsAdminAdapter.linkid(ref)
    assert a is not None and len(a) == 32 and a.isalnum()


def test_reused_linkid_is_recorded(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    adapter.send(["+8613800000001"], TEXT, SendOptions(reference="same1"))
    adapter.send(["+8613800000001"], TEXT, SendOptions(reference="same1"))
    assert sim.reused_linkids == ["same1"]
    assert len(sim.accepted_for("13800000001")) == 2  # the document promises no deduplication
    assert Capability.RESEND_SAFE not in adapter.capabilities


def test_multi_chunk_send_gets_one_linkid_per_chunk(sim: SmsAdminSimulator) -> None:
    adapter = SmsAdminAdapter({**sim.settings(), "max_batch": 2})
    numbers = [f"+861380000000{i}" for i in range(1, 6)]
    results = adapter.send(numbers, TEXT, SendOptions(reference="ref9"))
    refs = [r.vendor_ref for r in results]
    assert len(set(refs)) == 3 and refs[0] == refs[1] and refs[2] == refs[3] != refs[0]
    assert sim.reused_linkids == []


def test_send_at_goes_as_china_time(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    when = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)
    adapter.send(["+8613800000001"], TEXT, SendOptions(send_at=when))
    assert last_send_fields(sim)["dtime"] == "2026-12-01 09:00:00"
    assert sim.accepted_for("13800000001")[0].extra["dtime"] == "2026-12-01 09:00:00"


def test_non_cn_number_rejected_without_a_call(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    results = adapter.send(["+14155550100"], TEXT)
    assert results[0].outcome == Outcome.PERMANENT and results[0].to == "+14155550100"
    assert not [c for c in sim.calls if "send" in c["route"]]
    mixed = adapter.send(["+14155550100", "+8613800000001"], TEXT)
    assert {r.to: r.outcome for r in mixed} == {
        "+14155550100": Outcome.PERMANENT,
        "+8613800000001": Outcome.OK,
    }


def test_character_outside_gb2312_refused_by_name(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    with pytest.raises(InvalidInput, match="U\\+1F600"):
        adapter.send(["+8613800000001"], "hi 😀")
    assert not sim.calls


def test_get_variant(sim: SmsAdminSimulator) -> None:
    adapter = SmsAdminAdapter({**sim.settings(), "send_method": "get"})
    assert adapter.batch_limit == 100
    results = adapter.send([f"+86138{i:08d}" for i in range(1, 151)], TEXT)
    assert len(results) == 150 and all(r.outcome == Outcome.OK for r in results)
    routes = [c["route"] for c in sim.calls]
    assert routes == ["get_send_md5", "get_send_md5"]
    assert sim.accepted_for("13800000150")[0].content == TEXT


# --------------------------------------------------------------------------- personalised


def test_personalised_native_ddt(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    messages = [("+8613800000001", "【Acme】码 1111 %+&= ok"), ("+8613800000002", "【Acme】码 2222")]
    results = adapter.send_personalised(messages, SendOptions(reference="ddt1"))
    assert [(r.to, r.outcome, r.vendor_ref) for r in results] == [
        ("+8613800000001", Outcome.OK, "ddt1"),
        ("+8613800000002", Outcome.OK, "ddt1"),
    ]
    assert [c["route"] for c in sim.calls] == ["post_send_ddt"]
    assert sim.accepted_for("13800000001")[0].content == "【Acme】码 1111 %+&= ok"
    assert sim.accepted_for("13800000002")[0].content == "【Acme】码 2222"
    assert Capability.PERSONALISED_NATIVE in adapter.capabilities


def test_personalised_with_separators_falls_back_to_grouped_send(
    sim: SmsAdminSimulator, adapter: SmsAdminAdapter
) -> None:
    messages = [
        ("+8613800000001", "a, b; c"),
        ("+8613800000002", "plain"),
        ("+8613800000003", "a, b; c"),
    ]
    results = adapter.send_personalised(messages, SendOptions(reference="p1"))
    assert {r.to for r in results if r.outcome == Outcome.OK} == {m[0] for m in messages}
    assert sorted(c["route"] for c in sim.calls) == ["post_send_ddt", "post_send_md5"]
    assert sim.accepted_for("13800000003")[0].content == "a, b; c"
    assert len({r.vendor_ref for r in results}) == 2  # one linkid per request


def test_ddt_chunk_refuses_separators(adapter: SmsAdminAdapter) -> None:
    with pytest.raises(InvalidInput, match="','"):
        adapter.send_ddt_chunk([("+8613800000001", "x,y")], SendOptions())


# --------------------------------------------------------------------------- account and extras


def test_balance(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    sim.balance = 123.45
    balance = adapter.balance()
    assert balance.balance == Decimal("123.45") and balance.unit == "CNY"
    call = next(c for c in sim.calls if c["route"] == "user_info")
    assert call["fields"]["pwd"] == PASSWORD  # the document: plain password on user_info/


def test_balance_goes_down_after_send(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    before = adapter.balance().balance
    adapter.send(["+8613800000001", "+8613800000002"], TEXT)
    assert adapter.balance().balance < before


def test_sensitive_words(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    assert adapter.sensitive_words("hello").ok is True
    check = adapter.sensitive_words("代开发票")
    assert check.ok is False and check.words == ["发票", "代开"]


# --------------------------------------------------------------------------- reports and inbound


def test_pull_reports_each_once(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    adapter.send(["+8613800000001", "+8613800004040"], TEXT, SendOptions(reference="r1"))
    wait_until(lambda: len(sim.pending_reports) == 2)
    batch = adapter.pull_reports()
    reports = {r.to: r for r in batch.reports}
    assert not batch.more  # 2 < 20: nothing more to fetch now
    assert reports["+8613800000001"].status == ReportStatus.DELIVERED
    assert reports["+8613800000001"].code == "DELIVRD" and reports["+8613800000001"].vendor_ref == "r1"
    assert reports["+8613800004040"].status == ReportStatus.UNDELIVERED
    assert reports["+8613800004040"].code == "UNDELIV"
    assert reports["+8613800000001"].occurred_at is not None
    assert reports["+8613800000001"].occurred_at.utcoffset() == dt.timedelta(hours=8)
    assert adapter.pull_reports().reports == []  # handed out once: 160


def test_one_pull_is_one_call_of_at_most_20(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    """Finding 2: the adapter hands back each vendor answer at once; the poll drains."""
    adapter.send([f"+86138{i:08d}" for i in range(1, 46)], TEXT)
    wait_until(lambda: len(sim.pending_reports) == 45)
    sizes = []
    while True:
        batch = adapter.pull_reports()
        sizes.append((len(batch.reports), batch.more))
        if not batch.more:
            break
    assert sizes == [(20, True), (20, True), (5, False)]
    assert [c["route"] for c in sim.calls].count("report") == 3
    assert (adapter.pull_interval_s, adapter.pull_max_calls) == (0, 10)


def test_a_bad_line_is_skipped_and_still_counts_toward_the_20(
    sim: SmsAdminSimulator, adapter: SmsAdminAdapter
) -> None:
    adapter.send([f"+86138{i:08d}" for i in range(1, 21)], TEXT)
    wait_until(lambda: len(sim.pending_reports) == 20)
    sim.raw_report_lines.append("1380000000x/2024-05-01 12:00:00/L/DELIVRD/")  # a non-digit mobile
    batch = adapter.pull_reports()
    assert len(batch.reports) == 19 and len(batch.unreadable) == 1 and batch.more
    assert len(adapter.pull_reports().reports) == 1


def test_silent_number_gets_no_report(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    adapter.send(["+8613800000000"], TEXT)
    time.sleep(0.1)
    assert adapter.pull_reports().reports == []


def test_pull_inbound_with_slash_in_content(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    adapter.send(["+8613800000001"], TEXT, SendOptions(reference="q1"))
    sim.inject_inbound("13800000001", "是/否 a/b", subcode="01")
    messages = adapter.pull_inbound().inbound
    assert len(messages) == 1
    msg = messages[0]
    assert msg.from_ == "+8613800000001" and msg.content == "是/否 a/b"
    assert msg.vendor_ref == "q1" and msg.raw["subcode"] == "01"
    assert msg.to == "01"  # Finding 10: the 子码 (extension) is kept
    assert adapter.pull_inbound().inbound == []  # 150


def test_pull_inbound_with_a_line_break_in_content(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    sim.inject_inbound("13800000001", "第一行\n第二行", subcode="02")
    sim.inject_inbound("13800000002", "好", subcode="")
    batch = adapter.pull_inbound()
    assert [(m.from_, m.content, m.to) for m in batch.inbound] == [
        ("+8613800000001", "第一行\n第二行", "02"),
        ("+8613800000002", "好", ""),
    ]


def test_push_report_and_inbound(push_sim: SmsAdminSimulator, receiver: PushReceiver) -> None:
    adapter = SmsAdminAdapter(push_sim.settings())
    adapter.send(["+8613800000001"], TEXT, SendOptions(reference="push1"))
    wait_until(lambda: len(receiver.requests) == 1)
    raw = receiver.requests[0]
    assert raw.method == "POST"
    assert adapter.check_push_credentials(raw)
    batch = adapter.parse_push(raw)
    report = batch.reports[0]
    assert (report.to, report.vendor_ref, report.status, report.code) == (
        "+8613800000001",
        "push1",
        ReportStatus.DELIVERED,
        "DELIVRD",
    )
    push_sim.inject_inbound("13800000001", "退订，谢谢")
    wait_until(lambda: len(receiver.requests) == 2)
    inbound = adapter.parse_push(receiver.requests[1]).inbound[0]
    assert (
        inbound.from_ == "+8613800000001"
        and inbound.content == "退订，谢谢"
        and inbound.vendor_ref == "push1"
    )
    assert push_sim.pushes[-1]["status"] == 200 and push_sim.pushes[-1]["body"] == "OK"


@pytest.mark.parametrize("push_method", ["get", "post_query", "post_form"])
def test_pushes_by_query_string_or_form_body(receiver: PushReceiver, push_method: str) -> None:
    """Finding 5: the examples carry the fields in the URL (GB2312 percent-encoded); read from
    the raw query string, the Chinese text arrives whole."""
    sim = SmsAdminSimulator(
        uid="acme", password=PASSWORD, report_delay_s=0.01, push_url=receiver.url, push_method=push_method
    )
    with sim:
        adapter = SmsAdminAdapter(sim.settings())
        adapter.send(["+8613800000001"], TEXT, SendOptions(reference="push2"))
        sim.inject_inbound("13800000001", "退订，谢谢")
        wait_until(lambda: len(receiver.requests) == 2)
    report_push, inbound_push = sorted(
        receiver.requests, key=lambda r: "Class=mo" in r.raw_query + str(r.body)
    )
    expected_method = "GET" if push_method == "get" else "POST"
    assert (report_push.method, inbound_push.method) == (expected_method, expected_method)
    assert bool(inbound_push.body) is (push_method == "post_form")
    assert "%CD%CB%B6%A9" in inbound_push.raw_query + inbound_push.body.decode()  # 退订 in GB2312
    if push_method != "post_form":  # decoded as UTF-8 (API Gateway REST), the text is lost
        assert inbound_push.query["Message"] != "退订，谢谢"
    # the fields, in the order of the examples (§9: Class=mo&SmsName=…, §10: Class=rpt&SmsName=…)
    fields = [
        [pair.split("=", 1)[0] for pair in (r.raw_query or r.body.decode()).split("&")]
        for r in (report_push, inbound_push)
    ]
    assert fields == [
        ["Class", "SmsName", "Mobile", "LinkId", "Report", "ReportTime"],
        ["Class", "SmsName", "Mobile", "Message", "LinkId", "RevertTime"],
    ]
    (report,) = adapter.parse_push(report_push).reports
    assert (report.vendor_ref, report.status) == ("push2", ReportStatus.DELIVERED)
    assert adapter.check_push_credentials(inbound_push)
    (message,) = adapter.parse_push(inbound_push).inbound
    assert (message.from_, message.content) == ("+8613800000001", "退订，谢谢")


def test_push_not_retried_on_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{s.getsockname()[1]}/cb"
    sim = SmsAdminSimulator(push_url=dead_url, report_delay_s=0.01)
    sim.start()
    try:
        SmsAdminAdapter(sim.settings()).send(["+8613800000001"], TEXT)
        wait_until(lambda: len(sim.pushes) == 1)
        time.sleep(0.2)
        assert len(sim.pushes) == 1 and sim.pushes[0]["status"] is None
        assert not sim.pending_reports  # lost, as the document says
    finally:
        sim.stop()


def test_push_for_other_account_fails_credentials(adapter: SmsAdminAdapter) -> None:
    raw = RawRequest("POST", body=b"Class=rpt&SmsName=other&Mobile=13800000001&LinkId=x1&Report=DELIVRD")
    assert adapter.check_push_credentials(raw) is False


# --------------------------------------------------------------------------- simulator refusals


def post(sim: SmsAdminSimulator, route: str, params: dict[str, str], raw: bytes | None = None) -> str:
    body = (
        raw
        if raw is not None
        else "&".join(f"{k}={quote_plus(v.encode('gb2312'))}" for k, v in params.items()).encode()
    )
    response = requests.post(f"{sim.base_url}/{route}/", data=body, timeout=5)
    return response.content.decode("gb2312")


def test_wrong_password_code_1(sim: SmsAdminSimulator) -> None:
    adapter = SmsAdminAdapter({**sim.settings(), "password": "wrong"})
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800000001"], TEXT)
    assert err.value.code == "1" and err.value.outcome == Outcome.CONFIGURATION
    assert err.value.description == "wrong user id or password (用户名或密码错误!)"
    for call in (
        adapter.balance,
        adapter.pull_reports,
        adapter.pull_inbound,
        lambda: adapter.sensitive_words("x"),
    ):
        with pytest.raises(VendorRequestError) as err:
            call()
        assert err.value.code == "1"
    assert not sim.accepted


def test_plain_password_on_md5_route_refused(sim: SmsAdminSimulator) -> None:
    answer = post(sim, "post_send_md5", {"uid": "acme", "pwd": PASSWORD, "mobile": "13800000001", "msg": "x"})
    assert answer == "1 用户名或密码错误!"
    answer = post(sim, "post_send", {"uid": "acme", "pwd": PASSWORD, "mobile": "13800000001", "msg": "x"})
    assert answer == "0 发送成功!"


def test_too_many_numbers_code_3(sim: SmsAdminSimulator) -> None:
    mobiles = ";".join(f"138{i:08d}" for i in range(1001))
    answer = post(sim, "post_send_md5", {"uid": "acme", "pwd": PASSWORD_MD5, "mobile": mobiles, "msg": "x"})
    assert answer == "3 超过发送最大量 1000 条"
    get = requests.get(
        f"{sim.base_url}/get_send_md5/",
        params={
            "uid": "acme",
            "pwd": PASSWORD_MD5,
            "mobile": ";".join(f"138{i:08d}" for i in range(101)),
            "msg": "x",
        },
        timeout=5,
    )
    assert get.content.decode("gb2312") == "3 超过发送最大量 100 条"
    assert not sim.accepted


def test_empty_content_code_5(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800000001"], "")
    assert err.value.code == "5" and err.value.outcome == Outcome.PERMANENT


def test_refused_number_code_5(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800004220", "+8613800000001"], TEXT)
    assert err.value.code == "5"
    assert not sim.accepted


def test_too_long_code_7(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    sim.max_chars = 10
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800000001"], "一二三四五六七八九十十")
    assert err.value.code == "7" and "超过 10 个字" in err.value.description


def test_balance_frozen_not_allowed_codes(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    sim.balance = 0.01
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800000001"], TEXT)
    assert err.value.code == "2"
    sim.balance, sim.allowed = 100.0, False
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800000001"], TEXT)
    assert err.value.code == "4"
    sim.frozen = True
    with pytest.raises(VendorRequestError) as err:
        adapter.send(["+8613800000001"], TEXT)
    assert err.value.code == "8"
    assert not sim.accepted


def test_body_not_gb2312_refused(sim: SmsAdminSimulator) -> None:
    utf8 = "uid=acme&pwd=123456&mobile=13800000001&msg=" + quote_plus("中文".encode())
    assert post(sim, "post_send", {}, raw=utf8.encode()) == "5 手机号或发送信息不能为空!"
    bad_uid = "uid=" + quote_plus("用户".encode()) + "&pwd=123456&mobile=13800000001&msg=x"
    assert post(sim, "post_send", {}, raw=bad_uid.encode()) == "1 用户名或密码错误!"
    assert not sim.accepted


def test_duplicate_and_malformed_numbers_filtered(sim: SmsAdminSimulator) -> None:
    answer = post(
        sim,
        "post_send",
        {"uid": "acme", "pwd": PASSWORD, "mobile": "13800000001;13800000001;12345", "msg": "x"},
    )
    assert answer == "0 发送成功!"
    assert [a.mobile for a in sim.accepted] == ["13800000001"]
    answer = post(sim, "post_send", {"uid": "acme", "pwd": PASSWORD, "mobile": "12345", "msg": "x"})
    assert answer == "5 手机号或发送信息不能为空!"


def test_urldecode_routes(sim: SmsAdminSimulator) -> None:
    msg = quote_plus("第一行\n第二行".encode("gb2312"))
    answer = post(
        sim, "post_send_urldecode", {"uid": "acme", "pwd": PASSWORD, "mobile": "13800000001", "msg": msg}
    )
    assert answer == "0 发送成功!"
    assert sim.accepted[0].content == "第一行\n第二行"


def test_ddt_document_template(sim: SmsAdminSimulator) -> None:
    """Finding 10: §4's example verbatim (template, params with their spaces, rendered texts).
    Its texts put a group's 2nd field where {value1} stands and its 3rd where {value2} stands:
    field N fills {valueN}. They drop the template's leading "{value0}, ", which under this
    reading is the mobile: the example's one inconsistency (see the adapter's docstring)."""
    template = quote_plus(
        "{value0}, 您本次的注册验证码 {value1}, 在 {value2} 分钟内输入有效。 【签名内容】".encode("gb2312")
    )
    params = quote_plus(b"13712345678, 123456, 10;13745678910, 4567, 20;13714782356, 78912, 30")
    answer = post(
        sim, "post_send_ddt", {"uid": "acme", "pwd": PASSWORD_MD5, "msg": template, "params": params}
    )
    assert answer == "0 发送成功!"
    rendered = {  # the document's three texts, verbatim
        "13712345678": "您本次的注册验证码 123456, 在 10 分钟内输入有效。 【签名内容】",
        "13745678910": "您本次的注册验证码 4567, 在 20 分钟内输入有效。 【签名内容】",
        "13714782356": "您本次的注册验证码 78912, 在 30 分钟内输入有效。 【签名内容】",
    }
    for mobile, text in rendered.items():
        assert sim.accepted_for(mobile)[0].content == f"{mobile}, {text}"
    short = quote_plus(b"13712345679,1")  # too few fields: filtered, nothing left -> 5
    answer = post(
        sim, "post_send_ddt", {"uid": "acme", "pwd": PASSWORD_MD5, "msg": template, "params": short}
    )
    assert answer == "5 手机号或发送信息不能为空!"


def test_dedupe_linkid_option() -> None:
    sim = SmsAdminSimulator(dedupe_linkid=True)
    sim.start()
    try:
        adapter = SmsAdminAdapter(sim.settings())
        adapter.send(["+8613800000001"], TEXT, SendOptions(reference="once"))
        adapter.send(["+8613800000001"], TEXT, SendOptions(reference="once"))
        assert len(sim.accepted) == 1 and sim.reused_linkids == ["once"]
    finally:
        sim.stop()


# --------------------------------------------------------------------------- transport errors


def test_connect_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    adapter = SmsAdminAdapter({"base_url": f"http://127.0.0.1:{port}/api", "uid": "a", "password": "b"})
    with pytest.raises(VendorConnectError) as err:
        adapter.send(["+8613800000001"], TEXT)
    assert err.value.may_have_reached is False


def test_timeout_after_accept(sim: SmsAdminSimulator) -> None:
    adapter = SmsAdminAdapter({**sim.settings(), "timeout_s": 0.3})
    sim.inject_fault("timeout_after_accept")
    with pytest.raises(VendorTimeout) as err:
        adapter.send(["+8613800000001"], TEXT)
    assert err.value.may_have_reached is True
    wait_until(lambda: len(sim.accepted_for("13800000001")) == 1, what="the vendor to keep the message")


def test_slow_answer_number(sim: SmsAdminSimulator) -> None:
    adapter = SmsAdminAdapter({**sim.settings(), "timeout_s": 0.3})
    with pytest.raises(VendorTimeout):
        adapter.send(["+8613800005040"], TEXT)
    assert len(sim.accepted_for("13800005040")) == 1


def test_http500(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    sim.inject_fault("http500")
    with pytest.raises(VendorHTTPError) as err:
        adapter.send(["+8613800000001"], TEXT)
    assert err.value.status_code == 500 and err.value.outcome == Outcome.TRANSIENT


@pytest.mark.parametrize("kind", ["html", "empty", "malformed"])
def test_unreadable_send_answer(sim: SmsAdminSimulator, adapter: SmsAdminAdapter, kind: str) -> None:
    sim.inject_fault(kind)
    with pytest.raises(VendorParseError) as err:
        adapter.send(["+8613800000001"], TEXT)
    assert err.value.may_have_reached is True


def test_unreadable_pull_and_balance(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    for call in (
        adapter.balance,
        adapter.pull_reports,
        adapter.pull_inbound,
        lambda: adapter.sensitive_words("x"),
    ):
        sim.inject_fault("html")
        with pytest.raises(VendorParseError):
            call()


def test_report_times_are_china_time(sim: SmsAdminSimulator, adapter: SmsAdminAdapter) -> None:
    adapter.send(["+8613800000001"], TEXT)
    wait_until(lambda: len(sim.pending_reports) == 1)
    report = adapter.pull_reports().reports[0]
    assert report.occurred_at is not None
    assert abs((report.occurred_at - dt.datetime.now(CHINA_TZ)).total_seconds()) < 5


def test_personalised_chunks_by_max_batch(sim: SmsAdminSimulator) -> None:
    adapter = SmsAdminAdapter({**sim.settings(), "max_batch": 2, "send_method": "get"})
    messages = [(f"+86138{i:08d}", f"code {i}") for i in range(1, 6)]
    results = adapter.send_personalised(messages, SendOptions(reference="pp"))
    assert [c["route"] for c in sim.calls] == ["post_send_ddt"] * 3
    assert len({r.vendor_ref for r in results}) == 3 and all(r.outcome == Outcome.OK for r in results)
    assert sim.accepted_for("13800000005")[0].content == "code 5"
