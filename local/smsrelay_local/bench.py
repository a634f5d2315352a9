"""`make bench`: smsrelay's speed and cost, each figure set against a floor measured in the same run.

    python -m smsrelay_local.bench [--full] [--recipients N] [--callbacks N] [--only fanout,callbacks,coldstart,cpu]

1. fanout     one send request of N recipients (sms57 simulator, pushes off) to the last chunk submitted:
              wall time, AWS requests by operation and vendor calls, each against its floor, and the
              throughput against a bare BatchWriteItem loop of the same items on the same emulator.
2. callbacks  delivery reports pushed by the five simulators (their own push code and formats) to
              the stack's callback routes: reports/s and handler time, against a bare UpdateItem loop.
3. coldstart  `import app` of every function in a fresh interpreter, against `import boto3` alone;
              installed size of the shared layer (smsrelay + its runtime deps) and of each function.
4. cpu        µs per recipient of send and dispatch with AWS and vendor HTTP stubbed (a subprocess),
              and their peak Python memory (tracemalloc).

The AWS services are moto, in this process (with the local stack's fixes, moto_patches.py): its
DynamoDB costs a fraction of a millisecond per item and every call crosses HTTP and the GIL, so
absolute rates say little; the ratios against the bare loops, measured in the same run, are the
figures to read. Defaults are the issue's sizes (100,000 recipients, 20,000 reports: about a
quarter of an hour on two cores); `--full` sends 1,000,000 recipients (about an hour on moto).
Results: one table on stdout, and bench/results/latest.json. docs/benchmarks.md explains the
floors and the last figures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "latest.json"
ISSUE_RECIPIENTS, FULL_RECIPIENTS, DEFAULT_RECIPIENTS = 100_000, 1_000_000, 100_000
ISSUE_CALLBACKS, DEFAULT_CALLBACKS = 20_000, 20_000
SECTIONS = ("fanout", "callbacks", "coldstart", "cpu")
VENDORS = ("sms57", "kxt3", "smsadmin", "intl", "santo")
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

log = logging.getLogger("smsrelay.bench")


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
    from .cli import DropEmf

    saved = sys.stdout
    sys.stdout = DropEmf(saved)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = saved


def _wait(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(every)


def _request_counters(stack: Any, request_id: str) -> dict[str, int]:
    table = stack.function_env["TABLE_NAME"]
    item = stack.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": f"R#{request_id}"}, "sk": {"S": "R"}}, ConsistentRead=True
    )["Item"]
    return {k[2:]: int(v["N"]) for k, v in item.items() if k.startswith("c_")}


def _idle(stack: Any) -> bool:
    """No message waiting in the send/dispatch queues, no dispatch or send invocation running."""
    sqs = stack.client("sqs")
    for queue in ("DispatchQueue", "SendRequestsQueue"):
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


def _quiesce(stack: Any, quiet_s: float = 1.0, timeout: float = 300.0) -> None:
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


# --------------------------------------------------------------------------- 1. fan-out


def fanout_floors(
    n: int,
    chunks: int,
    parts: int,
    max_batch: int,
    part_size: int,
    health_windows: int = 1,
    sqs_payloads: dict[str, list[int]] | None = None,
) -> dict[str, int]:
    """The fewest requests the design allows for n recipients (see the table's notes)."""
    chunk_sizes = [
        min(max_batch, part - start)
        for part in [min(part_size, n - p) for p in range(0, n, part_size)]
        for start in range(0, part, max_batch)
    ]
    return {
        # the message items, then a reference item per vendor reference (sms57: one per recipient)
        "dynamodb:BatchWriteItem": math.ceil(n / 25) + sum(math.ceil(size / 25) for size in chunk_sizes),
        # 99 messages + the request's counters a transaction (DynamoDB's 100), within one chunk:
        # a chunk is one vendor answer, recorded when it comes (ceil(n/99) would need transactions
        # that wait for several vendor calls)
        "dynamodb:TransactWriteItems": sum(math.ceil(size / 99) for size in chunk_sizes),
        # suppression list (send) + early reports (dispatch): 100 keys a call each
        "dynamodb:BatchGetItem": 2 * math.ceil(n / 100),
        "dynamodb:PutItem": 1,  # the request item
        "dynamodb:GetItem": chunks + parts,  # a chunk's claim, a part's "counted?"
        # claim + done + vendor health per chunk (one vendor call each), record_part per part, and
        # the health item's rollover once per health window the run touched
        "dynamodb:UpdateItem": 3 * chunks + parts + health_windows,
        # 10 messages and 256 KiB a call, per queue (a part of 5,000 numbers is a big message)
        "sqs:SendMessageBatch": sum(
            max(math.ceil(messages / 10), math.ceil(size / 262_144))
            for messages, size in sqs_payloads.values()
        )
        if sqs_payloads
        else math.ceil(chunks / 10) + (math.ceil(parts / 10) if parts > 1 else 0),
        "events:PutEvents": math.ceil(n / 10),  # one "submitted" status event per recipient
        "vendor:sms57:send": math.ceil(n / max_batch),
    }


def run_fanout(stack: Any, n: int) -> dict[str, Any]:
    from smsrelay.deps import Deps

    deps = Deps.from_env()  # the stack's function environment
    sim = stack.simulators["sms57"]
    sim.push_url = None  # push off: reports wait for a pull that never comes
    _quiesce(stack)
    bare = bare_batch_write(stack, n)
    max_batch = deps.vendors.adapter("sms57").batch_limit
    part_size = deps.settings.part_size
    sim.reset()
    sim.balance = 1e12  # 厘: a million messages and more; an account running dry is a fault case, not this
    stack.reset_aws_requests()
    request = {"vendor": "sms57", "content": "【Acme】Your code is 4711", "recipients": numbers("sms57", n)}
    began, started = time.time(), time.perf_counter()
    answer = stack.invoke("send", request)
    accepted_s = time.perf_counter() - started
    request_id = answer["request_id"]

    def dispatched() -> bool:  # every recipient past dispatch (anything but submitted is reported)
        counters = _request_counters(stack, request_id)
        return sum(counters.get(s, 0) for s in ("submitted", "rejected", "failed", "unknown")) >= n

    _wait(dispatched, timeout=max(600.0, n * 0.05), what="fan-out")
    wall = time.perf_counter() - started
    _wait(lambda: _idle(stack), timeout=600, what="dispatch to finish")
    ended = time.time()
    counts = stack.aws_requests()
    vendor_calls = sum(1 for r in sim.requests if r["path"].rstrip("/") == "/sms")
    parts = math.ceil(n / part_size)
    chunks = _chunk_count(stack, request_id, n, max_batch)
    window = deps.settings.health_window_s
    health_windows = int(ended // window) - int(began // window) + 1
    floors = fanout_floors(
        n, chunks, parts, max_batch, part_size, health_windows, dict(stack.aws.sqs_payloads)
    )
    counted = dict(counts) | {"vendor:sms57:send": vendor_calls}
    requests = {
        op: {
            "count": counted.get(op, 0),
            "floor": floors.get(op),
            "ratio": ratio(counted.get(op, 0), floors.get(op)),
        }
        for op in sorted(set(counted) | set(floors))
    }
    rate = n / wall
    counters = _request_counters(stack, request_id)
    return {
        "recipients": n,
        "accepted": answer["accepted"],
        "submitted": counters.get("submitted", 0),
        "not_submitted": {s: counters[s] for s in ("rejected", "failed", "unknown") if counters.get(s)},
        "sqs_payloads": {q: {"messages": m, "bytes": b} for q, (m, b) in stack.aws.sqs_payloads.items()},
        "request_id": request_id,
        "accept_s": accepted_s,
        "wall_s": wall,
        "recipients_per_s": rate,
        "parts": parts,
        "chunks": chunks,
        "vendor_max_batch": max_batch,
        "requests": requests,
        "bare_batch_write": bare,
        "throughput_ratio": rate / bare["items_per_s"],
    }


def _chunk_count(stack: Any, request_id: str, n: int, max_batch: int) -> int:
    """Chunks of the request: dispatch claims are items C#{request}.{part}.{i}."""
    ddb, table = stack.client("dynamodb"), stack.function_env["TABLE_NAME"]
    pages = ddb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="begins_with(pk, :p)",
        ExpressionAttributeValues={":p": {"S": f"C#{request_id}."}},
        Select="COUNT",
    )
    found = sum(page["Count"] for page in pages)
    return found or math.ceil(n / max_batch)


# --------------------------------------------------------------------------- 2. callbacks


def run_callbacks(stack: Any, total: int) -> dict[str, Any]:
    per_vendor = max(1, total // len(VENDORS))
    total = per_vendor * len(VENDORS)
    for sim in stack.simulators.values():
        sim.push_url = None  # while we seed: reports wait
        sim.reset()
        sim.balance = 1e12  # no account runs dry while seeding
    # Seed: per vendor, one request through send and dispatch (the real path), to "submitted".
    requests_by_vendor: dict[str, str] = {}
    for vendor in VENDORS:
        answer = stack.invoke(
            "send",
            {
                "vendor": vendor,
                "content": "【Acme】Your order has shipped",
                "recipients": numbers(vendor, per_vendor),
            },
        )
        requests_by_vendor[vendor] = answer["request_id"]
    seed_started = time.perf_counter()
    for vendor, request_id in requests_by_vendor.items():
        _wait(
            lambda r=request_id: _request_counters(stack, r).get("submitted", 0) >= per_vendor,
            timeout=max(600.0, total * 0.5),
            what=f"seeding {vendor}",
        )
    _wait(lambda: _idle(stack), timeout=600, what="dispatch to finish")
    seed_s = time.perf_counter() - seed_started
    records = {}
    for vendor, sim in stack.simulators.items():
        with sim.lock:
            records[vendor] = list(sim.accepted)
            sim.pending_reports.clear()
            sim.pushes.clear()
        sim.push_url = stack.callback_urls[vendor]
    functions = {v: stack.function(f"callback_{v}") for v in VENDORS}
    marks = {v: len(fn.stats.durations_ms) for v, fn in functions.items()}
    _quiesce(stack)
    bare = bare_update(stack, total)
    stack.reset_aws_requests()

    started = time.perf_counter()
    threads = [
        threading.Thread(target=stack.simulators[v].push_reports, args=(records[v],), name=f"bench-push-{v}")
        for v in VENDORS
    ]
    for thread in threads:
        thread.start()

    def settled() -> bool:
        for request_id in requests_by_vendor.values():
            c = _request_counters(stack, request_id)
            if c.get("delivered", 0) + c.get("undelivered", 0) < per_vendor:
                return False
        return True

    _wait(settled, timeout=max(600.0, total * 0.5), what="callbacks")
    wall = time.perf_counter() - started
    for thread in threads:
        thread.join(timeout=60)
    counts = stack.aws_requests()
    durations: list[float] = []
    per_vendor_stats = {}
    for vendor, fn in functions.items():
        mine = fn.stats.durations_ms[marks[vendor] :]
        durations += mine
        per_vendor_stats[vendor] = {
            "reports": len(records[vendor]),
            "pushes": len(mine),
            "p50_ms": pct(mine, 0.5),
            "p99_ms": pct(mine, 0.99),
        }
    rate = total / wall
    return {
        "reports": total,
        "seed_s": seed_s,
        "wall_s": wall,
        "reports_per_s": rate,
        "pushes": len(durations),
        "handler_p50_ms": pct(durations, 0.5),
        "handler_p99_ms": pct(durations, 0.99),
        "by_vendor": per_vendor_stats,
        "requests": {op: {"count": n, "per_report": n / total} for op, n in counts.items()},
        "bare_update": bare,
        "throughput_ratio": rate / bare["updates_per_s"],
    }


# --------------------------------------------------------------------------- 3. cold start

FUNCTION_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "TABLE_NAME": "smsrelay",
    "BULK_BUCKET": "smsrelay-bench",
    "DISPATCH_QUEUE_URL": "http://127.0.0.1:9/q/dispatch",
    "SEND_QUEUE_URL": "http://127.0.0.1:9/q/send",
    "EVENT_BUS_NAME": "smsrelay",
    "POWERTOOLS_SERVICE_NAME": "smsrelay",
    "POWERTOOLS_METRICS_NAMESPACE": "smsrelay",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
_TIMED_IMPORT = (
    "import sys,time;t=time.perf_counter();import {module};sys.stdout.write(repr(time.perf_counter()-t))"
)


def _timed_import(module: str, cwd: Path | None, repeats: int) -> float:
    """Median seconds of `import module` in fresh interpreters (cwd first on sys.path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))} | FUNCTION_ENV
    if cwd is not None:
        # As the Lambda runtime sets it, with tracing on (the template's `Tracing: Active`). Outside
        # Lambda the X-Ray SDK builds a centralised-sampling client at import (~110 ms) that a
        # function never builds: aws/aws-xray-sdk-python#311.
        env |= {
            "LAMBDA_TASK_ROOT": str(cwd),
            "AWS_LAMBDA_FUNCTION_NAME": cwd.name,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        }
        env.pop("POWERTOOLS_TRACE_DISABLED", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "layers" / "shared")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _TIMED_IMPORT.format(module=module)],
            cwd=cwd or ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def layer_size() -> dict[str, Any]:
    """smsrelay + its runtime deps as installed here (requirements.txt, recursively; no boto3)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    skip = {"boto3", "botocore", "s3transfer"}
    wanted: list[tuple[str, set[str]]] = []
    for line in (ROOT / "layers" / "shared" / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            wanted.append((req.name, set(req.extras)))
    seen: dict[str, int] = {}
    while wanted:
        name, extras = wanted.pop()
        key = name.lower().replace("_", "-")
        if key in seen or key in skip:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        size = 0
        for file in dist.files or []:
            if "__pycache__" in str(file) or ".dist-info" in str(file.parent):
                continue
            with contextlib.suppress(OSError):
                size += Path(str(file.locate())).stat().st_size
        seen[key] = size
        for raw in dist.requires or []:
            req = Requirement(raw)
            env = {"extra": next(iter(extras), "")}
            if (
                req.marker is None
                or any(req.marker.evaluate({"extra": e}) for e in extras or {""})
                or req.marker.evaluate(env)
            ):
                wanted.append((req.name, set(req.extras)))
    own = _tree_size(ROOT / "layers" / "shared" / "smsrelay")
    return {"bytes": own + sum(seen.values()), "smsrelay_bytes": own, "dependencies": seen}


def run_coldstart(repeats: int = 3) -> dict[str, Any]:
    boto3_s = _timed_import("boto3", None, repeats)
    functions = {}
    for directory in sorted((ROOT / "functions").iterdir()):
        if not (directory / "app.py").is_file():
            continue
        seconds = _timed_import("app", directory, repeats)
        functions[directory.name] = {
            "import_s": seconds,
            "ratio_to_boto3": seconds / boto3_s,
            "code_bytes": _tree_size(directory),
        }
    return {"boto3_import_s": boto3_s, "repeats": repeats, "functions": functions, "layer": layer_size()}


# --------------------------------------------------------------------------- 4. CPU (subprocess)


def run_cpu(n: int, memory_n: int) -> dict[str, Any]:
    """The worker runs in a fresh interpreter: no stack, no moto, no other threads."""
    with tempfile.TemporaryDirectory(prefix="smsrelay-bench-") as tmp:
        out = Path(tmp) / "cpu.json"
        settings = Path(tmp) / "vendors.json"
        settings.write_text(json.dumps({"sms57": SMS57_SETTINGS}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
        env |= FUNCTION_ENV | {"VENDOR_SETTINGS_FILE": str(settings)}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "smsrelay_local.bench",
                "--worker",
                str(out),
                "--recipients",
                str(n),
                "--memory-recipients",
                str(memory_n),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return json.loads(out.read_text())


def _stub_everything(captured: dict[str, list[str]], deps: Any) -> dict[str, int]:
    """Every AWS call answered in memory (at botocore's _make_api_call, so our own serialisation
    still counts); the request and part records kept in a dict (their conditional moves are
    DynamoDB's work, not ours); S3 objects in a dict; the vendor's HTTP answered by the sms57
    simulator's canned reply."""
    from collections import Counter

    import botocore.client
    import requests
    from botocore.response import StreamingBody
    from smsrelay import dal
    from smsrelay.models import RequestState
    from werkzeug.test import Client

    from .simulators.sms57 import Sms57Simulator

    calls: Counter[str] = Counter()
    objects: dict[str, bytes] = {}

    def api_call(self: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        calls[operation] += 1
        if operation == "SendMessageBatch":
            captured.setdefault(params["QueueUrl"], []).extend(e["MessageBody"] for e in params["Entries"])
            return {"Successful": [{"Id": e["Id"]} for e in params["Entries"]], "Failed": []}
        if operation == "PutEvents":
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in params["Entries"]]}
        if operation == "BatchGetItem":
            return {"Responses": {}, "UnprocessedKeys": {}}
        if operation == "BatchWriteItem":
            return {"UnprocessedItems": {}}
        if operation == "PutObject":
            body = params["Body"]
            objects[params["Key"]] = body if isinstance(body, bytes) else body.read()
            return {"ETag": '"bench"'}
        if operation == "HeadObject":
            return {"ETag": '"bench"', "Metadata": {}}
        if operation == "GetObject":
            data = objects[params["Key"]][int(params.get("Range", "bytes=0-")[6:].rstrip("-") or 0) :]
            return {"Body": StreamingBody(io.BytesIO(data), len(data))}
        return {}

    botocore.client.BaseClient._make_api_call = api_call  # type: ignore[method-assign]

    records: dict[str, dal.RequestRecord] = {}

    def done_part(self: Any, request_id: str, part: int, owner: str, summary: Any) -> bool:
        record = records[request_id]
        record.parts_done += 1
        record.counters["total"] = record.counters.get("total", 0) + summary.accepted
        return True

    def parts_total(self: Any, request_id: str, owner: str, parts: int, rows: int) -> bool:
        records[request_id].parts_total, records[request_id].rows_total = parts, rows
        return True

    def finish(self: Any, request_id: str, state: Any, answer: str, error: str | None = None) -> bool:
        records[request_id].state, records[request_id].answer = RequestState(state), answer
        return True

    def load(self: Any, request_id: str) -> dal.RequestRecord:
        if request_id not in records:
            raise dal.NotFound(request_id)
        return records[request_id]

    fake = {
        "create": lambda self, record: records.setdefault(record.request_id, record) is record,
        "load": load,
        "take": lambda self, *a: True,
        "release": lambda self, *a: None,
        "save_cursor": lambda self, *a: True,
        "set_parts_total": parts_total,
        "finish": finish,
        "mark_announced": lambda self, request_id: None,
        "claim_part": lambda self, *a: "writing",
        "release_part": lambda self, *a: None,
        "complete_part": done_part,
        "list_parts": lambda self, *a, **kw: [],
        "mark_part_enqueued": lambda self, *a: None,
    }
    for name, method in fake.items():
        setattr(dal.RequestStore, name, method)

    # The vendor: the sms57 simulator's answer to the first call, replayed for every later one.
    sim = Sms57Simulator(seed=1)
    wsgi = Client(sim.wsgi)
    canned: dict[str, requests.Response] = {}

    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        calls["vendor:http"] += 1
        if "answer" not in canned:
            from urllib.parse import urlsplit

            answer = wsgi.open(
                urlsplit(url).path, method=method, data=kwargs.get("data"), query_string=kwargs.get("params")
            )
            response = requests.Response()
            response.status_code = answer.status_code
            response._content = answer.get_data()
            response.headers.update(dict(answer.headers))
            response.encoding = "utf-8"
            response.url = url
            canned["answer"] = response
        return canned["answer"]

    deps.vendors.adapter("sms57").http.session.request = request  # type: ignore[method-assign]
    return calls


def worker(out: Path, n: int, memory_n: int) -> None:
    import gc
    import tracemalloc
    import uuid

    from smsrelay.deps import Deps
    from smsrelay.entry import parse_request
    from smsrelay.models import AcceptJob, DispatchChunk, SendPart
    from smsrelay.observability import logger
    from smsrelay.service.accept import Acceptance, Delivery
    from smsrelay.service.dispatch import Dispatcher

    logger.setLevel("ERROR")
    warnings.filterwarnings("ignore")
    captured: dict[str, list[str]] = {}
    send_queue = os.environ["SEND_QUEUE_URL"]
    os.environ["SYNC_ACCEPT_LIMIT"] = "1"  # every size takes the path a big request takes
    deps = Deps.from_env()
    calls = _stub_everything(captured, deps)
    acceptance = Acceptance(deps)

    def taken(kind: type[Any]) -> list[Any]:
        bodies = captured.pop(send_queue, [])
        return [kind.model_validate_json(b) for b in bodies]

    def delivery() -> Delivery:
        return Delivery(kind="bench", id=uuid.uuid4().hex, deadline=time.time() + 900)

    def payload(count: int) -> str:
        return json.dumps(
            {"vendor": "sms57", "content": "【Acme】Your code is 4711", "recipients": numbers("sms57", count)}
        )

    def send_all(count: int) -> tuple[float, float, float]:
        """CPU seconds of one request of `count`: the API's answer (parse, keep the rows), the
        reading job (rows -> checked parts), and writing the parts."""
        captured.clear()
        body = payload(count)
        t0 = time.process_time()
        acceptance.accept(parse_request(body), delivery())
        t1 = time.process_time()
        for job in taken(AcceptJob):
            acceptance.run_job(job.smsrelay_job, delivery())
        t2 = time.process_time()
        for part in taken(SendPart):
            acceptance.process_part(part, delivery())
        return t1 - t0, t2 - t1, time.process_time() - t2

    send_all(2000)  # warm: first adapter, first pydantic schemas
    accept_s, read_s, part_s = send_all(n)
    limit = deps.vendors.adapter("sms57").batch_limit
    chunk_numbers = numbers("sms57", limit)
    chunk_count = max(1, n // limit)

    def chunk(i: int) -> DispatchChunk:
        return DispatchChunk.model_validate(
            {
                "chunk_id": f"bench.0.{i}",
                "request_id": "bench",
                "vendor": "sms57",
                "fallback": [],
                "content": "【Acme】Your code is 4711",
                "items": [{"index": i * limit + j, "to": number} for j, number in enumerate(chunk_numbers)],
            }
        )

    dispatcher = Dispatcher(deps)
    dispatcher.dispatch(chunk(0))  # warm, and fills the canned vendor answer
    bodies = [chunk(i).model_dump_json() for i in range(chunk_count)]
    t0 = time.process_time()
    for body in bodies:  # as the handler does: parse the queue body, dispatch
        Dispatcher(deps).dispatch(DispatchChunk.model_validate_json(body))
    dispatch_s = time.process_time() - t0
    dispatched = chunk_count * limit

    # Peak Python memory (tracemalloc) for a request of memory_n, each step as its own invocation
    # would run it: the API's answer (parse the body, keep the rows), the reading job (streams the
    # rows; keeps 16 bytes a distinct number for the duplicate check), one part; one dispatch.
    def peak(step: Callable[[], Any]) -> int:
        gc.collect()
        tracemalloc.start()
        step()
        value = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return value

    captured.clear()
    body = payload(memory_n)
    accept_peak = peak(lambda: acceptance.accept(parse_request(body), delivery()))
    (job,) = taken(AcceptJob)
    read_peak = peak(lambda: acceptance.run_job(job.smsrelay_job, delivery()))
    parts = captured.pop(send_queue, [])
    first = parts[0] if parts else None
    del parts
    part_peak = (
        peak(lambda: acceptance.process_part(SendPart.model_validate_json(first), delivery())) if first else 0
    )
    dispatch_peak = peak(lambda: Dispatcher(deps).dispatch(DispatchChunk.model_validate_json(bodies[0])))
    result = {
        "recipients": n,
        "send_us_per_recipient": (accept_s + read_s + part_s) * 1e6 / n,
        "send_accept_us_per_recipient": accept_s * 1e6 / n,
        "send_read_us_per_recipient": read_s * 1e6 / n,
        "send_parts_us_per_recipient": part_s * 1e6 / n,
        "dispatch_recipients": dispatched,
        "dispatch_us_per_recipient": dispatch_s * 1e6 / dispatched,
        "stub_calls": dict(calls),
        "memory": {
            "method": "tracemalloc peak (Python allocations) around direct calls, in a fresh interpreter",
            "send_recipients": memory_n,
            "send_accept_peak_mb": accept_peak / 2**20,
            "send_read_peak_mb": read_peak / 2**20,
            "send_part_peak_mb": part_peak / 2**20,
            "send_peak_mb": max(accept_peak, read_peak, part_peak) / 2**20,
            # the API's answer holds the body (grows with it); the job holds the duplicate check
            "send_peak_mb_at_1m": max(
                accept_peak * 1_000_000 / memory_n, read_peak * 1_000_000 / memory_n, part_peak
            )
            / 2**20,
            "dispatch_chunk": limit,
            "dispatch_peak_mb": dispatch_peak / 2**20,
        },
    }
    out.write_text(json.dumps(result))


# --------------------------------------------------------------------------- table


def build_rows(results: dict[str, Any]) -> tuple[list[list[str]], list[dict[str, Any]]]:
    rows: list[list[str]] = []
    targets: list[dict[str, Any]] = []

    def row(section: str, metric: str, value: str, against: str = "", verdict: str = "") -> None:
        rows.append([section, metric, value, against, verdict])

    def target(name: str, value: float | None, limit: float, higher: bool) -> str:
        ok = value is not None and (value >= limit if higher else value <= limit)
        targets.append({"target": name, "value": value, "limit": limit, "pass": ok})
        return "PASS" if ok else "MISS"

    f = results.get("fanout")
    if f:
        row(
            "fanout",
            f"recipients (sms57, push off){'' if f['recipients'] >= ISSUE_RECIPIENTS else ' [issue: 100,000]'}",
            f"{f['recipients']:,}",
        )
        if f.get("not_submitted"):  # the figures below then measure something else: say so
            row(
                "fanout",
                "NOT submitted (run is not valid)",
                f"{sum(f['not_submitted'].values()):,}",
                str(f["not_submitted"]),
            )
        row(
            "fanout",
            "wall time to last chunk submitted",
            f"{f['wall_s']:.1f} s",
            f"accept {f['accept_s']:.2f} s",
        )
        row(
            "fanout",
            "recipients/s",
            f"{f['recipients_per_s']:,.0f}",
            f"bare BatchWriteItem {f['bare_batch_write']['items_per_s']:,.0f} items/s",
        )
        row(
            "fanout",
            "throughput / bare write loop",
            f"{f['throughput_ratio']:.3f}x",
            ">= 0.5x",
            target("fanout throughput", f["throughput_ratio"], TARGET_FANOUT, True),
        )
        for op, r in f["requests"].items():
            if r["floor"] is None:
                row("fanout", op, f"{r['count']:,}", "no floor (not expected)")
                continue
            verdict = target(f"requests {op}", r["ratio"], TARGET_REQUESTS, False)
            row(
                "fanout",
                op,
                f"{r['count']:,}",
                f"floor {r['floor']:,} -> {r['ratio']:.2f}x (<= 1.05x)",
                verdict,
            )
    c = results.get("callbacks")
    if c:
        row(
            "callbacks",
            f"reports (5 vendors, pushed){'' if c['reports'] >= ISSUE_CALLBACKS else ' [issue: 20,000]'}",
            f"{c['reports']:,}",
            f"{c['pushes']:,} pushes",
        )
        row(
            "callbacks",
            "reports/s",
            f"{c['reports_per_s']:,.1f}",
            f"bare UpdateItem {c['bare_update']['updates_per_s']:,.0f}/s",
        )
        row(
            "callbacks",
            "throughput / bare update loop",
            f"{c['throughput_ratio']:.3f}x",
            ">= 0.5x",
            target("callbacks throughput", c["throughput_ratio"], TARGET_CALLBACKS, True),
        )
        row(
            "callbacks",
            "handler time per push p50 / p99",
            f"{c['handler_p50_ms']:.1f} / {c['handler_p99_ms']:.1f} ms",
        )
        for vendor, v in c["by_vendor"].items():
            row(
                "callbacks",
                f"  {vendor}: pushes, p50 / p99",
                f"{v['pushes']:,}",
                f"{v['p50_ms'] or 0:.1f} / {v['p99_ms'] or 0:.1f} ms",
            )
        for op, r in c["requests"].items():
            row("callbacks", op, f"{r['count']:,}", f"{r['per_report']:.2f} per report")
    s = results.get("coldstart")
    if s:
        row("coldstart", "import boto3 (fresh interpreter)", f"{s['boto3_import_s'] * 1000:.0f} ms")
        for name, fn in s["functions"].items():
            verdict = target(f"cold import {name}", fn["ratio_to_boto3"], TARGET_IMPORT, False)
            row(
                "coldstart",
                f"import app: {name}",
                f"{fn['import_s'] * 1000:.0f} ms",
                f"{fn['ratio_to_boto3']:.2f}x boto3 (<= 1.5x); code {fn['code_bytes'] / 1024:.1f} KB",
                verdict,
            )
        layer = s["layer"]
        row(
            "coldstart",
            "shared layer installed size",
            f"{layer['bytes'] / 2**20:.1f} MB",
            f"smsrelay {layer['smsrelay_bytes'] / 1024:.0f} KB + {len(layer['dependencies'])} dists",
        )
    p = results.get("cpu")
    if p:
        m = p["memory"]
        row(
            "cpu",
            f"send, stubbed ({p['recipients']:,} recipients)",
            f"{p['send_us_per_recipient']:.1f} us/recipient",
            f"answer {p['send_accept_us_per_recipient']:.1f} + read {p['send_read_us_per_recipient']:.1f}"
            f" + parts {p['send_parts_us_per_recipient']:.1f}",
        )
        row(
            "cpu",
            f"dispatch, stubbed ({p['dispatch_recipients']:,} recipients)",
            f"{p['dispatch_us_per_recipient']:.1f} us/recipient",
        )
        at_1m = m["send_peak_mb"] if m["send_recipients"] >= FULL_RECIPIENTS else m["send_peak_mb_at_1m"]
        how = (
            "measured" if m["send_recipients"] >= FULL_RECIPIENTS else f"linear from {m['send_recipients']:,}"
        )
        row(
            "memory",
            f"send peak, {m['send_recipients']:,} recipients (tracemalloc)",
            f"{m['send_peak_mb']:.1f} MB",
            f"answer {m['send_accept_peak_mb']:.1f}, read {m['send_read_peak_mb']:.1f},"
            f" one part {m['send_part_peak_mb']:.1f}",
        )
        row(
            "memory",
            "send peak at 1,000,000 recipients",
            f"{at_1m:.0f} MB",
            f"< 512 MB ({how})",
            target("send memory at 1M", at_1m, TARGET_SEND_MB, False),
        )
        row(
            "memory",
            f"dispatch peak, one chunk of {m['dispatch_chunk']} (tracemalloc)",
            f"{m['dispatch_peak_mb']:.1f} MB",
        )
    return rows, targets


def render(rows: list[list[str]]) -> str:
    header = ["section", "metric", "value", "against", "target"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m smsrelay_local.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--full", action="store_true", help="the issue's sizes: 1,000,000 recipients, 20,000 reports"
    )
    parser.add_argument("--recipients", type=int, help=f"fan-out size (default {DEFAULT_RECIPIENTS:,})")
    parser.add_argument("--callbacks", type=int, help=f"delivery reports (default {DEFAULT_CALLBACKS:,})")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS))
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="JSON results (default bench/results/latest.json)"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--memory-recipients", type=int, default=100_000, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    recipients = args.recipients or (FULL_RECIPIENTS if args.full else DEFAULT_RECIPIENTS)
    if args.worker:
        worker(args.worker, recipients, args.memory_recipients)
        return 0
    callbacks = args.callbacks or (ISSUE_CALLBACKS if args.full else DEFAULT_CALLBACKS)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        print(f"unknown section(s): {', '.join(sorted(unknown))}; use {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, Any] = {
        "config": {
            "recipients": recipients,
            "callbacks": callbacks,
            "sections": only,
            "full": args.full,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "note": (
                "AWS is moto in this process: absolute rates are the emulator's; read the ratios. "
                f"Issue sizes: fan-out {ISSUE_RECIPIENTS:,}, callbacks {ISSUE_CALLBACKS:,}."
            ),
        }
    }
    started = time.perf_counter()
    if "fanout" in only or "callbacks" in only:
        from .stack import LocalStack

        print(
            f"starting the local stack (moto, simulators, functions); fan-out {recipients:,}, callbacks {callbacks:,}",
            file=sys.stderr,
        )
        with (
            quiet_stdout(),
            LocalStack(
                port=0, schedule_scale=1e6, simulator_options={"report_delay_s": 0.01, "seed": 7}
            ) as stack,
        ):
            from smsrelay.observability import logger

            logger.setLevel("ERROR")
            if "fanout" in only:
                print("fan-out ...", file=sys.stderr)
                results["fanout"] = run_fanout(stack, recipients)
            if "callbacks" in only:
                print("callbacks ...", file=sys.stderr)
                results["callbacks"] = run_callbacks(stack, callbacks)
    if "coldstart" in only:
        print("cold start ...", file=sys.stderr)
        results["coldstart"] = run_coldstart()
    if "cpu" in only:
        print("cpu and memory (stubbed, subprocess) ...", file=sys.stderr)
        cpu_n = recipients if args.full or args.recipients else 100_000
        results["cpu"] = run_cpu(
            cpu_n, min(cpu_n, args.memory_recipients) if not args.full else FULL_RECIPIENTS
        )
    rows, targets = build_rows(results)
    results["targets"] = targets
    results["table"] = [
        dict(zip(["section", "metric", "value", "against", "target"], r, strict=True)) for r in rows
    ]
    results["seconds"] = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(render(rows))
    missed = [t["target"] for t in targets if not t["pass"]]
    print(
        f"\n{len(targets) - len(missed)} of {len(targets)} targets met; results in {args.output}  ({results['seconds']:.0f} s)"
    )
    if recipients < ISSUE_RECIPIENTS and "fanout" in only:
        print(
            f"note: fan-out ran {recipients:,} recipients, not the issue's {ISSUE_RECIPIENTS:,} (--recipients N)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
