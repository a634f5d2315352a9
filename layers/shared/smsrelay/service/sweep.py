"""The sweeper (scheduled): nothing waits forever, nothing is sent twice.

- Acceptances that stopped (their invocation died, a part's queue message was lost) are
  resumed: a reading job is queued again; finished ones not yet announced are announced.
- Recipients still `queued` past `queued_limit_s` are judged by their chunk's claim, with the
  same decision dispatch takes (`chunk_state.next_step`): a chunk nobody sent is taken over
  with a conditional move of its claim (to `swept`) before its recipients go on under a new
  chunk; one whose attempt died mid-call makes them `unknown`; a chunk being sent, held for
  its time, or already finished is never resent. Two sweeps at once take a chunk over once.
- Recipients `submitted` with no report after the report window become `unknown` (a late
  report still settles them)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from ..chunk_state import ChunkState, Next, next_step
from ..dal import MessageItem, NotFound, Transition, iso, utcnow
from ..deps import Deps
from ..models import AcceptJob, RequestState, SendOptionsSpec, Status
from ..observability import logger, metrics
from ..vendors import VENDOR_IDS
from . import chunks
from .common import announce, dumps, send_batches


@dataclass
class SweepSummary:
    requeued: int = 0
    unknown_dispatch: int = 0
    expired: int = 0
    resumed_requests: int = 0


def run(deps: Deps, limit: int = 10_000) -> SweepSummary:
    summary = SweepSummary()
    now = utcnow()
    _resume_acceptances(deps, summary)
    Sweeper(deps, summary).sweep_queued(now, limit)
    _expire_submitted(deps, now, limit, summary)
    if summary.requeued or summary.unknown_dispatch or summary.expired or summary.resumed_requests:
        logger.info("sweep done", extra={"summary": summary.__dict__})
    metrics.add_metric(name="SweptQueued", unit="Count", value=summary.requeued)
    metrics.add_metric(name="ExpiredSubmitted", unit="Count", value=summary.expired)
    return summary


def _resume_acceptances(deps: Deps, summary: SweepSummary) -> None:
    from .accept import Acceptance

    settings = deps.settings
    now = time.time()
    for record in deps.store.requests.unfinished():
        if record.state != RequestState.ACCEPTING:
            Acceptance(deps).announce(record)
            continue
        if (record.lease_until or 0) > now or record.touched_at > now - settings.accept_stale_s:
            continue  # someone holds it, or it moved lately
        send_batches(settings.send_queue_url, [dumps(AcceptJob(smsrelay_job=record.request_id))])
        summary.resumed_requests += 1
        logger.warning("resuming a stalled acceptance", extra={"request_id": record.request_id})


class Sweeper:
    def __init__(self, deps: Deps, summary: SweepSummary):
        self.deps = deps
        self.store = deps.store
        self.settings = deps.settings
        self.summary = summary
        self._parts: dict[tuple[str, int], bool] = {}
        self._options: dict[str, SendOptionsSpec] = {}

    def sweep_queued(self, now: dt.datetime, limit: int) -> None:
        stale = self.store.messages.queued_before(
            iso(now - dt.timedelta(seconds=self.settings.queued_limit_s)), limit=limit
        )
        by_chunk: dict[str, list[MessageItem]] = {}
        for item in stale:
            if self._part_written(item):  # an unfinished part belongs to its acceptance, not to us
                by_chunk.setdefault(item.chunk or "", []).append(item)
        for chunk_id, items in by_chunk.items():
            if chunk_id:
                self._judge(chunk_id, items)

    def _part_written(self, item: MessageItem) -> bool:
        if item.part is None:
            return True
        key = (item.request_id, item.part)
        if key not in self._parts:
            part = self.store.requests.get_part(*key)
            self._parts[key] = part.written if part else False
        return self._parts[key]

    def _judge(self, chunk_id: str, items: list[MessageItem]) -> None:
        claim = self.store.claims.get(chunk_id)
        step = next_step(
            claim, time.time(), self.settings.dispatch_lease_s, held_grace_s=self.settings.queued_limit_s
        )
        if step in (Next.WAIT, Next.HOLD):
            return  # being sent right now, or a scheduled send waiting for its time
        if step == Next.MARK_UNKNOWN:
            if (
                claim.state == ChunkState.INFLIGHT
                and self.store.claims.move(claim, ChunkState.UNKNOWN) is None
            ):
                return  # it moved meanwhile: judged again next time
            self.summary.unknown_dispatch += self._move(
                items, chunk_id, Status.UNKNOWN, "CLAIMED_NOT_RECORDED", "dispatch attempt died mid-call"
            )
            return
        if step == Next.SEND:
            if self.store.claims.move(claim, ChunkState.SWEPT) is None:
                return  # dispatch (or another sweep) took it meanwhile
            self._resend(chunk_id, items)
        elif claim.state == ChunkState.SWEPT:
            self._resend(chunk_id, items)  # a takeover that stopped midway: finish it
        else:
            # finished, yet a recipient it owns is still queued: it may have been sent; never resend
            logger.warning(
                "queued recipients under a finished chunk", extra={"chunk_id": chunk_id, "state": claim.state}
            )
            self.summary.unknown_dispatch += self._move(
                items, chunk_id, Status.UNKNOWN, "CHUNK_FINISHED", "its chunk finished without recording it"
            )

    def _resend(self, chunk_id: str, items: list[MessageItem]) -> None:
        """The taken-over chunk's recipients go on under a new chunk that owns only them."""
        items.sort(key=lambda i: i.index)
        options = self._request_options(items[0].request_id)
        if options is None:
            return
        new_id = f"{chunk_id}~s{items[0].index}"
        chunk = chunks.rebuild(new_id, items, options)
        moved = set(
            self.store.messages.hand_over(
                chunk.request_id,
                [i.index for i in chunk.items],
                from_chunk=chunk_id,
                chunk_id=new_id,
                next_vendor=chunk.vendor,
                fallback=chunk.fallback,
                vendor=chunk.vendor,
                code="SWEPT",
                description="sent again: its chunk was never sent",
                hop=chunk.hop,
            )
        )
        carried = [i for i in chunk.items if i.index in moved]
        if carried:
            send_batches(
                self.settings.dispatch_queue_url, [dumps(chunk.model_copy(update={"items": carried}))]
            )
            self.summary.requeued += len(carried)

    def _request_options(self, request_id: str) -> SendOptionsSpec | None:
        if request_id not in self._options:
            try:
                record = self.store.requests.load(request_id)
            except NotFound:
                return None
            self._options[request_id] = SendOptionsSpec.model_validate(record.options)
        return self._options[request_id]

    def _move(self, items: list[MessageItem], owner: str, status: Status, code: str, description: str) -> int:
        return _move(self.deps, items, status, code, description, owner=owner)


def _expire_submitted(deps: Deps, now: dt.datetime, limit: int, summary: SweepSummary) -> None:
    before = iso(now - dt.timedelta(hours=deps.settings.report_window_hours))
    for vendor in VENDOR_IDS:
        items = list(deps.store.messages.awaiting_report(vendor, before=before, limit=limit))
        if items:
            summary.expired += _move(
                deps, items, Status.UNKNOWN, "NO_REPORT", "no report within the report window"
            )


def _move(
    deps: Deps,
    items: list[MessageItem],
    status: Status,
    code: str,
    description: str,
    owner: str | None = None,
) -> int:
    now = utcnow()
    transitions = [
        Transition(
            request_id=i.request_id,
            index=i.index,
            previous=i.status,
            status=status,
            at=now,
            to=i.to,
            vendor=i.vendor,
            code=code,
            description=description,
            client_ref=i.client_ref,
            owner=owner,
        )
        for i in items
    ]
    applied, _ = deps.store.apply_transitions(transitions)
    announce(deps.events, applied)
    return len(applied)
