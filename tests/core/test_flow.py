"""Request -> dispatch -> simulator -> push or poll -> final status and events, per vendor."""

from __future__ import annotations

import pytest

from tests.helpers import wait_until

from .harness import Harness

NUMBERS = {
    "sms57": ["+8613800000001", "+8613800004040"],
    "kxt3": ["+8613800000011", "+8613800014040"],
    "smsadmin": ["+8613800000021", "+8613800024040"],
    "intl": ["+447911123456", "+447911124040"],
    "santo": ["+6591234567", "+6591234040"],
}


def statuses(env: Harness, answer: dict) -> list[str]:
    return [env.message(m)["status"] for m in answer["message_ids"]]


@pytest.mark.parametrize("vendor", list(NUMBERS))
def test_request_reaches_final_status_by_push(env: Harness, vendor: str) -> None:
    env.start_callback_server()
    answer = env.send(
        {"recipients": NUMBERS[vendor], "content": "【Acme】Your code is 4711", "vendor": vendor}
    )
    assert answer["accepted"] == 2 and answer["rejected"] == []
    env.run_all(settle=lambda: all(s in ("delivered", "undelivered") for s in statuses(env, answer)))
    first, second = (env.message(m) for m in answer["message_ids"])
    assert first["status"] == "delivered" and first["vendor"] == vendor and first["vendor_ref"]
    assert second["status"] == "undelivered" and second["code"]
    assert [h["status"] for h in first["history"]] == ["queued", "submitted", "delivered"]
    counts = env.request(answer["request_id"])["counts"]
    assert counts["delivered"] == 1 and counts["undelivered"] == 1 and counts["queued"] == 0
    kinds = [
        (e["detail"]["status"], e["detail"]["previous_status"])
        for e in env.events()
        if e["detail-type"] == "SMS Status Changed"
    ]
    assert kinds.count(("submitted", "queued")) == 2
    assert ("delivered", "submitted") in kinds and ("undelivered", "submitted") in kinds


@pytest.mark.parametrize("vendor", ["sms57", "smsadmin", "intl", "santo"])
def test_request_reaches_final_status_by_poll(env: Harness, vendor: str) -> None:
    answer = env.send(
        {"recipients": NUMBERS[vendor], "content": "【Acme】Your code is 4711", "vendor": vendor}
    )
    env.run_all()
    assert statuses(env, answer) == ["submitted", "submitted"]
    summaries: list[dict] = []

    def polled_to_the_end() -> bool:
        summaries.append(env.poll())
        return statuses(env, answer) == ["delivered", "undelivered"]

    wait_until(polled_to_the_end, what="the pulled reports")
    assert vendor in summaries[-1]["balances"]
    balance_events = [e for e in env.events() if e["detail-type"] == "SMS Vendor Balance"]
    assert {e["detail"]["vendor"] for e in balance_events} >= {vendor}
