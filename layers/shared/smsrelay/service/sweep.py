"""The sweeper (scheduled): nothing waits forever.

- Recipients still `queued` past `queued_limit_s` whose chunk nobody finished are sent again
  under a new chunk, after the old chunk is marked `swept` (a late redelivery of it then does
  nothing); a chunk whose attempt died mid-call makes them `unknown`, as dispatch would.
- Recipients `submitted` with no report after the report window become `unknown` (a late report
  still settles them)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from ..config import Settings, get_settings
from ..dal import Store, Transition, iso, utcnow
from ..events import publish
from ..models import ChunkItem, DispatchChunk, SendWindow, Status
from ..observability import logger, metrics
from ..vendors import VENDOR_IDS
from .common import dumps, send_batches, status_events
from .reports import count_statuses


@dataclass
class SweepSummary:
    requeued: int = 0
    unknown_dispatch: int = 0
    expired: int = 0


def run(settings: Settings | None = None, store: Store | None = None, limit: int = 10_000) -> SweepSummary:
    settings = settings or get_settings()
    store = store or Store(settings)
    summary = SweepSummary()
    now = utcnow()
    _sweep_queued(store, settings, now, limit, summary)
    _expire_submitted(store, settings, now, limit, summary)
    if summary.requeued or summary.unknown_dispatch or summary.expired:
        logger.info("sweep done", extra={"summary": summary.__dict__})
    metrics.add_metric(name="SweptQueued", unit="Count", value=summary.requeued)
    metrics.add_metric(name="ExpiredSubmitted", unit="Count", value=summary.expired)
    return summary


def _sweep_queued(
    store: Store, settings: Settings, now: dt.datetime, limit: int, summary: SweepSummary
) -> None:
    stale = store.query_state(
        "Q", before=iso(now - dt.timedelta(seconds=settings.queued_limit_s)), limit=limit
    )
    by_chunk: dict[str, list[dict]] = {}
    for item in stale:
        by_chunk.setdefault(item.get("chunk", ""), []).append(item)
    requests: dict[str, dict] = {}
    for chunk_id, items in by_chunk.items():
        claim = store.get_chunk(chunk_id) if chunk_id else None
        state = claim["state"] if claim else None
        if state == "inflight" and time.time() - float(claim["claimed_at"]) < settings.dispatch_lease_s:
            continue  # being sent right now
        if state == "inflight" or state == "unknown":
            # The attempt died mid-call (or was already judged so): never resend blind.
            _move(store, items, Status.UNKNOWN, "CLAIMED_NOT_RECORDED", "dispatch attempt died mid-call")
            summary.unknown_dispatch += len(items)
            continue
        if state == "swept":
            continue  # already handed to a new chunk
        if state == "held" and time.time() < float(claim["due_at"]) + settings.queued_limit_s:
            continue  # a scheduled send waiting for its time (dispatch holds it)
        if state in (None, "retry", "held") and not store.take_over_chunk(chunk_id, claim):
            continue  # dispatch took it meanwhile
        # A finished chunk whose follow-up (retry or fail-over) never came: these are resent too.
        first = items[0]
        request = requests.get(first["request_id"]) or store.get_request(first["request_id"])
        requests[first["request_id"]] = request
        personalised = "content" in first
        chunk = DispatchChunk(
            chunk_id=f"{chunk_id or first['request_id']}~swept{int(now.timestamp())}",
            request_id=first["request_id"],
            vendor=first["vendor"],
            fallback=list(first.get("fallback", [])),
            content=None if personalised else request.get("content"),
            items=[
                ChunkItem(index=int(i["idx"]), to=i["to"], content=i.get("content") if personalised else None)
                for i in items
            ],
            client_ref=first.get("client_ref"),
            sender_id=request.get("sender_id"),
            window=SendWindow(start=first["window"][:5], end=first["window"][6:])
            if first.get("window")
            else None,
            zone=first.get("zone"),
        )
        send_batches(settings.dispatch_queue_url, [dumps(chunk)])
        summary.requeued += len(items)


def _expire_submitted(
    store: Store, settings: Settings, now: dt.datetime, limit: int, summary: SweepSummary
) -> None:
    before = iso(now - dt.timedelta(hours=settings.report_window_hours))
    for vendor in VENDOR_IDS:
        items = list(store.query_state(f"P#{vendor}", before=before, limit=limit))
        if items:
            moved = _move(store, items, Status.UNKNOWN, "NO_REPORT", "no report within the report window")
            summary.expired += moved


def _move(store: Store, items: list[dict], status: Status, code: str, description: str) -> int:
    now = utcnow()
    transitions = [
        Transition(
            request_id=i["request_id"],
            index=int(i["idx"]),
            previous=Status(i["status"]),
            status=status,
            at=now,
            to=i["to"],
            vendor=i.get("vendor"),
            code=code,
            description=description,
            client_ref=i.get("client_ref"),
        )
        for i in items
    ]
    applied, _ = store.apply_transitions(transitions)
    count_statuses(applied)
    publish(status_events(applied))
    return len(applied)
