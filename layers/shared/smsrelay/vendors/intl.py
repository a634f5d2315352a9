"""intl: International SMS API v1 (JSON bodies, appKey/appSecret headers).

Document: seeds/003 (digest in docs/vendors.md). One `msgId` per send request; reports match on
(msgId, mobile). Reports come by push (one JSON object per report) and by the status query.

Readings taken where the document is silent or contradicts itself:
- `sendTime` and report `timestamp` carry no zone: read as UTC+8 (the vendor's local time),
  overridable with the `vendor_utc_offset_min` setting.
- `timestamp` is `yyyyMMddHHmm` in the tables and `yyyyMMddHHmmss` in the examples: both accepted.
- push `status`: the table says 0 ok / 1 failed, the example shows 2: 0 is delivered, any other
  value failed. Pull `status`: 0 delivered, 1 no report yet, anything else failed.
- balance `data` is typed `Array[]` in the table and an object in the example: both accepted.
- a status query answered with 1012 (no report found) means "nothing yet" for that chunk.
- a report's `desc` is optional and the examples leave it empty: a report without one is
  described from its status and `errorCode`, so an undelivered message never keeps the send
  answer's "OK".
- every queried record carries its own `msgId` and `mobile` and is matched by them; an
  unreadable record of an answer is set aside, the others are kept.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .base import (
    CodeTable,
    PushReply,
    RawRequest,
    VendorAdapter,
    VendorSettings,
    chunked,
    e164_to_digits,
    md5_hex,
    unreadable,
    vendor_number_to_e164,
)
from .errors import VendorParseError, VendorRequestError
from .models import (
    Balance,
    Capability,
    DeliveryReport,
    Outcome,
    PullBatch,
    PushBatch,
    ReportQuery,
    ReportStatus,
    SendOptions,
    SubmitResult,
)

logger = logging.getLogger("smsrelay.vendors.intl")

VENDOR = "intl"
SEND_PATH = "/api/v1/international/sms/send"
BALANCE_PATH = "/api/v1/international/sms/balance"
STATUS_PATH = "/api/v1/international/sms/status"
QUERY_LIMIT = 500  # document chapter 4: at most 500 records per status query
CODE_NO_REPORT = "1012"
CODE_MOBILE = "1007"

# E.164: '+', a country code that does not start with 0, at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

CODES = CodeTable(
    VENDOR,
    {
        "0": (Outcome.OK, "OK"),
        "1001": (Outcome.PERMANENT, "ParamError: bad parameter"),
        "1002": (Outcome.CONFIGURATION, "AppKeyError: wrong appKey"),
        "1003": (Outcome.CONFIGURATION, "PasswordError: wrong appSecret"),
        "1004": (Outcome.CONFIGURATION, "BindIpError: our source IP is not bound to the account"),
        "1005": (Outcome.CONFIGURATION, "AccountStop: account stopped at the vendor"),
        "1006": (Outcome.PERMANENT, "ContentError: bad content"),
        "1007": (Outcome.PERMANENT, "MobileError: bad mobile number(s)"),
        "1008": (Outcome.PERMANENT, "ExtNumberError: bad extension"),
        "1009": (Outcome.PERMANENT, "AmountNotEnough: balance too low"),
        "1010": (Outcome.PERMANENT, "TimeSuperRange: query time out of range"),
        "1011": (Outcome.PERMANENT, "SendTimeError: bad sendTime format"),
        # Only a status query answers this: the report is not there (yet); asking later can help.
        "1012": (Outcome.TRANSIENT, "NoReportError: no report found"),
        "9999": (Outcome.TRANSIENT, "other: unknown vendor error"),
    },
)


class IntlSettings(VendorSettings):
    app_key: str = Field(min_length=1)
    app_secret: SecretStr
    sender_id: str | None = None
    # The document gives no zone for sendTime/timestamp; the vendor is in China (UTC+8).
    vendor_utc_offset_min: int = Field(default=480, ge=-720, le=840)


# --------------------------------------------------------------------------- vendor payloads


class _Payload(BaseModel):
    # The vendor writes numbers where the document says String (and vice versa): coerce.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)


class _Answer(_Payload):
    """Every answer: {code, msg, data?}."""

    code: str
    msg: str | None = ""
    data: Any = None

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("code must be a number")
        text = str(value).strip()
        if not text.lstrip("-").isdigit():
            raise ValueError("code must be a number")
        return str(int(text))


class _SendData(_Payload):
    msgId: str = Field(min_length=1)


class _BalanceData(_Payload):
    balance: Decimal = Field(allow_inf_nan=False)
    currencyName: str | None = ""
    currencyCode: str | None = ""

    @field_validator("balance", mode="before")
    @classmethod
    def _balance(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("balance must be a number")
        return value


class _Report(_Payload):
    """One report record, pushed (chapter 5) or queried (chapter 4)."""

    mobile: str
    msgId: str = Field(min_length=1)
    status: int
    timestamp: str | None = None
    desc: str | None = None
    errorCode: str | None = None

    @field_validator("mobile")
    @classmethod
    def _mobile(cls, value: str) -> str:
        if not any(ch.isdigit() for ch in value):
            raise ValueError("mobile has no digits")
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("status must be a number")
        return value


def _loads(body: bytes | str, what: str) -> Any:
    """JSON text -> Python, VendorParseError on anything else (NaN/Infinity refused)."""
    try:
        text = body.decode("utf-8-sig") if isinstance(body, bytes) else body
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError, TypeError) as exc:
        snippet = body[:120] if isinstance(body, str | bytes) else ""
        raise VendorParseError(VENDOR, f"{what} is not JSON: {snippet!r}") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _model(model: type[BaseModel], value: Any, what: str) -> Any:
    try:
        return model.model_validate(value)
    except (ValidationError, ValueError, TypeError, RecursionError) as exc:
        raise VendorParseError(VENDOR, f"unreadable {what}: {_errors(exc)}") from exc


def _errors(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
    return type(exc).__name__


def parse_answer(body: bytes | str, what: str = "answer") -> _Answer:
    """Any vendor answer: the {code, msg, data} envelope."""
    data = _loads(body, what)
    if not isinstance(data, dict):
        raise VendorParseError(VENDOR, f"{what} is not a JSON object")
    return _model(_Answer, data, what)


def _refusal(answer: _Answer) -> VendorRequestError:
    info = CODES.lookup(answer.code)
    description = f"{info.description} ({answer.msg})" if answer.msg else info.description
    return VendorRequestError(VENDOR, answer.code, info.outcome, description)


def parse_send_answer(body: bytes | str) -> str:
    """A send answer -> msgId; VendorRequestError when refused, VendorParseError when unreadable."""
    answer = parse_answer(body, "send answer")
    if answer.code != "0":
        raise _refusal(answer)
    return _model(_SendData, answer.data, "send answer data").msgId


def parse_balance_answer(body: bytes | str) -> Balance:
    answer = parse_answer(body, "balance answer")
    if answer.code != "0":
        raise _refusal(answer)
    data = answer.data
    # The table types data as Array[], the example shows an object: take either.
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    parsed: _BalanceData = _model(_BalanceData, data, "balance data")
    try:
        return Balance(
            vendor=VENDOR,
            balance=parsed.balance,
            unit=parsed.currencyCode or parsed.currencyName or "",
            raw=data,
        )
    except (ValidationError, InvalidOperation) as exc:
        raise VendorParseError(VENDOR, "unreadable balance") from exc


def _parse_timestamp(value: str | None, tz: dt.tzinfo) -> dt.datetime | None:
    # Pick the format by length: strptime would read '202211042057' as HH=20 MM=5 SS=7.
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    fmt = {12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}.get(len(text))
    if fmt is None:
        return None
    try:
        return dt.datetime.strptime(text, fmt).replace(tzinfo=tz)
    except ValueError:
        return None


def _report(raw: Any, *, pushed: bool, tz: dt.tzinfo) -> DeliveryReport:
    if not isinstance(raw, dict):
        raise VendorParseError(VENDOR, "report is not a JSON object")
    record: _Report = _model(_Report, raw, "report")
    if record.status == 0:
        status = ReportStatus.DELIVERED
    elif record.status == 1 and not pushed:
        status = ReportStatus.PENDING  # pull: "状态没返回", no report yet
    else:
        status = ReportStatus.UNDELIVERED  # push table says 1, its example 2: any non-zero failed
    try:
        return DeliveryReport(
            vendor=VENDOR,
            vendor_ref=record.msgId,
            to=vendor_number_to_e164(record.mobile, with_country_code=True),
            status=status,
            code=record.errorCode or str(record.status),
            description=record.desc or _describe(status, record.errorCode),
            occurred_at=_parse_timestamp(record.timestamp, tz),
            raw=raw,
        )
    except ValidationError as exc:
        raise VendorParseError(VENDOR, f"unreadable report: {_errors(exc)}") from exc


def _describe(status: ReportStatus, error_code: str | None) -> str:
    if status is ReportStatus.DELIVERED:
        return "delivered"
    if status is ReportStatus.PENDING:
        return "no report yet"
    return f"undelivered (errorCode {error_code or '?'})"


def _reports(items: list[Any], *, pushed: bool, tz: dt.tzinfo) -> PushBatch:
    """Each record on its own: the readable ones, the others set aside."""
    reports: list[DeliveryReport] = []
    skipped = []
    for item in items:
        try:
            reports.append(_report(item, pushed=pushed, tz=tz))
        except VendorParseError as exc:
            skipped.append(unreadable(item, str(exc)))
    return PushBatch(reports=reports, unreadable=skipped)


def parse_push_body(body: bytes | str, tz: dt.tzinfo | None = None) -> PushBatch:
    """A pushed body: one JSON object (the document), which must be a readable report; a list
    of them is taken too, each record standing alone."""
    tz = tz or dt.timezone(dt.timedelta(hours=8))
    data = _loads(body, "push")
    if not isinstance(data, list):
        return PushBatch(reports=[_report(data, pushed=True, tz=tz)])
    if not data:
        raise VendorParseError(VENDOR, "push carries no report")
    return _reports(data, pushed=True, tz=tz)


def parse_status_answer(body: bytes | str, tz: dt.tzinfo | None = None) -> PullBatch:
    """A status-query answer -> reports (status 1 = PENDING); 1012 -> no reports."""
    tz = tz or dt.timezone(dt.timedelta(hours=8))
    answer = parse_answer(body, "status answer")
    if answer.code == CODE_NO_REPORT:
        return PullBatch()
    if answer.code != "0":
        raise _refusal(answer)
    if answer.data is None:
        return PullBatch()
    if not isinstance(answer.data, list):
        raise VendorParseError(VENDOR, "status answer data is not a list")
    return PullBatch(**dict(_reports(answer.data, pushed=False, tz=tz)))


# --------------------------------------------------------------------------- the adapter


class IntlAdapter(VendorAdapter):
    vendor_id: ClassVar[str] = VENDOR
    balance_alarm_default = Decimal("50")  # the account's currency
    max_batch: ClassVar[int] = 1000
    number_refusal_codes: ClassVar[frozenset[str]] = frozenset({"1007"})
    settings_model: ClassVar[type[VendorSettings]] = IntlSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.QUERY_REPORTS,
            Capability.PUSH_REPORTS,
            Capability.SCHEDULED_SEND,
            Capability.SENDER_ID,
        }
    )
    push_ack: ClassVar[PushReply] = PushReply(200, '{"code":0,"msg":"ok"}', "application/json")
    codes: ClassVar[CodeTable] = CODES

    settings: IntlSettings

    @property
    def vendor_tz(self) -> dt.tzinfo:
        return dt.timezone(dt.timedelta(minutes=self.settings.vendor_utc_offset_min))

    def _secret_md5(self) -> str:
        return md5_hex(self.settings.app_secret.get_secret_value(), upper=True)

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "Content-Type": "application/json;charset=utf-8",
            "appKey": self.settings.app_key,
            "appSecret": self._secret_md5(),
        }

    def _post(self, path: str, payload: dict[str, Any]) -> bytes:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return self.http.request("POST", self.base_url + path, data=body, headers=self._headers()).content

    # -- sending
    def send_chunk(self, recipients: Sequence[str], content: str, options: SendOptions) -> list[SubmitResult]:
        valid = [to for to in recipients if _E164.match(to)]
        refused = self.reject_all(
            [to for to in recipients if not _E164.match(to)], CODE_MOBILE, "not an E.164 number; not sent"
        )
        if not valid:
            return refused
        payload: dict[str, Any] = {"mobile": ",".join(e164_to_digits(to) for to in valid), "content": content}
        sender = options.sender_id or self.settings.sender_id
        if sender:
            payload["senderID"] = sender
        if options.send_at is not None:
            payload["sendTime"] = options.send_at.astimezone(self.vendor_tz).strftime("%Y%m%d%H%M%S")
        try:
            msg_id = parse_send_answer(self._post(SEND_PATH, payload))
        except VendorRequestError as exc:
            exc.partial = refused + exc.partial
            raise
        except VendorParseError as exc:
            exc.partial = refused + exc.partial
            raise
        accepted = [
            SubmitResult(
                to=to, vendor=VENDOR, vendor_ref=msg_id, outcome=Outcome.OK, code="0", description="OK"
            )
            for to in valid
        ]
        by_number = {r.to: r for r in accepted + refused}
        return [by_number[to] for to in recipients]

    # -- account
    def balance(self) -> Balance:
        content = self.http.request("GET", self.base_url + BALANCE_PATH, headers=self._headers()).content
        return parse_balance_answer(content)

    # -- reports
    def query_report_batches(self, queries: Sequence[ReportQuery]) -> Iterator[PullBatch]:
        pairs = [
            {"msgId": q.vendor_ref, "mobile": e164_to_digits(q.to)} for q in queries if _E164.match(q.to)
        ]
        for chunk in chunked(pairs, QUERY_LIMIT):
            yield parse_status_answer(self._post(STATUS_PATH, {"data": list(chunk)}), self.vendor_tz)

    def parse_push(self, request: RawRequest) -> PushBatch:
        if request.method.upper() != "POST":
            raise VendorParseError(VENDOR, f"push by {request.method!r}, expected POST")
        return parse_push_body(request.body, self.vendor_tz)

    def check_push_credentials(self, request: RawRequest) -> bool:
        # Constant-time compares on bytes (compare_digest refuses non-ASCII str).
        key_ok = hmac.compare_digest(
            request.header("appKey").strip().encode("utf-8", "replace"), self.settings.app_key.encode("utf-8")
        )
        secret_ok = hmac.compare_digest(
            request.header("appSecret").strip().upper().encode("utf-8", "replace"),
            self._secret_md5().encode(),
        )
        return key_ok and secret_ok
