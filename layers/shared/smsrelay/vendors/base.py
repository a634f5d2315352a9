"""The one small interface every vendor adapter implements, and the shapes they share.

Vendor protocols live only in the vendor modules; what two vendors would otherwise both write
(HTTP with typed errors, code tables, number and time formats, MD5) lives here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    import requests

from .errors import (
    VendorConnectError,
    VendorError,
    VendorHTTPError,
    VendorParseError,
    VendorTimeout,
    VendorUnsupported,
)
from .models import (
    Balance,
    Capability,
    DeliveryReport,
    NumberCheck,
    Outcome,
    Price,
    PullBatch,
    PushBatch,
    ReportQuery,
    SendOptions,
    SensitiveWordCheck,
    SubmitResult,
    UnreadableRecord,
)

logger = logging.getLogger("smsrelay.vendors")

T = TypeVar("T")

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), name="UTC+08:00")


# --------------------------------------------------------------------------- settings


class VendorSettings(BaseModel):
    """Fields every vendor takes (design: vendor settings); vendor modules add their own."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    base_url: str = Field(description="the vendor document's address without the paths the adapter adds")
    callback_token: SecretStr | None = None
    allowed_ips: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    connect_timeout_s: float = Field(default=3.05, gt=0, le=60)
    max_batch: int | None = Field(default=None, ge=1)
    enabled: bool = True
    #: the balance alarm fires below this, in the vendor's own unit (default: the adapter's)
    balance_alarm_below: Decimal | None = None


# --------------------------------------------------------------------------- raw HTTP


@dataclass(frozen=True)
class RawRequest:
    """An HTTP request as a receiver got it, whatever the transport (API Gateway, local stack)."""

    method: str
    headers: Mapping[str, str] = field(default_factory=dict)
    #: query fields as the transport decoded them (API Gateway REST: as UTF-8, last value wins)
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    source_ip: str = ""
    #: the query string still percent-encoded, where the transport keeps it (HTTP API's
    #: rawQueryString, the local harness): the only form a non-UTF-8 query can be read from
    raw_query: str = ""

    def header(self, name: str, default: str = "") -> str:
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return default

    def form(self, encoding: str = "utf-8") -> dict[str, str]:
        """The form fields of the body (urlencoded), last value wins."""
        try:
            text = self.body.decode(encoding)
        except UnicodeDecodeError as exc:
            raise VendorParseError("push", f"body is not {encoding}") from exc
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True, encoding=encoding).items()}

    def query_fields(self, encoding: str = "utf-8", errors: str = "strict") -> dict[str, str]:
        """The query's fields, last value wins: read from the raw query in `encoding` when the
        transport kept it, else the values the transport decoded."""
        if not self.raw_query:
            return {str(k): str(v) for k, v in self.query.items()}
        try:
            pairs = parse_qs(self.raw_query, keep_blank_values=True, encoding=encoding, errors=errors)
        except (UnicodeDecodeError, ValueError) as exc:
            raise VendorParseError("push", f"query is not {encoding}") from exc
        return {k: v[-1] for k, v in pairs.items()}


@dataclass(frozen=True)
class PushReply:
    status_code: int
    body: str
    content_type: str = "text/plain"


# --------------------------------------------------------------------------- codes


@dataclass(frozen=True)
class CodeInfo:
    outcome: Outcome
    description: str


class CodeTable:
    """A vendor's documented codes. Unknown codes are transient, kept raw and logged once."""

    def __init__(self, vendor: str, codes: Mapping[str, tuple[Outcome, str]]):
        self.vendor = vendor
        self._codes = {str(k): CodeInfo(*v) for k, v in codes.items()}
        self._logged: set[str] = set()

    def __contains__(self, code: object) -> bool:
        return str(code) in self._codes

    def __iter__(self) -> Iterator[str]:
        return iter(self._codes)

    def lookup(self, code: object) -> CodeInfo:
        key = str(code).strip()
        info = self._codes.get(key)
        if info is not None:
            return info
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(
                "unknown vendor code, treated as transient", extra={"vendor": self.vendor, "code": key}
            )
        return CodeInfo(Outcome.TRANSIENT, f"unknown code {key}")

    def outcome(self, code: object) -> Outcome:
        return self.lookup(code).outcome


# --------------------------------------------------------------------------- helpers


def md5_hex(text: str, *, upper: bool = False, encoding: str = "utf-8") -> str:
    digest = hashlib.md5(text.encode(encoding)).hexdigest()  # the vendors' protocol asks for MD5
    return digest.upper() if upper else digest


