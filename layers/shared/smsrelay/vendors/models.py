"""Normalised records every vendor adapter produces (pydantic v2 models)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Outcome(StrEnum):
    """How a vendor code is to be handled."""

    OK = "ok"
    PERMANENT = "permanent"  # retrying cannot help: the recipient ends `rejected`
    TRANSIENT = "transient"  # retry with backoff, then fail over, then `failed`
    #: our account at the vendor is wrong (credentials, IP allow-list, account disabled): the
    #: recipient is not to blame, so never final for it; the operator has to fix the vendor setup
    CONFIGURATION = "configuration"


class ReportStatus(StrEnum):
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    PENDING = "pending"  # pull answered "no report yet"


class Capability(StrEnum):
    """Optional operations an adapter may support beyond send/balance/push parsing."""

    PERSONALISED_NATIVE = "personalised_native"  # one request carries different texts
    PULL_REPORTS = "pull_reports"  # drain a report queue (no input)
    PULL_INBOUND = "pull_inbound"  # drain an inbound queue (no input)
    QUERY_REPORTS = "query_reports"  # ask the status of given (ref, number) pairs
    PUSH_REPORTS = "push_reports"
    PUSH_INBOUND = "push_inbound"
    SCHEDULED_SEND = "scheduled_send"  # vendor-native send time
    DAILY_WINDOW = "daily_window"  # vendor-native daily sending window
    SENDER_ID = "sender_id"
    SENSITIVE_WORDS = "sensitive_words"
    PRICING = "pricing"
    NUMBER_CHECK = "number_check"
    RESEND_SAFE = "resend_safe"  # a resent request with the same reference is not sent twice


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class SubmitResult(_Record):
    """What the vendor said about one recipient of a send request."""

    to: str = Field(description="E.164 number, with '+'")
    vendor: str
    vendor_ref: str | None = Field(default=None, description="the vendor's reference, exactly as given")
    outcome: Outcome
    code: str = Field(description="raw vendor code ('0' style strings, as the vendor wrote them)")
    description: str = ""

    @property
    def match_key(self) -> str | None:
        return match_key(self.vendor, self.vendor_ref, self.to) if self.vendor_ref else None


class DeliveryReport(_Record):
    vendor: str
    vendor_ref: str
    to: str = Field(description="E.164 number, with '+'")
    status: ReportStatus
    code: str = ""
    description: str = ""
    occurred_at: AwareDatetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def match_key(self) -> str:
        return match_key(self.vendor, self.vendor_ref, self.to)


class InboundMessage(_Record):
    vendor: str
    from_: str = Field(alias="from", description="sender, E.164 where it can be told")
    to: str = Field(default="", description="access / service number it was sent to")
    content: str
    received_at: AwareDatetime | None = None
    vendor_ref: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class Balance(_Record):
    vendor: str
    balance: Decimal
    unit: str = Field(description="e.g. 'CNY' or 'messages'")
    raw: dict[str, Any] = Field(default_factory=dict)


class UnreadableRecord(_Record):
    """One record of a readable push or pull that could not be read: skipped, logged, counted."""

    reason: str
    raw: str = Field(default="", description="the record as received, cut short; mask numbers before logging")


class PushBatch(_Record):
    """Everything one vendor push carried: each record stands alone."""

    reports: list[DeliveryReport] = Field(default_factory=list)
    inbound: list[InboundMessage] = Field(default_factory=list)
    unreadable: list[UnreadableRecord] = Field(default_factory=list)


class PullBatch(PushBatch):
    """What one vendor call of a pull or a query handed out. Pulled records are handed out
    once: apply a batch before the next call."""

    more: bool = Field(default=False, description="the vendor may hold more: call again")


class ReportQuery(_Record):
    """One (reference, number) pair to ask a QUERY_REPORTS vendor about."""

    vendor_ref: str
    to: str


class SensitiveWordCheck(_Record):
    ok: bool
    words: list[str] = Field(default_factory=list)


class Price(_Record):
    country: str
    prefix: str
    price: Decimal
    raw: dict[str, Any] = Field(default_factory=dict)


class NumberCheck(_Record):
    number: str
    valid: bool
    country: str = ""


class SendOptions(_Record):
    """Optional per-request send options; an adapter uses what its vendor supports."""

    send_at: AwareDatetime | None = None
    daily_window: tuple[dt.time, dt.time] | None = None
    sender_id: str | None = None
    reference: str | None = Field(
        default=None, description="our own request reference where the vendor takes one (smsadmin linkid)"
    )
    attempt: int = Field(
        default=1,
        ge=1,
        description="which attempt of the chunk this is: a new attempt takes a new vendor reference",
    )


def match_key(vendor: str, vendor_ref: str, to: str) -> str:
    """The key a delivery report is matched on: vendor, exact vendor reference, E.164 number."""
    return f"{vendor}#{vendor_ref}#{to}"
