"""Callback receivers, one per vendor: who may push, what a push can and cannot change, and
what the vendor is answered. Pushes are the vendors' own formats (events/callback_*.json)
handed to the real handlers on the moto harness."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from urllib.parse import quote_from_bytes, urlencode

import pytest
from smsrelay.deps import Deps
from smsrelay.service.callbacks import MAX_BODY_BYTES

from tests.helpers import (
    ACKS,
    callback_event,
    cold_start,
    gb2312_form,
    load,
    scan_all,
    with_body,
    with_credentials,
    with_token,
)

from .harness import VENDORS, Harness

NUMBERS = {
    "sms57": "+8613800000001",
    "kxt3": "+8613800000011",
    "smsadmin": "+8613800000021",
    "intl": "+447911123456",
    "santo": "+6591234567",
}
REPORT_TIME = "2026-11-25 18:15:30"


# --------------------------------------------------------------------------- building pushes


def domestic(number: str) -> str:
    return number[3:] if number.startswith("+86") else number.lstrip("+")


def report_event(
    env: Harness, vendor: str, vendor_ref: str, to: str, *, delivered: bool = True, token: str | None = None
) -> dict:
    """A push carrying one delivery report for (vendor_ref, to), in the vendor's own format."""
    event = with_token(load(f"callback_{vendor}.json"), env.tokens[vendor] if token is None else token)
    number = domestic(to)
    if vendor == "sms57":
        record = {
            "flag": 1,
            "mid": vendor_ref,
            "spid": env.simulators["sms57"].account,
            "accessCode": "10690",
            "mobile": number,
            "stat": "DELIVRD" if delivered else "UNDELIV",
            "time": REPORT_TIME,
        }
        event = with_body(event, json.dumps([record]).encode())
    elif vendor == "kxt3":
        item = {
            "token": int(vendor_ref) if vendor_ref.isdigit() else vendor_ref,
            "mobile": number,
            "resultCode": "0" if delivered else "2:46",
            "success": delivered,
        }
        fields = {"uid": "abc", "pwd": "123", "type": "report", "jsonData": json.dumps([item])}
        event = with_body(event, urlencode(fields).encode())
    elif vendor == "smsadmin":
        fields = {
            "Class": "rpt",
            "SmsName": "ID",
            "Mobile": number,
            "LinkId": vendor_ref,
            "Report": "DELIVRD" if delivered else "UNDELIV",
            "ReportTime": REPORT_TIME,
        }
        event = with_body(event, gb2312_form(fields))
    elif vendor == "intl":
        record = {
            "desc": "" if delivered else "absent subscriber",
            "errorCode": "0" if delivered else "16",
            "mobile": number,
            "msgId": vendor_ref,
            "status": 0 if delivered else 2,
            "timestamp": "20261125101530",
        }
        event = with_body(event, json.dumps(record).encode())
    else:
        text = f"{vendor_ref}|0|DELIVRD||" if delivered else f"{vendor_ref}|400|UNDELIV||"
        query = {
            "command": "RT_REQUEST",
            "msgid": vendor_ref,
            "da": number,
            "dc": "15",
            "sm": text.encode("gbk").hex(),
            "rsm": text,
        }
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    return with_credentials(env, vendor, event)


def from_ip(event: dict, source_ip: str) -> dict:
    event = copy.deepcopy(event)
    event["requestContext"]["identity"]["sourceIp"] = source_ip
    event["headers"]["X-Forwarded-For"] = source_ip
    return event


def push(env: Harness, vendor: str, event: dict) -> dict:
    return env.invoke(f"callback_{vendor}", event)


def submitted(env: Harness, vendor: str) -> dict:
    """One message sent through `vendor` and recorded as submitted (no push: the test pushes)."""
    answer = env.send(
        {"recipients": [NUMBERS[vendor]], "content": "【Acme】Your code is 4711", "vendor": vendor}
    )
    env.run_all()
    view = env.message(answer["message_ids"][0])
    assert view["status"] == "submitted" and view["vendor_ref"], view
    return view