def e164_to_domestic_cn(number: str) -> str | None:
    """'+8613800000001' -> '13800000001'; None when the number is not a Chinese one."""
    if number.startswith("+86") and len(number) == 14:
        return number[3:]
    return None


def e164_to_digits(number: str) -> str:
    """'+8613800000001' -> '8613800000001' (country code, no '+', no leading 0)."""
    return number.lstrip("+")


def vendor_number_to_e164(number: object, *, with_country_code: bool = False) -> str:
    """Read a number as a vendor wrote it: '+', '00', digits with country code, or (CN vendors)
    11-digit domestic. With `with_country_code` (intl, santo) bare digits always carry the
    country code, so '12025550123' is a US number, not a Chinese one."""
    text = str(number).strip()
    digits = "".join(ch for ch in text if ch in "0123456789")
    if not digits:
        return ""
    if text.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if not with_country_code and len(digits) == 11 and digits.startswith("1"):
        return "+86" + digits
    return "+" + digits


def parse_vendor_time(value: object, *formats: str, tz: dt.tzinfo = CHINA_TZ) -> dt.datetime | None:
    """Parse a vendor's local time (UTC+8 unless said otherwise); None when absent or unreadable."""
    text = str(value or "").strip()
    if not text:
        return None
    for fmt in formats or ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y%m%d%H%M"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    return None


def format_vendor_time(value: dt.datetime, fmt: str, tz: dt.tzinfo = CHINA_TZ) -> str:
    return value.astimezone(tz).strftime(fmt)


