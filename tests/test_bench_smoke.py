"""The benchmark runs end to end on a tiny size and writes its JSON (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from smsrelay.vendors import VENDOR_IDS

pytestmark = pytest.mark.slow  # runs the benchmarks at a tiny size

ROOT = Path(__file__).resolve().parents[1]


def test_bench_tiny_fanout_callbacks_and_cpu(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "smsrelay_local.bench",
            "--recipients",
            "500",
            "--callbacks",
            "25",
            "--priority-bulk",
            "300",
            "--answer-sizes",
            "20,1500",
            "--only",
            "fanout,callbacks,priority,answer,cpu",
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
    assert fanout["submitted"] == 500 and fanout["not_submitted"] == {}
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

    callbacks = results["callbacks"]
    assert callbacks["reports"] == 25 and set(callbacks["by_vendor"]) == set(VENDOR_IDS)
    assert callbacks["reports_per_s"] > 0 and callbacks["bare_update"]["updates"] == 25

    priority = results["priority"]
    assert priority["bulk_recipients"] == 300
    for lane in ("queue", "direct"):
        assert priority[lane]["idle_s"] > 0 and priority[lane]["busy_s"] > 0
        assert len(priority[lane]["busy_all_s"]) == priority["codes"]
    answer = results["answer"]["sizes"]
    assert answer["20"]["state"] == "accepted" and answer["1500"]["state"] == "accepting"

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


def test_fanout_floors_follow_the_chunks_a_request_is_cut_into() -> None:
    from smsrelay_local.bench import fanout_floors

    # 100,000 recipients: 20 parts of 5,000, each cut into 10 vendor calls of 500
    floors = fanout_floors(100_000, chunks=200, parts=20, max_batch=500, part_size=5_000)
    assert floors["vendor:sms57:send"] == 200
    assert floors["dynamodb:TransactWriteItems"] == 200 * 6  # 500 = 5 x 99 + 5
    assert floors["dynamodb:BatchWriteItem"] == 4_000 + 200 * 20  # messages, then references
    assert floors["events:PutEvents"] == 10_000
    assert floors["sqs:SendMessageBatch"] == 20 + 2
    assert floors["dynamodb:UpdateItem"] == 3 * 200 + 20 + 1
    # a ragged tail: 1,234 = 500 + 500 + 234 in one part
    assert (
        fanout_floors(1_234, chunks=3, parts=1, max_batch=500, part_size=5_000)["dynamodb:TransactWriteItems"]
        == 6 + 6 + 3
    )


def test_send_message_batch_floor_counts_entries_and_bytes() -> None:
    from smsrelay_local.bench import fanout_floors

    payloads = {"SendRequestsQueue": [20, 20 * 120_000], "DispatchQueue": [200, 200 * 10_000]}
    floors = fanout_floors(100_000, 200, 20, 500, 5_000, sqs_payloads=payloads)
    # parts of 120 KB go 2 a call (3 would pass 256 KiB): 10 calls, not 2; chunks: 20 of 10 entries
    assert floors["sqs:SendMessageBatch"] == 10 + 20
