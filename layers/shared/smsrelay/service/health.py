"""Vendor health: every vendor call's outcome and latency are counted per vendor in a rolling
window (item H#{vendor}); a vendor whose error rate reaches `health_error_threshold` over at
least `health_min_calls` calls has its circuit opened for `health_cooldown_s`: routing skips it
and dispatch hands its chunks to the next vendor of the route without calling it. After the
cool-down it gets traffic again and is judged afresh. A balance (read by poll) below the
vendor's `min_balance` setting also steers traffic away."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ..dal import HealthItem, iso, utcnow
from ..deps import Deps
from ..models import VendorMisconfigured
from ..observability import logger, metrics, vendor_metric
from ..vendor_config import VendorNotConfigured, Vendors

CIRCUIT_OPEN = "CIRCUIT_OPEN"
LOW_BALANCE = "LOW_BALANCE"


def record_call(deps: Deps, vendor: str, *, error: bool, latency_ms: float) -> bool:
    """Count one vendor call; opens the circuit when the vendor fails too often. True if it opened.
    Never raises: health bookkeeping must not fail a dispatch."""
    settings = deps.settings
    health = deps.store.health
    now = time.time()
    try:
        item = health.add_call(vendor, int(now // settings.health_window_s), error, latency_ms)
        calls, errors = item.calls, item.errors
        if not error or calls < settings.health_min_calls or errors / calls < settings.health_error_threshold:
            return False
        if health.open_circuit(vendor, now + settings.health_cooldown_s, now):
            logger.warning(
                "vendor circuit opened",
                extra={
                    "vendor": vendor,
                    "calls": calls,
                    "errors": errors,
                    "cooldown_s": settings.health_cooldown_s,
                },
            )
            vendor_metric("CircuitOpened", vendor, 1)
            return True
    except Exception as exc:  # the store may be down; the call itself went fine
        logger.warning("vendor health not recorded", extra={"vendor": vendor, "error": str(exc)})
    return False


def record_misconfiguration(deps: Deps, vendor: str, code: str, meaning: str) -> bool:
    """The vendor refused us for our own setup (IP not allowed, wrong credentials, account
    disabled): its circuit opens at once, and the operator is told once per opening (event
    `SMS Vendor Misconfigured`, metric `VendorMisconfigured`, which an alarm watches).
    True when this call opened it. Never raises."""
    now = time.time()
    try:
        opened = deps.store.health.open_circuit(vendor, now + deps.settings.health_cooldown_s, now)
    except Exception as exc:
        logger.warning("vendor circuit not opened", extra={"vendor": vendor, "error": str(exc)})
        opened = True  # tell the operator all the same
    if opened:
        logger.error("vendor misconfigured", extra={"vendor": vendor, "code": code, "meaning": meaning})
        metrics.add_metric(name="VendorMisconfigured", unit="Count", value=1)
        vendor_metric("CircuitOpened", vendor, 1)
        try:
            deps.events.publish(
                [VendorMisconfigured(vendor=vendor, code=code, meaning=meaning, time=utcnow())]
            )
        except Exception as exc:  # the alarm still fires from the metric
            logger.warning(
                "misconfiguration event not published", extra={"vendor": vendor, "error": str(exc)}
            )
    return opened


def record_balance(deps: Deps, vendor: str, balance: Any) -> None:
    """Keep the balance poll read, for `min_balance` steering. Never raises."""
    try:
        deps.store.health.set_balance(vendor, str(balance), iso(utcnow()))
    except Exception as exc:
        logger.warning("vendor balance not kept", extra={"vendor": vendor, "error": str(exc)})


def _min_balance(vendor: str, vendors: Vendors) -> Decimal | None:
    try:
        value = vendors.settings_of(vendor).get("min_balance")
    except VendorNotConfigured:
        return None
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


@dataclass
class HealthView:
    """The health of some vendors as read once (one BatchGetItem), for routing decisions."""

    vendors: Vendors
    items: dict[str, HealthItem] = field(default_factory=dict)
    now: float = field(default_factory=time.time)

    @classmethod
    def load(cls, deps: Deps, vendors: Iterable[str]) -> HealthView:
        try:
            items = deps.store.health.get_many(vendors)
        except Exception as exc:  # without health data every vendor counts as healthy
            logger.warning("vendor health unreadable; routing as configured", extra={"error": str(exc)})
            items = {}
        return cls(deps.vendors, items)

    def why_unavailable(self, vendor: str) -> str | None:
        """CIRCUIT_OPEN, LOW_BALANCE, or None when the vendor may take traffic."""
        item = self.items.get(vendor) or HealthItem(vendor=vendor)
        if item.open_until > self.now:
            return CIRCUIT_OPEN
        floor = _min_balance(vendor, self.vendors)
        if floor is not None and item.balance is not None:
            try:
                if Decimal(item.balance) < floor:
                    return LOW_BALANCE
            except InvalidOperation:
                pass
        return None

    def available(self, vendor: str) -> bool:
        return self.why_unavailable(vendor) is None

    def steer(self, route: Sequence[str]) -> tuple[str, ...]:
        """Healthy vendors first (in route order), the others kept last as a last resort."""
        healthy = [v for v in route if self.available(v)]
        if len(healthy) == len(route) or not healthy:
            return tuple(route)
        metrics.add_metric(name="SteeredAway", unit="Count", value=1)
        return tuple(healthy + [v for v in route if v not in healthy])


def unavailable_reason(deps: Deps, vendor: str) -> str | None:
    """For dispatch: why `vendor` should not be called now (None: call it)."""
    return HealthView.load(deps, [vendor]).why_unavailable(vendor)
