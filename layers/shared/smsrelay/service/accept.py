"""Take a send request in, exactly once, whatever is retried and wherever it stops.

- **Identity.** A request's id is derived from its `client_ref`, else from its delivery's own id
  (SQS message, EventBridge event, SNS message, Lambda invocation, S3 object version). Message
  ids, part numbers and chunk ids derive from the request id and row positions, so every retry
  of an acceptance lands on the same items and chunks.
- **State.** The request item says `accepting` until every part of its rows is stored and
  counted, then `accepted` (or `refused` when its file cannot be read at all). It holds its
  rows (inline, or a file in S3), a lease (who is taking it in, until when) and a cursor (how
  far reading got), so a retry, a redelivery or the sweeper resumes it.
- **Parts.** Rows are read in order and cut into parts; each part is written under its own
  lease (messages, rejections), then counted into the request in the same transaction that
  marks it written, then its chunks are enqueued. A part is written and counted once.
- **Bounded.** Small requests are taken in before the answer; big ones (and files) are read by
  a job after it (`state: accepting`). The answer and the stored records hold at most 100
  rejections and message ids; the rest are read by request.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ..dal import (
    MessageItem,
    NewMessage,
    NotFound,
    PartSummary,
    RequestRecord,
    derived_id,
    iso,
    message_id,
    utcnow,
)
from ..deps import Deps
from ..files import FileUnreadable, S3Object, etag_of, get, metadata, put, stream
from ..models import (
    ANSWER_LIST_LIMIT,
    AcceptJob,
    DispatchChunk,
    RejectedRecipient,
    RequestAccepted,
    RequestState,
    SendAnswer,
    SendOptionsSpec,
    SendPart,
    SendRequest,
    Status,
)
from ..numbers import InvalidNumber, normalise
from ..observability import logger, metrics
from ..rows import (
    FileReader,
    FileRefused,
    Fingerprints,
    Position,
    Row,
    Template,
    file_format,
    inline_rows,
    jsonl_of,
    stored_rows,
)
from ..segments import segments
from ..vendor_config import VendorNotConfigured, Vendors
from ..vendors import VENDOR_IDS, Capability, VendorAdapter, adapter_class
from . import chunks
from .common import dumps, send_batches
from .health import HealthView
from .suppression import OPTED_OUT

#: rows kept in the request item itself up to this size (DynamoDB items hold 400 KB)
INLINE_ROWS_BYTES = 300_000
#: a part's rows stay under this in its queue message (SQS takes 256 KB)
PART_BYTES = 200_000
#: a lease outlasts its invocation's deadline by this much (clocks of two invocations differ a little)
LEASE_SLACK_S = 1.0
#: a reading job stops this long before its invocation's end, saving where it got to
JOB_MARGIN_S = 30.0


class RequestRefused(ValueError):
    """The request as a whole cannot be taken (an unknown vendor, `send_at` too far ahead, ...).
    The message is `field: what to do`."""


class AcceptInProgress(Exception):
    """The same request is being taken in by another invocation right now (a concurrent duplicate)."""

    def __init__(self, request_id: str):
        super().__init__(f"request {request_id} is being accepted")
        self.request_id = request_id


class PartBusy(Exception):
    """Another live invocation is writing this part: try again later."""


@dataclass
class Delivery:
    """How a request reached us: the id that names this delivery (the same on every retry of
    it), and the invocation taking it in (the owner of its leases, until its deadline)."""

    kind: str  # api | sqs | event | sns | invoke | s3
    id: str | None
    deadline: float = field(default_factory=lambda: time.time() + 60)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def lease_until(self) -> float:
        # the invocation cannot outlive its deadline: after it, its lease is free for a retry
        return self.deadline + LEASE_SLACK_S

    def time_left(self) -> float:
        return self.deadline - time.time()


def request_id_for(request: SendRequest, delivery: Delivery) -> str:
    if request.client_ref:
        return derived_id("client_ref", request.client_ref)
    if delivery.id:
        return derived_id(delivery.kind, delivery.id)
    return derived_id("random", uuid.uuid4().hex)


class Acceptance:
    def __init__(self, deps: Deps):
        self.deps = deps
        self.settings = deps.settings
        self.store = deps.store
        self.requests = deps.store.requests

    # ------------------------------------------------------------------ entry
    def accept(self, request: SendRequest, delivery: Delivery) -> SendAnswer:
        """Take a request in (or find it taken in already); the answer, bounded."""
        self._check(request)
        request_id = request_id_for(request, delivery)
        record = self._existing(request_id)
        if record is None:
            record = self._new_record(request, request_id, delivery)
            if not self.requests.create(record):
                record = self._existing(request_id)  # a concurrent duplicate created it first
                if record is None:
                    raise AcceptInProgress(request_id)
            else:
                return self._take_in(record, delivery)
        if record.state != RequestState.ACCEPTING:
            return self._stored_answer(record)
        if not self.requests.take(request_id, delivery.owner, delivery.lease_until):
            raise AcceptInProgress(request_id)
        return self._take_in(record, delivery)

    def _existing(self, request_id: str) -> RequestRecord | None:
        try:
            return self.requests.load(request_id)
        except NotFound:
            return None

    def _check(self, request: SendRequest) -> None:
        if request.vendor is not None:
            if request.vendor not in VENDOR_IDS:
                raise RequestRefused(
                    f"vendor: unknown vendor {request.vendor!r}; use one of {', '.join(VENDOR_IDS)}"
                )
            if request.vendor not in self.deps.vendors.configured():
                raise RequestRefused(
                    f"vendor: {request.vendor!r} is not configured or disabled; fill its settings"
                )
        if request.send_at is not None:
            latest = utcnow() + dt.timedelta(days=self.settings.max_schedule_days)
            if request.send_at > latest:
                raise RequestRefused(
                    f"send_at: at most {self.settings.max_schedule_days} days ahead "
                    f"(until {iso(latest)}); send it later, closer to its time"
                )

    def _new_record(self, request: SendRequest, request_id: str, delivery: Delivery) -> RequestRecord:
        options = request.options()
        record = RequestRecord(
            request_id=request_id,
            options=options.model_dump(mode="json", exclude_none=True),
            client_ref=request.client_ref,
            created_at=iso(utcnow()),
            region=self.settings.default_region,
            part_rows=self.settings.part_size,
            part_bytes=PART_BYTES,
            lease_owner=delivery.owner,
            lease_until=delivery.lease_until,
            expires_at=self.store.table.expires(request.send_at),
        )
        if request.recipients_file is not None:
            source = S3Object.parse(request.recipients_file)
            try:
                record.source_etag = etag_of(source)
            except FileUnreadable as exc:
                raise RequestRefused(f"recipients_file: {exc}") from None
            record.source_uri = source.uri
            record.source_format = file_format(source.key)
            record.caller_file = True
            return record
        rows = inline_rows(request)
        text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
        if len(rows) <= self.settings.sync_accept_limit and len(text.encode()) <= INLINE_ROWS_BYTES:
            record.rows_json = text
            return record
        if not self.settings.bulk_bucket:
            raise RequestRefused("recipients: too many for one call here (no bulk bucket configured)")
        # Too big to take in before answering: the rows wait in S3 for the job.
        stored = S3Object(self.settings.bulk_bucket, f"requests/{request_id}.jsonl")
        record.source_etag = put(stored, jsonl_of(rows), "application/x-ndjson")
        record.source_uri = stored.uri
        record.source_format = "jsonl"
        return record

    def _take_in(self, record: RequestRecord, delivery: Delivery) -> SendAnswer:
        """We hold the request's lease: take small inline requests in now, hand the rest to the job."""
        try:
            if record.rows_json is not None:
                try:
                    self._read(record, delivery, inline=True)
                except PartBusy:
                    raise AcceptInProgress(record.request_id) from None
                done = self.requests.load(record.request_id)
                if done.state == RequestState.ACCEPTING:
                    self.finalize(record.request_id)
                    done = self.requests.load(record.request_id)
                return self._stored_answer(done)
            send_batches(self.settings.send_queue_url, [dumps(AcceptJob(smsrelay_job=record.request_id))])
            return SendAnswer(request_id=record.request_id, state=RequestState.ACCEPTING)
        finally:
            self.requests.release(record.request_id, delivery.owner)

    # ------------------------------------------------------------------ the reading job
    def run_job(self, request_id: str, delivery: Delivery) -> None:
        """Read (the rest of) a request's rows into parts. One job at a time per request (lease);
        near its deadline it saves a cursor and queues itself again."""
        record = self._existing(request_id)
        if record is None or record.state != RequestState.ACCEPTING:
            if record is not None:
                self.announce(record)
            return
        if not self.requests.take(request_id, delivery.owner, delivery.lease_until):
            return  # another job holds it; if it dies, the sweeper queues a new one
        try:
            self._read(record, delivery, inline=False)
        finally:
            self.requests.release(request_id, delivery.owner)

    def _read(self, record: RequestRecord, delivery: Delivery, *, inline: bool) -> None:
        options = SendOptionsSpec.model_validate(record.options)
        cursor = record.cursor or {}
        start = Position(cursor.get("row", 0), cursor.get("byte", 0), cursor.get("line", 1))
        seen = Fingerprints(get(S3Object.parse(cursor["seen"])) if cursor.get("seen") else None)
        # parts already written and queued are not sent again (a written one still has its chunks queued)
        done_parts = {p.number for p in self.requests.list_parts(record.request_id) if p.state == "enqueued"}
        reader: FileReader | None = None
        if record.rows_json is not None:
            rows: Iterable[Row] = stored_rows(json.loads(record.rows_json), start.row)
        else:
            assert record.source_uri is not None
            reader = FileReader(
                record.source_format or "jsonl", Template(options.content), cursor.get("columns")
            )
            source = S3Object.parse(record.source_uri)
            rows = reader.rows(_opened_late(source, record.source_etag, start.byte), start)
        cutter = PartCutter(record, seen, first_part=cursor.get("part", 0))
        outbox: list[SendPart] = []

        def emit(part: SendPart) -> None:
            if part.smsrelay_part in done_parts:
                return
            if inline:
                self.process_part(part, delivery, record=record)
            else:
                outbox.append(part)
                if len(outbox) >= 30:
                    flush()

        def flush() -> None:
            if outbox:
                send_batches(self.settings.send_queue_url, [dumps(p) for p in outbox])
                outbox.clear()

        try:
            for row in rows:
                part = cutter.add(row)
                if part is not None:
                    emit(part)
                    if not inline and delivery.time_left() < JOB_MARGIN_S:
                        flush()
                        self._pause(record, delivery, cutter, reader)
                        return
        except (FileRefused, FileUnreadable) as exc:
            self._refuse(record, str(exc))
            return
        last = cutter.close()
        if last is not None:
            emit(last)
        flush()
        self.requests.set_parts_total(record.request_id, delivery.owner, cutter.next_part, cutter.next_row)
        self.finalize(record.request_id)

    def _pause(
        self, record: RequestRecord, delivery: Delivery, cutter: PartCutter, reader: FileReader | None
    ) -> None:
        """Out of time: keep where reading got (and the duplicate check so far), and come back."""
        position = reader.position if reader is not None else Position(cutter.next_row)
        seen = S3Object(self.settings.bulk_bucket, f"requests/{record.request_id}.seen.{cutter.next_part}")
        put(seen, cutter.seen.to_bytes())
        cursor = {
            "part": cutter.next_part,
            "row": position.row,
            "byte": position.byte,
            "line": position.line,
            "seen": seen.uri,
        } | ({"columns": reader.columns} if reader is not None and reader.columns else {})
        if self.requests.save_cursor(record.request_id, delivery.owner, cursor):
            send_batches(self.settings.send_queue_url, [dumps(AcceptJob(smsrelay_job=record.request_id))])
            logger.info(
                "accept job paused", extra={"request_id": record.request_id, "part": cutter.next_part}
            )

    def _refuse(self, record: RequestRecord, error: str) -> None:
        answer = SendAnswer(request_id=record.request_id, state=RequestState.REFUSED, error=error)
        if self.requests.finish(record.request_id, RequestState.REFUSED, answer.model_dump_json(), error):
            logger.warning("request refused", extra={"request_id": record.request_id, "error": error})
            self.announce(self.requests.load(record.request_id))

    # ------------------------------------------------------------------ parts
    def process_part(self, part: SendPart, delivery: Delivery, record: RequestRecord | None = None) -> None:
        """Write the part's messages and rejections once, count them once, enqueue its chunks."""
        state = self.requests.claim_part(
            part.request_id,
            part.smsrelay_part,
            delivery.owner,
            delivery.lease_until,
            (part.first_row, part.last_row),
        )
        if state == "busy":
            raise PartBusy(f"part {part.smsrelay_part} of {part.request_id} is being written")
        record = record or self.requests.load(part.request_id)
        options = SendOptionsSpec.model_validate(record.options)
        if state == "writing":
            try:
                planned = self._write_part(part, record, options, delivery)
            except BaseException:
                self.requests.release_part(part.request_id, part.smsrelay_part, delivery.owner)
                raise
        elif state == "written":  # counted, but its chunks may not all be queued: rebuild them
            planned = self._chunks_from_messages(part, options)
        else:
            planned = None
        if planned is not None:
            now = utcnow()
            delays = [queue_delay(c, self.deps.vendors.get(c.vendor), now) for c in planned]
            send_batches(self.settings.dispatch_queue_url, [dumps(c) for c in planned], delays)
            self.requests.mark_part_enqueued(part.request_id, part.smsrelay_part)
        self._maybe_finalize(part.request_id)

    def _write_part(
        self, part: SendPart, record: RequestRecord, options: SendOptionsSpec, delivery: Delivery
    ) -> list:
        request_id = part.request_id
        rejected = list(part.rejected)
        numbers = [n for _, n in part.numbers]
        keep = [True] * len(part.numbers)
        if numbers and options.category != "transactional":
            blocked = self.store.suppression.suppressed(numbers)
            for i, (index, number) in enumerate(part.numbers):
                if number in blocked:
                    keep[i] = False
                    rejected.append(
                        RejectedRecipient(
                            to=number, reason=f"{OPTED_OUT}: the recipient opted out", index=index
                        )
                    )
        routable = set(self.deps.vendors.configured())
        health = HealthView.load(self.deps, routable)
        steered: dict[tuple[str, ...], tuple[str, ...]] = {}
        planned: list[chunks.Planned] = []
        for i, (index, number) in enumerate(part.numbers):
            if not keep[i]:
                continue
            content = part.contents[i] if part.contents is not None else None
            route = tuple(
                v
                for v in ([options.vendor] if options.vendor else self.settings.route_for(number))
                if v in routable
            )
            if not route:
                rejected.append(
                    RejectedRecipient(
                        to=number, reason="no_route: no configured vendor serves this number", index=index
                    )
                )
                continue
            if route not in steered:  # an open circuit or a low balance sends traffic to the next vendor
                steered[route] = health.steer(route)
            route = steered[route]
            too_long = _too_long(content if content is not None else options.content or "", route[0])
            if too_long:
                rejected.append(RejectedRecipient(to=number, reason=too_long, index=index))
                continue
            window = options.window or self.settings.window_for(number)
            planned.append(chunks.Planned(index, number, content, route, window))
        planned_chunks = chunks.plan(
            planned,
            prefix=f"{request_id}.{part.smsrelay_part}",
            request_id=request_id,
            options=options,
            shape=lambda vendor: _shape(vendor, self.deps.vendors),
            default_zone=self.settings.default_timezone,
        )
        content_of = {p.index: p.content for p in planned}
        messages: list[NewMessage] = []
        by_vendor: dict[str, int] = {}
        for chunk in planned_chunks:
            for item in chunk.items:
                text = content_of[item.index]
                count = segment_count(text if text is not None else options.content or "")
                by_vendor[chunk.vendor] = by_vendor.get(chunk.vendor, 0) + count
                messages.append(
                    NewMessage(
                        index=item.index,
                        to=item.to,
                        vendor=chunk.vendor,
                        chunk_id=chunk.chunk_id,
                        fallback=chunk.fallback,
                        content=text,
                        segments=count,
                        window=chunk.window,
                        zone=chunk.zone,
                        client_ref=options.client_ref,
                    )
                )
        rejected.sort(key=lambda r: r.index or 0)
        self.store.messages.put_new(request_id, part.smsrelay_part, messages, record.expires_at)
        self.requests.put_rejections(request_id, part.smsrelay_part, rejected, record.expires_at)
        summary = PartSummary(
            accepted=len(messages),
            rejected=len(rejected),
            segments=sum(by_vendor.values()),
            segments_by_vendor=by_vendor,
            first_rejected=rejected[:ANSWER_LIST_LIMIT],
            first_messages=sorted(m.index for m in messages)[:ANSWER_LIST_LIMIT],
        )
        if not self.requests.complete_part(request_id, part.smsrelay_part, delivery.owner, summary):
            raise PartBusy(f"part {part.smsrelay_part} of {request_id} was taken over while it was written")
        metrics.add_metric(name="Accepted", unit="Count", value=len(messages))
        metrics.add_metric(name="Segments", unit="Count", value=summary.segments)
        metrics.add_metric(name="RejectedAtSend", unit="Count", value=len(rejected))
        return planned_chunks

    def _chunks_from_messages(self, part: SendPart, options: SendOptionsSpec) -> list:
        """A part counted before its chunks were all queued: its chunks again, from its messages
        (those still queued under their first chunk; a chunk queued twice is claimed once)."""
        by_chunk: dict[str, list[MessageItem]] = {}
        for item in self.store.messages.between(part.request_id, part.first_row, part.last_row):
            if item.status == Status.QUEUED and item.chunk:
                by_chunk.setdefault(item.chunk, []).append(item)
        return [chunks.rebuild(chunk_id, items, options) for chunk_id, items in by_chunk.items()]

    # ------------------------------------------------------------------ the end of acceptance
    def _maybe_finalize(self, request_id: str) -> None:
        record = self.requests.load(request_id)
        if (
            record.state == RequestState.ACCEPTING
            and record.parts_total is not None
            and record.parts_done >= record.parts_total
        ):
            self.finalize(request_id)

    def finalize(self, request_id: str) -> None:
        """Every part counted: accepting -> accepted (one caller wins), then `SMS Request Accepted`."""
        record = self.requests.load(request_id)
        if (
            record.state != RequestState.ACCEPTING
            or record.parts_total is None
            or record.parts_done < record.parts_total
        ):
            return
        answer = self._answer(record)
        if self.requests.finish(request_id, RequestState.ACCEPTED, answer.model_dump_json(exclude_none=True)):
            logger.info(
                "send request accepted",
                extra={
                    "request_id": request_id,
                    "accepted": answer.accepted,
                    "rejected": answer.rejected_count,
                    "parts": record.parts_total,
                },
            )
            self.announce(self.requests.load(request_id))

    def announce(self, record: RequestRecord) -> None:
        """Publish `SMS Request Accepted` once the request is final; the request leaves the
        index of unfinished ones after it (a crash in between: the sweeper publishes it)."""
        if record.state == RequestState.ACCEPTING or record.answer is None:
            return
        if record.announced:
            return
        answer = SendAnswer.model_validate_json(record.answer)
        self.deps.events.publish(
            [
                RequestAccepted(
                    request_id=record.request_id,
                    client_ref=record.client_ref,
                    state=record.state,
                    accepted=answer.accepted,
                    rejected_count=answer.rejected_count,
                    error=answer.error,
                    time=utcnow(),
                )
            ]
        )
        self.requests.mark_announced(record.request_id)

    def _answer(self, record: RequestRecord) -> SendAnswer:
        rejected: list[RejectedRecipient] = []
        first_messages: list[int] = []
        for part in self.requests.list_parts(record.request_id, with_answer_lists=True):
            if len(rejected) < ANSWER_LIST_LIMIT:
                rejected += part.first_rejected
            if len(first_messages) < ANSWER_LIST_LIMIT:
                first_messages += part.first_messages
            if len(rejected) >= ANSWER_LIST_LIMIT and len(first_messages) >= ANSWER_LIST_LIMIT:
                break
        counters = record.counters
        return SendAnswer(
            request_id=record.request_id,
            state=RequestState.ACCEPTED,
            accepted=counters.get("total", 0),
            rejected=rejected[:ANSWER_LIST_LIMIT],
            rejected_count=counters.get("rejected_count", 0),
            message_ids=[message_id(record.request_id, i) for i in first_messages[:ANSWER_LIST_LIMIT]],
            segments=counters.get("segments", 0),
            estimated_cost=self._cost({k[3:]: v for k, v in counters.items() if k.startswith("sg_")}),
        )

    def _cost(self, segments_by_vendor: dict[str, int]) -> dict[str, str] | None:
        cost: dict[str, str] = {}
        for vendor, count in segments_by_vendor.items():
            try:
                price = self.deps.vendors.settings_of(vendor).get("price_per_segment")
            except VendorNotConfigured:
                price = None
            if price is not None and count:
                cost[vendor] = str(Decimal(str(price)) * count)
        return cost or None

    def _stored_answer(self, record: RequestRecord) -> SendAnswer:
        if record.answer is None:
            return SendAnswer(request_id=record.request_id, state=record.state)
        return SendAnswer.model_validate_json(record.answer)