def status_events(env: Harness, message_id: str) -> list[tuple[str, str | None]]:
    return [
        (e["detail"]["status"], e["detail"]["previous_status"])
        for e in env.events()
        if e["detail-type"] == "SMS Status Changed" and e["detail"]["message_id"] == message_id
    ]


def assert_ack(answer: dict, vendor: str) -> None:
    body, content_type = ACKS[vendor]
    assert (answer["statusCode"], answer["body"], answer["headers"]["Content-Type"]) == (
        200,
        body,
        content_type,
    )


class Snapshot:
    """The whole table and the events published so far, to show that a push changed nothing."""

    def __init__(self, env: Harness):
        self.env = env
        self.items = scan_all(env)
        self.events = len(env.events())

    def assert_unchanged(self) -> None:
        assert scan_all(self.env) == self.items
        assert len(self.env.events()) == self.events


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every line our code logs (JSON, as Powertools writes it), at DEBUG level."""
    from smsrelay.observability import logger

    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if not record.name.startswith("smsrelay.simulators"):
                lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(logger.registered_formatter)
    target = logging.getLogger("smsrelay")
    level = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


# --------------------------------------------------------------------------- who may push


@pytest.mark.parametrize("vendor", VENDORS)
def test_wrong_token_is_refused_and_stores_nothing(env: Harness, vendor: str) -> None:
    view = submitted(env, vendor)
    before = Snapshot(env)
    good = env.tokens[vendor]
    for token in ("wrong", good[:-1] + ("x" if good[-1] != "x" else "y"), good + "x", ""):
        answer = push(env, vendor, report_event(env, vendor, view["vendor_ref"], view["to"], token=token))
        assert (answer["statusCode"], answer["body"]) == (403, "forbidden")
    # a report for a message we do not know yet is refused too, and not kept for later
    answer = push(env, vendor, report_event(env, vendor, "999", "+8613800009999", token="wrong"))
    assert answer["statusCode"] == 403
    before.assert_unchanged()
    assert env.message(view["message_id"])["status"] == "submitted"
    # the right token then works: the refusals were about the token, not the push
    assert_ack(push(env, vendor, report_event(env, vendor, view["vendor_ref"], view["to"])), vendor)
    assert env.message(view["message_id"])["status"] == "delivered"


WRONG_CREDENTIALS = [
    ("kxt3", {"uid": "someone-else"}),
    ("kxt3", {"pwd": "guess"}),
    ("kxt3", {"uid": "", "pwd": ""}),
    ("intl", {"app_key": "10003"}),
    ("intl", {"app_secret": hashlib.md5(b"guess").hexdigest().upper()}),
    ("intl", {"app_key": "", "app_secret": ""}),
    ("smsadmin", {"uid": "another-account"}),
]


def test_wrong_vendor_credentials_are_refused_and_store_nothing(env: Harness) -> None:
    views = {vendor: submitted(env, vendor) for vendor in ("kxt3", "intl", "smsadmin")}
    before = Snapshot(env)
    for vendor, creds in WRONG_CREDENTIALS:
        view = views[vendor]
        event = report_event(env, vendor, view["vendor_ref"], view["to"])
        answer = push(env, vendor, with_credentials(env, vendor, event, **creds))
        assert (answer["statusCode"], answer["body"]) == (403, "forbidden"), (vendor, creds)
    before.assert_unchanged()


def test_allowed_ips_refuse_other_sources(env: Harness) -> None:
    env.write_vendor_settings({v: {"allowed_ips": ["198.51.100.0/24", "2001:db8::/32"]} for v in VENDORS})
    cold_start()
    views = {vendor: submitted(env, vendor) for vendor in VENDORS}
    before = Snapshot(env)
    for vendor, view in views.items():
        event = report_event(env, vendor, view["vendor_ref"], view["to"])
        for source in ("203.0.113.57", "198.51.101.1", "2001:db9::1", "", "not-an-ip"):
            answer = push(env, vendor, from_ip(event, source))
            assert answer["statusCode"] == 403, (vendor, source)
    before.assert_unchanged()
    for vendor, view in views.items():
        event = report_event(env, vendor, view["vendor_ref"], view["to"])
        assert_ack(push(env, vendor, from_ip(event, "198.51.100.7")), vendor)
        assert env.message(view["message_id"])["status"] == "delivered"


def test_body_over_the_limit_is_413_and_stores_nothing(env: Harness) -> None:
    views = {vendor: submitted(env, vendor) for vendor in VENDORS}
    before = Snapshot(env)
    for vendor, view in views.items():
        event = report_event(env, vendor, view["vendor_ref"], view["to"])
        event["httpMethod"] = "POST"
        answer = push(env, vendor, with_body(event, b"x" * (MAX_BODY_BYTES + 1)))
        assert answer["statusCode"] == 413, vendor
    before.assert_unchanged()


def test_a_big_push_under_the_limit_is_applied(env: Harness) -> None:
    """A busy gateway's array runs to hundreds of KB (4,000 sms57 reports ~ 600 KB): not refused."""
    view = submitted(env, "sms57")
    event = report_event(env, "sms57", view["vendor_ref"], view["to"])
    body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"].encode()
    big = body + b" " * (600 * 1024)  # JSON allows the whitespace; the size is what matters here
    assert_ack(push(env, "sms57", with_body(event, big)), "sms57")
    assert env.message(view["message_id"])["status"] == "delivered"


