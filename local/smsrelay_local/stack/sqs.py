"""SQS event-source mappings as Lambda runs them, and the relay that delivers EventBridge targets.

moto keeps the queue semantics (visibility timeout, ApproximateReceiveCount, redrive to the DLQ
when a message is received past maxReceiveCount: verified); this module adds what Lambda's
poller does: batches, the SQS event shape, partial batch failures, deletes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .lambdas import FunctionError, LocalFunction
from .worker import Worker

log = logging.getLogger("smsrelay.local")
_WAIT_S = 1  # long-poll wait: bounds how long stop() waits for a poller


class SqsPoller(Worker):
    """One event-source mapping: a poller thread feeding a small pool of concurrent batches."""

    join_timeout_s = _WAIT_S + 5

    def __init__(
        self,
        *,
        function: LocalFunction,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        batch_size: int,
        report_failures: bool,
        concurrency: int,
        region: str,
    ) -> None:
        self.function = function
        self.sqs = sqs
        self.queue_url, self.queue_arn = queue_url, queue_arn
        self.batch_size = max(1, batch_size)
        self.report_failures = report_failures
        self.concurrency = max(1, concurrency)
        self.region = region
        self.batches = 0
        self.failed_records = 0
        self._slots = threading.Semaphore(self.concurrency)
        self._pool = ThreadPoolExecutor(
            self.concurrency, thread_name_prefix=f"local-sqs-{function.logical_id}"
        )
        super().__init__(f"local-poll-{function.logical_id}")

    def join(self, timeout_s: float | None = None) -> None:
        super().join(timeout_s)
        # Batches not started are dropped (their messages come back after the visibility
        # timeout); one already running is not waited for: stop() has a deadline.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stopped.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            try:
                messages = self._receive()
            except Exception:
                if not self._stopped.is_set():
                    log.exception("polling %s failed", self.queue_url)
                    self._stopped.wait(1)
                messages = []
            if not messages:
                self._slots.release()
                continue
            self._pool.submit(self._process, messages)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        wait = _WAIT_S
        # Lambda gathers up to BatchSize; SQS hands out at most 10 per receive.
        while len(messages) < self.batch_size and not self._stopped.is_set():
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            got = answer.get("Messages", [])
            messages.extend(got)
            if not got:
                break
            wait = 0
        return messages

    def _process(self, messages: list[dict[str, Any]]) -> None:
        try:
            event = {"Records": [self.record(m) for m in messages]}
            try:
                result = self.function.invoke(event)
            except FunctionError:
                failed = {m["MessageId"] for m in messages}  # the whole batch comes back
            else:
                failed = self._failures(result, messages)
            done = [m for m in messages if m["MessageId"] not in failed]
            self.batches += 1
            self.failed_records += len(failed)
            for start in range(0, len(done), 10):
                chunk = done[start : start + 10]
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                    ],
                )
        except Exception:
            log.exception("batch from %s could not be handled", self.queue_url)
        finally:
            self._slots.release()

    def _failures(self, result: Any, messages: list[dict[str, Any]]) -> set[str]:
        if not self.report_failures:
            return set()
        ids = {m["MessageId"] for m in messages}
        if result is None:
            return set()
        items = result.get("batchItemFailures") if isinstance(result, dict) else None
        if items is None:
            return set()
        failed = {item.get("itemIdentifier") if isinstance(item, dict) else None for item in items}
        if not failed <= ids:
            # Lambda treats an empty or unknown itemIdentifier as a failure of the whole batch.
            log.warning(
                "%s returned an invalid batchItemFailures: whole batch fails", self.function.logical_id
            )
            return ids
        return {f for f in failed if f}

    def record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = dict(message.get("Attributes", {}))
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": value.get("StringListValues", []),
                    "binaryListValues": value.get("BinaryListValues", []),
                    "dataType": value.get("DataType"),
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }


class QueueDrain(Worker):
    """Drains an internal queue into a callback, message by message (relays, event capture)."""

    join_timeout_s = _WAIT_S + 5

    def __init__(self, sqs: Any, queue_url: str, callback: Callable[[str], None], name: str) -> None:
        self.sqs, self.queue_url, self.callback = sqs, queue_url, callback
        super().__init__(f"local-drain-{name}")

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                answer = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=_WAIT_S
                )
            except Exception:
                if not self._stopped.is_set():
                    log.exception("draining %s failed", self.queue_url)
                    self._stopped.wait(1)
                continue
            done = []
            for message in answer.get("Messages", []):
                try:
                    self.callback(message["Body"])
                except Exception:
                    log.exception("delivering from %s failed (will retry)", self.queue_url)
                    continue
                done.append({"Id": str(len(done)), "ReceiptHandle": message["ReceiptHandle"]})
            if done:
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)


def json_path(document: Any, path: str) -> Any:
    """The simple JSONPath EventBridge allows in InputPath / InputPathsMap: $, $.a.b, $.a[0]."""
    if path in ("$", ""):
        return document
    current = document
    for part in path.removeprefix("$.").replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part.strip("[]"))
            current = current[index] if isinstance(current, list) and len(current) > index else None
        else:
            current = current.get(part) if isinstance(current, dict) else None
        if current is None:
            return None
    return current


def transform_input(
    event: dict[str, Any], *, input: str | None, input_path: str | None, transformer: dict[str, Any] | None
) -> str:
    """The payload an EventBridge target receives, as a string (EventBridge's rules)."""
    if input is not None:
        return input
    if input_path:
        value = json_path(event, input_path)
        return json.dumps(value)
    if transformer:
        template = transformer.get("InputTemplate", "")
        for name, path in (transformer.get("InputPathsMap") or {}).items():
            value = json_path(event, path)
            text = value if isinstance(value, str) else json.dumps(value)
            template = template.replace(f"<{name}>", text)
        return template.replace("<aws.events.event.json>", json.dumps(event))
    return json.dumps(event)
