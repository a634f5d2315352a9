"""Quiet hours: a daily window per request or per route, in the recipient's local time; kxt3
keeps it natively, for the others the system holds the chunk until the window opens."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from tests.helpers import TEXT, assert_promises, messages, reconfigure, sends, wait_until

from .harness import Harness

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
WINDOW = {"start": "09:00", "end": "21:00"}


def _clock(monkeypatch: pytest.MonkeyPatch, fake_now: dt.datetime) -> None:
    """Move quiet hours' clock so that it reads `fake_now` now (and runs on from there)."""
    from smsrelay.service import quiet_hours

    offset = fake_now - dt.datetime.now(dt.UTC)
    monkeypatch.setattr(quiet_hours, "_utcnow", lambda: dt.datetime.now(dt.UTC) + offset)


def _today(hour: int, minute: int, second: int, tz: dt.tzinfo = SHANGHAI) -> dt.datetime:
    return dt.datetime.now(tz).replace(hour=hour, minute=minute, second=second, microsecond=0)


def test_window_is_validated(env: Harness) -> None:
    for window in ({"start": "9:00", "end": "21:00"}, {"start": "09:00", "end": "09:00"}, {"start": "09:00"}):
        body = json.dumps({"recipients": ["+8613800000001"], "content": TEXT, "window": window})
        status, answer = env.api("POST", "/messages", body=body)
        assert status == 400 and answer["errors"][0]["field"].startswith("window"), answer


@pytest.mark.slow
def test_chunk_outside_the_window_is_held_until_it_opens(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smsrelay.service import accept

    # As when the first queue delay (at most 15 minutes) is over: the chunk reaches dispatch early.
    monkeypatch.setattr(accept, "queue_delay", lambda chunk, adapter, now: 0)
    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    _clock(monkeypatch, _today(8, 59, 57))  # three seconds before the window opens in Shanghai
    answer = env.send(
        {"recipients": ["+8613800000001"], "content": TEXT, "vendor": "sms57", "window": WINDOW}
    )
    env.drain("dispatch", "dispatch")
    assert not sends(env, "sms57")
    assert {m["status"] for m in messages(env, answer["request_id"])} == {"queued"}
    time.sleep(1.2)
    assert env.invoke("sweep", {})["requeued"] == 0  # the sweeper leaves a held chunk alone
    started = time.time()

    def sent() -> list[dict]:
        env.drain("dispatch", "dispatch")
        return sends(env, "sms57")

    wait_until(sent, every=0.2, what="the held chunk to be sent")
    assert time.time() - started >= 1  # released when the window opened, not before
    assert set(assert_promises(env, answer["request_id"]).values()) == {"submitted"}


def test_inside_the_window_sends_at_once(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    _clock(monkeypatch, _today(12, 0, 0))
    answer = env.send(
        {"recipients": ["+8613800000001"], "content": TEXT, "vendor": "sms57", "window": WINDOW}
    )
    env.drain("dispatch", "dispatch")
    assert set(assert_promises(env, answer["request_id"]).values()) == {"submitted"}


def test_each_recipient_is_judged_in_its_own_local_time(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 14:00 UTC: 14:00/15:00 in London (inside 09-21), 22:00 in Shanghai (outside)
    _clock(monkeypatch, _today(14, 0, 0, dt.UTC))
    answer = env.send(
        {
            "recipients": ["+447911123456", "+8613800000001"],
            "content": TEXT,
            "vendor": "intl",
            "window": WINDOW,
        }
    )
    env.drain("dispatch", "dispatch")
    by_number = {m["to"]: m["status"] for m in messages(env, answer["request_id"])}
    assert by_number == {"+447911123456": "submitted", "+8613800000001": "queued"}
    assert [a.mobile[-10:] for a in env.simulators["intl"].accepted] == ["7911123456"]


def test_kxt3_gets_the_window_natively(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    _clock(monkeypatch, _today(23, 0, 0))  # outside: kxt3 holds it itself
    answer = env.send({"recipients": ["+8613800000001"], "content": TEXT, "vendor": "kxt3", "window": WINDOW})
    env.drain("dispatch", "dispatch")
    assert set(assert_promises(env, answer["request_id"]).values()) == {"submitted"}
    (record,) = env.simulators["kxt3"].accepted
    assert (record.extra["daily_begin"], record.extra["daily_end"]) == ("09:00:00", "21:00:00")


def test_routing_rule_window_applies_without_one_in_the_request(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = [{"prefix": "+86", "vendors": ["sms57"], "window": WINDOW}]
    reconfigure(monkeypatch, ROUTING_RULES=json.dumps(rules))
    _clock(monkeypatch, _today(22, 0, 0))
    answer = env.send({"recipients": ["+8613800000001"], "content": TEXT})
    env.drain("dispatch", "dispatch")
    assert not sends(env, "sms57")
    assert {m["status"] for m in messages(env, answer["request_id"])} == {"queued"}


def test_time_zone_of_numbers() -> None:
    from zoneinfo import ZoneInfo

    from smsrelay.service.quiet_hours import zone_of

    assert zone_of("+8613800000001", "UTC") == "Asia/Shanghai"
    now = dt.datetime.now(dt.UTC)
    uk = ZoneInfo(zone_of("+447911123456", "UTC"))  # a UK mobile: Guernsey/Jersey/London, all one clock
    assert now.astimezone(uk).utcoffset() == now.astimezone(ZoneInfo("Europe/London")).utcoffset()
    assert zone_of("+12125550123", "UTC") == "America/New_York"
    assert zone_of("+6591234567", "UTC") == "Asia/Singapore"
