"""Opt-out: a reply that means "unsubscribe" puts its sender on the suppression list; later
sends to a suppressed number are rejected with reason `opted_out` unless the request is
`"category": "transactional"`. Operators list, add and remove numbers through the API."""

from __future__ import annotations

from collections.abc import Iterable

from ..config import Settings, get_settings
from ..dal import Store, utcnow
from ..events import publish
from ..models import OptedOut, SmsReceived
from ..numbers import InvalidNumber, normalise
from ..observability import logger, mask_number, metrics
from ..suppression_dal import SuppressionStore

OPTED_OUT = "opted_out"
_TRAILING = " \t\r\n.!。！,，;；"


def opt_out_keyword(content: str, settings: Settings | None = None) -> str | None:
    """The configured keyword the whole reply is (trimmed, case-insensitive), else None."""
    settings = settings or get_settings()
    text = (content or "").strip().strip(_TRAILING).casefold()
    for keyword in settings.opt_out_keywords:
        if text == keyword.strip().casefold():
            return keyword
    return None


def handle_replies(replies: Iterable[SmsReceived], store: Store) -> int:
    """Suppress the senders of opt-out replies and publish `SMS Opted Out`; returns how many."""
    settings = store.settings
    events: list[OptedOut] = []
    suppressions = SuppressionStore(store)
    for reply in replies:
        keyword = opt_out_keyword(reply.content, settings)
        if keyword is None:
            continue
        try:
            number = normalise(reply.from_, settings.default_region)
        except InvalidNumber:
            logger.warning("opt-out reply from an invalid number", extra={"from": mask_number(reply.from_)})
            continue
        suppressions.put(number, source="reply", vendor=reply.vendor, keyword=keyword)
        events.append(
            OptedOut(vendor=reply.vendor, number=number, keyword=keyword, time=reply.time or utcnow())
        )
    if events:
        publish(events)
        metrics.add_metric(name="OptedOut", unit="Count", value=len(events))
        logger.info("numbers opted out", extra={"count": len(events)})
    return len(events)


def suppressed(numbers: Iterable[str], store: Store) -> set[str]:
    """Which of the (E.164) numbers are on the suppression list."""
    return SuppressionStore(store).suppressed(numbers)


def add(number: str, store: Store, source: str = "api") -> tuple[str, bool]:
    """Suppress a number given by an operator; (E.164, newly added)."""
    e164 = normalise(number, store.settings.default_region)
    return e164, SuppressionStore(store).put(e164, source=source)


def remove(number: str, store: Store) -> tuple[str, bool]:
    e164 = normalise(number, store.settings.default_region)
    return e164, SuppressionStore(store).delete(e164)


def page(store: Store, limit: int = 100, next_token: str | None = None) -> dict:
    items, token = SuppressionStore(store).page(limit, next_token)
    return {"suppressions": items, "next_token": token}
