"""2. Callbacks: delivery reports pushed by the five simulators (their own push code and formats)
to the stack's callback routes: reports/s and handler time, against a bare UpdateItem loop."""

from __future__ import annotations

import threading
import time
from typing import Any

from .common import (
    ISSUE_CALLBACKS,
    TARGET_CALLBACKS,
    VENDORS,
    Table,
    bare_update,
    idle,
    numbers,
    pct,
    quiesce,
    request_counters,
    wait,
)


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
        wait(
            lambda r=request_id: request_counters(stack, r).get("submitted", 0) >= per_vendor,
            timeout=max(600.0, total * 0.5),
            what=f"seeding {vendor}",
        )
    wait(lambda: idle(stack), timeout=600, what="dispatch to finish")
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
    quiesce(stack)
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
            c = request_counters(stack, request_id)
            if c.get("delivered", 0) + c.get("undelivered", 0) < per_vendor:
                return False
        return True

    wait(settled, timeout=max(600.0, total * 0.5), what="callbacks")
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


def add_rows(table: Table, c: dict[str, Any]) -> None:
    table.row(
        "callbacks",
        f"reports (5 vendors, pushed){'' if c['reports'] >= ISSUE_CALLBACKS else ' [issue: 20,000]'}",
        f"{c['reports']:,}",
        f"{c['pushes']:,} pushes",
    )
    table.row(
        "callbacks",
        "reports/s",
        f"{c['reports_per_s']:,.1f}",
        f"bare UpdateItem {c['bare_update']['updates_per_s']:,.0f}/s",
    )
    table.row(
        "callbacks",
        "throughput / bare update loop",
        f"{c['throughput_ratio']:.3f}x",
        ">= 0.5x",
        table.target("callbacks throughput", c["throughput_ratio"], TARGET_CALLBACKS, True),
    )
    table.row(
        "callbacks",
        "handler time per push p50 / p99",
        f"{c['handler_p50_ms']:.1f} / {c['handler_p99_ms']:.1f} ms",
    )
    for vendor, v in c["by_vendor"].items():
        table.row(
            "callbacks",
            f"  {vendor}: pushes, p50 / p99",
            f"{v['pushes']:,}",
            f"{v['p50_ms'] or 0:.1f} / {v['p99_ms'] or 0:.1f} ms",
        )
    for op, r in c["requests"].items():
        table.row("callbacks", op, f"{r['count']:,}", f"{r['per_report']:.2f} per report")