# --------------------------------------------------------------------------- garbage


UNPARSABLE = {
    "sms57": ("POST", b'[{"flag": 1, "mid": "4C36", "mobile": "13800138000", "stat": '),
    "kxt3": ("POST", b'type=report&jsonData=[{"token":7331,"mobile":"13800138000","resultCode":'),
    "smsadmin": ("POST", b"Class=rpt&Mobile=13800138000&Report=DELIVRD"),
    "intl": ("POST", b'{"mobile": "8613800138000", "msgId": "1", "status": '),
    "santo": ("POST", b"command=RT_REQUEST&msgid=1&da=8613800138000&dc=15"),
}


def test_unparsable_push_is_400_logged_without_the_number(env: Harness, logs: list[str]) -> None:
    before = Snapshot(env)
    for vendor, (method, body) in UNPARSABLE.items():
        logs.clear()
        event = with_token(load(f"callback_{vendor}.json"), env.tokens[vendor])
        event["httpMethod"] = method
        event["queryStringParameters"] = event["multiValueQueryStringParameters"] = None
        event = with_body(event, body)
        if vendor in ("kxt3", "smsadmin", "intl"):  # valid credentials, broken report
            event = with_credentials(env, vendor, event)
        answer = push(env, vendor, event)
        assert (answer["statusCode"], answer["body"]) == (400, "unparsable"), vendor
        refused = [json.loads(line) for line in logs if "could not be parsed" in line]
        assert len(refused) == 1 and refused[0]["raw_body"], logs
        assert (
            "8000" in refused[0]["raw_body"] and "*" in refused[0]["raw_body"]
        )  # masked, still correlatable
        for line in logs:
            assert "13800138000" not in line, line
            for secret in (env.simulators["kxt3"].push_pwd,) if vendor == "kxt3" else ():
                assert f"pwd={secret}" not in line, line
    before.assert_unchanged()


GARBAGE = [b"", b"\x00\xff\xfe garbage", b"{}", b"null", b"[1, 2", "上行内容".encode("gbk"), b"%%%=&&=="]


def gb2312_readable(data: bytes) -> bool:
    try:
        data.decode("gb2312")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("vendor", VENDORS)
