"""Opt-out: a reply that means "unsubscribe" puts its sender on the suppression list; later
sends to a suppressed number are rejected with reason `opted_out` unless the request is
`"category": "transactional"`. Operators list, add and remove numbers through the API."""

from __future__ import annotations

from collections.abc import Iterable

from ..config import Settings
from ..dal import utcnow
from ..deps import Deps
from ..models import OptedOut, SmsReceived
from ..numbers import InvalidNumber, normalise
from ..observability import logger, mask_number, metrics

OPTED_OUT = "opted_out"
_TRAILING = " \t\r\n.!。！,，;；"


def opt_out_keyword(content: str, settings: Settings) -> str | None:
    """The configured keyword the whole reply is (trimmed, case-insensitive), else None."""
    text = (content or "").strip().strip(_TRAILING).casefold()
    for keyword in settings.opt_out_keywords:
        if text == keyword.strip().casefold():
            return keyword
    return None


def handle_replies(replies: Iterable[SmsReceived], deps: Deps) -> int:
    """Suppress the senders of opt-out replies and publish `SMS Opted Out`; returns how many."""
    settings = deps.settings
    events: list[OptedOut] = []
    for reply in replies:
        keyword = opt_out_keyword(reply.content, settings)
        if keyword is None:
            continue
        try:
            number = normalise(reply.from_, settings.default_region)
        except InvalidNumber:
            logger.warning("opt-out reply from an invalid number", extra={"from": mask_number(reply.from_)})
            continue
        deps.store.suppression.put(number, source="reply", vendor=reply.vendor, keyword=keyword)
        events.append(
            OptedOut(vendor=reply.vendor, number=number, keyword=keyword, time=reply.time or utcnow())
        )
    if events:
        deps.events.publish(events)
        metrics.add_metric(name="OptedOut", unit="Count", value=len(events))
        logger.info("numbers opted out", extra={"count": len(events)})
    return len(events)


def add(number: str, deps: Deps, source: str = "api") -> tuple[str, bool]:
    """Suppress a number given by an operator; (E.164, newly added)."""
    e164 = normalise(number, deps.settings.default_region)
    return e164, deps.store.suppression.put(e164, source=source)


def remove(number: str, deps: Deps) -> tuple[str, bool]:
    e164 = normalise(number, deps.settings.default_region)
    return e164, deps.store.suppression.delete(e164)


def page(deps: Deps, limit: int = 100, next_token: str | None = None) -> dict:
    items, token = deps.store.suppression.page(limit, next_token)
    return {"suppressions": [i.model_dump(exclude_none=True) for i in items], "next_token": token}
