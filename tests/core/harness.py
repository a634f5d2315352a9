"""An in-process smsrelay on moto (`mock_aws`) with every vendor's simulator.

Functions are the real handlers of functions/*/app.py, called with the events Lambda would
give them; the queues are drained by hand so a test decides when dispatch runs."""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
from smsrelay_local.simulators import SIMULATED
from smsrelay_local.stack import Template
from smsrelay_local.stack.resources import ResourceBuilder
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parents[2]
VENDORS: tuple[str, ...] = SIMULATED  # every vendor with a simulator (test_real_stack: = the template's)


@functools.cache
def _template() -> tuple[Template, dict[str, str]]:
    """template.yaml read once, and the environment its functions get."""
    template = Template(ROOT / "template.yaml")
    return template, template.functions()[0].env


class Context:
    def __init__(self, name: str, timeout_s: float = 60):
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_loading = threading.Lock()


def load_function(name: str) -> ModuleType:
    """functions/<name>/app.py; `callback_<vendor>` is functions/callback/ configured for that vendor."""
    module_name = f"smsrelay_fn_{name}"
    directory, env = name, {}
    if name.startswith("callback_"):  # as the template configures Callback<vendor>Function
        directory, env = "callback", {"CALLBACK_VENDOR": name.removeprefix("callback_")}
    with _loading:  # concurrent invocations of a cold function wait for its one import
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / directory / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        with mock.patch.dict(os.environ, env):  # read at import, as on Lambda's cold start
            spec.loader.exec_module(module)
        return module


def api_event(
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: dict | None = None,
    query: dict | None = None,
    path_parameters: dict | None = None,
    source_ip: str = "127.0.0.1",
) -> dict:
    raw = body.encode() if isinstance(body, str) else (body or b"")
    try:
        text, encoded = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(raw).decode(), True
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers or {},
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip},
            "httpMethod": method,
            "path": path,
            "stage": "local",
        },
        "body": text if raw else None,
        "isBase64Encoded": encoded,
    }


def http_api_event(
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: dict | None = None,
    raw_query: str = "",
    path_parameters: dict | None = None,
    source_ip: str = "127.0.0.1",
) -> dict:
    """The HTTP API (payload 2.0) event for one request: the raw query string as it came, and
    the query decoded (as UTF-8) beside it, repeated keys joined by commas."""
    raw = body.encode() if isinstance(body, str) else (body or b"")
    try:
        text, encoded = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(raw).decode(), True
    decoded: dict[str, str] = {}
    for part in filter(None, raw_query.split("&")):
        key, _, value = part.partition("=")
        key, value = unquote(key.replace("+", " ")), unquote(value.replace("+", " "))
        decoded[key] = f"{decoded[key]},{value}" if key in decoded else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip},
            "stage": "$default",
        },
        "pathParameters": path_parameters,
        "isBase64Encoded": encoded,
    }
    if decoded:
        event["queryStringParameters"] = decoded
    if raw:
        event["body"] = text
    return event


