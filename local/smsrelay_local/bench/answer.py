"""6. Answer time: `POST /messages` on the local stack's API, from the request to the answer, for
requests of 1,000 (taken in before the answer: `SyncAcceptLimit`) and 100,000 recipients (stored,
answered `accepting`, read after the answer)."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import requests

from .common import Table, numbers

DEFAULT_SIZES = (1_000, 100_000)
SYNC_REPEATS = 3


def run_answer(stack: Any, sizes: list[int]) -> dict[str, Any]:
    from smsrelay.config import Settings

    sync_limit = Settings.from_env().sync_accept_limit  # the stack's function environment
    found: dict[str, Any] = {}
    offset = 2_000_000
    for size in sizes:
        times, state = [], ""
        for _ in range(SYNC_REPEATS if size <= sync_limit else 1):
            body = json.dumps(
                {"vendor": "sms57", "content": "【Acme】Hi", "recipients": numbers("sms57", size, offset)},
                ensure_ascii=False,
            ).encode()
            offset += size + 10
            started = time.perf_counter()
            answer = requests.post(f"{stack.url}/messages", data=body, timeout=300)
            times.append(time.perf_counter() - started)
            answer.raise_for_status()
            state = answer.json()["state"]
        found[str(size)] = {"answer_s": statistics.median(times), "state": state, "body_bytes": len(body)}
    return {"sync_accept_limit": sync_limit, "sizes": found}


def add_rows(table: Table, r: dict[str, Any]) -> None:
    for size, m in r["sizes"].items():
        table.row(
            "answer",
            f"POST /messages, {int(size):,} recipients",
            f"{m['answer_s'] * 1000:,.0f} ms",
            f"state {m['state']}; body {m['body_bytes'] / 1024:,.0f} KB",
        )
