"""The public contracts as pydantic models: send request and answer, statuses, events, queue bodies."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

MAX_RECIPIENTS = 1_000_000
SMALL_REQUEST = 100  # answers list message_ids up to this many recipients


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
    vendor: str | None = None
    client_ref: str | None = Field(default=None, min_length=1, max_length=128)
    send_at: AwareDatetime | None = None
    sender_id: str | None = Field(default=None, min_length=1, max_length=16)
    category: Literal["transactional", "marketing"] | None = None
    window: SendWindow | None = None  # quiet hours: send only inside this daily window (recipient's time)

    @model_validator(mode="after")
    def _one_form(self) -> SendRequest:
        if self.messages is not None:
            if self.recipients is not None or self.content is not None:
                raise ValueError("give either `messages` or `recipients` + `content`, not both")
            if not self.messages:
                raise ValueError("`messages` is empty: give at least one {to, content}")
        else:
            if not self.recipients:
                raise ValueError("`recipients` is missing or empty: give at least one phone number")
            if self.content is None:
                raise ValueError("`content` is missing: give the text to send")
        return self

    def pairs(self) -> list[tuple[str, str]]:
        """(raw number, content) for every recipient, in request order."""
        if self.messages is not None:
            return [(m.to, m.content) for m in self.messages]
        assert self.recipients is not None and self.content is not None
        return [(number, self.content) for number in self.recipients]


class RejectedRecipient(BaseModel):
    to: str
    reason: str


class SendAnswer(BaseModel):
    request_id: str
    accepted: int
    rejected: list[RejectedRecipient] = Field(default_factory=list)
    message_ids: list[str] | None = None
    segments: int = Field(
        default=0, description="SMS segments of all accepted messages, as handsets split them"
    )
    estimated_cost: dict[str, str] | None = Field(
        default=None, description="per vendor, from `price_per_segment` in the vendor settings"
    )


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
    window: SendWindow | None = None  # daily sending window, in the local time of `zone`
    zone: str | None = None  # IANA time zone of the chunk's recipients (chunks are grouped by zone)

    def pairs(self) -> list[tuple[str, str]]:
        return [
            (item.to, item.content if item.content is not None else self.content or "") for item in self.items
        ]


class SendPart(BaseModel):
    """A slice of a request that `send` writes and enqueues; big requests hand parts to themselves
    through the send-requests queue."""

    smsrelay_part: int
    request_id: str
    start_index: int
    numbers: list[str]
    contents: list[str] | None = None  # personalised: one per number
    content: str | None = None
    routes: list[list[str]]  # distinct fail-over lists
    route_of: list[int] | None = None  # per number, an index into `routes` (None: routes[0] for all)
    send_at: AwareDatetime | None = None
    sender_id: str | None = None
    client_ref: str | None = None
    windows: list[SendWindow | None] | None = None  # per route (parallel to `routes`); None: no window


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
    total: int
    counts: dict[str, int]
    messages: list[MessageView]
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
    time: dt.datetime


class SmsReceived(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    vendor: str
    from_: str = Field(alias="from")
    to: str
    content: str
    time: dt.datetime | None = None


class VendorBalanceEvent(BaseModel):
    vendor: str
    balance: str
    unit: str
    time: dt.datetime


class OptedOut(BaseModel):
    """A recipient replied an opt-out keyword; later non-transactional sends to it are rejected."""

    vendor: str
    number: str
    keyword: str
    time: dt.datetime


DETAIL_TYPES: dict[type[BaseModel], str] = {
    StatusChanged: "SMS Status Changed",
    SmsReceived: "SMS Received",
    VendorBalanceEvent: "SMS Vendor Balance",
    OptedOut: "SMS Opted Out",
}


def event_detail(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)
