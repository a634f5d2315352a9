"""Send one chunk to its vendor, exactly once.

The chunk's claim (see `chunk_state`) is moved before every step that matters, and only from
the state it was read in: `inflight` before the vendor call; `unknown` before recipients are
marked unknown; `retry` as soon as the vendor's answer shows it took none of the remaining
recipients (before they are failed over, split, refused or retried); a final state last.
Whatever step a crash interrupts, the next look at the claim knows what may be done:
- never claimed, held, `retry`: send (a `retry` chunk sends only the recipients it still owns);
- `inflight` within its lease: another attempt is calling, come back later;
- `inflight` past its lease, or `unknown`: the attempt may have reached the vendor, its
  recipients become `unknown` and are never resent blind;
- anything else: nothing left to do.

An answer that may come after the vendor accepted (HTTP 500/502/504, a reset after the request
was written, a read timeout, an unreadable answer) is ambiguous: `unknown`, never resent.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

from ..chunk_state import ChunkState, Claim, Next, next_step
from ..dal import NotFound, Transition, utcnow
from ..deps import Deps
from ..models import ALLOWED_FROM, ChunkItem, DispatchChunk, Lane, Status
from ..observability import logger, metrics, vendor_metric
from ..vendors import Capability, Outcome, SendOptions, SubmitResult, VendorAdapter, VendorError
from . import chunks, health, quiet_hours
from .common import SQS_MAX_DELAY_S, announce, dumps, send_batches
from .pacing import Pacer
from .reports import apply_early_reports


class Redeliver(Exception):
    """Leave the queue message to come back after `delay_s` (visibility timeout backoff)."""

    def __init__(self, reason: str, delay_s: int):
        super().__init__(reason)
        self.delay_s = delay_s


class Dispatcher:
    def __init__(self, deps: Deps, pacer: Pacer | None = None):
        self.deps = deps
        self.settings = deps.settings
        self.store = deps.store
        self.pacer = pacer or Pacer(deps.store)

    # ------------------------------------------------------------------ entry
    def dispatch(self, chunk: DispatchChunk) -> str:
        """Handle one chunk; returns what happened (for logs and tests). Raises Redeliver to retry later."""
        claim = self.store.claims.get(chunk.chunk_id)
        step = next_step(claim, time.time(), self.settings.dispatch_lease_s)
        if step == Next.FINISHED:
            return "duplicate"  # done, failed, failed over, split, or swept (resent under a new chunk)
        if step == Next.WAIT:
            raise Redeliver("chunk is being sent by another invocation", self.settings.dispatch_lease_s)
        if step == Next.MARK_UNKNOWN:
            return self._mark_unknown(chunk, claim, "CLAIMED_NOT_RECORDED", "an attempt died mid-call")
        adapter = self._adapter(chunk.vendor)
        wait = chunks.wait_seconds(chunk, adapter, utcnow())
        if wait > 0:
            return self._hold(chunk, claim, wait)
        if (slot := self._pace(chunk, claim, adapter)) is not None:
            start, wait_s = slot
            return self._hold(chunk, claim, math.ceil(wait_s), "paced", slot=start)
        claimed = self.store.claims.move(claim, ChunkState.INFLIGHT, vendor=chunk.vendor)
        if claimed is None:
            raise Redeliver("lost the claim race", 5)
        # a chunk an earlier attempt called the vendor for (`retry`, or held since: pacing or
        # quiet hours may hold a retry) sends only the recipients it still owns
        items = self._owned(chunk, chunk.items) if claim.attempt > 0 else list(chunk.items)
        if not items:
            self.store.claims.move(claimed, ChunkState.DONE)
            return "duplicate"
        if adapter is None:
            return self._pass_on(chunk, claimed, items, "NOT_CONFIGURED", f"{chunk.vendor} is not configured")
        if chunk.fallback and (reason := health.unavailable_reason(self.deps, chunk.vendor)) is not None:
            what = "circuit open" if reason == health.CIRCUIT_OPEN else "balance below min_balance"
            return self._pass_on(chunk, claimed, items, reason, f"{chunk.vendor} skipped: {what}")
        return self._call(adapter, chunk, items, claimed)

    def _adapter(self, vendor: str) -> VendorAdapter | None:
        return self.deps.vendors.get(vendor)

    def _pace(
        self, chunk: DispatchChunk, claim: Claim, adapter: VendorAdapter | None
    ) -> tuple[float | None, float] | None:
        """Bulk chunks keep to their vendor's `bulk_rate_per_s` (service/pacing.py): None when
        this one may go now (its slot waited for), else (its slot's start, or None without
        one, and the seconds to wait)."""
        rate = adapter.settings.bulk_rate_per_s if adapter is not None else None
        if chunk.lane != Lane.BULK or not rate:
            return None
        start = claim.due_at if claim.paced and claim.due_at is not None else None
        if start is None or not self.pacer.on_time(start):
            start = self.pacer.reserve(chunk.vendor, rate, len(chunk.items))
            if start is None:
                return None, 1.0  # slots contended: ask again in a second, without a slot
        left = self.pacer.wait_for(start)
        return (start, left) if left > 0 else None

    def _owned(self, chunk: DispatchChunk, items: Sequence[ChunkItem]) -> list[ChunkItem]:
        """The items still queued and still this chunk's (an earlier attempt of it recorded or
        handed over the others before it stopped)."""
        mine = {
            m.index
            for m in self.store.messages.get_many(chunk.request_id, [i.index for i in items])
            if m.status == Status.QUEUED and m.chunk == chunk.chunk_id
        }
        return [item for item in items if item.index in mine]

    # ------------------------------------------------------------------ waiting
    def _hold(
        self, chunk: DispatchChunk, claim: Claim, wait: int, outcome: str = "held", slot: float | None = None
    ) -> str:
        """Back to the queue until its time (SQS delays 15 min at most): the claim says `held`
        until then (with its pacing slot, if it has one), so the sweeper leaves it alone."""
        due = slot if slot is not None else time.time() + wait
        if claim.state not in (None, ChunkState.HELD, ChunkState.RETRY):
            return "duplicate"
        if self.store.claims.move(claim, ChunkState.HELD, due_at=due, paced=slot is not None) is None:
            return "duplicate"  # taken meanwhile (e.g. swept: its recipients went on under a new chunk)
        send_batches(self.settings.queue_url(chunk.lane), [dumps(chunk)], [min(wait, SQS_MAX_DELAY_S)])
        if chunk.window is not None and quiet_hours.hold_seconds(chunk, None) > 0:
            metrics.add_metric(name="HeldForQuietHours", unit="Count", value=len(chunk.items))
            logger.info("chunk held for quiet hours", extra={"zone": chunk.zone, "wait_s": wait})
        return outcome

    # ------------------------------------------------------------------ the vendor call
    def _call(
        self, adapter: VendorAdapter, chunk: DispatchChunk, items: list[ChunkItem], claim: Claim
    ) -> str:
        native_time = adapter.supports(Capability.SCHEDULED_SEND)
        options = SendOptions(
            send_at=chunk.send_at if native_time and chunk.send_at and chunk.send_at > utcnow() else None,
            sender_id=chunk.sender_id,
            reference=chunk.chunk_id,
            attempt=claim.attempt,  # a new attempt takes a new vendor reference (smsadmin's linkid)
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
            self._count_call(chunk, started, exc)
            return self._on_error(adapter, chunk, items, claim, exc)
        self._count_call(chunk, started, None)
        self._record(chunk, items, claim, results)
        self.store.claims.move(claim, ChunkState.DONE)
        return "sent"

    def _count_call(self, chunk: DispatchChunk, started: float, error: VendorError | None) -> None:
        """Latency, and the call's outcome for the vendor's health: transport and transient
        failures count as errors (a refusal is about the request, not the vendor being down)."""
        latency_ms = (time.perf_counter() - started) * 1000
        vendor_metric("VendorLatency", chunk.vendor, latency_ms, "Milliseconds")
        failed = error is not None and error.outcome != Outcome.PERMANENT
        health.record_call(self.deps, chunk.vendor, error=failed, latency_ms=latency_ms)

    def _record(
        self, chunk: DispatchChunk, items: Sequence[ChunkItem], claim: Claim, results: Sequence[SubmitResult]
    ) -> None:
        """Write per-recipient outcomes. A recipient the answer leaves out may have been sent:
        unknown. Transient per-recipient codes go on under a follow-up chunk (or fail over)."""
        by_number: dict[str, list[SubmitResult]] = {}
        for result in results:
            by_number.setdefault(result.to, []).append(result)
        now = utcnow()
        transitions: list[Transition] = []
        retry: list[ChunkItem] = []
        unheard: list[ChunkItem] = []
        misconfigured: list[tuple[ChunkItem, SubmitResult]] = []
        for item in items:
            queue = by_number.get(item.to)
            if not queue:
                unheard.append(item)
                continue
            result = queue.pop(0)
            if result.outcome == Outcome.OK and result.vendor_ref:
                transitions.append(self._transition(chunk, item, Status.SUBMITTED, now, result))
            elif result.outcome == Outcome.PERMANENT:
                transitions.append(self._transition(chunk, item, Status.REJECTED, now, result))
            elif result.outcome == Outcome.OK:
                unheard.append(item)  # accepted without a reference to match its report on
            elif result.outcome == Outcome.CONFIGURATION:
                misconfigured.append((item, result))  # e.g. sms57 RESULT 10: our extno is wrong
            else:
                retry.append(item)
        applied, conflicts = self.store.apply_transitions(transitions)
        if conflicts:
            logger.warning("messages moved before dispatch recorded them", extra={"count": len(conflicts)})
            applied += self._record_over_unknown(conflicts)
        announce(self.deps.events, applied)
        self._apply_early_reports([t for t in applied if t.ref_key])
        if unheard:
            logger.warning(
                "vendor answer left recipients out; they become unknown", extra={"count": len(unheard)}
            )
            self._move(
                chunk, unheard, Status.UNKNOWN, "NO_RESULT", "the vendor's answer did not name this recipient"
            )
        if retry:
            self._retry_items(chunk, retry, claim)
        if misconfigured:
            result = misconfigured[0][1]
            self._misconfigured(chunk, [item for item, _ in misconfigured], result.code, result.description)

    def _record_over_unknown(self, conflicts: Sequence[Transition]) -> list[Transition]:
        """A redelivery judged this attempt dead (lease over) and marked its messages `unknown`
        while the vendor was still answering: the answer still settles them, and keeps the
        vendor reference that their reports match on."""
        again: list[Transition] = []
        for t in conflicts:
            try:
                current = self.store.messages.get(t.request_id, t.index).status
            except NotFound:
                continue
            if current == Status.UNKNOWN and current in ALLOWED_FROM[t.status]:
                again.append(dataclasses.replace(t, previous=current, owner=None))
        applied, _ = self.store.apply_transitions(again)
        return applied

    def _apply_early_reports(self, submitted: Sequence[Transition]) -> None:
        if submitted:  # their references were written with the transitions
            apply_early_reports(
                self.store.references.early(t.ref_key for t in submitted if t.ref_key), self.deps
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
    ) -> Transition:
        return Transition(
            request_id=chunk.request_id,
            index=item.index,
            previous=Status.QUEUED,
            status=status,
            at=now,
            to=item.to,
            vendor=chunk.vendor,
            vendor_ref=result.vendor_ref if result and status == Status.SUBMITTED else None,
            ref_key=result.match_key if result and status == Status.SUBMITTED else None,
            code=(result.code if result else code) or None,
            description=(result.description if result else description) or None,
            client_ref=chunk.client_ref,
            owner=chunk.chunk_id,
        )

    # ------------------------------------------------------------------ failures
    def _on_error(
        self,
        adapter: VendorAdapter,
        chunk: DispatchChunk,
        items: list[ChunkItem],
        claim: Claim,
        exc: VendorError,
    ) -> str:
        log = {
            "vendor": chunk.vendor,
            "chunk_id": chunk.chunk_id,
            "attempt": claim.attempt,
            "error": type(exc).__name__,
            "code": exc.code,
        }
        if exc.partial:  # earlier requests of this chunk went through: record them first
            answered = {r.to for r in exc.partial}
            self._record(chunk, [i for i in items if i.to in answered], claim, exc.partial)
            items = [item for item in items if item.to not in answered]
        if exc.may_have_reached:
            logger.warning("vendor call may have reached the vendor; recipients become unknown", extra=log)
            moved = self.store.claims.move(claim, ChunkState.UNKNOWN)
            if moved is not None:
                self._move(chunk, items, Status.UNKNOWN, exc.code or type(exc).__name__, str(exc))
                metrics.add_metric(name="DispatchUnknown", unit="Count", value=len(items))
            return "unknown"
        # The vendor took none of the remaining recipients: say so first, whatever comes next.
        retry = self.store.claims.move(claim, ChunkState.RETRY)
        if retry is None:
            return "duplicate"
        if exc.outcome == Outcome.PERMANENT and exc.code in adapter.number_refusal_codes and len(items) > 1:
            # The vendor refused the whole request for a bad number without naming it, and sent
            # nothing: halve the chunk until the bad number stands alone, the others go out.
            logger.warning("vendor refused a number in the request; splitting the chunk", extra=log)
            return self._split(chunk, items, retry, exc)
        description = getattr(exc, "description", "") or str(exc)
        if exc.outcome == Outcome.CONFIGURATION:
            logger.error("vendor refused our setup", extra=log)
            return self._misconfigured(chunk, items, exc.code, description, retry)
        if exc.outcome == Outcome.PERMANENT:
            logger.warning("vendor refused the request", extra=log)
            if chunk.fallback:
                return self._pass_on(chunk, retry, items, exc.code, description)
            self._move(chunk, items, Status.REJECTED, exc.code, description)
            self.store.claims.move(retry, ChunkState.FAILED)
            return "rejected"
        logger.warning("transient vendor error", extra=log)
        if retry.attempt < self.settings.max_attempts:
            raise Redeliver(f"transient: {exc}", self._backoff(retry.attempt))
        return self._pass_on(chunk, retry, items, exc.code or type(exc).__name__, str(exc))

    def _misconfigured(
        self,
        chunk: DispatchChunk,
        items: Sequence[ChunkItem],
        code: str,
        meaning: str,
        claim: Claim | None = None,
    ) -> str:
        """The vendor refused our own setup: never the recipients' fault. Its circuit opens and
        the operator is told; the recipients go to the next vendor of the route, or wait for
        the setup to be fixed (a follow-up chunk every cool-down) and end `failed` only when the
        hold is over."""
        health.record_misconfiguration(self.deps, chunk.vendor, code, meaning)
        now = time.time()
        since = chunk.misconfigured_since or now
        if chunk.fallback:
            self._fail_over(chunk, items, code, meaning)
            outcome = "failed_over"
        elif now - since >= self.settings.misconfigured_hold_hours * 3600:
            self._move(chunk, items, Status.FAILED, code, f"{meaning} (unfixed for {int(now - since)} s)")
            outcome = "failed"
        else:
            wait = min(self.settings.health_cooldown_s, SQS_MAX_DELAY_S)
            later = chunk.model_copy(
                update={"chunk_id": f"{chunk.chunk_id}~c", "items": list(items), "misconfigured_since": since}
            )
            self._hand_over(chunk, [later], code, f"{meaning}; waiting for the setup to be fixed", [wait])
            outcome = "waiting"
        if claim is not None:
            self.store.claims.move(
                claim, ChunkState.FAILED if outcome == "failed" else ChunkState.FAILED_OVER
            )
        return outcome

    def _backoff(self, attempt: int) -> int:
        return self.settings.retry_base_delay_s * 2 ** (attempt - 1)

    def _split(self, chunk: DispatchChunk, items: list[ChunkItem], claim: Claim, exc: VendorError) -> str:
        middle = len(items) // 2
        halves = [
            chunk.model_copy(update={"chunk_id": f"{chunk.chunk_id}/{n}", "items": half})
            for n, half in enumerate((items[:middle], items[middle:]))
        ]
        self._hand_over(chunk, halves, exc.code, "request refused for a bad number; split")
        self.store.claims.move(claim, ChunkState.SPLIT)
        return "split"

    def _retry_items(self, chunk: DispatchChunk, items: list[ChunkItem], claim: Claim) -> None:
        """Recipients the vendor answered with a transient code: a follow-up chunk for them, or
        the next vendor once the attempts are spent."""
        code, description = "RETRY", "transient per-recipient code"
        if claim.attempt < self.settings.max_attempts:
            retry = chunk.model_copy(
                update={"chunk_id": f"{chunk.chunk_id}~{claim.attempt + 1}", "items": items}
            )
            self._hand_over(chunk, [retry], code, description, [self._backoff(claim.attempt)])
        else:
            self._fail_over(chunk, items, code, description)

    def _pass_on(
        self, chunk: DispatchChunk, claim: Claim, items: Sequence[ChunkItem], code: str, description: str
    ) -> str:
        """No vendor call took these recipients: the next vendor of the route gets them, or
        they end `failed` where the route is exhausted."""
        if claim.state == ChunkState.INFLIGHT:
            moved = self.store.claims.move(claim, ChunkState.RETRY)
            if moved is None:
                return "duplicate"
            claim = moved
        if self._fail_over(chunk, items, code, description):
            self.store.claims.move(claim, ChunkState.FAILED_OVER)
            return "failed_over"
        self.store.claims.move(claim, ChunkState.FAILED)
        return "failed"

    def _fail_over(
        self, chunk: DispatchChunk, items: Sequence[ChunkItem], code: str, description: str
    ) -> bool:
        """Hand the items to the next vendor of the route; False (and `failed`) when there is none."""
        if not chunk.fallback:
            self._move(chunk, items, Status.FAILED, code, description)
            return False
        vendor, rest = chunk.fallback[0], chunk.fallback[1:]
        logger.warning(
            "failing over",
            extra={"from": chunk.vendor, "to": vendor, "chunk_id": chunk.chunk_id, "code": code},
        )
        metrics.add_metric(name="FailOver", unit="Count", value=len(items))
        next_adapter = self._adapter(vendor)
        follow_ups = chunks.regroup(
            chunk,
            items,
            vendor=vendor,
            fallback=rest,
            limit=next_adapter.batch_limit if next_adapter else 100,
            native=bool(next_adapter and next_adapter.supports(Capability.PERSONALISED_NATIVE)),
            prefix=f"{chunk.chunk_id}>{vendor}",
            hop=chunk.hop + 1,
        )
        self._hand_over(chunk, follow_ups, code, description)
        return True

    def _hand_over(
        self,
        chunk: DispatchChunk,
        follow_ups: Sequence[DispatchChunk],
        code: str,
        description: str,
        delays: Sequence[int] | None = None,
    ) -> None:
        """The follow-ups take the messages over (conditionally: only those still queued and
        still this chunk's), carry only those, and are queued."""
        bodies: list[str] = []
        waits: list[int] = []
        for n, follow_up in enumerate(follow_ups):
            moved = set(
                self.store.messages.hand_over(
                    chunk.request_id,
                    [item.index for item in follow_up.items],
                    from_chunk=chunk.chunk_id,
                    chunk_id=follow_up.chunk_id,
                    next_vendor=follow_up.vendor,
                    fallback=follow_up.fallback,
                    vendor=chunk.vendor,
                    code=code,
                    description=description,
                    hop=follow_up.hop,
                )
            )
            carried = [item for item in follow_up.items if item.index in moved]
            if carried:
                bodies.append(dumps(follow_up.model_copy(update={"items": carried})))
                waits.append(delays[n] if delays else 0)
        if bodies:
            send_batches(self.settings.queue_url(chunk.lane), bodies, waits)

    # ------------------------------------------------------------------ status moves
    def _move(
        self, chunk: DispatchChunk, items: Sequence[ChunkItem], status: Status, code: str, description: str
    ) -> None:
        """Move the queued items this chunk still owns to `status`, counted and announced."""
        now = utcnow()
        transitions = [
            self._transition(chunk, item, status, now, code=code, description=description) for item in items
        ]
        applied, _ = self.store.apply_transitions(transitions)
        announce(self.deps.events, applied)

    def _mark_unknown(self, chunk: DispatchChunk, claim: Claim, code: str, description: str) -> str:
        """An attempt died mid-call: its recipients may have been sent; never resent blind."""
        if claim.state == ChunkState.INFLIGHT:
            moved = self.store.claims.move(claim, ChunkState.UNKNOWN)
            if moved is None:
                raise Redeliver("the claim moved meanwhile", 5)
        self._move(chunk, chunk.items, Status.UNKNOWN, code, description)
        metrics.add_metric(name="DispatchUnknown", unit="Count", value=len(chunk.items))
        return "unknown"
