"""The public contracts as pydantic models: send request and answer, statuses, events, queue bodies."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

MAX_RECIPIENTS = 1_000_000
#: an answer lists at most this many rejected numbers and message ids; the rest are read back by request
ANSWER_LIST_LIMIT = 100
#: `recipients_file`: an object in S3, `s3://bucket/key`
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.+$"


def _utc_text(value: dt.datetime) -> str:
    """Every event time is UTC with `Z`, whatever zone it was read in (history sorts as text)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: a datetime written as UTC ISO 8601 with `Z`
UtcDatetime = Annotated[dt.datetime, PlainSerializer(_utc_text, return_type=str, when_used="json")]


class Status(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    REJECTED = "rejected"
    FAILED = "failed"
    UNKNOWN = "unknown"


FINAL_STATUSES = frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.REJECTED, Status.FAILED})

#: target status -> the statuses it may come from (nothing leaves a final status)
ALLOWED_FROM: dict[Status, frozenset[Status]] = {
    Status.SUBMITTED: frozenset({Status.QUEUED, Status.UNKNOWN}),
    Status.REJECTED: frozenset({Status.QUEUED, Status.UNKNOWN}),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.UNKNOWN: frozenset({Status.QUEUED, Status.SUBMITTED}),
    Status.DELIVERED: frozenset({Status.QUEUED, Status.SUBMITTED, Status.UNKNOWN}),
    Status.UNDELIVERED: frozenset({Status.QUEUED, Status.SUBMITTED, Status.UNKNOWN}),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PersonalMessage(_Strict):
    to: str = Field(min_length=1, max_length=32)
    content: str = Field(min_length=1, max_length=2000)


class SendWindow(_Strict):
    """A daily sending window in the recipient's local time, e.g. 08:00-21:00 (may wrap midnight)."""

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["08:00"])
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["21:00"])

    @model_validator(mode="after")
    def _not_empty(self) -> SendWindow:
        if self.start == self.end:
            raise ValueError("`window`: start and end must differ (omit the window to send at any time)")
        return self

    def times(self) -> tuple[dt.time, dt.time]:
        return dt.time.fromisoformat(self.start), dt.time.fromisoformat(self.end)


class SendRequest(_Strict):
    """Every entry point takes this JSON (design: send request)."""

    recipients: list[str] | None = Field(default=None, max_length=MAX_RECIPIENTS)
    content: str | None = Field(default=None, min_length=1, max_length=2000)
    messages: list[PersonalMessage] | None = Field(default=None, max_length=MAX_RECIPIENTS)
    #: bulk: CSV with a header (`to` plus variables) or JSON Lines; `content` may hold {{name}} placeholders
    recipients_file: str | None = Field(default=None, max_length=1100, pattern=S3_URI_PATTERN)
    vendor: str | None = None
    client_ref: str | None = Field(default=None, min_length=1, max_length=128)
    send_at: AwareDatetime | None = None
    sender_id: str | None = Field(default=None, min_length=1, max_length=16)
    category: Literal["transactional", "marketing"] | None = None
    window: SendWindow | None = None  # quiet hours: send only inside this daily window (recipient's time)

    @model_validator(mode="after")
    def _one_form(self) -> SendRequest:
        forms = [
            name for name in ("recipients", "messages", "recipients_file") if getattr(self, name) is not None
        ]
        if len(forms) > 1:
            raise ValueError(
                "give one of `recipients` + `content`, `messages`, or `recipients_file` + `content`, "
                f"not {' and '.join(forms)}"
            )
        if self.messages is not None:
            if self.content is not None:
                raise ValueError("give either `messages` or `recipients` + `content`, not both")
            if not self.messages:
                raise ValueError("`messages` is empty: give at least one {to, content}")
        elif self.recipients_file is not None:
            if self.content is None:
                raise ValueError(
                    "`content` is missing: give the text, with {{column}} placeholders if you like"
                )
        else:
            if not self.recipients:
                raise ValueError("`recipients` is missing or empty: give at least one phone number")
            if self.content is None:
                raise ValueError("`content` is missing: give the text to send")
        return self

    def options(self) -> SendOptionsSpec:
        """Everything but the recipients: what acceptance keeps with the request."""
        return SendOptionsSpec.model_validate(
            self.model_dump(exclude={"recipients", "messages", "recipients_file"}, exclude_none=True)
        )


class Lane(StrEnum):
    """The dispatch queue a request's chunks go through: one-time codes never wait behind a blast."""

    PRIORITY = "priority"  # transactional, or small and uncategorised: its own queue, never paced
    BULK = "bulk"  # everything else: concurrency capped, paced per vendor (`bulk_rate_per_s`)


class SendOptionsSpec(BaseModel):
    """A request without its recipients, as stored with it while it is accepted and after."""

    model_config = ConfigDict(extra="ignore")

    lane: Lane = Lane.BULK  # decided once, at acceptance
    content: str | None = None
    vendor: str | None = None
    client_ref: str | None = None
    send_at: AwareDatetime | None = None
    sender_id: str | None = None
    category: Literal["transactional", "marketing"] | None = None
    window: SendWindow | None = None


class RejectedRecipient(BaseModel):
    to: str
    reason: str
    index: int | None = Field(default=None, description="position of the recipient in the request (0-based)")
    row: int | None = Field(default=None, description="line of the recipients file it came from (1-based)")


