"""`make bench`: smsrelay's speed and cost, each figure set against a floor measured in the same run.

    python -m smsrelay_local.bench [--full] [--recipients N] [--callbacks N] [--priority-bulk N]
                                   [--answer-sizes 1000,100000] [--only fanout,callbacks,priority,answer,coldstart,cpu]

1. fanout     one send request of N recipients (sms57 simulator, pushes off) to the last chunk submitted:
              wall time, AWS requests by operation and vendor calls, each against its floor, and the
              throughput against a bare BatchWriteItem loop of the same items on the same emulator.
2. callbacks  delivery reports pushed by the five simulators (their own push code and formats) to
              the stack's callback routes: reports/s and handler time, against a bare UpdateItem loop.
3. coldstart  `import app` of every function in a fresh interpreter, against `import boto3` alone;
              installed size of the shared layer (smsrelay + its runtime deps) and of each function.
4. cpu        µs per recipient of send and dispatch with AWS and vendor HTTP stubbed (a subprocess),
              and their peak Python memory (tracemalloc).
5. priority   time to vendor of a one-time code during a bulk send of N (default 30,000) against
              the same code on an idle stack, with the queue hop and with direct dispatch.
6. answer     POST /messages to the answer, for 1,000 and 100,000 recipients.

One module per section (this package); this one runs them and prints the table.

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
import json
import logging
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from . import answer, coldstart, cpu, fanout, priority
from . import callbacks as callbacks_section
from .common import (
    DEFAULT_CALLBACKS,
    DEFAULT_RECIPIENTS,
    FULL_RECIPIENTS,
    ISSUE_CALLBACKS,
    ISSUE_RECIPIENTS,
    RESULTS,
    Table,
    quiet_stdout,
)
from .fanout import fanout_floors

__all__ = ["fanout_floors", "main"]

#: the sections in the table's order
SECTION_MODULES = {
    "fanout": fanout,
    "callbacks": callbacks_section,
    "priority": priority,
    "answer": answer,
    "coldstart": coldstart,
    "cpu": cpu,
}
SECTIONS = tuple(SECTION_MODULES)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m smsrelay_local.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--full", action="store_true", help="the issue's sizes: 1,000,000 recipients, 20,000 reports"
    )
    parser.add_argument("--recipients", type=int, help=f"fan-out size (default {DEFAULT_RECIPIENTS:,})")
    parser.add_argument("--callbacks", type=int, help=f"delivery reports (default {DEFAULT_CALLBACKS:,})")
    parser.add_argument(
        "--priority-bulk",
        type=int,
        default=priority.DEFAULT_BULK,
        help=f"bulk send the codes race (default {priority.DEFAULT_BULK:,})",
    )
    parser.add_argument(
        "--answer-sizes",
        default=",".join(str(n) for n in answer.DEFAULT_SIZES),
        help="POST /messages sizes (default 1000,100000)",
    )
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
        cpu.worker(args.worker, recipients, args.memory_recipients)
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
    if {"fanout", "callbacks", "answer"} & set(only):
        from ..stack import LocalStack

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
                results["fanout"] = fanout.run_fanout(stack, recipients)
            if "callbacks" in only:
                print("callbacks ...", file=sys.stderr)
                results["callbacks"] = callbacks_section.run_callbacks(stack, callbacks)
            if "answer" in only:  # last: the big request is still read after its answer
                print("answer time ...", file=sys.stderr)
                sizes = [int(n) for n in args.answer_sizes.split(",") if n.strip()]
                results["answer"] = answer.run_answer(stack, sizes)
    if "priority" in only:  # its own stacks (LocalStack is one at a time)
        print(f"priority lane (bulk {args.priority_bulk:,}) ...", file=sys.stderr)
        results["priority"] = priority.run_priority(args.priority_bulk)
    if "coldstart" in only:
        print("cold start ...", file=sys.stderr)
        results["coldstart"] = coldstart.run_coldstart()
    if "cpu" in only:
        print("cpu and memory (stubbed, subprocess) ...", file=sys.stderr)
        cpu_n = recipients if args.full or args.recipients else 100_000
        results["cpu"] = cpu.run_cpu(
            cpu_n, min(cpu_n, args.memory_recipients) if not args.full else FULL_RECIPIENTS
        )
    table = Table()
    for name, section in SECTION_MODULES.items():
        if name in results:
            section.add_rows(table, results[name])
    results["targets"] = targets = table.targets
    results["table"] = [
        dict(zip(["section", "metric", "value", "against", "target"], r, strict=True)) for r in table.rows
    ]
    results["seconds"] = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(table.render())
    missed = [t["target"] for t in targets if not t["pass"]]
    print(
        f"\n{len(targets) - len(missed)} of {len(targets)} targets met; results in {args.output}  ({results['seconds']:.0f} s)"
    )
    if recipients < ISSUE_RECIPIENTS and "fanout" in only:
        print(
            f"note: fan-out ran {recipients:,} recipients, not the issue's {ISSUE_RECIPIENTS:,} (--recipients N)"
        )
    return 0
