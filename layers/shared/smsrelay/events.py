"""Publish what happened to EventBridge (source `smsrelay`), batched 10 entries per PutEvents."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from pydantic import BaseModel

from .aws import client
from .models import DETAIL_TYPES, event_detail
from .observability import logger

SOURCE = "smsrelay"
_MAX_ENTRIES = 10
_MAX_BYTES = 240_000  # PutEvents takes 256 KB per call


class EventPublishError(RuntimeError):
    pass


class Publisher:
    """Puts events on one bus."""

    def __init__(self, bus_name: str):
        self.bus_name = bus_name

    def publish(self, events: Iterable[BaseModel]) -> int:
        return publish(events, self.bus_name)


def publish(events: Iterable[BaseModel], bus: str) -> int:
    """Send every event; failed entries are retried, and what still fails raises. Returns the count."""
    entries = [
        {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPES[type(event)],
            "Detail": json.dumps(event_detail(event), ensure_ascii=False),
            "EventBusName": bus,
        }
        for event in events
    ]
    batch: list[dict] = []
    size = 0
    for entry in entries:
        entry_size = len(entry["Detail"]) + 100
        if batch and (len(batch) == _MAX_ENTRIES or size + entry_size > _MAX_BYTES):
            _put(batch)
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        _put(batch)
    return len(entries)


def _put(batch: list[dict]) -> None:
    delay = 0.1
    for _attempt in range(5):
        answer = client("events").put_events(Entries=batch)
        if not answer.get("FailedEntryCount"):
            return
        batch = [
            entry for entry, result in zip(batch, answer["Entries"], strict=False) if result.get("ErrorCode")
        ]
        time.sleep(delay)
        delay *= 2
    logger.error("events could not be published", extra={"count": len(batch)})
    raise EventPublishError(f"{len(batch)} events could not be published")
