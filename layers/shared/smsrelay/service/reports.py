"""Apply delivery reports and inbound messages, from pushes and from polls alike.

A report moves its message forward only (conditional writes); a repeated or late report
changes nothing; a report for a message not yet known is kept and applied when it appears."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    """A batch of reports (a push, a pull page): their references read 100 at a time, their
    messages moved in one transaction per 99 of a request, their events put 10 at a time.

    A message with a reference is taken to be `submitted` (what it nearly always is when its
    report comes) without reading it: the transaction's condition checks, and a message that
    is elsewhere (queued, unknown, already final) is read and weighed again."""
    result = Applied()
    wanted = [r for r in reports if r.status in _TARGET]
    if not wanted:
        return result
    refs = store.find_refs(r.match_key for r in wanted)
    moves: dict[tuple[str, int], tuple[Transition, DeliveryReport]] = {}
    for report in wanted:
        ref = refs.get(report.match_key)
        item = _as_submitted(ref) if ref else _unknown_without_ref(report, store)
        if item is None:
            # Keep it, then look again: whichever of dispatch and us writes second sees the other.
            store.put_early_report(report.match_key, report.vendor, report.model_dump(mode="json"))
            ref = store.find_refs([report.match_key]).get(report.match_key)
            if ref is None:
                result.early += 1
                continue
            store.delete_early_report(report.match_key)
            item = _as_submitted(ref)
        transition = _transition(item, report)
        key = (item["request_id"], int(item["idx"]))
        if transition is None or key in moves:  # repeated, out of order, or a second report in this batch
            result.ignored += 1
            continue
        moves[key] = (transition, report)
    applied, conflicts = store.apply_transitions([t for t, _ in moves.values()])
    for conflict in conflicts:  # moved meanwhile (a sweep, dispatch, another push): look again
        if _settle_again(conflict, moves[(conflict.request_id, conflict.index)][1], store, applied):
            continue
        result.ignored += 1
    _announce(applied)
    result.applied += len(applied)
    return result


def _as_submitted(ref: dict) -> dict:
    """A referenced message as a report finds it nearly always; the move's condition checks."""
    return ref | {"status": Status.SUBMITTED.value}


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


def _transition(item: dict, report: DeliveryReport) -> Transition | None:
    """The move the report asks of the message as it is; None when that would not be forward."""
    target = _TARGET[report.status]
    previous = Status(item["status"])
    if previous in FINAL_STATUSES or previous not in ALLOWED_FROM[target]:
        return None
    return Transition(
        request_id=item["request_id"],
        index=int(item["idx"]),
        previous=previous,
        status=target,
        at=report.occurred_at or utcnow(),
        to=item.get("to", report.to),
        vendor=report.vendor,
        code=report.code or None,
        # never silent: the message would keep the submit's description ("OK") under a failure
        description=report.description or report.status.value,
        client_ref=item.get("client_ref"),
        vendor_ref=item.get("adopt_ref"),
        ref_key=report.match_key if item.get("adopt_ref") else None,
        vendor_time=report.occurred_at,
    )


def _settle_again(
    conflict: Transition, report: DeliveryReport, store: Store, applied: list[Transition], attempts: int = 3
) -> bool:
    for _ in range(attempts):
        try:
            item = store.get_message(conflict.request_id, conflict.index)
        except NotFound:
            return False
        transition = _transition(
            item | ({"adopt_ref": conflict.vendor_ref} if conflict.ref_key else {}), report
        )
        if transition is None:
            return False
        done, _ = store.apply_transitions([transition])
        if done:
            applied += done
            return True
    return False


def _announce(applied: list[Transition]) -> None:
    if applied:
        count_statuses(applied)
        publish(status_events(applied))


def count_statuses(applied: Iterable[Transition]) -> None:
    counts: dict[tuple[str, str], int] = {}
    for t in applied:
        key = (t.status.value.capitalize(), t.vendor or "none")
        counts[key] = counts.get(key, 0) + 1
    for (name, vendor), value in counts.items():  # one EMF line per status and vendor, not per message
        vendor_metric(name, vendor, value)


def apply_early_reports(early: Mapping[str, dict], store: Store) -> int:
    """Kept reports (match_key -> report) whose message has a reference now: applied, then kept
    no longer (each was weighed against its message). Dispatch runs this after recording a
    chunk, poll for every report kept. Returns how many were applied."""
    known = list(store.find_refs(early))
    if known:
        apply_reports([DeliveryReport.model_validate(early[k]) for k in known], store)
    for match_key in known:
        store.delete_early_report(match_key)
    return len(known)


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
                    time=message.received_at or utcnow(),
                    vendor_time=message.received_at,
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
