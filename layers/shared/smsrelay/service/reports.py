"""Apply delivery reports and inbound messages, from pushes and from polls alike.

A report moves its message forward only (conditional writes); a repeated or late report
changes nothing; a report for a message not yet known is kept and applied when it appears."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..dal import NotFound, Store, Transition, unknown_key, utcnow
from ..events import publish
from ..models import ALLOWED_FROM, FINAL_STATUSES, SmsReceived, Status
from ..observability import logger, metrics, vendor_metric
from ..vendors import DeliveryReport, InboundMessage, ReportStatus
from .common import status_events

_TARGET = {ReportStatus.DELIVERED: Status.DELIVERED, ReportStatus.UNDELIVERED: Status.UNDELIVERED}


@dataclass
class Applied:
    applied: int = 0
    early: int = 0
    ignored: int = 0
    inbound: int = 0

    def __iadd__(self, other: Applied) -> Applied:
        self.applied += other.applied
        self.early += other.early
        self.ignored += other.ignored
        self.inbound += other.inbound
        return self


def apply_reports(reports: Iterable[DeliveryReport], store: Store) -> Applied:
    result = Applied()
    for report in reports:
        if report.status not in _TARGET:
            continue  # "no report yet" from a query
        item = store.find_by_ref(report.match_key) or _unknown_without_ref(report, store)
        if item is None:
            # Keep it, then look again: whichever of dispatch and us writes second sees the other.
            store.put_early_report(report.match_key, report.vendor, report.model_dump(mode="json"))
            item = store.find_by_ref(report.match_key)
            if item is None:
                result.early += 1
                continue
            store.delete_early_report(report.match_key)
        if settle(item, report, store):
            result.applied += 1
        else:
            result.ignored += 1
    return result


def _unknown_without_ref(report: DeliveryReport, store: Store) -> dict | None:
    """The one `unknown` message of this vendor and number whose reference we never learnt
    (the attempt died before recording it): the report's reference settles it."""
    candidates = [
        i
        for i in store.query_state(unknown_key(report.vendor, report.to), limit=2)
        if not i.get("vendor_ref")
    ]
    if len(candidates) != 1:
        return None  # none, or ambiguous: keep the report rather than guess
    return candidates[0] | {"adopt_ref": report.vendor_ref}


def settle(item: dict, report: DeliveryReport, store: Store, attempts: int = 3) -> bool:
    """Move the message as the report says; False when that would not be forward (repeat, out of order)."""
    target = _TARGET[report.status]
    request_id, index = item["request_id"], int(item["idx"])
    for _ in range(attempts):
        previous = Status(item["status"])
        if previous in FINAL_STATUSES or previous not in ALLOWED_FROM[target]:
            return False
        transition = Transition(
            request_id=request_id,
            index=index,
            previous=previous,
            status=target,
            at=report.occurred_at or utcnow(),
            to=item.get("to", report.to),
            vendor=report.vendor,
            code=report.code or None,
            description=report.description or None,
            client_ref=item.get("client_ref"),
            vendor_ref=item.get("adopt_ref"),
            ref_key=report.match_key if item.get("adopt_ref") else None,
        )
        applied, _ = store.apply_transitions([transition])
        if applied:
            count_statuses(applied)
            publish(status_events(applied))
            return True
        try:
            item = store.get_message(request_id, index)  # it moved meanwhile: look again
        except NotFound:
            return False
    return False


def count_statuses(applied: Iterable[Transition]) -> None:
    counts: dict[tuple[str, str], int] = {}
    for t in applied:
        key = (t.status.value.capitalize(), t.vendor or "none")
        counts[key] = counts.get(key, 0) + 1
    for (name, vendor), value in counts.items():  # one EMF line per status and vendor, not per message
        vendor_metric(name, vendor, value)


def apply_early_report(match_key: str, report: dict, store: Store) -> bool:
    """Retry a kept report (poll does this for those whose message has appeared since)."""
    item = store.find_by_ref(match_key)
    if item is None:
        return False
    settle(item, DeliveryReport.model_validate(report), store)
    store.delete_early_report(match_key)
    return True


def store_inbound(messages: Iterable[InboundMessage], store: Store) -> int:
    fresh: list[SmsReceived] = []
    for message in messages:
        record = {
            "vendor": message.vendor,
            "from": message.from_,
            "to": message.to,
            "content": message.content,
            "time": message.received_at.isoformat() if message.received_at else None,
            "vendor_ref": message.vendor_ref,
        }
        if store.put_inbound(message.vendor, record):
            fresh.append(
                SmsReceived(
                    vendor=message.vendor,
                    to=message.to,
                    content=message.content,
                    time=message.received_at,
                    **{"from": message.from_},
                )
            )
    if fresh:
        publish(fresh)
        metrics.add_metric(name="Received", unit="Count", value=len(fresh))
        from .suppression import handle_replies  # opt-out keywords put their sender on the suppression list

        handle_replies(fresh, store)
    logger.debug("inbound stored", extra={"fresh": len(fresh)})
    return len(fresh)
