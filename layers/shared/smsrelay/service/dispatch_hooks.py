"""What dispatch asks before and after a vendor call, kept out of dispatch.py:
quiet hours (hold a chunk until its window opens, unless the vendor keeps the window itself)
and vendor health (an open circuit or a low balance hands the chunk to the next vendor)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..models import DispatchChunk
from ..observability import logger, metrics
from ..vendors import Outcome, VendorAdapter, VendorError
from . import health, quiet_hours
from .common import SQS_MAX_DELAY_S, dumps, send_batches

if TYPE_CHECKING:
    from .dispatch import Dispatcher


def before_call(dispatcher: Dispatcher, chunk: DispatchChunk, adapter: VendorAdapter) -> str | None:
    """None to go on with the call; else what happened instead ("held", "failed_over", ...)."""
    wait = quiet_hours.hold_seconds(chunk, adapter)
    if wait > 0:
        if not _mark_held(dispatcher, chunk, time.time() + wait):
            return "duplicate"
        send_batches(dispatcher.settings.dispatch_queue_url, [dumps(chunk)], [min(wait, SQS_MAX_DELAY_S)])
        metrics.add_metric(name="HeldForQuietHours", unit="Count", value=len(chunk.items))
        logger.info("chunk held for quiet hours", extra={"zone": chunk.zone, "wait_s": wait})
        return "held"
    if chunk.fallback:
        reason = health.unavailable_reason(dispatcher.store, chunk.vendor)
        if reason is not None:
            description = f"{chunk.vendor} skipped: {'circuit open' if reason == health.CIRCUIT_OPEN else 'balance below min_balance'}"
            return dispatcher._fail_over(chunk, chunk.items, code=reason, description=description)
    return None


def after_call(
    dispatcher: Dispatcher, chunk: DispatchChunk, latency_ms: float, error: VendorError | None
) -> None:
    """Count the call for the vendor's health: transport/transient failures count as errors
    (a permanent refusal is about the request, not about the vendor being down)."""
    failed = error is not None and error.outcome != Outcome.PERMANENT
    health.record_call(dispatcher.store, chunk.vendor, error=failed, latency_ms=latency_ms)


def _mark_held(dispatcher: Dispatcher, chunk: DispatchChunk, due_at: float) -> bool:
    """The claim says `held` until the window opens, so the sweeper leaves the recipients alone;
    False when the sweeper took the chunk meanwhile (its recipients went on under a new chunk)."""
    if dispatcher.store.hold_chunk(chunk.chunk_id, due_at):
        return True
    claim = dispatcher.store.get_chunk(chunk.chunk_id)
    return not (claim and claim.get("state") == "swept")  # a retry claim: hold it all the same
