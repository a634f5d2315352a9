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

from ..config import Settings
from ..dal import Store, iso, utcnow
from ..observability import logger, metrics, vendor_metric
from ..suppression_dal import HealthStore
from ..vendor_config import VendorNotConfigured, vendor_settings

CIRCUIT_OPEN = "CIRCUIT_OPEN"
LOW_BALANCE = "LOW_BALANCE"


def record_call(store: Store, vendor: str, *, error: bool, latency_ms: float) -> bool:
    """Count one vendor call; opens the circuit when the vendor fails too often. True if it opened.
    Never raises: health bookkeeping must not fail a dispatch."""
    settings = store.settings
    now = time.time()
    try:
        item = HealthStore(store).add_call(vendor, int(now // settings.health_window_s), error, latency_ms)
        calls = int(item.get("calls", 0)) + int(item.get("prev_calls", 0))
        errors = int(item.get("errors", 0)) + int(item.get("prev_errors", 0))
        if not error or calls < settings.health_min_calls or errors / calls < settings.health_error_threshold:
            return False
        if HealthStore(store).open_circuit(vendor, now + settings.health_cooldown_s, now):
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


def record_misconfiguration(store: Store, vendor: str, code: str, meaning: str) -> bool:
    """The vendor refused us for our own setup (IP not allowed, wrong credentials, account
    disabled): its circuit opens at once, and the operator is told once per opening (event
    `SMS Vendor Misconfigured`, metric `VendorMisconfigured`, which an alarm watches).
    True when this call opened it. Never raises."""
    now = time.time()
    try:
        opened = HealthStore(store).open_circuit(vendor, now + store.settings.health_cooldown_s, now)
    except Exception as exc:
        logger.warning("vendor circuit not opened", extra={"vendor": vendor, "error": str(exc)})
        opened = True  # tell the operator all the same
    if opened:
        logger.error("vendor misconfigured", extra={"vendor": vendor, "code": code, "meaning": meaning})
        metrics.add_metric(name="VendorMisconfigured", unit="Count", value=1)
        vendor_metric("CircuitOpened", vendor, 1)
        try:
            from ..events import publish
            from ..models import VendorMisconfigured

            publish([VendorMisconfigured(vendor=vendor, code=code, meaning=meaning, time=utcnow())])
        except Exception as exc:  # the alarm still fires from the metric
            logger.warning(
                "misconfiguration event not published", extra={"vendor": vendor, "error": str(exc)}
            )
    return opened


def record_balance(store: Store, vendor: str, balance: Any) -> None:
    """Keep the balance poll read, for `min_balance` steering. Never raises."""
    try:
        HealthStore(store).set_balance(vendor, str(balance), iso(utcnow()))
    except Exception as exc:
        logger.warning("vendor balance not kept", extra={"vendor": vendor, "error": str(exc)})


def _min_balance(vendor: str, settings: Settings) -> Decimal | None:
    try:
        value = vendor_settings(vendor, settings).get("min_balance")
    except VendorNotConfigured:
        return None
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


@dataclass
class HealthView:
    """The health of some vendors as read once (one BatchGetItem), for routing decisions."""

    settings: Settings
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    now: float = field(default_factory=time.time)

    @classmethod
    def load(cls, store: Store, vendors: Iterable[str]) -> HealthView:
        try:
            items = HealthStore(store).get_many(vendors)
        except Exception as exc:  # without health data every vendor counts as healthy
            logger.warning("vendor health unreadable; routing as configured", extra={"error": str(exc)})
            items = {}
        return cls(store.settings, items)

    def why_unavailable(self, vendor: str) -> str | None:
        """CIRCUIT_OPEN, LOW_BALANCE, or None when the vendor may take traffic."""
        item = self.items.get(vendor) or {}
        if float(item.get("open_until", 0)) > self.now:
            return CIRCUIT_OPEN
        floor = _min_balance(vendor, self.settings)
        if floor is not None and item.get("balance") is not None:
            try:
                if Decimal(str(item["balance"])) < floor:
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


def unavailable_reason(store: Store, vendor: str) -> str | None:
    """For dispatch: why `vendor` should not be called now (None: call it)."""
    return HealthView.load(store, [vendor]).why_unavailable(vendor)
