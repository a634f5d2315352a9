"""The scheduled poll: pull reports and inbound where vendors offer pulls, ask for reports of
messages still waiting where vendors answer queries, apply kept early reports, read balances."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from ..config import Settings, get_settings
from ..dal import Store, iso, utcnow
from ..events import publish
from ..models import VendorBalanceEvent
from ..observability import logger, metrics, vendor_metric
from ..vendor_config import configured_vendors, get_adapter
from ..vendors import Capability, ReportQuery, VendorAdapter, VendorError
from .health import record_balance
from .reports import Applied, apply_early_reports, apply_reports, store_inbound

QUERY_MAX_AGE = dt.timedelta(days=30)


@dataclass
class PollSummary:
    reports: Applied = field(default_factory=Applied)
    inbound: int = 0
    queried: int = 0
    balances: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    rematched: int = 0


def run(
    settings: Settings | None = None, store: Store | None = None, budget_s: float | None = None
) -> PollSummary:
    settings = settings or get_settings()
    store = store or Store(settings)
    deadline = time.monotonic() + (budget_s if budget_s is not None else settings.poll_time_budget_s)
    summary = PollSummary()
    balances: list[VendorBalanceEvent] = []
    for vendor in configured_vendors(settings):
        adapter = get_adapter(vendor, settings)
        try:
            _poll_vendor(adapter, store, settings, deadline, summary)
            balance = adapter.balance()
        except VendorError as exc:
            summary.errors[vendor] = str(exc)
            metrics.add_metric(name="PollFailures", unit="Count", value=1)
            logger.warning("poll failed for vendor", extra={"vendor": vendor, "error": str(exc)})
            continue
        summary.balances[vendor] = str(balance.balance)
        record_balance(store, vendor, balance.balance)  # for `min_balance` steering
        balances.append(
            VendorBalanceEvent(vendor=vendor, balance=str(balance.balance), unit=balance.unit, time=utcnow())
        )
        vendor_metric("VendorBalance", vendor, float(balance.balance), unit="None")
    if balances:
        publish(balances)
    summary.rematched = _rematch_early(store, settings)
    return summary


def _poll_vendor(
    adapter: VendorAdapter, store: Store, settings: Settings, deadline: float, summary: PollSummary
) -> None:
    if adapter.supports(Capability.PULL_REPORTS):
        while time.monotonic() < deadline:
            reports = adapter.pull_reports()
            summary.reports += apply_reports(reports, store)
            if not reports:
                break
    if adapter.supports(Capability.PULL_INBOUND):
        while time.monotonic() < deadline:
            inbound = adapter.pull_inbound()
            summary.inbound += store_inbound(inbound, store)
            if not inbound:
                break
    if adapter.supports(Capability.QUERY_REPORTS) and time.monotonic() < deadline:
        now = utcnow()
        waiting = store.query_state(
            f"P#{adapter.vendor_id}",
            before=iso(now - dt.timedelta(seconds=settings.poll_min_age_s)),
            after=iso(now - QUERY_MAX_AGE),
            limit=settings.poll_query_limit,
        )
        queries = [
            ReportQuery(vendor_ref=i["vendor_ref"], to=i["to"]) for i in waiting if i.get("vendor_ref")
        ]
        if queries:
            summary.queried += len(queries)
            summary.reports += apply_reports(adapter.query_reports(queries), store)


def _rematch_early(store: Store, settings: Settings) -> int:
    """Reports that came before their message: apply those whose message has appeared since."""
    from ..vendors import VENDOR_IDS

    rematched = 0
    for vendor in VENDOR_IDS:
        kept = {item["pk"][2:]: item["report"] for item in store.query_state(f"E#{vendor}", limit=1000)}
        rematched += apply_early_reports(kept, store)
    return rematched
