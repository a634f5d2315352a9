"""The scheduled poll: pull reports and inbound where vendors offer pulls, ask for reports of
messages still waiting where vendors answer queries, apply kept early reports, read balances.

A pulled record is handed out once (smsadmin: "取过一次后，就不能再取了"), so each vendor
answer is applied before the next call: a poll cut short, or a call that fails, loses nothing
that was already handed out. A drain stops early enough to finish before the function's own
deadline, counting the vendor's pause between calls and one whole call at its timeouts."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Settings
from ..dal import iso, utcnow
from ..deps import Deps
from ..models import VendorBalanceEvent
from ..observability import logger, metrics, vendor_metric
from ..vendors import Capability, PullBatch, ReportQuery, VendorAdapter, VendorError
from .callbacks import note_unreadable
from .health import record_balance
from .reports import Applied, apply_early_reports, apply_reports, store_inbound

QUERY_MAX_AGE = dt.timedelta(days=30)
#: left at the end of the function for what follows the vendor calls (early reports, events, logs)
FINAL_MARGIN_S = 5.0
#: room kept after a vendor call for storing what it handed out
APPLY_MARGIN_S = 5.0


@dataclass
class PollSummary:
    reports: Applied = field(default_factory=Applied)
    inbound: int = 0
    queried: int = 0
    unreadable: int = 0
    balances: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: vendors whose drain stopped for the deadline with more left at the vendor (next poll)
    cut_short: list[str] = field(default_factory=list)
    rematched: int = 0


@dataclass(frozen=True)
class Deadline:
    """When a drain may start another vendor call (monotonic clock): before the poll's budget
    runs out, and only if the call at its worst, and storing its answer, end before the
    function's own deadline."""

    budget_end: float
    hard_end: float | None = None  # the Lambda context's deadline less FINAL_MARGIN_S

    @classmethod
    def of(cls, settings: Settings, budget_s: float | None, remaining_ms: int | None) -> Deadline:
        now = time.monotonic()
        budget = settings.poll_time_budget_s if budget_s is None else budget_s
        hard = None if remaining_ms is None else now + remaining_ms / 1000 - FINAL_MARGIN_S
        return cls(now + budget, hard)

    def allows(self, adapter: VendorAdapter, pause_s: float = 0.0) -> bool:
        start = time.monotonic() + pause_s
        if start >= self.budget_end:
            return False
        if self.hard_end is None:
            return True
        call_s = adapter.settings.connect_timeout_s + adapter.settings.timeout_s
        return start + call_s + APPLY_MARGIN_S <= self.hard_end


def run(deps: Deps, budget_s: float | None = None, remaining_ms: int | None = None) -> PollSummary:
    """One poll of every configured vendor; `remaining_ms` is the Lambda context's remaining time."""
    deadline = Deadline.of(deps.settings, budget_s, remaining_ms)
    summary = PollSummary()
    balances: list[VendorBalanceEvent] = []
    for vendor in deps.vendors.configured():
        adapter = deps.vendors.adapter(vendor)
        for step in (_pull_reports, _pull_inbound, _query_reports):
            try:
                step(adapter, deps, deadline, summary)
            except VendorError as exc:  # what the step applied before the error stays applied
                _failed(summary, vendor, exc)
        if not deadline.allows(adapter):
            logger.info("balance not read: the poll's deadline is near", extra={"vendor": vendor})
            continue
        try:
            balance = adapter.balance()
        except VendorError as exc:
            _failed(summary, vendor, exc)
            continue
        summary.balances[vendor] = str(balance.balance)
        record_balance(deps, vendor, balance.balance)  # for `min_balance` steering
        balances.append(
            VendorBalanceEvent(vendor=vendor, balance=str(balance.balance), unit=balance.unit, time=utcnow())
        )
        vendor_metric("VendorBalance", vendor, float(balance.balance), unit="None")
        # the alarm watches this: its threshold is a vendor setting, in the vendor's own unit
        low = balance.balance < adapter.balance_alarm_below
        vendor_metric("VendorBalanceLow", vendor, 1.0 if low else 0.0)
    if balances:
        deps.events.publish(balances)
    summary.rematched = _rematch_early(deps)
    return summary


def _failed(summary: PollSummary, vendor: str, exc: VendorError) -> None:
    summary.errors[vendor] = str(exc)
    metrics.add_metric(name="PollFailures", unit="Count", value=1)
    logger.warning("poll failed for vendor", extra={"vendor": vendor, "error": str(exc)})


def _take(adapter: VendorAdapter, batch: PullBatch, deps: Deps, summary: PollSummary, source: str) -> None:
    """Store one vendor answer (before the next call: its records are not handed out again)."""
    note_unreadable(adapter.vendor_id, batch.unreadable, source)
    summary.unreadable += len(batch.unreadable)
    if batch.reports:
        summary.reports += apply_reports(batch.reports, deps)
    if batch.inbound:
        summary.inbound += store_inbound(batch.inbound, deps)


def _drain(
    adapter: VendorAdapter,
    pull: Callable[[], PullBatch],
    deps: Deps,
    deadline: Deadline,
    summary: PollSummary,
    source: str,
) -> None:
    """Call, store, pause as the vendor asks, again while it has more and time allows."""
    pause = adapter.pull_interval_s
    for call in range(adapter.pull_max_calls):
        if not deadline.allows(adapter, pause if call else 0.0):
            if call:  # the vendor said it has more: the next poll takes it
                summary.cut_short.append(adapter.vendor_id)
                logger.info(
                    "pull stopped for the deadline", extra={"vendor": adapter.vendor_id, "calls": call}
                )
            return
        if call and pause:
            time.sleep(pause)
        batch = pull()
        _take(adapter, batch, deps, summary, source)
        if not batch.more:
            return


def _pull_reports(adapter: VendorAdapter, deps: Deps, deadline: Deadline, summary: PollSummary) -> None:
    if adapter.supports(Capability.PULL_REPORTS):
        _drain(adapter, adapter.pull_reports, deps, deadline, summary, "pull")


def _pull_inbound(adapter: VendorAdapter, deps: Deps, deadline: Deadline, summary: PollSummary) -> None:
    if adapter.supports(Capability.PULL_INBOUND):
        _drain(adapter, adapter.pull_inbound, deps, deadline, summary, "pull")


def _query_reports(adapter: VendorAdapter, deps: Deps, deadline: Deadline, summary: PollSummary) -> None:
    if not adapter.supports(Capability.QUERY_REPORTS) or not deadline.allows(adapter):
        return
    now = utcnow()
    waiting = deps.store.messages.awaiting_report(
        adapter.vendor_id,
        before=iso(now - dt.timedelta(seconds=deps.settings.poll_min_age_s)),
        after=iso(now - QUERY_MAX_AGE),
        limit=deps.settings.poll_query_limit,
    )
    queries = [ReportQuery(vendor_ref=m.vendor_ref, to=m.to) for m in waiting if m.vendor_ref]
    if not queries:
        return
    summary.queried += len(queries)
    for batch in adapter.query_report_batches(queries):  # one vendor call each: stored before the next
        _take(adapter, batch, deps, summary, "query")
        if not deadline.allows(adapter):
            summary.cut_short.append(adapter.vendor_id)
            return


def _rematch_early(deps: Deps) -> int:
    """Reports that came before their message: apply those whose message has appeared since."""
    from ..vendors import VENDOR_IDS

    rematched = 0
    for vendor in VENDOR_IDS:
        rematched += apply_early_reports(deps.store.references.early_of(vendor), deps)
    return rematched