# --------------------------------------------------------------------------- reading rows into parts


class PartCutter:
    """Rows in, parts out: each row normalised (invalid -> a rejection), duplicates dropped
    (first one wins), parts cut at the request's row and byte sizes. The same rows cut the same
    parts, so a resumed reading emits parts identical to the first attempt's."""

    def __init__(self, record: RequestRecord, seen: Fingerprints, first_part: int = 0):
        self.record = record
        self.seen = seen
        self.next_part = first_part
        self.next_row = 0
        self._rows: list[tuple[int, str]] = []
        self._contents: list[str] = []
        self._personal = False
        self._rejected: list[RejectedRecipient] = []
        self._first: int | None = None
        self._bytes = 0

    def add(self, row: Row) -> SendPart | None:
        if self._first is None:
            self._first = row.index
        self.next_row = row.index + 1
        if row.error:
            self._reject(row, f"invalid_row: {row.error}")
        else:
            try:
                number = normalise(row.to, self.record.region)
            except InvalidNumber as exc:
                self._reject(row, f"invalid_number: {exc}")
            else:
                if self.seen.add(f"{number}\0{row.content or ''}"):
                    self._rows.append((row.index, number))
                    self._contents.append(row.content or "")
                    self._personal = self._personal or row.content is not None
                    self._bytes += len(number) + 12 + (len(row.content.encode()) + 4 if row.content else 0)
        rows = self.next_row - self._first
        if rows >= self.record.part_rows or self._bytes >= self.record.part_bytes:
            return self._cut()
        return None

    def _reject(self, row: Row, reason: str) -> None:
        line = (
            row.line if self.record.caller_file else None
        )  # our own copy's lines mean nothing to the caller
        self._rejected.append(
            RejectedRecipient(to=row.to[:64], reason=reason[:300], index=row.index, row=line)
        )
        self._bytes += min(len(row.to), 64) + min(len(reason), 300) + 48

    def close(self) -> SendPart | None:
        return self._cut() if self._first is not None else None

    def _cut(self) -> SendPart:
        assert self._first is not None
        part = SendPart(
            smsrelay_part=self.next_part,
            request_id=self.record.request_id,
            first_row=self._first,
            last_row=self.next_row - 1,
            numbers=self._rows,
            contents=self._contents if self._personal else None,
            rejected=self._rejected,
        )
        self.next_part += 1
        self._rows, self._contents, self._rejected = [], [], []
        self._personal, self._first, self._bytes = False, None, 0
        return part


