"""The scheduled poll against the simulators: pulled records are handed out once, so every vendor
answer is stored before the next call, a drain ends before the function's own deadline, and
neither an error on a later call nor one bad record costs what was handed out."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
from smsrelay.service import poll

from .harness import Context, Harness, load_function

EVENT = {"source": "aws.scheduler"}


def smsadmin_messages(env: Harness, count: int, first: int = 1) -> list[str]:
    """`count` smsadmin messages, submitted, with their reports waiting at the vendor for a pull."""
    numbers = [f"+86138{first + i:08d}" for i in range(count)]
    answer = env.send({"recipients": numbers, "content": "【Acme】hi", "vendor": "smsadmin"})
    sim = env.simulators["smsadmin"]
    env.run_all(settle=lambda: len(sim.pending_reports) >= count)
    return env.request(answer["request_id"], limit="1000")["messages"]


def delivered(env: Harness, request_messages: list[dict]) -> int:
    return sum(env.message(m["message_id"])["status"] == "delivered" for m in request_messages)


@pytest.mark.slow
def test_a_drain_stores_each_answer_and_ends_before_the_function_deadline(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 2, scaled down: 140 reports are 7 calls of 20 with the vendor's pause between
    them, more than the function has time for. Every call's 20 are stored at once; the drain
    stops in time and leaves the rest with the vendor (the next poll takes them)."""
    monkeypatch.setattr(poll, "FINAL_MARGIN_S", 0.5, raising=False)  # raising: the old poll had none
    monkeypatch.setattr(poll, "APPLY_MARGIN_S", 1.5, raising=False)
    env.write_vendor_settings(
        {"smsadmin": {"pull_interval_s": 1.0, "timeout_s": 1, "connect_timeout_s": 0.5}}
    )
    messages = smsadmin_messages(env, 140)
    sim = env.simulators["smsadmin"]
    timeout_s = 6.0
    finished = threading.Event()
    summaries: list[dict] = []

    def run() -> None:
        summaries.append(load_function("poll").handler(EVENT, Context("poll", timeout_s=timeout_s)))
        finished.set()

    started = time.monotonic()
    threading.Thread(target=run, daemon=True).start()
    # Lambda ends the function at its timeout: whatever is not stored by then is lost.
    assert finished.wait(timeout_s), "the poll ran past the function's timeout"
    assert time.monotonic() - started < timeout_s
    handed_out = 140 - len(sim.pending_reports)
    assert 0 < handed_out < 140 and handed_out % 20 == 0
    assert delivered(env, messages) == handed_out  # nothing handed out was lost
    assert "smsadmin" in summaries[0]["cut_short"]
    calls = [c for c in sim.requests if c["path"].endswith("/report/")]
    assert all(b["time"] - a["time"] >= 1.0 for a, b in itertools.pairwise(calls))  # the pause


@pytest.mark.slow
def test_an_error_on_a_later_call_keeps_the_earlier_calls_applied(env: Harness) -> None:
    """Finding 2: the third call fails; the 40 reports of the first two stay applied, the 20 the
    vendor still holds come with the next poll."""
    messages = smsadmin_messages(env, 60)
    sim = env.simulators["smsadmin"]
    sim.inject_fault("http503", path="/report/", after=2)
    summary = env.poll()
    assert "smsadmin" in summary["errors"]
    assert delivered(env, messages) == 40
    env.poll()
    assert delivered(env, messages) == 60


def test_a_bad_pulled_record_is_skipped_and_counted_not_fatal(
    env: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 2: a non-digit mobile among the records costs that record only."""
    messages = smsadmin_messages(env, 5)
    sim = env.simulators["smsadmin"]
    sim.raw_report_lines.append("1380000000x/2026-11-25 18:15:30/L1/DELIVRD/")
    capsys.readouterr()
    summary = env.poll()
    assert "smsadmin" not in summary["errors"] and summary["unreadable"] == 1
    assert delivered(env, messages) == 5
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "UnreadableRecords" in line
    ]
    assert metrics and metrics[0]["vendor"] == "smsadmin"


def test_a_report_line_glued_to_another_never_turns_delivered_into_undelivered(env: Harness) -> None:
    """Finding 3: a line with a leading space followed a delivered report; it was glued onto it,
    making it UNDELIVERED (final) and losing its own report."""
    first, second = smsadmin_messages(env, 2, first=71)
    sim = env.simulators["smsadmin"]
    with sim.lock:
        records = list(sim.pending_reports)
        sim.pending_reports.clear()
    when = "2026-11-25 18:15:30"
    sim.raw_report_lines.extend(
        [
            f"{records[0].mobile}/{when}/{records[0].vendor_ref}/DELIVRD/",
            f" {records[1].mobile}/{when}/{records[1].vendor_ref}/DELIVRD/",
        ]
    )
    env.poll()
    assert env.message(first["message_id"])["status"] == "delivered"
    assert env.message(second["message_id"])["status"] == "delivered"


def test_smsadmin_replies_keep_their_extension(env: Harness) -> None:
    """Finding 10: the 子码 of a pulled reply is the `to` of SMS Received."""
    env.simulators["smsadmin"].inject_inbound("13800000081", "好的", subcode="8801")
    env.poll()
    received = [e["detail"] for e in env.events() if e["detail-type"] == "SMS Received"]
    assert [(r["from"], r["to"], r["content"]) for r in received] == [("+8613800000081", "8801", "好的")]


def test_sms57_pulls_are_applied_to_each_record_s_own_message(env: Harness) -> None:
    """Every pulled record is matched by its own mid and number."""
    answer = env.send(
        {"recipients": ["+8613800000091", "+8613800004040"], "content": "【Acme】hi", "vendor": "sms57"}
    )
    sim = env.simulators["sms57"]
    env.run_all(settle=lambda: len(sim.pending_reports) >= 2)
    env.poll()
    statuses = {env.message(m)["to"]: env.message(m)["status"] for m in answer["message_ids"]}
    assert statuses == {"+8613800000091": "delivered", "+8613800004040": "undelivered"}


def test_poll_flags_each_balance_against_its_alarm_threshold(
    env: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """The balance alarm watches VendorBalanceLow: 1 where the balance read is below the vendor's
    balance_alarm_below setting (its own unit), else 0; without the setting, the adapter's default."""
    env.write_vendor_settings({"kxt3": {"balance_alarm_below": 10**12}, "sms57": {"balance_alarm_below": -1}})
    capsys.readouterr()
    env.poll()
    low: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if '"VendorBalanceLow"' in line:
            record = json.loads(line)
            value = record["VendorBalanceLow"]  # EMF may carry a list of values
            low[record["vendor"]] = value[-1] if isinstance(value, list) else value
    assert low["kxt3"] == 1.0 and low["sms57"] == 0.0
    assert set(low) == {"sms57", "kxt3", "smsadmin", "intl", "santo"}