def test_garbage_with_valid_credentials_is_400_never_5xx(env: Harness, vendor: str) -> None:
    before = Snapshot(env)
    sim = env.simulators[vendor]
    for garbage in GARBAGE:
        event = with_token(load(f"callback_{vendor}.json"), env.tokens[vendor])
        event["httpMethod"] = "POST"
        event["queryStringParameters"] = event["multiValueQueryStringParameters"] = None
        if vendor == "kxt3":  # credentials ride in the form: keep them, break the report
            fields = f"uid={sim.push_uid}&pwd={sim.push_pwd}&type=report&jsonData=".encode()
            event = with_body(event, fields + quote_from_bytes(garbage).encode())
        elif vendor == "smsadmin":
            fields = f"Class=rpt&SmsName={sim.uid}&LinkId=1&Report=DELIVRD&Mobile=".encode()
            event = with_body(event, fields + quote_from_bytes(garbage).encode())
        else:
            event = with_credentials(env, vendor, with_body(event, garbage))
        answer = push(env, vendor, event)
        if vendor == "smsadmin" and not gb2312_readable(garbage):
            # smsadmin's account (SmsName) is inside the body: a body it cannot read cannot show it is ours
            assert (answer["statusCode"], answer["body"]) == (403, "forbidden"), (garbage, answer)
        else:
            assert (answer["statusCode"], answer["body"]) == (400, "unparsable"), (garbage, answer)
    before.assert_unchanged()


# --------------------------------------------------------------------------- reports and messages


def test_report_before_its_message_is_applied_when_the_message_appears(env: Harness) -> None:
    from smsrelay.vendors.smsadmin import SmsAdminAdapter

    answer = env.send({"recipients": [NUMBERS["smsadmin"]], "content": "【Acme】hi", "vendor": "smsadmin"})
    (queued,) = env.sqs.receive_message(QueueUrl=env.queues["dispatch"], MaxNumberOfMessages=10)["Messages"]
    linkid = SmsAdminAdapter.linkid(json.loads(queued["Body"])["chunk_id"])
    # The vendor's report outruns our own write: it arrives before dispatch records the submit.
    assert_ack(push(env, "smsadmin", report_event(env, "smsadmin", linkid, NUMBERS["smsadmin"])), "smsadmin")
    message_id = answer["message_ids"][0]
    assert env.message(message_id)["status"] == "queued"
    kept = [i for i in scan_all(env) if i["pk"]["S"].startswith("E#")]
    assert [i["pk"]["S"] for i in kept] == [f"E#smsadmin#{linkid}#{NUMBERS['smsadmin']}"]
    env.run_all()
    view = env.message(message_id)
    assert view["status"] == "delivered" and view["vendor_ref"] == linkid
    assert [h["status"] for h in view["history"]] == ["queued", "submitted", "delivered"]
    assert [i for i in scan_all(env) if i["pk"]["S"].startswith("E#")] == []
    counts = env.request(answer["request_id"])["counts"]
    assert (counts["delivered"], counts["submitted"], counts["queued"]) == (1, 0, 0)
    assert status_events(env, message_id) == [("submitted", "queued"), ("delivered", "submitted")]


def unreadable_count(stdout: str) -> int:
    """The UnreadableRecords metric as the functions emit it (EMF lines on stdout)."""
    total = 0
    for line in stdout.splitlines():
        if '"UnreadableRecords"' in line:
            value = json.loads(line)["UnreadableRecords"]
            total += int(sum(value) if isinstance(value, list) else value)
    return total


