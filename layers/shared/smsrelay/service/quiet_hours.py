"""Quiet hours: a daily sending window (per request or per routing rule) in the recipient's
local time. kxt3 takes a daily window natively; for every other vendor the system holds the
chunk in the dispatch queue (re-enqueued with a delay, at most 15 min at a time) until the
window opens in its recipients' zone. Chunks are grouped by time zone when they are planned,
so one zone decides for the whole chunk."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..models import DispatchChunk, SendWindow
from ..observability import logger
from ..vendors import Capability, VendorAdapter

#: kxt3's daily window is in its own wall-clock time (UTC+8)
NATIVE_WINDOW_OFFSET = dt.timedelta(hours=8)


@lru_cache(maxsize=4096)
def zone_of(number: str, default: str) -> str:
    """The IANA zone of an E.164 number (the first, where a country has several), else `default`."""
    fallback = default
    try:
        import phonenumbers
        from phonenumbers import timezone as pn_timezone

        zones = pn_timezone.time_zones_for_number(phonenumbers.parse(number, None))
    except Exception:  # timezone data missing, unparsable number
        return fallback
    for zone in zones:
        if zone and not zone.startswith("Etc/"):
            return zone
    return fallback


def _utcnow() -> dt.datetime:  # the clock (tests move it)
    return dt.datetime.now(dt.UTC)


def _zone(name: str | None) -> dt.tzinfo:
    """A chunk's zone (planning gives every chunk with a window one)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone; using UTC", extra={"zone": name})
        return dt.UTC


def seconds_until_open(window: SendWindow, zone: str | None, now: dt.datetime | None = None) -> int:
    """0 inside the window; else the seconds until it next opens in `zone`'s local time."""
    now = now or _utcnow()
    local = now.astimezone(_zone(zone))
    start, end = window.times()
    clock = local.time().replace(tzinfo=None)
    inside = (start <= clock < end) if start < end else (clock >= start or clock < end)
    if inside:
        return 0
    opens = local.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
    if opens <= local:
        opens += dt.timedelta(days=1)
    return max(1, int((opens - now).total_seconds()) + 1)


def native_window(adapter: VendorAdapter, chunk: DispatchChunk) -> tuple[dt.time, dt.time] | None:
    """The window to hand the vendor (kxt3): only where its wall clock is the recipients' own."""
    if chunk.window is None or not adapter.supports(Capability.DAILY_WINDOW):
        return None
    start, end = chunk.window.times()
    if start >= end:
        return None  # a window across midnight: held by the system instead
    offset = _utcnow().astimezone(_zone(chunk.zone)).utcoffset()
    return (start, end) if offset == NATIVE_WINDOW_OFFSET else None


def hold_seconds(chunk: DispatchChunk, adapter: VendorAdapter | None, now: dt.datetime | None = None) -> int:
    """How long the system must still hold this chunk for its window (0: send now)."""
    if chunk.window is None:
        return 0
    if adapter is not None and native_window(adapter, chunk) is not None:
        return 0
    return seconds_until_open(chunk.window, chunk.zone, now)
