"""Vendor health: a vendor failing too often is skipped for a cool-down (its traffic goes to the
next vendor of the route, at routing and at dispatch); a low balance steers traffic away too."""

from __future__ import annotations

import time

import pytest
from smsrelay.dal import HealthItem
from smsrelay.deps import Deps

from tests.helpers import TEXT, assert_promises, reconfigure, route, sends, vendor_settings

from .harness import Harness

NUMBERS = ["+8613800000001", "+8613800000002"]


def _health(vendor: str) -> HealthItem:
    return Deps.from_env().store.health.get(vendor)


def _open_circuit(vendor: str, until: float) -> None:
    Deps.from_env().store.health.open_circuit(vendor, until, time.time())


def test_calls_are_counted_with_latency(env: Harness) -> None:
    env.send({"recipients": NUMBERS, "content": TEXT, "vendor": "sms57"})
    env.drain("dispatch", "dispatch")
    item = _health("sms57")
    assert item.calls == 1 and item.errors == 0 and item.latency_ms >= 0


def test_failing_vendor_opens_the_circuit_and_later_traffic_goes_to_the_next(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(monkeypatch, "sms57", "kxt3")
    reconfigure(monkeypatch, HEALTH_MIN_CALLS="3", HEALTH_ERROR_THRESHOLD="0.5")
    env.simulators["sms57"].inject_fault("http503", count=1000)
    first = env.send({"recipients": NUMBERS, "content": TEXT})
    env.drain("dispatch", "dispatch")
    assert set(assert_promises(env, first["request_id"]).values()) == {"submitted"}  # failed over
    assert len(sends(env, "sms57")) == 3  # max_attempts, each one counted as an error
    assert _health("sms57").open_until > time.time()

    second = env.send({"recipients": ["+8613800000003"], "content": TEXT})
    env.drain("dispatch", "dispatch")
    assert len(sends(env, "sms57")) == 3  # skipped by routing: not called again
    message = env.message(second["message_ids"][0])
    assert message["status"] == "submitted" and message["vendor"] == "kxt3"
    assert [h["status"] for h in message["history"]] == ["queued", "submitted"]


def test_chunk_for_an_open_circuit_vendor_fails_over_at_dispatch_without_a_call(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(monkeypatch, "sms57", "kxt3")
    answer = env.send({"recipients": NUMBERS, "content": TEXT})  # routed to sms57: healthy then
    _open_circuit("sms57", time.time() + 60)  # it breaks before the chunk is dispatched
    env.drain("dispatch", "dispatch")
    assert not sends(env, "sms57") and len(sends(env, "kxt3")) == 1
    message = env.message(answer["message_ids"][0])
    assert message["vendor"] == "kxt3" and message["status"] == "submitted"
    assert ("queued", "sms57", "CIRCUIT_OPEN") in [
        (h["status"], h["vendor"], h["code"]) for h in message["history"]
    ]


def test_after_the_cool_down_the_vendor_takes_traffic_again(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(monkeypatch, "sms57", "kxt3")
    _open_circuit("sms57", time.time() - 1)  # cool-down over
    answer = env.send({"recipients": NUMBERS, "content": TEXT})
    env.drain("dispatch", "dispatch")
    assert len(sends(env, "sms57")) == 1 and not sends(env, "kxt3")
    assert env.message(answer["message_ids"][0])["vendor"] == "sms57"


def test_a_vendor_alone_on_its_route_is_still_used_with_an_open_circuit(env: Harness) -> None:
    _open_circuit("sms57", time.time() + 60)
    answer = env.send({"recipients": NUMBERS, "content": TEXT, "vendor": "sms57"})
    env.drain("dispatch", "dispatch")
    assert set(assert_promises(env, answer["request_id"]).values()) == {"submitted"}


def test_balance_below_min_balance_steers_traffic_away(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    route(monkeypatch, "sms57", "kxt3")
    vendor_settings(env, {"sms57": {"min_balance": 10**12}})
    env.poll()  # reads every balance
    assert _health("sms57").balance
    answer = env.send({"recipients": NUMBERS, "content": TEXT})
    env.drain("dispatch", "dispatch")
    assert not sends(env, "sms57") and len(sends(env, "kxt3")) == 1
    assert env.message(answer["message_ids"][0])["vendor"] == "kxt3"

    vendor_settings(env, {"sms57": {"min_balance": 0}})  # enough again
    env.send({"recipients": ["+8613800000003"], "content": TEXT})
    env.drain("dispatch", "dispatch")
    assert len(sends(env, "sms57")) == 1
