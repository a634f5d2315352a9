"""Send one chunk to its vendor, exactly once.

The chunk is claimed in DynamoDB before the vendor call. On redelivery the claim decides:
done -> nothing to do; claimed by a live attempt -> come back later; claimed by an attempt that
died and may have reached the vendor -> its recipients become `unknown` (never resent blind),
unless the vendor deduplicates a resend with the same reference."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

from ..config import Settings, get_settings
from ..dal import NotFound, Store, Transition, utcnow
from ..events import publish
from ..models import ALLOWED_FROM, ChunkItem, DispatchChunk, Status
from ..observability import logger, metrics, vendor_metric
from ..vendor_config import VendorNotConfigured, get_adapter
from ..vendors import Capability, Outcome, SendOptions, SubmitResult, VendorAdapter, VendorError
from . import dispatch_hooks, quiet_hours
from .common import dumps, send_batches, status_events
from .reports import apply_early_reports, count_statuses
from .send import cut


class Redeliver(Exception):
    """Leave the queue message to come back after `delay_s` (visibility timeout backoff)."""

    def __init__(self, reason: str, delay_s: int):
        super().__init__(reason)
        self.delay_s = delay_s


class Dispatcher:
    def __init__(self, settings: Settings | None = None, store: Store | None = None):
        self.settings = settings or get_settings()
        self.store = store or Store(self.settings)

    # ------------------------------------------------------------------ entry
    def dispatch(self, chunk: DispatchChunk) -> str:
        """Handle one chunk; returns what happened (for logs and tests). Raises Redeliver to retry later."""
        if self._hold(chunk):
            return "held"
        try:
            adapter = get_adapter(chunk.vendor, self.settings)
        except VendorNotConfigured as exc:
            return self._fail_over(chunk, chunk.items, code="NOT_CONFIGURED", description=str(exc))
        if (instead := dispatch_hooks.before_call(self, chunk, adapter)) is not None:
            return instead  # quiet hours (held) or vendor health (failed over without a call)
        claim = self.store.get_chunk(chunk.chunk_id)
        state = claim["state"] if claim else None
        if state in ("done", "unknown", "failed", "failed_over", "swept", "split"):
            return "duplicate"  # swept: the sweeper resent its recipients under a new chunk
        if state == "inflight":
            if time.time() - float(claim["claimed_at"]) < self.settings.dispatch_lease_s:
                raise Redeliver("chunk is being sent by another invocation", self.settings.dispatch_lease_s)
            if not adapter.supports(Capability.RESEND_SAFE):
                # The attempt that died may have reached the vendor: never resend blind.
                return self._mark_unknown(
                    chunk, claim, "CLAIMED_NOT_RECORDED", "earlier attempt died mid-call"
                )
        attempt = self.store.claim_chunk(chunk.chunk_id, vendor=chunk.vendor, previous=claim)
        if attempt is None:
            raise Redeliver("lost the claim race", 5)
        done = set(claim.get("done_idx", set())) if claim else set()
        items = [item for item in chunk.items if item.index not in done]
        return self._call(adapter, chunk, items, attempt)

    # ------------------------------------------------------------------ the vendor call
    def _call(
        self, adapter: VendorAdapter, chunk: DispatchChunk, items: list[ChunkItem], attempt: int
    ) -> str:
        native_time = adapter.supports(Capability.SCHEDULED_SEND)
        options = SendOptions(
            send_at=chunk.send_at if native_time and chunk.send_at and chunk.send_at > utcnow() else None,
            sender_id=chunk.sender_id,
            reference=chunk.chunk_id,
            daily_window=quiet_hours.native_window(adapter, chunk),
        )
        pairs = [
            (item.to, item.content if item.content is not None else chunk.content or "") for item in items
        ]
        started = time.perf_counter()
        try:
            if chunk.content is None:
                results = adapter.send_personalised(pairs, options)
            else:
                results = adapter.send([to for to, _ in pairs], chunk.content, options)
        except VendorError as exc:
            vendor_metric(
                "VendorLatency", chunk.vendor, (time.perf_counter() - started) * 1000, "Milliseconds"
            )
            dispatch_hooks.after_call(self, chunk, (time.perf_counter() - started) * 1000, exc)
            return self._on_error(adapter, chunk, items, attempt, exc)
        vendor_metric("VendorLatency", chunk.vendor, (time.perf_counter() - started) * 1000, "Milliseconds")
        dispatch_hooks.after_call(self, chunk, (time.perf_counter() - started) * 1000, None)
        self._record(adapter, chunk, items, attempt, results)
        self.store.set_chunk_state(chunk.chunk_id, "done", attempt)
        return "sent"

    def _record(
        self,
        adapter: VendorAdapter,
        chunk: DispatchChunk,
        items: Sequence[ChunkItem],
        attempt: int,
        results: Sequence[SubmitResult],
    ) -> list[ChunkItem]:
        """Write per-recipient outcomes; returns the items whose outcome was transient (to retry)."""
        by_number: dict[str, list[SubmitResult]] = {}
        for result in results:
            by_number.setdefault(result.to, []).append(result)
        now = utcnow()
        transitions: list[Transition] = []
        retry: list[ChunkItem] = []
        for item in items:
            queue = by_number.get(item.to)
            if not queue:
                continue
            result = queue.pop(0)
            if result.outcome == Outcome.OK and result.vendor_ref:
                transitions.append(self._transition(chunk, item, Status.SUBMITTED, now, result))
            elif result.outcome == Outcome.PERMANENT:
                transitions.append(self._transition(chunk, item, Status.REJECTED, now, result))
            else:
                retry.append(item)
        applied, conflicts = self.store.apply_transitions(transitions)
        if conflicts:
            logger.warning("messages moved before dispatch recorded them", extra={"count": len(conflicts)})
            applied += self._record_over_unknown(conflicts)
        count_statuses(applied)
        publish(status_events(applied))
        self._apply_early_reports([t for t in applied if t.ref_key])
        if retry:
            self._retry_or_fail_over(
                chunk, retry, attempt, code="RETRY", description="transient per-recipient code"
            )
        return retry

    def _record_over_unknown(self, conflicts: Sequence[Transition]) -> list[Transition]:
        """A redelivery judged this attempt dead (lease over) and marked its messages `unknown`
        while the vendor was still answering: the answer still settles them, and keeps the
        vendor reference that their reports match on."""
        again: list[Transition] = []
        for t in conflicts:
            try:
                current = Status(self.store.get_message(t.request_id, t.index)["status"])
            except NotFound:
                continue
            if current == Status.UNKNOWN and current in ALLOWED_FROM[t.status]:
                again.append(dataclasses.replace(t, previous=current))
        applied, _ = self.store.apply_transitions(again)
        return applied

    def _apply_early_reports(self, submitted: Sequence[Transition]) -> None:
        if submitted:  # their references were written with the transitions
            apply_early_reports(
                self.store.get_early_reports(t.ref_key for t in submitted if t.ref_key), self.store
            )

    def _transition(
        self,
        chunk: DispatchChunk,
        item: ChunkItem,
        status: Status,
        now,
        result: SubmitResult | None = None,
        code: str | None = None,
        description: str | None = None,
        previous: Status = Status.QUEUED,
    ) -> Transition:
        return Transition(
            request_id=chunk.request_id,
            index=item.index,
            previous=previous,
            status=status,
            at=now,
            to=item.to,
            vendor=chunk.vendor,
            vendor_ref=result.vendor_ref if result and status == Status.SUBMITTED else None,
            ref_key=result.match_key if result and status == Status.SUBMITTED else None,
            code=(result.code if result else code) or None,
            description=(result.description if result else description) or None,
            client_ref=chunk.client_ref,
        )

    # ------------------------------------------------------------------ failures
    def _on_error(
        self,
        adapter: VendorAdapter,
        chunk: DispatchChunk,
        items: list[ChunkItem],
        attempt: int,
        exc: VendorError,
    ) -> str:
        log = {
            "vendor": chunk.vendor,
            "chunk_id": chunk.chunk_id,
            "attempt": attempt,
            "error": type(exc).__name__,
            "code": exc.code,
        }
        done: set[int] = set()
        if exc.partial:  # earlier requests of this chunk went through: record them first
            self._record(adapter, chunk, items, attempt, exc.partial)
            answered = {r.to for r in exc.partial}
            done = {item.index for item in items if item.to in answered}
            items = [item for item in items if item.index not in done]
        if exc.may_have_reached and not adapter.supports(Capability.RESEND_SAFE):
            logger.warning("vendor call may have reached the vendor; recipients become unknown", extra=log)
            self._transitions(chunk, items, Status.UNKNOWN, exc.code or type(exc).__name__, str(exc))
            self.store.set_chunk_state(chunk.chunk_id, "unknown", attempt)
            metrics.add_metric(name="DispatchUnknown", unit="Count", value=len(items))
            return "unknown"
        if exc.outcome == Outcome.PERMANENT and exc.code in adapter.number_refusal_codes and len(items) > 1:
            # The vendor refused the whole request for a bad number without naming it, and sent
            # nothing: halve the chunk until the bad number stands alone, the others go out.
            logger.warning("vendor refused a number in the request; splitting the chunk", extra=log)
            return self._split(chunk, items, attempt, exc)
        if exc.outcome == Outcome.PERMANENT:
            logger.warning("vendor refused the request", extra=log)
            if chunk.fallback:
                return self._fail_over(chunk, items, exc.code, str(exc), attempt)
            self._transitions(
                chunk, items, Status.REJECTED, exc.code, getattr(exc, "description", "") or str(exc)
            )
            self.store.set_chunk_state(chunk.chunk_id, "failed", attempt)
            return "rejected"
        logger.warning("transient vendor error", extra=log)
        if attempt < self.settings.max_attempts:
            self.store.set_chunk_state(chunk.chunk_id, "retry", attempt, done_idx=done or {-1})
            raise Redeliver(f"transient: {exc}", self.settings.retry_base_delay_s * 2 ** (attempt - 1))
        return self._fail_over(chunk, items, exc.code or type(exc).__name__, str(exc), attempt)

    def _split(self, chunk: DispatchChunk, items: list[ChunkItem], attempt: int, exc: VendorError) -> str:
        middle = len(items) // 2
        halves = [
            chunk.model_copy(update={"chunk_id": f"{chunk.chunk_id}/{n}", "items": half})
            for n, half in enumerate((items[:middle], items[middle:]))
        ]
        for half in halves:
            self._hand_over(chunk, half, exc.code, "request refused for a bad number; split")
        send_batches(self.settings.dispatch_queue_url, [dumps(h) for h in halves])
        self.store.set_chunk_state(chunk.chunk_id, "split", attempt)
        return "split"

    def _retry_or_fail_over(
        self, chunk: DispatchChunk, items: list[ChunkItem], attempt: int, code: str, description: str
    ) -> None:
        if attempt < self.settings.max_attempts:
            retry = chunk.model_copy(update={"chunk_id": f"{chunk.chunk_id}~{attempt + 1}", "items": items})
            self._hand_over(chunk, retry, code, description)
            send_batches(
                self.settings.dispatch_queue_url,
                [dumps(retry)],
                [self.settings.retry_base_delay_s * 2 ** (attempt - 1)],
            )
        else:
            self._fail_over(chunk, items, code, description, None)

    def _fail_over(
        self,
        chunk: DispatchChunk,
        items: Sequence[ChunkItem],
        code: str,
        description: str,
        attempt: int | None = None,
    ) -> str:
        if not chunk.fallback:
            self._transitions(chunk, items, Status.FAILED, code, description)
            if attempt is not None:
                self.store.set_chunk_state(chunk.chunk_id, "failed", attempt)
            return "failed"
        vendor, rest = chunk.fallback[0], chunk.fallback[1:]
        logger.warning(
            "failing over",
            extra={"from": chunk.vendor, "to": vendor, "chunk_id": chunk.chunk_id, "code": code},
        )
        metrics.add_metric(name="FailOver", unit="Count", value=len(items))
        chunks = []
        groups: dict[str | None, list[ChunkItem]] = {}
        native = self._native_personalised(vendor)
        for item in items:
            text = item.content if item.content is not None else chunk.content
            key = None if chunk.content is None and native else text
            groups.setdefault(key, []).append(
                item if key is None else item.model_copy(update={"content": None})
            )
        for text, group in groups.items():
            for batch in cut(group, vendor, text):
                chunks.append(
                    chunk.model_copy(
                        update={
                            "chunk_id": f"{chunk.chunk_id}>{vendor}.{len(chunks)}",
                            "vendor": vendor,
                            "fallback": rest,
                            "content": text,
                            "items": batch,
                            "hop": chunk.hop + 1,
                        }
                    )
                )
        for follow_up in chunks:
            self._hand_over(chunk, follow_up, code, description)
        send_batches(self.settings.dispatch_queue_url, [dumps(c) for c in chunks])
        if attempt is not None:
            self.store.set_chunk_state(chunk.chunk_id, "failed_over", attempt)
        return "failed_over"

    def _hand_over(self, chunk: DispatchChunk, follow_up: DispatchChunk, code: str, description: str) -> None:
        """Before the follow-up is queued, its messages point at it and keep the vendor's code."""
        self.store.note_handover(
            chunk.request_id,
            [item.index for item in follow_up.items],
            chunk_id=follow_up.chunk_id,
            next_vendor=follow_up.vendor,
            fallback=follow_up.fallback,
            vendor=chunk.vendor,
            code=code,
            description=description,
        )

    def _native_personalised(self, vendor: str) -> bool:
        try:
            return get_adapter(vendor, self.settings).supports(Capability.PERSONALISED_NATIVE)
        except VendorNotConfigured:
            return False

    def _transitions(
        self, chunk: DispatchChunk, items: Sequence[ChunkItem], status: Status, code: str, description: str
    ) -> None:
        now = utcnow()
        transitions = [
            self._transition(chunk, item, status, now, code=code, description=description) for item in items
        ]
        applied, _ = self.store.apply_transitions(transitions)
        count_statuses(applied)
        publish(status_events(applied))

    def _mark_unknown(self, chunk: DispatchChunk, claim: dict, code: str, description: str) -> str:
        self._transitions(chunk, chunk.items, Status.UNKNOWN, code, description)
        self.store.set_chunk_state(chunk.chunk_id, "unknown", int(claim["attempt"]))
        metrics.add_metric(name="DispatchUnknown", unit="Count", value=len(chunk.items))
        return "unknown"

    def _hold(self, chunk: DispatchChunk) -> bool:
        """A chunk due later than SQS can delay comes back to the queue until it is due."""
        if chunk.send_at is None:
            return False
        try:
            if get_adapter(chunk.vendor, self.settings).supports(Capability.SCHEDULED_SEND):
                return False
        except VendorNotConfigured:
            return False
        wait = (chunk.send_at - utcnow()).total_seconds()
        if wait <= 0:
            return False
        # The claim says "held until": the sweeper leaves it alone until then. A chunk the sweeper
        # already took (swept) is dropped here: its recipients went on under a new chunk.
        if self.store.hold_chunk(chunk.chunk_id, chunk.send_at.timestamp()):
            send_batches(self.settings.dispatch_queue_url, [dumps(chunk)], [math.ceil(wait)])
        return True
