"""A vendor that refuses our own setup (wrong password, IP not allowed, account disabled) never
makes the recipients `rejected`: the vendor's circuit opens, the operator is told at once
(`SMS Vendor Misconfigured`), the chunk fails over along its route or waits for the fix, and
the recipients end `failed` only when the route is exhausted and the hold is over."""

from __future__ import annotations

import time

import pytest

from tests.helpers import TEXT, assert_promises, messages, reconfigure, route, sends, vendor_settings

from .harness import Harness

NUMBERS = ["+8613800000001", "+8613800000002"]


def misconfigured_events(env: Harness) -> list[dict]:
    return [e["detail"] for e in env.events() if e["detail-type"] == "SMS Vendor Misconfigured"]


def test_a_wrong_password_fails_over_and_tells_the_operator(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(monkeypatch, "sms57", "kxt3")
    vendor_settings(env, {"sms57": {"password": "not-the-password"}})
    answer = env.send({"recipients": NUMBERS, "content": TEXT})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"}
    assert {m["vendor"] for m in messages(env, answer["request_id"])} == {"kxt3"}
    (event,) = misconfigured_events(env)
    assert event["vendor"] == "sms57" and event["code"] == "3" and event["meaning"]
    history = [h for h in env.message(answer["message_ids"][0])["history"] if h.get("vendor") == "sms57"]
    assert history and history[0]["code"] == "3"
    # the circuit is open: the next request goes to kxt3 first, without asking sms57 again
    calls = len(sends(env, "sms57"))
    second = env.send({"recipients": ["+8613800000003"], "content": TEXT})
    env.drain("dispatch", "dispatch")
    assert len(sends(env, "sms57")) == calls
    assert set(assert_promises(env, second["request_id"]).values()) == {"submitted"}
    assert len(misconfigured_events(env)) == 1  # told once per opening, not per chunk


def test_a_lone_vendor_waits_for_the_fix_and_then_sends(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconfigure(monkeypatch, HEALTH_COOLDOWN_S="1")
    vendor_settings(env, {"sms57": {"password": "not-the-password"}})
    answer = env.send({"recipients": NUMBERS, "content": TEXT, "vendor": "sms57"})
    env.drain("dispatch", "dispatch", max_rounds=1)
    assert {m["status"] for m in messages(env, answer["request_id"])} == {"queued"}  # waiting, not rejected
    assert misconfigured_events(env)[0]["vendor"] == "sms57"
    vendor_settings(env, {})  # the operator fixes the secret
    time.sleep(1.1)
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"}
    assert sum(1 for a in env.simulators["sms57"].accepted) == 2


def test_recipients_fail_only_when_the_hold_is_over(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    reconfigure(monkeypatch, HEALTH_COOLDOWN_S="1", MISCONFIGURED_HOLD_HOURS="0.0003")  # ~1 s
    vendor_settings(env, {"sms57": {"password": "not-the-password"}})
    answer = env.send({"recipients": NUMBERS, "content": TEXT, "vendor": "sms57"})
    env.drain("dispatch", "dispatch", max_rounds=1)
    assert {m["status"] for m in messages(env, answer["request_id"])} == {"queued"}
    time.sleep(1.2)
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"failed"}  # never `rejected`: not the recipients' fault
    assert env.message(answer["message_ids"][0])["code"] == "3"
