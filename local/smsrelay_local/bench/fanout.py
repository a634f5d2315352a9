"""1. Fan-out: one send request of N recipients (sms57 simulator, pushes off) to the last chunk
submitted: wall time, AWS requests by operation and vendor calls, each against its floor, and the
throughput against a bare BatchWriteItem loop of the same items on the same emulator."""

from __future__ import annotations

import math
import time
from typing import Any

from .common import (
    ISSUE_RECIPIENTS,
    TARGET_FANOUT,
    TARGET_REQUESTS,
    Table,
    bare_batch_write,
    idle,
    numbers,
    quiesce,
    ratio,
    request_counters,
    wait,
)


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
    quiesce(stack)
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
        counters = request_counters(stack, request_id)
        return sum(counters.get(s, 0) for s in ("submitted", "rejected", "failed", "unknown")) >= n

    wait(dispatched, timeout=max(600.0, n * 0.05), what="fan-out")
    wall = time.perf_counter() - started
    wait(lambda: idle(stack), timeout=600, what="dispatch to finish")
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
    counters = request_counters(stack, request_id)
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


def add_rows(table: Table, f: dict[str, Any]) -> None:
    table.row(
        "fanout",
        f"recipients (sms57, push off){'' if f['recipients'] >= ISSUE_RECIPIENTS else ' [issue: 100,000]'}",
        f"{f['recipients']:,}",
    )
    if f.get("not_submitted"):  # the figures below then measure something else: say so
        table.row(
            "fanout",
            "NOT submitted (run is not valid)",
            f"{sum(f['not_submitted'].values()):,}",
            str(f["not_submitted"]),
        )
    table.row(
        "fanout",
        "wall time to last chunk submitted",
        f"{f['wall_s']:.1f} s",
        f"accept {f['accept_s']:.2f} s",
    )
    table.row(
        "fanout",
        "recipients/s",
        f"{f['recipients_per_s']:,.0f}",
        f"bare BatchWriteItem {f['bare_batch_write']['items_per_s']:,.0f} items/s",
    )
    table.row(
        "fanout",
        "throughput / bare write loop",
        f"{f['throughput_ratio']:.3f}x",
        ">= 0.5x",
        table.target("fanout throughput", f["throughput_ratio"], TARGET_FANOUT, True),
    )
    for op, r in f["requests"].items():
        if r["floor"] is None:
            table.row("fanout", op, f"{r['count']:,}", "no floor (not expected)")
            continue
        verdict = table.target(f"requests {op}", r["ratio"], TARGET_REQUESTS, False)
        table.row(
            "fanout",
            op,
            f"{r['count']:,}",
            f"floor {r['floor']:,} -> {r['ratio']:.2f}x (<= 1.05x)",
            verdict,
        )
