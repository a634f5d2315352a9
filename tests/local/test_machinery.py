"""The local stack's machinery on a tiny template with fake handlers: template reading, API
events, SQS partial batch failures and redrive, EventBridge/SNS delivery, schedules, shutdown."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import requests
from smsrelay_local.stack import LocalStack, Template, mask_number, status_line
from smsrelay_local.stack.sqs import json_path, transform_input

from tests.helpers import wait_until

pytestmark = pytest.mark.slow  # a local stack, waits out redeliveries


def items(stack: LocalStack, key: str) -> list[dict]:
    answer = stack.client("dynamodb").query(
        TableName=stack.physical("Table"),
        KeyConditionExpression="pk = :k",
        ExpressionAttributeValues={":k": {"S": key}},
    )
    return answer["Items"]


def dlq_bodies(stack: LocalStack) -> list[str]:
    answer = stack.client("sqs").receive_message(
        QueueUrl=stack.physical("WorkDLQ"), MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    return [m["Body"] for m in answer.get("Messages", [])]


# ---------------------------------------------------------------------- template reading
def test_template_reading(fake_template: Path) -> None:
    t = Template(fake_template, sqs_endpoint="http://127.0.0.1:1")
    specs = {s.logical_id: s for s in t.functions()}
    assert set(specs) == {"EchoFunction", "WorkerFunction", "TickFunction"}
    assert "Unused" not in t.resources  # its Condition is false
    echo = specs["EchoFunction"]
    assert [(r.method, r.path, r.iam_auth) for r in echo.routes] == [
        ("GET", "/echo/{name}", True),  # the Api's DefaultAuthorizer
        ("POST", "/echo/{name}", False),  # Authorizer: NONE
    ]
    assert echo.env["SERVICE"] == "echo" and specs["WorkerFunction"].env["SERVICE"] == "shared"
    assert echo.env["SUBBED"] == "us-east-1/smsrelay-local-WorkQueue/plain"
    assert echo.env["CHOSEN"] == "plain-yes"
    assert echo.env["DLQ_ARN"] == "arn:aws:sqs:us-east-1:123456789012:smsrelay-local-WorkDLQ"
    (mapping,) = specs["WorkerFunction"].sqs
    assert (mapping.batch_size, mapping.report_failures) == (10, True)
    (schedule,) = specs["TickFunction"].schedules
    assert schedule.expression == "rate(1 minute)"
    assert t.stage_name() == "v1"

    overridden = Template(fake_template, parameters={"Flavour": "spicy", "TickMinutes": "5"})
    specs = {s.logical_id: s for s in overridden.functions()}
    assert specs["EchoFunction"].env["CHOSEN"] == "plain-no"
    assert specs["TickFunction"].schedules[0].expression == "rate(5 minute)"


def test_input_path_helpers() -> None:
    event = {"detail": {"a": [1, {"b": "x"}]}, "source": "s"}
    assert json_path(event, "$.detail.a[1].b") == "x"
    assert json_path(event, "$") == event
    assert transform_input(event, input=None, input_path="$.detail", transformer=None) == json.dumps(
        event["detail"]
    )
    assert transform_input(event, input='{"k":1}', input_path=None, transformer=None) == '{"k":1}'
    templ = {"InputPathsMap": {"s": "$.source"}, "InputTemplate": '{"src": "<s>"}'}
    assert json.loads(transform_input(event, input=None, input_path=None, transformer=templ)) == {"src": "s"}


def test_status_line_masks_numbers() -> None:
    assert mask_number("+8613800000001") == "+86138****0001"
    line = status_line(
        {
            "message_id": "m-1",
            "to": "+8613800000001",
            "vendor": "sms57",
            "previous_status": "submitted",
            "status": "delivered",
            "vendor_code": "DELIVRD",
            "time": "2026-01-01T00:00:00Z",
        }
    )
    assert "+86138****0001" in line and "submitted -> delivered" in line and "DELIVRD" in line
    assert "13800000001" not in line


# ---------------------------------------------------------------------- the running stack
def test_health_and_discovery(fake_stack: LocalStack) -> None:
    assert requests.get(f"{fake_stack.url}/health", timeout=5).status_code == 200
    assert {(r.method, r.path) for r in fake_stack.routes} == {
        ("GET", "/echo/{name}"),
        ("POST", "/echo/{name}"),
    }
    assert [(m.function_id, m.batch_size) for m in fake_stack.mappings] == [("WorkerFunction", 10)]
    info = requests.get(f"{fake_stack.url}/_local/info", timeout=5).json()
    assert info["ready"] and len(info["routes"]) == 2
    # No simulators asked for and no settings given: no vendor configured.
    assert json.loads(Path(fake_stack.settings_path).read_text()) == {}
    assert os.environ["AWS_ENDPOINT_URL"] == fake_stack.aws.endpoint


def test_api_get_is_a_rest_v1_proxy_event(fake_stack: LocalStack) -> None:
    answer = requests.get(f"{fake_stack.url}/echo/alice?x=1&x=2&y=3", headers={"X-Test": "t"}, timeout=10)
    assert answer.status_code == 200 and answer.headers["X-Echo"] == "1"
    data = answer.json()
    event = data["event"]
    assert event["httpMethod"] == "GET" and event["path"] == "/echo/alice"
    assert event["resource"] == "/echo/{name}"
    assert event["pathParameters"] == {"name": "alice"}
    assert event["queryStringParameters"] == {"x": "2", "y": "3"}
    assert event["multiValueQueryStringParameters"]["x"] == ["1", "2"]
    assert event["headers"]["X-Test"] == "t"
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["identity"]["sourceIp"] == "127.0.0.1" and context["requestId"]
    assert context["stage"] == "v1" and context["resourcePath"] == "/echo/{name}"
    # Environment from Globals, resolved to the emulated resources.
    assert data["env"]["TABLE_NAME"] == fake_stack.physical("Table")
    assert data["env"]["WORK_QUEUE_URL"] == fake_stack.physical("WorkQueue")
    assert data["env"]["BUS_NAME"] == "test-bus"
    assert 0 < data["remaining_ms"] <= 5000
    assert data["function_name"] == "smsrelay-local-EchoFunction"
    # The deployed URL form (with the stage) reaches the same route.
    assert requests.get(f"{fake_stack.url}/v1/echo/bob", timeout=10).json()["event"]["path"] == "/echo/bob"


def test_api_post_bodies_text_and_binary(fake_stack: LocalStack) -> None:
    text = requests.post(f"{fake_stack.url}/echo/t", data="héllo".encode(), timeout=10).json()["event"]
    assert text["body"] == "héllo" and text["isBase64Encoded"] is False
    gb = "状态=成功".encode("gb2312")  # smsadmin pushes GB2312 forms
    binary = requests.post(f"{fake_stack.url}/echo/b", data=gb, timeout=10).json()["event"]
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == gb
    raw = requests.post(f"{fake_stack.url}/echo/raw", timeout=10)
    assert raw.content == "好".encode("gb2312") and raw.headers["Content-Type"].startswith("text/plain")


def test_api_errors(fake_stack: LocalStack) -> None:
    assert requests.get(f"{fake_stack.url}/echo/boom", timeout=10).status_code == 502  # handler raised
    assert requests.get(f"{fake_stack.url}/nowhere", timeout=10).status_code == 403  # API Gateway's answer
    assert requests.delete(f"{fake_stack.url}/echo/x", timeout=10).status_code == 403
    assert requests.post(f"{fake_stack.url}/_local/run/nothing", timeout=10).status_code == 404


def test_sqs_partial_batch_failure_and_redrive(fake_stack: LocalStack) -> None:
    sqs = fake_stack.client("sqs")
    url = fake_stack.physical("WorkQueue")
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok", "MessageBody": json.dumps({"key": "pb-ok"})},
            {"Id": "bad", "MessageBody": json.dumps({"key": "pb-bad", "fail": True})},
        ],
    )
    # The good record is seen once and deleted; the bad one comes back after the visibility
    # timeout (1 s) with ApproximateReceiveCount 2, then goes to the DLQ (maxReceiveCount 2).
    wait_until(lambda: len(items(fake_stack, "pb-bad")) == 2)
    wait_until(lambda: any(json.loads(b).get("key") == "pb-bad" for b in dlq_bodies(fake_stack)))
    assert [i["sk"]["S"] for i in items(fake_stack, "pb-ok")] == ["1"]
    assert sorted(i["sk"]["S"] for i in items(fake_stack, "pb-bad")) == ["1", "2"]
    assert items(fake_stack, "pb-ok")[0]["source"]["S"] == fake_stack.physical("WorkQueue", "Arn")


def test_sqs_handler_crash_fails_the_whole_batch(fake_stack: LocalStack) -> None:
    sqs = fake_stack.client("sqs")
    sqs.send_message(
        QueueUrl=fake_stack.physical("WorkQueue"), MessageBody=json.dumps({"key": "crash", "crash": True})
    )
    wait_until(lambda: len(items(fake_stack, "crash")) == 2)  # redelivered once, then to the DLQ
    wait_until(lambda: any(json.loads(b).get("key") == "crash" for b in dlq_bodies(fake_stack)))


def test_eventbridge_rule_with_input_path_and_sns_raw(fake_stack: LocalStack) -> None:
    fake_stack.client("events").put_events(
        Entries=[
            {
                "Source": "someone",
                "DetailType": "Work",
                "Detail": json.dumps({"key": "via-bus"}),
                "EventBusName": "test-bus",
            }
        ]
    )
    fake_stack.client("sns").publish(
        TopicArn=fake_stack.physical("Topic"), Message=json.dumps({"key": "via-sns"})
    )
    wait_until(lambda: items(fake_stack, "via-bus") and items(fake_stack, "via-sns"))


def test_schedule_fires_and_events_are_captured(fake_stack: LocalStack) -> None:
    ticks = fake_stack.wait_for_events("Tick", count=1, timeout=10)  # every 1.2 s (scale 0.02)
    assert ticks[0]["source"] == "smsrelay" and ticks[0]["detail"]["event_source"] == "aws.scheduler"
    answer = requests.post(f"{fake_stack.url}/_local/run/tick", timeout=10)
    assert answer.status_code == 200 and answer.json() == {"ticked": True, "source": "aws.scheduler"}
    listed = requests.get(
        f"{fake_stack.url}/_local/events", params={"detail_type": "Tick"}, timeout=10
    ).json()
    assert len(listed) >= 1 and all(e["detail-type"] == "Tick" for e in listed)
    assert fake_stack.invoke("TickFunction", {"source": "direct"}) == {"ticked": True, "source": "direct"}


def test_aws_requests_are_counted_for_functions_only(fake_stack: LocalStack) -> None:
    fake_stack.reset_aws_requests()
    fake_stack.invoke("tick", {})
    counts = fake_stack.aws_requests()
    assert counts.get("events:PutEvents") == 1
    assert not any(k.startswith("sqs:") for k in counts)  # the pollers' own calls are not counted
