"""moto in server mode on loopback, counting the AWS requests the functions make.

Our own server (not ThreadedMotoServer) so that a middleware can count requests by service and
operation for the benchmarks; the stack's own plumbing (pollers, relays) is tagged with a
user-agent marker and left out of the counts.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import boto3
import requests
from botocore.config import Config
from werkzeug.serving import make_server

INTERNAL_AGENT = "smsrelay-local"
ACCOUNT = "123456789012"  # moto's default account
_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


class AwsEmulator:
    """moto's every-service WSGI app served on 127.0.0.1:<free port>."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = "us-east-1") -> None:
        self.host, self.port, self.region = host, port, region
        self.counts: Counter[tuple[str, str]] = Counter()
        #: queue name -> [messages, payload bytes] the functions sent with SendMessageBatch
        self.sqs_payloads: dict[str, list[int]] = {}
        self._counts_lock = threading.Lock()
        self._dynamodb_lock = threading.Lock()
        self._server: Any = None
        #: called with every batch of events moto accepts from PutEvents
        self.on_events: Callable[[list[tuple[str, dict[str, Any]]]], None] | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from moto.server import DomainDispatcherApplication, create_backend_app

        from .. import moto_patches

        moto_patches.apply()  # transactions without whole-table copies

        # moto logs every request through werkzeug's logger: far too loud for a console.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self.host, self.port, self._counting(app), threaded=True, request_handler=MotoRequestHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-moto", daemon=True
        )
        self._thread.start()
        self.reset()  # moto's backends are process-wide: a previous stack's resources must go
        return self.endpoint

    def stop(self) -> None:
        self.on_events = None
        if self._server is None:
            return
        with contextlib.suppress(requests.RequestException):
            self.reset()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def reset(self) -> None:
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self.reset_counts()

    def reset_counts(self) -> None:
        with self._counts_lock:
            self.counts.clear()
            self.sqs_payloads.clear()

    def request_counts(self) -> dict[str, int]:
        """`service:Operation` -> count of the requests the functions made."""
        with self._counts_lock:
            return {f"{svc}:{op}": n for (svc, op), n in sorted(self.counts.items())}

    def client(self, service: str) -> Any:
        """A client for the stack's own plumbing (not counted)."""
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(
                user_agent_extra=INTERNAL_AGENT,
                retries={"max_attempts": 3},
                max_pool_connections=32,
                s3={"addressing_style": "path"},
            ),
        )

    # ------------------------------------------------------------------ counting middleware
    def _counting(self, dispatcher: Any) -> Callable[..., Iterable[bytes]]:
        # moto finds a request's service under one global lock, scanning its modules each time;
        # a signed request names its service (and a JSON one its API): remember the answer.
        routes: dict[tuple[str, str], Any] = {}

        def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if INTERNAL_AGENT not in environ.get("HTTP_USER_AGENT", "") and "HTTP_AUTHORIZATION" in environ:
                self._count(environ)
            match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
            if match is None or environ.get("PATH_INFO", "").startswith("/moto-api"):
                return dispatcher(environ, start_response)
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            key = (match.group(1), target.split(".", 1)[0])
            app = routes.get(key)
            if app is None:
                app = routes[key] = dispatcher.get_application(environ)
            if target == "AWSEvents.PutEvents" and self.on_events is not None:
                return self._tap_put_events(app, environ, start_response)
            if key[0] == "dynamodb":
                # DynamoDB applies each request atomically; moto does not lock between its request
                # threads (a conditional write can interleave with another): one at a time here,
                # or races on the local stack would show the emulator's behaviour, not ours.
                with self._dynamodb_lock:
                    return list(app(environ, start_response))
            return app(environ, start_response)

        return wsgi

    def _tap_put_events(
        self, app: Callable[..., Iterable[bytes]], environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Hand every event moto accepted (with moto's event id) to `on_events` as (bus, event), as
        a rule would see it: the stack's event log without a capture queue to drain."""
        body = _peek_body(environ)
        status: list[str] = []

        def capture_status(code: str, headers: Any, *args: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *args)

        answer = b"".join(app(environ, capture_status))
        if status and status[0].startswith("200"):
            try:
                sent = json.loads(body).get("Entries") or []
                results = json.loads(answer).get("Entries") or []
            except ValueError:
                sent, results = [], []
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            events = [
                (
                    (entry.get("EventBusName") or "default").rsplit("/", 1)[-1],
                    {
                        "version": "0",
                        "id": result["EventId"],
                        "detail-type": entry.get("DetailType"),
                        "source": entry.get("Source"),
                        "account": ACCOUNT,
                        "time": now,
                        "region": self.region,
                        "resources": entry.get("Resources") or [],
                        "detail": json.loads(entry.get("Detail") or "{}"),
                    },
                )
                for entry, result in zip(sent, results, strict=False)
                if result.get("EventId")
            ]
            if events:
                self.on_events(events)  # type: ignore[misc]
        return [answer]

    def _count(self, environ: dict[str, Any]) -> None:
        match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match.group(1) if match else "unknown"
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        path = environ.get("PATH_INFO", "")
        if target:  # JSON protocols: DynamoDB_20120810.PutItem, AmazonSQS.SendMessage, ...
            operation = target.rsplit(".", 1)[-1]
        elif "/operation/" in path:  # smithy rpc-v2-cbor (CloudWatch)
            operation = path.rsplit("/", 1)[-1]
        else:  # query protocol (SNS): the Action is in the form body, which must be put back
            body = _peek_body(environ)
            query = parse_qs(environ.get("QUERY_STRING", "")) | parse_qs(body.decode("utf-8", "replace"))
            operation = (query.get("Action") or ["unknown"])[0]
        with self._counts_lock:
            self.counts[(service, operation)] += 1
        if operation == "SendMessageBatch" and target:  # entries and payload: the floor is set by both
            body = _peek_body(environ)
            with contextlib.suppress(ValueError, KeyError, TypeError):
                sent = json.loads(body)
                queue = self.sqs_payloads.setdefault(sent["QueueUrl"].rsplit("/", 1)[-1], [0, 0])
                queue[0] += len(sent["Entries"])
                queue[1] += sum(len(e["MessageBody"].encode()) for e in sent["Entries"])


def _peek_body(environ: dict[str, Any]) -> bytes:
    """A request's body, read and put back for moto to read again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body
