"""Apply delivery reports and inbound messages, from pushes and from polls alike.

A report moves its message forward only (conditional writes); a repeated or late report
changes nothing; a report for a message not yet known is kept and applied when it appears."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..dal import InboundRecord, MessageItem, NotFound, ReferenceItem, Transition, utcnow
from ..deps import Deps
from ..models import ALLOWED_FROM, FINAL_STATUSES, SmsReceived, Status
from ..observability import logger, metrics
from ..vendors import DeliveryReport, InboundMessage, ReportStatus
from .common import announce

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


@dataclass(frozen=True)
class Target:
    """The message a report is about, as far as the report needs it: found by its reference
    (taken to be `submitted`, unread), or read; `adopt_ref` when the message never learnt the
    vendor reference the report carries."""

    request_id: str
    index: int
    to: str
    status: Status
    client_ref: str | None = None
    adopt_ref: str | None = None

    @classmethod
    def referenced(cls, ref: ReferenceItem) -> Target:
        # what a referenced message nearly always is when its report comes; the move's condition checks
        return cls(ref.request_id, ref.index, ref.to, Status.SUBMITTED, ref.client_ref)

    @classmethod
    def read(cls, message: MessageItem, adopt_ref: str | None = None) -> Target:
        return cls(
            message.request_id, message.index, message.to, message.status, message.client_ref, adopt_ref
        )


def apply_reports(reports: Iterable[DeliveryReport], deps: Deps) -> Applied:
    """A batch of reports (a push, a pull page): their references read 100 at a time, their
    messages moved in one transaction per 99 of a request, their events put 10 at a time.

    A message with a reference is taken to be `submitted` (what it nearly always is when its
    report comes) without reading it: the transaction's condition checks, and a message that
    is elsewhere (queued, unknown, already final) is read and weighed again."""
    store = deps.store
    result = Applied()
    wanted = [r for r in reports if r.status in _TARGET]
    if not wanted:
        return result
    refs = store.references.find(r.match_key for r in wanted)
    moves: dict[tuple[str, int], tuple[Transition, DeliveryReport]] = {}
    for report in wanted:
        ref = refs.get(report.match_key)
        target = Target.referenced(ref) if ref else _unknown_without_ref(report, deps)
        if target is None:
            # Keep it, then look again: whichever of dispatch and us writes second sees the other.
            store.references.keep_early(report.match_key, report.vendor, report.model_dump(mode="json"))
            ref = store.references.find([report.match_key]).get(report.match_key)
            if ref is None:
                result.early += 1
                continue
            store.references.forget_early(report.match_key)
            target = Target.referenced(ref)
        transition = _transition(target, report)
        key = (target.request_id, target.index)
        if transition is None or key in moves:  # repeated, out of order, or a second report in this batch
            result.ignored += 1
            continue
        moves[key] = (transition, report)
    applied, conflicts = store.apply_transitions([t for t, _ in moves.values()])
    for conflict in conflicts:  # moved meanwhile (a sweep, dispatch, another push): look again
        if _settle_again(conflict, moves[(conflict.request_id, conflict.index)][1], deps, applied):
            continue
        result.ignored += 1
    announce(deps.events, applied)
    result.applied += len(applied)
    return result


def _unknown_without_ref(report: DeliveryReport, deps: Deps) -> Target | None:
    """The one `unknown` message of this vendor and number whose reference we never learnt
    (the attempt died before recording it): the report's reference settles it."""
    candidates = [m for m in deps.store.messages.unknown_of(report.vendor, report.to) if not m.vendor_ref]
    if len(candidates) != 1:
        return None  # none, or ambiguous: keep the report rather than guess
    return Target.read(candidates[0], adopt_ref=report.vendor_ref)


def _transition(target: Target, report: DeliveryReport) -> Transition | None:
    """The move the report asks of the message as it is; None when that would not be forward."""
    status = _TARGET[report.status]
    if target.status in FINAL_STATUSES or target.status not in ALLOWED_FROM[status]:
        return None
    return Transition(
        request_id=target.request_id,
        index=target.index,
        previous=target.status,
        status=status,
        at=report.occurred_at or utcnow(),
        to=target.to or report.to,
        vendor=report.vendor,
        code=report.code or None,
        # never silent: the message would keep the submit's description ("OK") under a failure
        description=report.description or report.status.value,
        client_ref=target.client_ref,
        vendor_ref=target.adopt_ref,
        ref_key=report.match_key if target.adopt_ref else None,
        vendor_time=report.occurred_at,
    )


def _settle_again(
    conflict: Transition, report: DeliveryReport, deps: Deps, applied: list[Transition], attempts: int = 3
) -> bool:
    for _ in range(attempts):
        try:
            message = deps.store.messages.get(conflict.request_id, conflict.index)
        except NotFound:
            return False
        transition = _transition(
            Target.read(message, adopt_ref=conflict.vendor_ref if conflict.ref_key else None), report
        )
        if transition is None:
            return False
        done, _ = deps.store.apply_transitions([transition])
        if done:
            applied += done
            return True
    return False


def apply_early_reports(early: Mapping[str, dict], deps: Deps) -> int:
    """Kept reports (match_key -> report) whose message has a reference now: applied, then kept
    no longer (each was weighed against its message). Dispatch runs this after recording a
    chunk, poll for every report kept. Returns how many were applied."""
    known = list(deps.store.references.find(early))
    if known:
        apply_reports([DeliveryReport.model_validate(early[k]) for k in known], deps)
    for match_key in known:
        deps.store.references.forget_early(match_key)
    return len(known)


def store_inbound(messages: Iterable[InboundMessage], deps: Deps) -> int:
    fresh: list[SmsReceived] = []
    for message in messages:
        record = InboundRecord(
            vendor=message.vendor,
            from_=message.from_,
            to=message.to,
            content=message.content,
            time=message.received_at.isoformat() if message.received_at else None,
            vendor_ref=message.vendor_ref,
        )
        if deps.store.references.put_inbound(record):
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
        deps.events.publish(fresh)
        metrics.add_metric(name="Received", unit="Count", value=len(fresh))
        from .suppression import handle_replies  # opt-out keywords put their sender on the suppression list

        handle_replies(fresh, deps)
    logger.debug("inbound stored", extra={"fresh": len(fresh)})
    return len(fresh)