def test_sms57_push_is_applied_record_by_record(
    env: Harness, logs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 1: a record without mid (and one that is not an object) costs itself only; the
    delivery report and the inbound message without mid (5.3: "可忽略") beside it are applied."""
    view = submitted(env, "sms57")
    good = {
        "flag": 1,
        "mid": view["vendor_ref"],
        "mobile": domestic(view["to"]),
        "stat": "DELIVRD",
        "time": REPORT_TIME,
    }
    no_mid = {"flag": 1, "mobile": "13800138000", "stat": "DELIVRD", "time": REPORT_TIME}
    reply = {
        "flag": 0,
        "mobile": "13800138001",
        "content": "好的",
        "accessCode": "10690",
        "time": REPORT_TIME,
    }
    event = with_body(load("callback_sms57.json"), json.dumps([no_mid, good, "x", reply]).encode())
    capsys.readouterr()
    assert_ack(push(env, "sms57", with_token(event, env.tokens["sms57"])), "sms57")
    assert env.message(view["message_id"])["status"] == "delivered"
    received = [e["detail"] for e in env.events() if e["detail-type"] == "SMS Received"]
    assert [(r["from"], r["content"]) for r in received] == [("+8613800138001", "好的")]
    assert unreadable_count(capsys.readouterr().out) == 2
    skipped = [json.loads(line) for line in logs if "unreadable record skipped" in line]
    assert len(skipped) == 2 and "13800138000" not in str(skipped) and "8000" in skipped[0]["raw_record"]


def test_kxt3_push_is_applied_item_by_item(env: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 1: kxt3 has no pull; an unreadable item must not cost the reports beside it."""
    view = submitted(env, "kxt3")
    items = [
        {"token": view["vendor_ref"], "mobile": domestic(view["to"]), "resultCode": "0", "success": True},
        {"mobile": "13500000000", "resultCode": "0", "success": True},  # no token
    ]
    fields = {"uid": "abc", "pwd": "123", "type": "report", "jsonData": json.dumps(items)}
    event = with_credentials(
        env,
        "kxt3",
        with_body(with_token(load("callback_kxt3.json"), env.tokens["kxt3"]), urlencode(fields).encode()),
    )
    capsys.readouterr()
    assert_ack(push(env, "kxt3", event), "kxt3")
    assert env.message(view["message_id"])["status"] == "delivered"
    assert unreadable_count(capsys.readouterr().out) == 1


@pytest.mark.parametrize("vendor", ["sms57", "kxt3"])
def test_simulator_pushes_with_a_malformed_record_are_still_applied(env: Harness, vendor: str) -> None:
    sim = env.simulators[vendor]
    sim.malformed_push_records = True
    try:
        env.start_callback_server()
        number = {"sms57": "+8613800000051", "kxt3": "+8613800000052"}[vendor]
        answer = env.send({"recipients": [number], "content": "【Acme】hi", "vendor": vendor})
        message = answer["message_ids"][0]
        env.run_all(settle=lambda: env.message(message)["status"] == "delivered")
        assert all(p["body"] in ("OK", "0") for p in sim.pushes)
    finally:
        sim.malformed_push_records = False


@pytest.mark.parametrize("method", ["get", "post_query", "post_form"])
def test_smsadmin_pushes_by_query_string_keep_their_gb2312_text(env: Harness, method: str) -> None:
    """Finding 5: the document's pushes carry every field in the URL, GB2312 percent-encoded. On
    an HTTP API route (payload 2.0: rawQueryString) the text arrives whole, by GET or POST."""
    sim = env.simulators["smsadmin"]
    sim.push_method = method
    try:
        env.start_callback_server(payload="2.0")
        answer = env.send({"recipients": ["+8613800000061"], "content": "【Acme】hi", "vendor": "smsadmin"})
        message = answer["message_ids"][0]
        env.run_all(settle=lambda: env.message(message)["status"] == "delivered")
        sim.inject_inbound("13800000062", "退订，谢谢")

        def received() -> list[dict]:
            return [e["detail"] for e in env.events() if e["detail-type"] == "SMS Received"]

        env.run_all(settle=lambda: bool(received()))
        assert [(r["from"], r["content"]) for r in received()] == [("+8613800000062", "退订，谢谢")]
        assert [p["status"] for p in sim.pushes] == [200, 200]
    finally:
        sim.push_method = "post_form"


def test_smsadmin_report_by_get_on_a_rest_route(env: Harness) -> None:
    """On a REST API route (payload 1.0) the query comes decoded: a report (ASCII) reads as well."""
    view = submitted(env, "smsadmin")
    query = {
        "Class": "rpt",
        "SmsName": env.simulators["smsadmin"].uid,
        "Mobile": domestic(view["to"]),
        "LinkId": view["vendor_ref"],
        "Report": "DELIVRD",
        "ReportTime": REPORT_TIME,
    }
    event = with_token(load("callback_smsadmin.json"), env.tokens["smsadmin"])
    event = with_body(event, b"") | {"httpMethod": "GET", "queryStringParameters": query}
    assert_ack(push(env, "smsadmin", event), "smsadmin")
    assert env.message(view["message_id"])["status"] == "delivered"


def test_raw_request_reads_rest_and_http_api_events() -> None:
    """REST API (1.0) events carry the query decoded; HTTP API (2.0) events the raw query too."""
    from smsrelay.entry import raw_request

    from .harness import api_event, http_api_event

    raw = "Class=mo&Message=%CD%CB%B6%A9&Mobile=13800000001"
    rest = raw_request(api_event("GET", "/callbacks/smsadmin/t", query={"Class": "mo"}, source_ip="1.2.3.4"))
    assert (rest.method, rest.query, rest.raw_query, rest.source_ip) == (
        "GET",
        {"Class": "mo"},
        "",
        "1.2.3.4",
    )
    http = raw_request(http_api_event("GET", "/callbacks/smsadmin/t", raw_query=raw, source_ip="5.6.7.8"))
    assert (http.method, http.raw_query, http.source_ip) == ("GET", raw, "5.6.7.8")
    assert http.query["Class"] == "mo" and http.query["Message"] != "退订"  # decoded as UTF-8: garbled
    posted = raw_request(http_api_event("POST", "/callbacks/sms57/t", body=b"[]"))
    assert (posted.method, posted.body, posted.raw_query) == ("POST", b"[]", "")


def test_an_undelivered_report_without_desc_does_not_keep_the_send_description(env: Harness) -> None:
    """Finding 10: intl's examples leave `desc` empty; the message's description must follow the
    report, not stay the send answer's "OK"."""
    view = submitted(env, "intl")
    assert view["description"] == "OK"
    record = {
        "desc": "",
        "errorCode": "16",
        "mobile": view["to"].lstrip("+"),
        "msgId": view["vendor_ref"],
        "status": 2,
        "timestamp": "20261125101530",
    }
    event = with_body(load("callback_intl.json"), json.dumps(record).encode())
    assert_ack(
        push(env, "intl", with_credentials(env, "intl", with_token(event, env.tokens["intl"]))), "intl"
    )
    after = env.message(view["message_id"])
    assert after["status"] == "undelivered" and after["code"] == "16"
    assert after["description"] == "undelivered (errorCode 16)"


@pytest.mark.slow
def test_a_push_of_many_reports_is_read_moved_and_published_in_batches(env: Harness) -> None:
    """150 reports in one sms57 push (one of them twice, one for a reference nobody sent): the
    references are read 100 at a time, the messages moved 99 to a transaction, announced 10 to a call."""
    from smsrelay.aws import client
    from smsrelay.dal import message_id

    numbers = [f"+86139{i:08d}" for i in range(1, 151)]
    answer = env.send({"recipients": numbers, "content": "【Acme】Your code is 4711", "vendor": "sms57"})
    env.run_all()
    ids = [message_id(answer["request_id"], i) for i in range(150)]  # past 100 the answer lists none
    views = [env.message(m) for m in ids]
    assert {v["status"] for v in views} == {"submitted"}
    records = [
        {
            "flag": 1,
            "mid": v["vendor_ref"],
            "spid": env.simulators["sms57"].account,
            "accessCode": "10690",
            "mobile": domestic(v["to"]),
            "stat": "DELIVRD",
            "time": REPORT_TIME,
        }
        for v in views
    ]
    stranger = records[0] | {"mid": "999999999", "mobile": "13900009999"}
    event = with_credentials(
        env,
        "sms57",
        with_body(
            with_token(load("callback_sms57.json"), env.tokens["sms57"]),
            json.dumps([*records, records[7], stranger]).encode(),
        ),
    )
    calls: list[str] = []

    def count(model: object, **_: object) -> None:
        calls.append(model.name)  # type: ignore[attr-defined]

    for service in ("dynamodb", "events"):
        client(service).meta.events.register(f"before-call.{service}", count)
    before = len(env.events())
    try:
        assert_ack(push(env, "sms57", event), "sms57")
    finally:
        for service in ("dynamodb", "events"):
            client(service).meta.events.unregister(f"before-call.{service}", count)

    assert {env.message(m)["status"] for m in ids} == {"delivered"}
    assert env.request(answer["request_id"])["counts"]["delivered"] == 150
    assert len(env.events()) - before == 150  # the repeat moved nothing and announced nothing
    assert [i["pk"]["S"] for i in scan_all(env) if i["pk"]["S"].startswith("E#")] == [
        "E#sms57#999999999#+8613900009999"  # kept for a message that may yet appear
    ]
    # 150 references: 2 BatchGetItem (the messages, taken as submitted, are not read); 150 moves:
    # 2 transactions; the stranger: one look among the unknown messages, its keeping, one more look
    assert sorted(calls) == sorted(
        ["BatchGetItem"] * 2
        + ["TransactWriteItems"] * 2
        + ["PutEvents"] * 15
        + ["Query", "PutItem", "BatchGetItem"]
    )


@pytest.mark.parametrize("vendor", VENDORS)
def test_same_report_three_times_moves_once_and_publishes_once(env: Harness, vendor: str) -> None:
    view = submitted(env, vendor)
    event = report_event(env, vendor, view["vendor_ref"], view["to"])
    for _ in range(3):
        assert_ack(push(env, vendor, event), vendor)  # every repeat is acknowledged, exactly
    after = env.message(view["message_id"])
    assert after["status"] == "delivered"
    assert [h["status"] for h in after["history"]] == ["queued", "submitted", "delivered"]
    assert status_events(env, view["message_id"]) == [("submitted", "queued"), ("delivered", "submitted")]
    counts = env.request(view["request_id"])["counts"]
    assert (counts["delivered"], counts["submitted"]) == (1, 0)


@pytest.mark.parametrize("vendor", VENDORS)
def test_reports_out_of_order_never_change_a_final_status(env: Harness, vendor: str) -> None:
    view = submitted(env, vendor)
    undelivered = report_event(env, vendor, view["vendor_ref"], view["to"], delivered=False)
    delivered = report_event(env, vendor, view["vendor_ref"], view["to"], delivered=True)
    assert_ack(push(env, vendor, undelivered), vendor)
    settled = env.message(view["message_id"])
    assert settled["status"] == "undelivered" and settled["code"]
    assert_ack(push(env, vendor, delivered), vendor)  # late and contradicting: acknowledged, ignored
    assert_ack(push(env, vendor, undelivered), vendor)
    assert env.message(view["message_id"]) == settled
    assert status_events(env, view["message_id"]) == [("submitted", "queued"), ("undelivered", "submitted")]
    counts = env.request(view["request_id"])["counts"]
    assert (counts["undelivered"], counts["delivered"], counts["submitted"]) == (1, 0, 0)


def test_late_submitted_write_after_delivery_changes_nothing(env: Harness) -> None:
    from smsrelay.dal import Transition
    from smsrelay.models import Status

    view = submitted(env, "sms57")
    assert_ack(push(env, "sms57", report_event(env, "sms57", view["vendor_ref"], view["to"])), "sms57")
    delivered = env.message(view["message_id"])
    request_id, index = view["message_id"].rsplit("-", 1)
    for previous in (Status.QUEUED, Status.UNKNOWN):  # a dispatch or sweeper write that lost the race
        late = Transition(
            request_id=request_id,
            index=int(index),
            previous=previous,
            status=Status.SUBMITTED,
            at=dt.datetime.now(dt.UTC),
            to=view["to"],
            vendor="sms57",
            vendor_ref="LATE",
        )
        applied, conflicts = Deps.from_env().store.apply_transitions([late])
        assert (applied, conflicts) == ([], [late])
    assert env.message(view["message_id"]) == delivered
    counts = env.request(request_id)["counts"]
    assert (counts["delivered"], counts["submitted"], counts["queued"]) == (1, 0, 0)


# --------------------------------------------------------------------------- store down


@pytest.mark.parametrize("vendor", VENDORS)
def test_store_down_answers_503_so_the_vendor_retries(
    env: Harness, vendor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smsrelay import dal

    view = submitted(env, vendor)
    event = report_event(env, vendor, view["vendor_ref"], view["to"])

    def down(table: dal.Table, operation: str, **kwargs: object) -> None:
        raise dal.StoreError(f"DynamoDB {operation} failed: ServiceUnavailable")

    with monkeypatch.context() as patch:
        patch.setattr(dal.Table, "call", down)
        answer = push(env, vendor, event)
    assert answer["statusCode"] == 503 and answer["body"] != ACKS[vendor][0]
    assert env.message(view["message_id"])["status"] == "submitted"
    # the vendor's retry, once the store is back, settles it
    assert_ack(push(env, vendor, event), vendor)
    assert env.message(view["message_id"])["status"] == "delivered"


def test_event_bus_down_answers_503(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from smsrelay import events

    view = submitted(env, "sms57")

    def refuse(batch: list[dict]) -> None:
        raise events.EventPublishError("1 events could not be published")

    monkeypatch.setattr(events, "_put", refuse)
    answer = push(env, "sms57", report_event(env, "sms57", view["vendor_ref"], view["to"]))
    assert answer["statusCode"] == 503


# --------------------------------------------------------------------------- logs


SECRET_FIELDS = {
    "sms57": ("password",),
    "kxt3": ("password", "push_pwd"),
    "smsadmin": ("password",),
    "intl": ("app_secret",),
    "santo": ("cppwd",),
}
FLOW_NUMBERS = {
    "sms57": ["+8613811112201", "+8613811114040"],
    "kxt3": ["+8613822223301", "+8613822224040"],
    "smsadmin": ["+8613833334401", "+8613833344040"],
    "intl": ["+447911555501", "+447911554040"],
    "santo": ["+6591235501", "+6591234040"],
}


def test_no_full_number_and_no_secret_in_any_log_line(
    env: Harness, logs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # distinctive secrets (the simulators' defaults are the documents' short examples)
    secrets: list[str] = list(env.tokens.values())
    for vendor, fields in SECRET_FIELDS.items():
        for name in fields:
            value = f"S3cr3t-{vendor}-{name}-7f1e"
            monkeypatch.setattr(env.simulators[vendor], name, value)
            secrets += [
                value,
                hashlib.md5(value.encode()).hexdigest(),
                hashlib.md5(value.encode()).hexdigest().upper(),
            ]
    env.write_vendor_settings()
    cold_start()
    env.start_callback_server()
    answers = {
        vendor: env.send(
            {"recipients": [*numbers, "12345"], "content": "【Acme】code 4711", "vendor": vendor}
        )
        for vendor, numbers in FLOW_NUMBERS.items()
    }
    everything = [m for a in answers.values() for m in a["message_ids"]]

    def final() -> bool:
        return all(env.message(m)["status"] in ("delivered", "undelivered") for m in everything)

    env.run_all(settle=final)
    env.poll()
    # refused and unparsable pushes log too
    push(env, "sms57", report_event(env, "sms57", "1", FLOW_NUMBERS["sms57"][0], token="wrong"))
    push(env, "intl", with_body(callback_event(env, "intl"), b'{"mobile": "447911555501", "msgId": '))
    push(env, "kxt3", with_credentials(env, "kxt3", callback_event(env, "kxt3"), pwd="guess"))
    broken = with_body(
        callback_event(env, "kxt3"), b"type=report&jsonData=%5B%7B%22mobile%22%3A%2213822223301"
    )
    assert push(env, "kxt3", with_credentials(env, "kxt3", broken))["statusCode"] == 400  # logs its body
    assert len(logs) > 20
    numbers = [n for ns in FLOW_NUMBERS.values() for n in ns]
    forms = {n for n in numbers} | {n.lstrip("+") for n in numbers} | {domestic(n) for n in numbers}
    for line in logs:
        for form in forms:
            assert form not in line, f"full number {form} in log line: {line}"
        for secret in secrets:
            assert secret not in line, f"secret in log line: {line}"
