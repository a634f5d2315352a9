"""The benchmark runs end to end on a tiny size and writes its JSON (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_tiny_fanout_and_cpu(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "smsrelay_local.bench",
            "--recipients",
            "500",
            "--only",
            "fanout,cpu",
            "--output",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASS" in done.stdout or "MISS" in done.stdout
    results = json.loads(out.read_text())

    fanout = results["fanout"]
    assert fanout["recipients"] == 500 and fanout["accepted"] == 500
    for key in ("wall_s", "recipients_per_s", "throughput_ratio", "chunks", "parts", "vendor_max_batch"):
        assert key in fanout
    assert fanout["bare_batch_write"]["items"] == 500
    requests = fanout["requests"]
    for op in (
        "dynamodb:BatchWriteItem",
        "dynamodb:TransactWriteItems",
        "sqs:SendMessageBatch",
        "vendor:sms57:send",
    ):
        assert requests[op]["count"] >= 1
        assert requests[op]["floor"] >= 1
        assert requests[op]["ratio"] is not None

    cpu = results["cpu"]
    for key in ("send_us_per_recipient", "dispatch_us_per_recipient"):
        assert cpu[key] > 0
    for key in ("send_peak_mb", "send_peak_mb_at_1m", "dispatch_peak_mb", "method"):
        assert key in cpu["memory"]

    assert results["targets"] and all(
        {"target", "value", "limit", "pass"} <= set(t) for t in results["targets"]
    )
    assert results["table"] and {"section", "metric", "value", "against", "target"} <= set(
        results["table"][0]
    )