class Harness:
    def __init__(self, tmp_path: Path, simulators: dict[str, Any]):
        self.tmp_path = tmp_path
        self.simulators = simulators
        self.region = "us-east-1"
        self.ddb = boto3.client("dynamodb", region_name=self.region)
        self.sqs = boto3.client("sqs", region_name=self.region)
        self.events_client = boto3.client("events", region_name=self.region)
        self.tokens = {v: f"tok-{v}-{uuid.uuid4().hex[:8]}" for v in VENDORS}
        self._server = None
        self.timeout_s = 60.0  # each invocation's Lambda timeout (its leases last until then)

    # ------------------------------------------------------------------ setup
    def create_resources(self) -> dict[str, str]:
        # Table and bucket exactly as template.yaml declares them; the queues and the event
        # capture are the harness's own (drained by hand, visibility 0).
        template, env = _template()
        self.s3 = boto3.client("s3", region_name=self.region)
        clients = {"dynamodb": self.ddb, "s3": self.s3}
        builder = ResourceBuilder(template, clients.__getitem__)
        builder.create_tables()
        builder.create_buckets()
        self.table, self.bucket = env["TABLE_NAME"], env["BULK_BUCKET"]
        self.queues = {}
        for name in ("send", "send-dlq", "dispatch", "dispatch-dlq", "priority", "priority-dlq", "events"):
            self.queues[name] = self.sqs.create_queue(QueueName=f"smsrelay-{name}")["QueueUrl"]
        for name in ("send", "dispatch", "priority"):
            dlq_arn = self.sqs.get_queue_attributes(
                QueueUrl=self.queues[f"{name}-dlq"], AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            self.sqs.set_queue_attributes(
                QueueUrl=self.queues[name],
                Attributes={
                    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
                    "VisibilityTimeout": "0",
                },
            )
        self.events_client.create_event_bus(Name="smsrelay")
        events_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queues["events"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.events_client.put_rule(
            Name="all", EventBusName="smsrelay", EventPattern=json.dumps({"source": ["smsrelay"]})
        )
        self.events_client.put_targets(
            Rule="all", EventBusName="smsrelay", Targets=[{"Id": "q", "Arn": events_arn}]
        )
        self.published: list[dict] = []
        return {
            "TABLE_NAME": self.table,
            "BULK_BUCKET": self.bucket,
            "SEND_QUEUE_URL": self.queues["send"],
            "DISPATCH_QUEUE_URL": self.queues["dispatch"],
            # PRIORITY_QUEUE_URL unset: one queue for both lanes (tests of the lanes set it)
            "EVENT_BUS_NAME": "smsrelay",
        }

    def write_vendor_settings(self, overrides: dict[str, dict] | None = None) -> Path:
        settings = {}
        for vendor, sim in self.simulators.items():
            settings[vendor] = sim.settings() | {"callback_token": self.tokens[vendor], "timeout_s": 5}
        settings.setdefault("smsadmin", {})["pull_interval_s"] = 0
        for vendor, values in (overrides or {}).items():
            settings[vendor] = settings.get(vendor, {}) | values
        path = self.tmp_path / "vendors.json"
        path.write_text(json.dumps(settings))
        return path

    # ------------------------------------------------------------------ functions
    def invoke(self, name: str, event: Any, timeout_s: float | None = None) -> Any:
        return load_function(name).handler(event, Context(name, timeout_s or self.timeout_s))

    def send(self, request: dict) -> dict:
        return self.invoke("send", request)

    def drain(self, queue: str, function: str, *, max_rounds: int = 200, batch: int = 10) -> int:
        """Hand the queue's messages to the function as SQS events until the queue is empty."""
        handled = 0
        for _ in range(max_rounds):
            answer = self.sqs.receive_message(
                QueueUrl=self.queues[queue],
                MaxNumberOfMessages=batch,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            messages = answer.get("Messages", [])
            if not messages:
                return handled
            event = {"Records": [self.sqs_record(m, queue) for m in messages]}
            result = self.invoke(function, event)
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            for m in messages:
                if m["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queues[queue], ReceiptHandle=m["ReceiptHandle"])
            handled += len(messages)
        return handled

    def sqs_record(self, message: dict, queue: str) -> dict:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:smsrelay-{queue}",
            "awsRegion": "us-east-1",
        }

    def run_all(self, *, settle: Callable[[], bool] | None = None, timeout_s: float = 30) -> None:
        """Drain send and dispatch, then wait until `settle()` holds (pushes arrive on their own)."""
        self.drain("send", "send")
        self.drain("priority", "dispatch")
        self.drain("dispatch", "dispatch")
        if settle is None:
            return
        deadline = time.monotonic() + timeout_s
        while not settle():
            if time.monotonic() > deadline:
                raise AssertionError("the system did not settle in time")
            time.sleep(0.05)

    def poll(self) -> dict:
        return self.invoke("poll", {"source": "aws.scheduler"})

    # ------------------------------------------------------------------ status API and events
    def api(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        function = "send" if path == "/messages" and method == "POST" else "api"
        parts = path.strip("/").split("/")
        params = None
        if function == "api" and len(parts) > 1:
            name = {"messages": "message_id", "requests": "request_id", "suppressions": "number"}[parts[0]]
            params = {name: parts[1]}
        answer = self.invoke(function, api_event(method, path, path_parameters=params, **kwargs))
        body = answer.get("body") or ""
        try:
            return answer["statusCode"], json.loads(body)
        except ValueError:
            return answer["statusCode"], body

    def message(self, message_id: str) -> dict:
        status, body = self.api("GET", f"/messages/{message_id}")
        assert status == 200, body
        return body

    def request(self, request_id: str, **query: str) -> dict:
        status, body = self.api("GET", f"/requests/{request_id}", query=query or None)
        assert status == 200, body
        return body

    def events(self) -> list[dict]:
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.queues["events"], MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return self.published
            for m in messages:
                self.published.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queues["events"], ReceiptHandle=m["ReceiptHandle"])

    # ------------------------------------------------------------------ vendor pushes
    def start_callback_server(self, payload: str = "1.0") -> str:
        """Pushes from the simulators reach the real callback handlers as API Gateway events:
        REST API events (payload 1.0: the query only decoded, as UTF-8) or HTTP API events
        (payload 2.0: the raw query string too)."""
        lock = threading.Lock()

        def app(environ: dict, start_response: Callable) -> Any:
            request = Request(environ)
            parts = request.path.strip("/").split("/")
            if len(parts) != 3 or parts[0] != "callbacks":
                return Response("not found", status=404)(environ, start_response)
            vendor, token = parts[1], parts[2]
            if payload == "2.0":
                event = http_api_event(
                    request.method,
                    request.path,
                    body=request.get_data(),
                    headers=dict(request.headers),
                    raw_query=request.query_string.decode("latin-1"),
                    path_parameters={"token": token},
                )
            else:
                event = api_event(
                    request.method,
                    request.path,
                    body=request.get_data(),
                    headers=dict(request.headers),
                    query=dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True)) or None,
                    path_parameters={"token": token},
                )
            with lock:  # one handler at a time, as in a test nothing depends on concurrency here
                answer = self.invoke(f"callback_{vendor}", event)
            response = Response(
                answer.get("body", ""), status=answer["statusCode"], headers=answer.get("headers")
            )
            return response(environ, start_response)

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        base = f"http://127.0.0.1:{self._server.server_port}"
        for vendor, sim in self.simulators.items():
            sim.push_url = f"{base}/callbacks/{vendor}/{self.tokens[vendor]}"
        return base

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
