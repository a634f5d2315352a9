"""The local stack on the project's own template.yaml and handlers, with the five vendor simulators."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cfn_flip
import pytest
import requests
from smsrelay_local.stack import LocalStack, Template, default_template
from smsrelay_local.stack.language_extensions import expand

pytestmark = pytest.mark.slow  # a local stack of the real template

TEMPLATE = default_template()
VENDORS: list[str] = Template(TEMPLATE).ref("Vendors")  # the template's one list

# The lead's contract: what the template must declare (method, path, function). Every vendor's
# receiver takes POST and GET (santo and smsadmin push by GET; the others' receivers refuse it).
CONTRACT_ROUTES = {
    ("POST", "/messages", "SendFunction"),
    ("GET", "/messages/{message_id}", "StatusApiFunction"),
    ("GET", "/requests/{request_id}", "StatusApiFunction"),
    ("GET", "/requests/{request_id}/rejections", "StatusApiFunction"),
    ("GET", "/suppressions", "StatusApiFunction"),
    ("PUT", "/suppressions/{number}", "StatusApiFunction"),
    ("DELETE", "/suppressions/{number}", "StatusApiFunction"),
    *(
        (method, f"/callbacks/{vendor}/{{token}}", f"Callback{vendor}Function")
        for vendor in VENDORS
        for method in ("POST", "GET")
    ),
}


def _raw_events(kind: str) -> list[tuple[str, dict]]:
    """(function, event properties) for every event of a type, read from the YAML (its loops expanded)."""
    raw = expand(cfn_flip.load_yaml(TEMPLATE.read_text(encoding="utf-8")), {"Vendors": VENDORS})
    found = []
    for lid, res in raw["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            for event in (res["Properties"].get("Events") or {}).values():
                if event["Type"] == kind:
                    found.append((lid, event["Properties"]))
    return found


def _handlers_missing() -> list[str]:
    t = Template(TEMPLATE)
    return [str(s.code_dir / "app.py") for s in t.functions() if not (s.code_dir / "app.py").is_file()]


def test_routes_mappings_schedules_come_from_the_template() -> None:
    specs = Template(TEMPLATE).functions()
    routes = {(r.method, r.path, r.function_id) for s in specs for r in s.routes}
    events = _raw_events("Api") + _raw_events("HttpApi")
    assert routes == {(p["Method"].upper(), p["Path"], lid) for lid, p in events}
    assert routes == CONTRACT_ROUTES
    iam = {(r.method, r.path) for s in specs for r in s.routes if r.iam_auth}
    assert iam == {
        ("POST", "/messages"),
        ("GET", "/messages/{message_id}"),
        ("GET", "/requests/{request_id}"),
        ("GET", "/requests/{request_id}/rejections"),
        ("GET", "/suppressions"),
        ("PUT", "/suppressions/{number}"),
        ("DELETE", "/suppressions/{number}"),
    }
    mappings = {(m.function_id, m.batch_size, m.report_failures) for s in specs for m in s.sqs}
    assert mappings == {(lid, p.get("BatchSize", 10), True) for lid, p in _raw_events("SQS")}
    assert {
        ("SendFunction", 10, True),
        ("DispatchFunction", 5, True),
        ("DispatchFunction", 1, True),
    } <= mappings
    schedules = {s.function_id for spec in specs for s in spec.schedules}
    assert schedules == {lid for lid, _ in _raw_events("ScheduleV2") + _raw_events("Schedule")}
    assert "PollFunction" in schedules
    env = specs[0].env
    for name in (
        "TABLE_NAME",
        "DISPATCH_QUEUE_URL",
        "SEND_QUEUE_URL",
        "EVENT_BUS_NAME",
        "VENDOR_SECRET_PREFIX",
    ):
        assert env[name], name
    # one code path for every receiver; each knows its vendor from its own configuration
    callbacks = {s.logical_id: s for s in specs if s.logical_id.startswith("Callback")}
    assert {s.code_dir.name for s in callbacks.values()} == {"callback"}
    assert {lid: s.env["CALLBACK_VENDOR"] for lid, s in callbacks.items()} == {
        f"Callback{v}Function": v for v in VENDORS
    }


def test_every_vendor_of_the_template_is_a_package_module_with_a_simulator() -> None:
    from smsrelay.vendors import VENDOR_IDS
    from smsrelay_local.simulators import SIMULATED

    assert sorted(VENDORS) == list(VENDOR_IDS) == sorted(SIMULATED)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    missing = _handlers_missing()
    if missing:
        pytest.skip(f"handlers not written yet: {', '.join(missing)}")
    quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    with LocalStack(template=TEMPLATE, env=quiet) as running:
        yield running


def _send(stack: LocalStack, body: dict) -> dict:
    answer = requests.post(f"{stack.url}/messages", json=body, timeout=30)
    assert answer.status_code in (200, 202), answer.text
    return answer.json()


def _final(stack: LocalStack, message_ids: list[str], timeout: float = 30) -> dict[str, str]:
    finals = {"delivered", "undelivered", "rejected", "failed"}
    wanted = set(message_ids)

    def done(event: dict) -> bool:
        d = event.get("detail") or {}
        return d.get("message_id") in wanted and d.get("status") in finals

    events = stack.wait_for_events(done, count=len(wanted), timeout=timeout)
    return {e["detail"]["message_id"]: e["detail"]["status"] for e in events}


def test_health_and_found_routes(stack: LocalStack) -> None:
    assert requests.get(f"{stack.url}/health", timeout=5).status_code == 200
    assert {(r.method, r.path, r.function_id) for r in stack.routes} == CONTRACT_ROUTES
    assert set(stack.simulators) == set(VENDORS)


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_vendor_end_to_end_by_push(stack: LocalStack, vendor: str) -> None:
    # ...0001 is delivered and ...4040 undelivered by every simulator (base.py's test numbers).
    answer = _send(
        stack,
        {
            "recipients": ["+8613800000001", "+8613800004040"],
            "content": "【Acme】code 4711",
            "vendor": vendor,
        },
    )
    assert answer["accepted"] == 2
    statuses = _final(stack, answer["message_ids"])
    assert sorted(statuses.values()) == ["delivered", "undelivered"]
    message = requests.get(f"{stack.url}/messages/{answer['message_ids'][0]}", timeout=10)
    assert message.status_code == 200


def test_codes_and_bulk_each_go_through_their_own_queue(stack: LocalStack) -> None:
    def batches() -> dict[str, int]:
        return {
            m["queue"].rsplit(":", 1)[-1]: m["batches"]
            for m in stack.info()["sqs_mappings"]
            if m["function"] == "DispatchFunction"
        }

    queues = {lid: stack.physical(lid, "QueueName") for lid in ("DispatchQueue", "PriorityDispatchQueue")}
    before = batches()
    code = _send(
        stack,
        {"recipients": ["+8613800000251"], "content": "【Acme】code 4711", "category": "transactional"},
    )
    assert _final(stack, code["message_ids"], timeout=90) == {code["message_ids"][0]: "delivered"}
    after_code = batches()
    assert after_code[queues["PriorityDispatchQueue"]] > before[queues["PriorityDispatchQueue"]]
    bulk = _send(
        stack,
        {
            "recipients": [f"+86138000003{i:02d}" for i in range(11)],
            "content": "【Acme】sale",
            "vendor": "sms57",
        },
    )
    assert set(_final(stack, bulk["message_ids"], timeout=90).values()) == {"delivered"}
    assert batches()[queues["DispatchQueue"]] > after_code[queues["DispatchQueue"]]


def _status_events(stack: LocalStack, number: str) -> list[tuple]:
    """Every status event of one recipient, in order, until it was delivered."""
    stack.wait_for_events(
        lambda e: e["detail"].get("to") == number and e["detail"].get("status") == "delivered", timeout=30
    )
    return [
        (d["status"], d["previous_status"], d["vendor"], d["client_ref"])
        for d in (e["detail"] for e in stack.events("SMS Status Changed"))
        if d["to"] == number
    ]


def test_send_by_eventbridge_and_sns(stack: LocalStack) -> None:
    request = {
        "recipients": ["+8613800000101"],
        "content": "via bus",
        "vendor": "sms57",
        "client_ref": "bus-1",
    }
    stack.client("events").put_events(
        Entries=[
            {
                "Source": "shop",
                "DetailType": "Send SMS",
                "Detail": json.dumps(request),
                "EventBusName": stack.function_env["EVENT_BUS_NAME"],  # the default bus needs SendSources
            }
        ]
    )
    assert _status_events(stack, "+8613800000101") == [
        ("submitted", "queued", "sms57", "bus-1"),
        ("delivered", "submitted", "sms57", "bus-1"),
    ]
    request = {"recipients": ["+8613800000102"], "content": "via sns", "vendor": "kxt3"}
    stack.client("sns").publish(TopicArn=stack.physical("SendTopic"), Message=json.dumps(request))
    assert _status_events(stack, "+8613800000102") == [
        ("submitted", "queued", "kxt3", None),
        ("delivered", "submitted", "kxt3", None),
    ]


def test_the_event_log_holds_what_eventbridge_accepted_from_smsrelay(stack: LocalStack) -> None:
    bus = stack.function_env["EVENT_BUS_NAME"]
    stack.client("events").create_event_bus(Name="someone-elses")
    entries = [
        {
            "Source": "smsrelay",
            "DetailType": "SMS Received",
            "Detail": json.dumps({"n": 1}),
            "EventBusName": bus,
        },
        {"Source": "shop", "DetailType": "SMS Received", "Detail": json.dumps({"n": 2}), "EventBusName": bus},
        {
            "Source": "smsrelay",
            "DetailType": "SMS Received",
            "Detail": json.dumps({"n": 3}),
            "EventBusName": "someone-elses",
        },
    ]
    answer = stack.client("events").put_events(Entries=entries)
    logged = [e for e in stack.events("SMS Received") if e["detail"].get("n")]
    assert [e["detail"]["n"] for e in logged] == [1]  # other sources, other buses: not ours
    assert logged[0]["id"] == answer["Entries"][0]["EventId"] and logged[0]["source"] == "smsrelay"
    assert {"version", "account", "time", "region", "resources"} <= set(logged[0])


def test_run_poll_now(stack: LocalStack) -> None:
    answer = requests.post(f"{stack.url}/_local/run/poll", timeout=60)
    assert answer.status_code == 200, answer.text
    assert stack.wait_for_events("SMS Vendor Balance", count=1, timeout=10)


def test_settings_file_written_for_every_vendor(stack: LocalStack) -> None:
    settings = json.loads(Path(stack.settings_path).read_text())
    assert set(settings) == set(VENDORS)
    for vendor in VENDORS:
        assert settings[vendor]["base_url"] == stack.simulators[vendor].base_url
        assert (
            stack.callback_urls[vendor]
            == f"{stack.url}/callbacks/{vendor}/{settings[vendor]['callback_token']}"
        )
    assert settings["smsadmin"]["pull_interval_s"] == 0


# --------------------------------------------------------------------------- races, black-box


def _accepted_count(stack: LocalStack, vendor: str, ending: str) -> int:
    sim = stack.simulators[vendor]
    with sim.lock:
        return sum(1 for a in sim.accepted if a.mobile.endswith(ending))


def test_twenty_concurrent_sends_of_one_client_ref_are_one_send(stack: LocalStack) -> None:
    """The local stack applies DynamoDB requests one at a time, as DynamoDB applies each
    conditional write atomically: 20 callers racing with one client_ref make one vendor send."""
    from concurrent.futures import ThreadPoolExecutor

    body = {
        "recipients": ["+8613800000201"],
        "content": "【Acme】code 1",
        "vendor": "sms57",
        "client_ref": "race-1",
    }
    start = threading.Barrier(20)

    def post() -> requests.Response:
        start.wait()
        return requests.post(f"{stack.url}/messages", json=body, timeout=60)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: post(), range(20)))
    assert {a.status_code for a in answers} <= {202, 409}, [a.text for a in answers]
    assert len({a.json()["request_id"] for a in answers}) == 1
    stack.wait_for_events(lambda e: (e.get("detail") or {}).get("to") == "+8613800000201", timeout=30)
    time.sleep(1)
    assert _accepted_count(stack, "sms57", "13800000201") == 1


def test_a_502_after_the_vendor_accepted_is_unknown_and_sent_once(stack: LocalStack) -> None:
    stack.simulators["kxt3"].inject_fault("accepted_then_http502")
    answer = _send(stack, {"recipients": ["+8613800000202"], "content": "【Acme】code 2", "vendor": "kxt3"})
    (event,) = stack.wait_for_events(
        lambda e: (
            (e.get("detail") or {}).get("message_id") == answer["message_ids"][0]
            and e["detail"]["status"] == "unknown"
        ),
        timeout=30,
    )
    assert event["detail"]["vendor_code"] == "HTTP502"
    time.sleep(1)
    assert _accepted_count(stack, "kxt3", "13800000202") == 1


def test_an_upload_under_bulk_starts_a_send(stack: LocalStack) -> None:
    """S3 (moto) notifies EventBridge; the stack's rule puts the event on the send queue."""
    bucket = stack.function_env["BULK_BUCKET"]
    s3 = stack.client("s3")
    s3.put_object(
        Bucket=bucket,
        Key="bulk/friends.csv",
        Body=b"to,name\n13800000203,Ann\n",
        Metadata={"smsrelay-request": json.dumps({"content": "【Acme】hi {{name}}", "vendor": "santo"})},
    )
    stack.wait_for_events(
        lambda e: (
            (e.get("detail") or {}).get("to") == "+8613800000203" and e["detail"]["status"] == "submitted"
        ),
        timeout=30,
    )
    assert stack.wait_for_events("SMS Request Accepted", timeout=10)
    assert [a.content for a in stack.simulators["santo"].accepted if a.mobile.endswith("13800000203")] == [
        "【Acme】hi Ann"
    ]


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_push_its_vendor_never_sends_is_refused_not_a_server_error(stack: LocalStack, vendor: str) -> None:
    """GET is routed to every receiver: an empty one (a probe) is refused (400 unparsable, or 403 where
    the vendor's own credentials are missing), never a 5xx that would page the operator."""
    answer = requests.get(stack.callback_urls[vendor], timeout=10)
    assert answer.status_code in (400, 403), answer.text
