"""5. Priority lane: time to vendor of a one-time code sent while a bulk send of N recipients is
being dispatched, against the same code on an idle stack, in the same run (target <= 1.2x).
Each variant on its own stack: one dispatch queue for everything (as before the lanes: the
baseline), the priority queue, the priority queue with the blast paced (`bulk_rate_per_s`), and
`DirectDispatch=true` (send dispatches the code itself, through the same claim)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from .common import TARGET_CODE_SLOWDOWN, Table, numbers, quiet_stdout, request_counters, wait

CODE = "【Acme】Your code is 4711"
BLAST = "【Acme】Spring sale: 20% off everything"
CODES = 5  # codes per measurement: the median is the figure
DEFAULT_BULK = 30_000
#: messages/s for the paced variant: below what this emulator dispatches (~150-300/s), so a real cap
PACED_RATE = 100
#: variant -> (label, LocalStack keyword arguments, judged against the target)
VARIANTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "one_queue": ("one queue, before the lanes", {"env": {"PRIORITY_QUEUE_URL": ""}}, False),
    "queue": ("priority queue", {}, True),
    "paced": (
        f"priority queue, bulk paced {PACED_RATE}/s",
        {"settings": {"sms57": {"bulk_rate_per_s": PACED_RATE}}},
        True,
    ),
    "direct": ("DirectDispatch", {"parameters": {"DirectDispatch": "true"}}, True),
}


def _accepted_at(sim: Any, digits: str) -> float | None:
    with sim.lock:
        for record in reversed(sim.accepted):  # the code is among the latest
            if record.mobile.endswith(digits):
                return float(record.accepted_at)
    return None


def time_to_vendor(stack: Any, number: str) -> tuple[float, float]:
    """Seconds from the send invocation to the simulator's acceptance of the code, and of
    that the send invocation's own (taking the code in; with direct dispatch, sending it too)."""
    sim = stack.simulators["sms57"]
    started = time.time()
    stack.invoke(
        "send", {"recipients": [number], "content": CODE, "vendor": "sms57", "category": "transactional"}
    )
    answered = time.time()
    digits = number[-10:]
    wait(lambda: _accepted_at(sim, digits) is not None, timeout=120, what="code to vendor", every=0.005)
    return (_accepted_at(sim, digits) or started) - started, answered - started


def _codes(stack: Any, offset: int) -> tuple[list[float], list[float]]:
    times, sends = [], []
    for number in numbers("sms57", CODES, offset=offset):
        total, send = time_to_vendor(stack, number.replace("+86138", "+86139"))
        times.append(total)
        sends.append(send)
        time.sleep(0.2)  # codes come one by one, not as a burst
    return times, sends


def measure(bulk: int, options: dict[str, Any]) -> dict[str, Any]:
    from ..stack import LocalStack

    with (
        quiet_stdout(),
        LocalStack(
            port=0, schedule_scale=1e6, simulator_options={"report_delay_s": 0.01, "seed": 7}, **options
        ) as stack,
    ):
        from smsrelay.observability import logger

        logger.setLevel("ERROR")
        sim = stack.simulators["sms57"]
        sim.push_url = None
        sim.balance = 1e12
        time_to_vendor(stack, "+8613999999991")  # warm: first chunk through the lane
        idle, idle_send = _codes(stack, offset=0)
        before = len(sim.accepted)
        answer = stack.invoke(
            "send",
            {
                "vendor": "sms57",
                "content": BLAST,
                "recipients": numbers("sms57", bulk),
                "category": "marketing",
            },
        )
        request_id = answer["request_id"]
        wait(lambda: len(sim.accepted) > before, timeout=600, what="bulk dispatch to start")
        busy, busy_send = _codes(stack, offset=1000)
        left = bulk - request_counters(stack, request_id).get("submitted", 0)
    return {
        "idle_s": statistics.median(idle),
        "busy_s": statistics.median(busy),
        "ratio": statistics.median(busy) / statistics.median(idle),
        # the part of it spent in send (with the queue hop, the rest is queue and dispatch)
        "idle_send_s": statistics.median(idle_send),
        "busy_send_s": statistics.median(busy_send),
        "idle_all_s": idle,
        "busy_all_s": busy,
        # the codes measured a busy stack only if the blast was still going when the last went out
        "bulk_left_after_codes": left,
    }


def run_priority(bulk: int) -> dict[str, Any]:
    return {"bulk_recipients": bulk, "codes": CODES} | {
        key: measure(bulk, options) for key, (_, options, _) in VARIANTS.items()
    }


def add_rows(table: Table, r: dict[str, Any]) -> None:
    bulk = r["bulk_recipients"]
    for key, (how, _, judged) in VARIANTS.items():
        m = r[key]
        table.row(
            "priority",
            f"code to vendor, idle ({how})",
            f"{m['idle_s'] * 1000:.0f} ms",
            f"median of {r['codes']}; in send {m['idle_send_s'] * 1000:.0f} ms",
        )
        note = "" if m["bulk_left_after_codes"] > 0 else "; blast ended before the codes: not a busy figure"
        table.row(
            "priority",
            f"code to vendor during a {bulk:,} bulk send ({how})",
            f"{m['busy_s'] * 1000:.0f} ms",
            f"{m['ratio']:.2f}x idle{' (<= 1.2x)' if judged else ''}; in send {m['busy_send_s'] * 1000:.0f} ms;"
            f" {m['bulk_left_after_codes']:,} bulk still queued{note}",
            table.target(f"code slowdown ({key})", m["ratio"], TARGET_CODE_SLOWDOWN, False) if judged else "",
        )
    saved = r["queue"]["idle_s"] - r["direct"]["idle_s"]
    table.row(
        "priority", "direct dispatch saves (idle code)", f"{saved * 1000:.0f} ms", "queue hop minus direct"
    )
