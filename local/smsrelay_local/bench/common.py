"""What the sections share: sizes, targets, numbers, waits on the local stack, bare loops, a table."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsrelay.vendors import VENDOR_IDS

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "bench" / "results" / "latest.json"
ISSUE_RECIPIENTS, FULL_RECIPIENTS, DEFAULT_RECIPIENTS = 100_000, 1_000_000, 100_000
ISSUE_CALLBACKS, DEFAULT_CALLBACKS = 20_000, 20_000
VENDORS = tuple(VENDOR_IDS)
BAD_ENDINGS = ("4040", "4220", "5030", "5040", "0000")  # simulator test numbers: not wanted here
SMS57_SETTINGS = {
    "base_url": "http://127.0.0.1:9",
    "account": "922011",
    "password": "123456",
    "extno": "10690231221",
    "password_mode": "md5",
    "callback_token": "bench",
}
TARGET_REQUESTS = 1.05
TARGET_FANOUT = 0.5
TARGET_CALLBACKS = 0.5
TARGET_IMPORT = 1.5
TARGET_SEND_MB = 512.0
TARGET_CODE_SLOWDOWN = 1.2

FUNCTION_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "TABLE_NAME": "smsrelay",
    "BULK_BUCKET": "smsrelay-bench",
    "DISPATCH_QUEUE_URL": "http://127.0.0.1:9/q/dispatch",
    "PRIORITY_QUEUE_URL": "http://127.0.0.1:9/q/priority",
    "SEND_QUEUE_URL": "http://127.0.0.1:9/q/send",
    "CALLBACK_VENDOR": "sms57",  # the one callback code path, told its vendor
    "EVENT_BUS_NAME": "smsrelay",
    "POWERTOOLS_SERVICE_NAME": "smsrelay",
    "POWERTOOLS_METRICS_NAMESPACE": "smsrelay",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

# --------------------------------------------------------------------------- helpers


def numbers(vendor: str, count: int, offset: int = 0) -> list[str]:
    """`count` distinct valid numbers the vendor serves, none with a simulator test ending."""
    pattern = {"intl": "+447911{:06d}", "santo": "+6591{:06d}"}.get(vendor, "+86138{:08d}")
    found: list[str] = []
    i = offset
    while len(found) < count:
        i += 1
        number = pattern.format(i)
        if not number.endswith(BAD_ENDINGS):
            found.append(number)
    return found


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base:
        return None
    return value / base


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The functions print EMF metric lines on stdout: not for the table."""
    from ..cli import DropEmf

    saved = sys.stdout
    sys.stdout = DropEmf(saved)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = saved


def wait(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(every)


def request_counters(stack: Any, request_id: str) -> dict[str, int]:
    table = stack.function_env["TABLE_NAME"]
    item = stack.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": f"R#{request_id}"}, "sk": {"S": "R"}}, ConsistentRead=True
    )["Item"]
    return {k[2:]: int(v["N"]) for k, v in item.items() if k.startswith("c_")}


def idle(stack: Any) -> bool:
    """No message waiting in the send/dispatch queues, no dispatch or send invocation running."""
    sqs = stack.client("sqs")
    for queue in ("DispatchQueue", "PriorityDispatchQueue", "SendRequestsQueue"):
        attrs = sqs.get_queue_attributes(
            QueueUrl=stack.physical(queue),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if any(int(v) for v in attrs.values()):
            return False
    for name in ("dispatch", "send"):
        fn = stack.function(name)
        if fn._idle.qsize() < fn._created:  # an environment is busy (warm_up adds one uncounted)
            return False
    return True


def quiesce(stack: Any, quiet_s: float = 1.0, timeout: float = 300.0) -> None:
    """Wait until the stack's event relay has caught up (no new event for `quiet_s`)."""
    deadline = time.monotonic() + timeout
    seen, since = len(stack.events()), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = len(stack.events())
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


# --------------------------------------------------------------------------- bare loops


def bare_batch_write(stack: Any, count: int, prefix: str = "BENCH") -> dict[str, Any]:
    """BatchWriteItem of `count` message-sized items, 25 a call, one client, serial."""
    ddb, table = stack.client("dynamodb"), stack.function_env["TABLE_NAME"]
    started = time.perf_counter()
    for start in range(0, count, 25):
        items = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": f"{prefix}#{i // 1000}"},
                        "sk": {"S": f"{i:07d}"},
                        "to": {"S": f"+86138{i:08d}"},
                        "status": {"S": "queued"},
                        "vendor": {"S": "sms57"},
                        "history": {"L": [{"M": {"status": {"S": "queued"}}}]},
                    }
                }
            }
            for i in range(start, min(count, start + 25))
        ]
        pending: dict[str, Any] = {table: items}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    seconds = time.perf_counter() - started
    return {"items": count, "seconds": seconds, "items_per_s": count / seconds}


def bare_update(stack: Any, count: int) -> dict[str, Any]:
    """UpdateItem (conditional, SET + list_append) on `count` items bare_batch_write puts first."""
    ddb, table = stack.client("dynamodb"), stack.function_env["TABLE_NAME"]
    bare_batch_write(stack, count, prefix="BENCHU")
    started = time.perf_counter()
    for i in range(count):
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": f"BENCHU#{i // 1000}"}, "sk": {"S": f"{i:07d}"}},
            UpdateExpression="SET #s = :new, history = list_append(history, :h)",
            ConditionExpression="#s = :old",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":new": {"S": "delivered"},
                ":old": {"S": "queued"},
                ":h": {"L": [{"M": {"status": {"S": "delivered"}}}]},
            },
        )
    seconds = time.perf_counter() - started
    return {"updates": count, "seconds": seconds, "updates_per_s": count / seconds}


# --------------------------------------------------------------------------- the table


@dataclass
class Table:
    """Rows as printed (section, metric, value, against, verdict) and the targets they judge."""

    rows: list[list[str]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def row(self, section: str, metric: str, value: str, against: str = "", verdict: str = "") -> None:
        self.rows.append([section, metric, value, against, verdict])

    def target(self, name: str, value: float | None, limit: float, higher: bool) -> str:
        ok = value is not None and (value >= limit if higher else value <= limit)
        self.targets.append({"target": name, "value": value, "limit": limit, "pass": ok})
        return "PASS" if ok else "MISS"

    def render(self) -> str:
        header = ["section", "metric", "value", "against", "target"]
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(len(header))]
        line = "  ".join("-" * w for w in widths)
        out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in self.rows]
        return "\n".join(out)