def unreadable(raw: object, reason: str) -> UnreadableRecord:
    """An unreadable record, kept short for the log (the receiver masks its numbers)."""
    if isinstance(raw, bytes):
        text = raw[:600].decode("utf-8", "replace")
    elif isinstance(raw, str):
        text = raw
    else:
        try:
            text = json.dumps(raw, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            text = repr(raw)
    return UnreadableRecord(reason=reason[:200], raw=text[:300])


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def group_by_content(messages: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Recipients that share a text, in first-seen order: {content: [to, ...]}."""
    groups: dict[str, list[str]] = {}
    for to, content in messages:
        groups.setdefault(content, []).append(to)
    return groups


# --------------------------------------------------------------------------- HTTP client


class VendorHttp:
    """One requests Session per adapter, explicit timeouts, no hidden retries, typed errors."""

    def __init__(self, vendor: str, settings: VendorSettings, session: requests.Session | None = None):
        self.vendor = vendor
        self.timeout = (settings.connect_timeout_s, settings.timeout_s)
        self._given_session = session

    @cached_property
    def session(self) -> requests.Session:
        # requests is loaded on the first call out: functions that only parse pushes never load it
        # (~30 ms of cold start).
        import requests
        from requests.adapters import HTTPAdapter

        session = self._given_session or requests.Session()
        # Never let urllib3 retry on its own: a silent retry could send a message twice.
        adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=16)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        import requests

        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise VendorConnectError(self.vendor, f"connect timeout to {_host(url)}") from exc
        except requests.exceptions.ReadTimeout as exc:
            raise VendorTimeout(
                self.vendor, f"no answer from {_host(url)} within {self.timeout[1]}s"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise VendorConnectError(self.vendor, f"cannot connect to {_host(url)}") from exc
            raise VendorTimeout(self.vendor, f"connection to {_host(url)} broken after sending") from exc
        except requests.exceptions.RequestException as exc:
            raise VendorConnectError(
                self.vendor, f"bad request to {_host(url)}: {type(exc).__name__}"
            ) from exc
        if response.status_code >= 400:
            raise VendorHTTPError(self.vendor, response.status_code, response.text)
        return response


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

    reason: BaseException | None = (
        exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    )
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | NameResolutionError)


def decode_json(vendor: str, response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise VendorParseError(vendor, f"answer is not JSON: {response.text[:120]!r}") from exc


# --------------------------------------------------------------------------- the interface


class VendorAdapter(ABC):
    """One vendor's protocol. Numbers in and out are E.164 ('+8613800000001')."""

    vendor_id: ClassVar[str]
    max_batch: ClassVar[int]  # the document's limit for one-text-to-many
    max_content_chars: ClassVar[int | None] = None  # the document's limit on one text, where it gives one
    #: codes with which the vendor refuses a whole request for one bad number without naming it
    number_refusal_codes: ClassVar[frozenset[str]] = frozenset()
    settings_model: ClassVar[type[VendorSettings]] = VendorSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    push_ack: ClassVar[PushReply] = PushReply(200, "OK")
    codes: ClassVar[CodeTable]
    #: a low balance for an account of this vendor, in its own unit (a setting may say otherwise)
    balance_alarm_default: ClassVar[Decimal] = Decimal(0)

    def __init__(self, settings: VendorSettings | Mapping[str, Any], session: requests.Session | None = None):
        if not isinstance(settings, self.settings_model):
            settings = self.settings_model.model_validate(
                settings.model_dump() if isinstance(settings, BaseModel) else settings
            )
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.http = VendorHttp(self.vendor_id, settings, session)

    # -- limits
    @property
    def batch_limit(self) -> int:
        """The document's limit, lowered by `max_batch` in the settings."""
        if self.settings.max_batch:
            return min(self.max_batch, self.settings.max_batch)
        return self.max_batch

    @property
    def balance_alarm_below(self) -> Decimal:
        """Below this balance (the vendor's own unit) the operator is alarmed."""
        configured = self.settings.balance_alarm_below
        return self.balance_alarm_default if configured is None else configured

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    # -- sending
    def send(
        self, recipients: Sequence[str], content: str, options: SendOptions | None = None
    ) -> list[SubmitResult]:
        """One text to many numbers, one vendor request per `batch_limit` numbers (read before
        each request: an adapter that learns a lower limit uses it for the rest at once)."""
        options = options or SendOptions()
        results: list[SubmitResult] = []
        rest = list(recipients)
        while rest:
            chunk, rest = rest[: self.batch_limit], rest[self.batch_limit :]
            try:
                results.extend(self.send_chunk(chunk, content, options))
            except VendorError as exc:
                exc.partial = results + exc.partial
                raise
        return results

    @abstractmethod
    def send_chunk(self, recipients: Sequence[str], content: str, options: SendOptions) -> list[SubmitResult]:
        """One vendor request; `recipients` fits `batch_limit`."""

    def send_personalised(
        self, messages: Sequence[tuple[str, str]], options: SendOptions | None = None
    ) -> list[SubmitResult]:
        """Different texts: by default one request per distinct text, grouping its recipients."""
        options = options or SendOptions()
        results: list[SubmitResult] = []
        for content, recipients in group_by_content(messages).items():
            try:
                results.extend(self.send(recipients, content, options))
            except VendorError as exc:
                exc.partial = results + exc.partial
                raise
        return results

    # -- account
    @abstractmethod
    def balance(self) -> Balance: ...

    # -- reports and inbound by pull: one vendor call each, the caller drains
    @property
    def pull_interval_s(self) -> float:
        """The pause the vendor asks for between two calls of a drain."""
        return 0.0

    @property
    def pull_max_calls(self) -> int:
        """A bound on the calls of one drain (the poll's deadline bounds it too)."""
        return 50

    def pull_reports(self) -> PullBatch:
        """One call of the report queue. What it hands out is gone from the vendor: apply it
        before the next call."""
        raise VendorUnsupported(self.vendor_id, "no report pull")

    def pull_inbound(self) -> PullBatch:
        """One call of the inbound queue (handed out once, like reports)."""
        raise VendorUnsupported(self.vendor_id, "no inbound pull")

    def query_report_batches(self, queries: Sequence[ReportQuery]) -> Iterator[PullBatch]:
        """Ask for the reports of (reference, number) pairs, one batch per vendor call. Each
        record carries its own reference and number, whatever was asked."""
        raise VendorUnsupported(self.vendor_id, "no report query")

    def query_reports(self, queries: Sequence[ReportQuery]) -> list[DeliveryReport]:
        return [report for batch in self.query_report_batches(queries) for report in batch.reports]

    # -- pushes
    @abstractmethod
    def parse_push(self, request: RawRequest) -> PushBatch:
        """Read one push; raises VendorParseError (only) on anything unreadable."""

    def check_push_credentials(self, request: RawRequest) -> bool:
        """Vendor credentials carried by a push (kxt3 uid/pwd, intl appKey/appSecret)."""
        return True

    # -- extras
    def sensitive_words(self, content: str) -> SensitiveWordCheck:
        raise VendorUnsupported(self.vendor_id, "no sensitive-word check")

    def pricing(self, country_code: str) -> Price:
        raise VendorUnsupported(self.vendor_id, "no pricing")

    def verify_number(self, number: str) -> NumberCheck:
        raise VendorUnsupported(self.vendor_id, "no number check")

    # -- shared shaping
    def reject_all(self, recipients: Iterable[str], code: str, description: str) -> list[SubmitResult]:
        """Per-recipient results for numbers this vendor cannot take (e.g. non-CN on a CN-only vendor)."""
        return [
            SubmitResult(
                to=to, vendor=self.vendor_id, outcome=Outcome.PERMANENT, code=code, description=description
            )
            for to in recipients
        ]