def queue_delay(chunk: DispatchChunk, adapter: VendorAdapter | None, now: dt.datetime) -> int:
    """The first wait in the queue of a chunk that must wait (SQS delays it 15 min at most;
    dispatch holds it again when it comes early)."""
    return chunks.wait_seconds(chunk, adapter, now)


def _opened_late(source: S3Object, etag: str | None, start: int) -> Iterator[bytes]:
    """The object's bytes, opened when the first chunk is wanted (errors surface while reading)."""
    yield from stream(source, etag, start)


@lru_cache(maxsize=4096)
def segment_count(content: str) -> int:
    return segments(content).count


@lru_cache(maxsize=16)
def _content_limit(vendor: str) -> int | None:
    return adapter_class(vendor).max_content_chars


def _too_long(content: str, vendor: str) -> str | None:
    """A text longer than the vendor takes is refused before any call, with the limit in the reason."""
    limit = _content_limit(vendor)
    if limit and len(content) > limit:
        return f"content_too_long: {len(content)} characters, {vendor} takes at most {limit}"
    if not content:
        return "empty_content: the text is empty for this recipient"
    return None


def _shape(vendor: str, vendors: Vendors) -> chunks.VendorShape:
    adapter = vendors.get(vendor)
    if adapter is None:
        return chunks.VendorShape(limit=100, native_personalised=False)
    return chunks.VendorShape(adapter.batch_limit, adapter.supports(Capability.PERSONALISED_NATIVE))


# --------------------------------------------------------------------------- bulk uploads

#: a recipients file's request fields, in a JSON object uploaded beside it (`<file>.request.json`)
SIDECAR_SUFFIX = ".request.json"
#: ... or in the file's own object metadata (`x-amz-meta-smsrelay-request`)
METADATA_KEY = "smsrelay-request"


def upload_request(bucket: str, key: str) -> tuple[Any, S3Object, str] | None:
    """The send request an upload under `bulk/` makes: the recipients file, with the request's
    other fields from the file's metadata or from its sidecar, and the file's version. None
    while the other half has not arrived (whichever of file and sidecar comes second starts
    the send)."""
    data = S3Object(bucket, key.removesuffix(SIDECAR_SUFFIX))
    try:
        head = metadata(data)
        fields = head["metadata"].get(METADATA_KEY)
        if not fields:
            fields = get(S3Object(bucket, data.key + SIDECAR_SUFFIX)).decode("utf-8", "replace")
    except FileUnreadable:
        return None
    try:
        request = json.loads(fields)
    except (ValueError, RecursionError):
        return fields, data, head["etag"]  # unreadable: the caller's parser names the problem
    if isinstance(request, dict):
        request = request | {"recipients_file": data.uri}
    return request, data, head["etag"]
