"""Pieces the services share: status events from transitions, vendor limits, SQS batching."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from ..aws import client
from ..dal import Transition
from ..events import Publisher
from ..models import StatusChanged
from ..observability import vendor_metric

#: SendMessageBatch's long-standing limit, 256 KiB of message bodies in all (SQS raised it to
#: 1 MiB in 2025; 256 KiB stays safe everywhere). We send no message attributes, so the whole
#: limit is ours: three 5,000-number parts (~85 KB) go in one call (at 240,000 only two did).
SQS_BATCH_BYTES = 262_144
SQS_MAX_DELAY_S = 900


def status_events(transitions: Iterable[Transition]) -> list[StatusChanged]:
    return [
        StatusChanged(
            message_id=t.message_id,
            request_id=t.request_id,
            client_ref=t.client_ref,
            to=t.to,
            vendor=t.vendor,
            status=t.status,
            previous_status=t.previous,
            vendor_code=t.code,
            time=t.at,
            vendor_time=t.vendor_time,
        )
        for t in transitions
    ]


def announce(events: Publisher, applied: Sequence[Transition]) -> None:
    """Status moves that happened: counted per status and vendor, published as events."""
    if applied:
        count_statuses(applied)
        events.publish(status_events(applied))


def count_statuses(applied: Iterable[Transition]) -> None:
    counts: dict[tuple[str, str], int] = {}
    for t in applied:
        key = (t.status.value.capitalize(), t.vendor or "none")
        counts[key] = counts.get(key, 0) + 1
    for (name, vendor), value in counts.items():  # one EMF line per status and vendor, not per message
        vendor_metric(name, vendor, value)


def send_batches(queue_url: str, bodies: Sequence[str], delays: Sequence[int] | None = None) -> int:
    """SendMessageBatch in groups of 10 within the size limit; failed entries are retried. Returns calls made."""
    calls = 0
    group: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        nonlocal calls, group, size
        entries = group
        for _attempt in range(5):
            calls += 1
            answer = client("sqs").send_message_batch(QueueUrl=queue_url, Entries=entries)
            failed = {f["Id"] for f in answer.get("Failed", [])}
            if not failed:
                break
            entries = [e for e in entries if e["Id"] in failed]
        else:
            raise RuntimeError(f"{len(entries)} queue messages could not be sent")
        group, size = [], 0

    for n, body in enumerate(bodies):
        length = len(body.encode())
        if group and (len(group) == 10 or size + length > SQS_BATCH_BYTES):
            flush()
        entry: dict[str, Any] = {"Id": str(n), "MessageBody": body}
        if delays and delays[n]:
            entry["DelaySeconds"] = min(SQS_MAX_DELAY_S, max(0, int(delays[n])))
        group.append(entry)
        size += length
    if group:
        flush()
    return calls


def dumps(model: Any) -> str:
    return json.dumps(
        model.model_dump(mode="json", exclude_none=True), ensure_ascii=False, separators=(",", ":")
    )