class RequestState(StrEnum):
    ACCEPTING = "accepting"  # being taken in (asynchronously for big requests)
    ACCEPTED = "accepted"  # every recipient has an item or a rejection; counters are final
    REFUSED = "refused"  # the recipients could not be read at all (e.g. a file without a `to` column)


class SendAnswer(BaseModel):
    """Bounded whatever the input: the lists hold the first ANSWER_LIST_LIMIT entries."""

    request_id: str
    state: RequestState = RequestState.ACCEPTED
    accepted: int = 0
    rejected: list[RejectedRecipient] = Field(default_factory=list)
    rejected_count: int = 0
    message_ids: list[str] | None = None
    segments: int = Field(
        default=0, description="SMS segments of all accepted messages, as handsets split them"
    )
    estimated_cost: dict[str, str] | None = Field(
        default=None, description="per vendor, from `price_per_segment` in the vendor settings"
    )
    error: str | None = Field(default=None, description="why a refused request took no recipient")


class ChunkItem(BaseModel):
    """One recipient of a dispatch chunk: message index, E.164 number, text when personalised."""

    model_config = ConfigDict(frozen=True)

    index: int
    to: str
    content: str | None = None


class DispatchChunk(BaseModel):
    """The body of one dispatch-queue message: one vendor request's worth of recipients."""

    chunk_id: str
    request_id: str
    vendor: str
    fallback: list[str] = Field(default_factory=list)
    content: str | None = None  # one text for all; None when each item carries its own
    items: list[ChunkItem]
    send_at: AwareDatetime | None = None
    sender_id: str | None = None
    client_ref: str | None = None
    hop: int = 0  # how many fail-overs led here
    #: since when its vendor has refused our own setup (epoch s): it waits up to the hold, then fails
    misconfigured_since: float | None = None
    window: SendWindow | None = None  # daily sending window, in the local time of `zone`
    zone: str | None = None  # IANA time zone of the chunk's recipients (chunks are grouped by zone)
    lane: Lane = Lane.BULK  # its queue; follow-ups (fail-over, retries, holds) stay in it

    def pairs(self) -> list[tuple[str, str]]:
        return [
            (item.to, item.content if item.content is not None else self.content or "") for item in self.items
        ]


class SendPart(BaseModel):
    """Rows `first_row`..`last_row` of a request, read and checked, for `send` to store and enqueue.
    Parts are cut from the request's rows in order, so a retry cuts the same parts."""

    smsrelay_part: int
    request_id: str
    first_row: int
    last_row: int
    numbers: list[tuple[int, str]] = Field(default_factory=list)  # (index, E.164), in row order
    contents: list[str] | None = None  # personalised: the text of each of `numbers`
    rejected: list[RejectedRecipient] = Field(default_factory=list)  # rows refused while reading


class AcceptJob(BaseModel):
    """Queue body: take in (the rest of) a big request from its stored rows."""

    smsrelay_job: str  # the request id


class HistoryEntry(BaseModel):
    status: Status
    at: dt.datetime
    vendor: str | None = None
    code: str | None = None
    description: str | None = None


class MessageView(BaseModel):
    message_id: str
    request_id: str
    to: str
    vendor: str | None = None
    status: Status
    vendor_ref: str | None = None
    code: str | None = None
    description: str | None = None
    client_ref: str | None = None
    segments: int | None = None
    history: list[HistoryEntry] = Field(default_factory=list)


class RequestView(BaseModel):
    request_id: str
    client_ref: str | None = None
    created_at: str
    state: RequestState
    total: int
    rejected_count: int = 0
    counts: dict[str, int]
    error: str | None = None
    messages: list[MessageView]
    next_token: str | None = None


class RejectionsView(BaseModel):
    request_id: str
    state: RequestState
    rejected_count: int
    rejected: list[RejectedRecipient]
    next_token: str | None = None


# --------------------------------------------------------------------------- events


class StatusChanged(BaseModel):
    message_id: str
    request_id: str
    client_ref: str | None = None
    to: str
    vendor: str | None = None
    status: Status
    previous_status: Status | None = None
    vendor_code: str | None = None
    time: UtcDatetime
    vendor_time: AwareDatetime | None = Field(
        default=None, description="the vendor's own time, as it gave it"
    )


class SmsReceived(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    vendor: str
    from_: str = Field(alias="from")
    to: str
    content: str
    time: UtcDatetime
    vendor_time: AwareDatetime | None = None


class VendorBalanceEvent(BaseModel):
    vendor: str
    balance: str
    unit: str
    time: UtcDatetime


class OptedOut(BaseModel):
    """A recipient replied an opt-out keyword; later non-transactional sends to it are rejected."""

    vendor: str
    number: str
    keyword: str
    time: UtcDatetime


class RequestAccepted(BaseModel):
    """A request is taken in: every recipient has a message or a rejection, counters are final."""

    request_id: str
    client_ref: str | None = None
    state: RequestState
    accepted: int
    rejected_count: int
    error: str | None = None
    time: UtcDatetime


class VendorMisconfigured(BaseModel):
    """A vendor refused us for our own setup (IP not allowed, wrong credentials, account disabled)."""

    vendor: str
    code: str
    meaning: str
    time: UtcDatetime


DETAIL_TYPES: dict[type[BaseModel], str] = {
    StatusChanged: "SMS Status Changed",
    SmsReceived: "SMS Received",
    VendorBalanceEvent: "SMS Vendor Balance",
    OptedOut: "SMS Opted Out",
    RequestAccepted: "SMS Request Accepted",
    VendorMisconfigured: "SMS Vendor Misconfigured",
}


def event_detail(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)
