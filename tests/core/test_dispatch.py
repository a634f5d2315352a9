"""Dispatch: scheduled sends (native or held) and personalised chunks after a fail-over."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.helpers import (
    TEXT,
    assert_promises,
    messages,
    reconfigure,
    route,
    sends,
    vendor_settings,
    wait_until,
)

from .harness import Harness

CN = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize("vendor", ["kxt3", "smsadmin", "intl"])
def test_native_scheduling_passes_the_time_to_the_vendor(env: Harness, vendor: str) -> None:
    at = (dt.datetime.now(CN) + dt.timedelta(hours=2)).replace(microsecond=0)
    number = "+447911123456" if vendor == "intl" else "+8613800000001"
    answer = env.send({"recipients": [number], "content": TEXT, "vendor": vendor, "send_at": at.isoformat()})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"}  # handed over now, the vendor sends at `at`
    (record,) = env.simulators[vendor].accepted
    if vendor == "intl":
        assert record.extra["send_at"] == at
    else:
        key = "at_time" if vendor == "kxt3" else "dtime"
        assert record.extra[key] == at.strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.slow
@pytest.mark.parametrize("vendor", ["sms57", "santo"])
def test_scheduled_send_without_native_support_is_held_until_due(
    env: Harness, vendor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smsrelay.service import accept

    # As when the first queue delay (at most 15 minutes) is over: the chunk reaches dispatch early.
    monkeypatch.setattr(accept, "queue_delay", lambda chunk, adapter, now: 0)
    reconfigure(monkeypatch, QUEUED_LIMIT_S="1")
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    number = "+6591234567" if vendor == "santo" else "+8613800000001"
    answer = env.send({"recipients": [number], "content": TEXT, "vendor": vendor, "send_at": at.isoformat()})
    assert env.drain("dispatch", "dispatch") == 1  # held: back to the queue with a delay
    time.sleep(1.2)
    assert env.invoke("sweep", {})["requeued"] == 0  # the sweeper leaves a held send alone
    env.drain("dispatch", "dispatch")
    assert not sends(env, vendor)
    assert {m["status"] for m in messages(env, answer["request_id"])} == {"queued"}

    def sent() -> list[dict]:
        env.drain("dispatch", "dispatch")
        return sends(env, vendor)

    wait_until(sent, every=0.2, what="the held chunk to be sent")
    (first,) = sends(env, vendor)
    assert first["time"] >= at.timestamp()
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"}


def test_personalised_chunk_is_split_by_text_after_fail_over(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    route(monkeypatch, "sms57", "kxt3")  # sms57 takes personalised batches natively, kxt3 does not
    vendor_settings(env, {"sms57": {"base_url": "http://127.0.0.1:9/sms"}})
    texts = {"+8613800000001": "【Acme】A", "+8613800000002": "【Acme】B", "+8613800000003": "【Acme】A"}
    answer = env.send({"messages": [{"to": to, "content": text} for to, text in texts.items()]})
    env.drain("dispatch", "dispatch")
    final = assert_promises(env, answer["request_id"])
    assert set(final.values()) == {"submitted"}
    assert {env.message(m)["vendor"] for m in answer["message_ids"]} == {"kxt3"}
    assert len(sends(env, "kxt3")) == 2  # one request per distinct text
    got = {"+86" + a.mobile: a.content for a in env.simulators["kxt3"].accepted}
    assert got == texts


@pytest.mark.parametrize(
    ("vendor", "numbers", "code"),
    [
        ("kxt3", ["+8613800000001", "+8613800000002", "+8613800004220", "+8613800000003"], "310"),
        ("intl", ["+447911123456", "+447911124220", "+447911123457"], "1007"),
    ],
)
def test_a_request_refused_for_one_bad_number_is_split_until_it_stands_alone(
    env: Harness, vendor: str, numbers: list[str], code: str
) -> None:
    answer = env.send({"recipients": numbers, "content": "【Acme】hi", "vendor": vendor})
    for _ in range(6):  # each split comes back through the queue
        env.drain("dispatch", "dispatch")
    statuses = {env.message(m)["to"]: env.message(m) for m in answer["message_ids"]}
    bad = next(n for n in numbers if n.endswith("4220"))
    assert statuses[bad]["status"] == "rejected" and statuses[bad]["code"] == code
    assert all(v["status"] == "submitted" for n, v in statuses.items() if n != bad)
    accepted = [a.mobile for a in env.simulators[vendor].accepted]
    assert len(accepted) == len(numbers) - 1 == len(set(accepted))  # each good number sent once
