"""快信通 3 (kxt3): one endpoint, POST form params `op` + `message` (a JSON string), push-only reports.

Protocol digest: docs/vendors.md (kxt3); the vendor document is seeds/001_5e81ed96d16bf1ef.txt.
kxt3 has no pull, so a push is the only copy of its reports: inside a readable push each
`jsonData` item stands alone (an unreadable one is set aside, the others are applied).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, ValidationError, field_validator

from .base import (
    CHINA_TZ,
    CodeTable,
    PushReply,
    RawRequest,
    VendorAdapter,
    VendorSettings,
    e164_to_domestic_cn,
    format_vendor_time,
    md5_hex,
    parse_vendor_time,
    unreadable,
    vendor_number_to_e164,
)
from .errors import InvalidInput, VendorParseError, VendorRequestError
from .models import (
    Balance,
    Capability,
    DeliveryReport,
    InboundMessage,
    Outcome,
    PushBatch,
    ReportStatus,
    SendOptions,
    SubmitResult,
    UnreadableRecord,
)

VENDOR = "kxt3"
MAX_NUMBERS = 10_000  # 3.1: 平台支持每次最多 10000 个号码
MAX_CONTENT = 1_000  # 3.1: 平台支持最多 1000 字
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # atTime, smgRecvDate
CODE_TIMESTAMP = "230"
CODE_BAD_NUMBER = "310"

_P, _T, _OK, _C = Outcome.PERMANENT, Outcome.TRANSIENT, Outcome.OK, Outcome.CONFIGURATION

# 6.2 状态码表, every code of the document.
CODES = CodeTable(
    VENDOR,
    {
        "0": (_OK, "success"),
        "1": (_T, "system busy (maintenance or internal error)"),
        "100": (_P, "unsupported operation (bad op)"),
        "110": (_P, "invalid JSON data"),
        "120": (_P, "missing parameter"),
        "130": (_P, "GET requests not supported"),
        "200": (_C, "authentication error (cid, uid or password)"),
        "210": (_T, "requests too frequent"),
        "220": (_C, "our source IP is refused by the vendor"),
        # Our timestamps are well-formed, so 230 means a suffix collision with another process:
        # nothing was accepted and a fresh timestamp succeeds.
        "230": (_T, "invalid or repeated timestamp"),
        "240": (_C, "authentication failed (cid, uid or password)"),
        "250": (_C, "account disabled at the vendor"),
        "260": (_C, "organisation (cid) disabled at the vendor"),
        "300": (_P, "wrong number count (0 or over the limit)"),
        "310": (_P, "contains an invalid number"),
        "320": (_P, "wrong content length (0 or over the limit)"),
        "330": (_P, "invalid scheduled time"),
        "340": (_P, "invalid daily sending window"),
        "350": (_P, "wrong token count"),
        "360": (_P, "invalid token value"),
        "400": (_P, "balance too low"),
    },
)

_CN_MOBILE = re.compile(r"1\d{10}")
_E164 = re.compile(r"\+\d{5,15}")


# --------------------------------------------------------------------------- settings


class Kxt3Settings(VendorSettings):
    # Secrets files often carry cid as a number: accept it.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    cid: str
    uid: str
    password: SecretStr
    push_uid: str | None = None
    push_pwd: SecretStr | None = None


# --------------------------------------------------------------------------- timestamps


class TimestampSource:
    """`yyyyMMddHHmmss` (UTC+8) + 4 random digits, never repeated by this process.

    Within one process a set of the suffixes used in the current second rules out repeats, even
    for thousands of requests in one second (when all 10000 are spent we wait for the next second).

    Across processes (concurrent Lambda containers) nothing is shared, so uniqueness can only be
    probabilistic: the suffix comes from the OS CSPRNG (`SystemRandom`: no seed state that a fork
    or a snapshot-restored container could duplicate), so two requests of different containers in
    the same second collide with probability 1/10000. The vendor then answers 230 and accepts
    nothing, so the adapter retries once at once with a fresh timestamp, and 230 is transient.
    """

    def __init__(
        self,
        now: Callable[[], dt.datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._now = now or (lambda: dt.datetime.now(CHINA_TZ))
        self._sleep = sleep
        self._rng = random.SystemRandom()
        self._lock = threading.Lock()
        self._second = ""
        self._used: set[str] = set()

    def next(self) -> str:
        while True:
            with self._lock:
                second = format_vendor_time(self._now(), "%Y%m%d%H%M%S")
                # A clock stepping back must not reopen a second whose suffixes we already used.
                if second > self._second:
                    self._second, self._used = second, set()
                if len(self._used) < 10_000:
                    suffix = f"{self._rng.randrange(10_000):04d}"
                    while suffix in self._used:
                        suffix = f"{self._rng.randrange(10_000):04d}"
                    self._used.add(suffix)
                    return self._second + suffix
            self._sleep(0.02)


# One per process: every adapter of the process draws from the same set.
TIMESTAMPS = TimestampSource()


def sign(password: str, timestamp: str) -> str:
    """6.1: pwd = MD5(password + timestamp), 32 lowercase hex."""
    return md5_hex(password + timestamp)


# --------------------------------------------------------------------------- vendor payloads


def _scalar_text(value: Any) -> str:
    """A JSON scalar the vendor may write as a number or a string, as text; anything else is refused."""
    if isinstance(value, bool) or value is None:
        raise ValueError("expected a string or a number")
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise ValueError("expected a string or a number")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _Answer(_Payload):
    """Every answer: {stateCode, message, ...}; login adds smBalance/mmBalance, sendSm token/fee."""

    stateCode: str
    message: str = ""
    token: str | None = None
    smBalance: Decimal | None = None
    mmBalance: Decimal | None = None
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("stateCode", mode="before")
    @classmethod
    def _code(cls, value: Any) -> str:
        return _scalar_text(value)

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> str | None:
        return None if value is None or value == "" else _scalar_text(value)

    @field_validator("message", mode="before")
    @classmethod
    def _message(cls, value: Any) -> str:
        return "" if value is None else str(value)

    @field_validator("smBalance", "mmBalance", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a balance is a number")
        return value


class _ReportItem(_Payload):
    """4.5: {token, mobile, resultCode, success}."""

    token: str
    mobile: str
    resultCode: str = ""
    success: bool | None = None

    @field_validator("token", "mobile", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        text = _scalar_text(value)
        if not text.strip():
            raise ValueError("empty")
        return text

    @field_validator("resultCode", mode="before")
    @classmethod
    def _code(cls, value: Any) -> str:
        return "" if value is None else _scalar_text(value)


class _InboundItem(_Payload):
    """5.5: {mobile, content, smgRecvDate}."""

    mobile: str
    content: str
    smgRecvDate: str = ""

    @field_validator("mobile", mode="before")
    @classmethod
    def _mobile(cls, value: Any) -> str:
        text = _scalar_text(value)
        if not text.strip():
            raise ValueError("empty")
        return text

    @field_validator("smgRecvDate", mode="before")
    @classmethod
    def _date(cls, value: Any) -> str:
        return "" if value is None else _scalar_text(value)


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")  # 1.3: UTF-8 both ways (requests would guess Latin-1)
    except UnicodeDecodeError as exc:
        raise VendorParseError(VENDOR, "answer is not UTF-8") from exc


def parse_answer(text: str) -> _Answer:
    """Read one answer of the endpoint (any op); VendorParseError when it cannot be read."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise VendorParseError(VENDOR, f"answer is not JSON: {text[:120]!r}") from exc
    if not isinstance(data, dict):
        raise VendorParseError(VENDOR, f"answer is not a JSON object: {text[:120]!r}")
    try:
        answer = _Answer.model_validate(data)
    except ValidationError as exc:
        raise VendorParseError(VENDOR, f"unexpected answer: {text[:120]!r}") from exc
    answer._raw = data
    return answer


def _refusal(answer: _Answer) -> VendorRequestError:
    info = CODES.lookup(answer.stateCode)
    description = f"{info.description} ({answer.message})" if answer.message else info.description
    return VendorRequestError(VENDOR, answer.stateCode, info.outcome, description)


def parse_send_answer(text: str) -> str:
    """2.3/3.3: the token of an accepted sendSm; VendorRequestError on a refusal."""
    answer = parse_answer(text)
    if answer.stateCode != "0":
        raise _refusal(answer)
    if not answer.token:
        raise VendorParseError(VENDOR, "accepted without a token")
    return answer.token


def parse_balance_answer(text: str) -> Balance:
    """2.3: login answers smBalance (messages left) and mmBalance (MMS, kept in raw)."""
    answer = parse_answer(text)
    if answer.stateCode != "0":
        raise _refusal(answer)
    if answer.smBalance is None or not answer.smBalance.is_finite():
        raise VendorParseError(VENDOR, "login answer without smBalance")
    return Balance(vendor=VENDOR, balance=answer.smBalance, unit="messages", raw=answer._raw)


# --------------------------------------------------------------------------- pushes

_BARE_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=")


def _quote_bare_keys(text: str) -> str:
    """The document writes pushes as `{uid="abc", jsonData=[...]}`: quote such keys, leave strings alone."""
    out: list[str] = []
    i, n, key_position = 0, len(text), False
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i, key_position = j + 1, False
            continue
        if ch in "{,":
            key_position = True
        elif key_position and not ch.isspace():
            match = _BARE_KEY.match(text, i)
            if match:
                out.append(f'"{match.group(1)}":')
                i, key_position = match.end(), False
                continue
            key_position = False
        out.append(ch)
        i += 1
    return "".join(out)


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(_quote_bare_keys(text))


def _envelope(request: RawRequest) -> dict[str, Any]:
    """The four push fields uid, pwd, type, jsonData: form fields, a JSON object body, or the query."""
    body = request.body.strip()
    if body.startswith(b"{"):
        try:
            data = _load_json(_decode(body))
        except (ValueError, RecursionError) as exc:
            raise VendorParseError(VENDOR, "push body is not a JSON object") from exc
        if not isinstance(data, dict):
            raise VendorParseError(VENDOR, "push body is not a JSON object")
        return data
    if body:
        try:
            return dict(request.form())
        except ValueError as exc:  # VendorParseError included; parse_qs on odd text
            raise VendorParseError(VENDOR, "push body is not a form") from exc
    return request.query_fields()


def _items(value: Any) -> tuple[list[Any], bool]:
    """The jsonData items, and whether they came as the documented array (a lone object is taken
    as one item, and must then be readable)."""
    if isinstance(value, str | bytes):
        try:
            value = _load_json(value.decode("utf-8") if isinstance(value, bytes) else value)
        except (ValueError, RecursionError) as exc:
            raise VendorParseError(VENDOR, "jsonData is not JSON") from exc
    if isinstance(value, dict):
        return [value], False
    if not isinstance(value, list):
        raise VendorParseError(VENDOR, "jsonData is not an array")
    return value, True


def _e164(mobile: str) -> str:
    number = vendor_number_to_e164(mobile)
    if not _E164.fullmatch(number):
        raise VendorParseError(VENDOR, "push carries an unreadable mobile number")
    return number


def _report(item: Any) -> DeliveryReport:
    if not isinstance(item, dict):
        raise VendorParseError(VENDOR, "report item is not a JSON object")
    parsed = _ReportItem.model_validate(item)
    delivered = parsed.success
    if delivered is None:  # `success` is the verdict; without it, read the common gateway codes
        delivered = parsed.resultCode.upper() in {"0", "DELIVRD", "DELIVER", "DELIVERED"}
    return DeliveryReport(
        vendor=VENDOR,
        vendor_ref=parsed.token,
        to=_e164(parsed.mobile),
        status=ReportStatus.DELIVERED if delivered else ReportStatus.UNDELIVERED,
        code=parsed.resultCode,
        description="delivered" if delivered else f"undelivered (gateway code {parsed.resultCode or '?'})",
        raw=item,
    )


def _inbound(item: Any) -> InboundMessage:
    if not isinstance(item, dict):
        raise VendorParseError(VENDOR, "inbound item is not a JSON object")
    parsed = _InboundItem.model_validate(item)
    return InboundMessage(
        vendor=VENDOR,
        **{"from": _e164(parsed.mobile)},
        content=parsed.content,
        received_at=parse_vendor_time(parsed.smgRecvDate, TIME_FORMAT, "%Y%m%d%H%M%S"),
        raw=item,
    )


def parse_push_request(request: RawRequest) -> PushBatch:
    envelope = _envelope(request)
    kind = envelope.get("type")
    if not isinstance(kind, str) or kind.strip().lower() not in {"report", "mo"}:
        raise VendorParseError(VENDOR, "push type is neither report nor mo")
    if "jsonData" not in envelope:
        raise VendorParseError(VENDOR, "push without jsonData")
    items, listed = _items(envelope["jsonData"])
    reports = kind.strip().lower() == "report"
    read = _report if reports else _inbound
    records: list[Any] = []
    skipped: list[UnreadableRecord] = []
    for item in items:
        try:
            records.append(read(item))
        except (VendorParseError, ValidationError, ValueError, TypeError) as exc:
            reason = (
                f"unreadable push item: {exc.error_count()} error(s)"
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            if not listed:  # a lone object is the whole push
                raise VendorParseError(VENDOR, reason) from exc
            skipped.append(unreadable(item, reason))
    if reports:
        return PushBatch(reports=records, unreadable=skipped)
    return PushBatch(inbound=records, unreadable=skipped)


# --------------------------------------------------------------------------- the adapter


class Kxt3Adapter(VendorAdapter):
    vendor_id: ClassVar[str] = VENDOR
    balance_alarm_default = Decimal("1000")  # messages
    max_batch: ClassVar[int] = MAX_NUMBERS
    number_refusal_codes: ClassVar[frozenset[str]] = frozenset({"310"})
    max_content_chars: ClassVar[int | None] = MAX_CONTENT
    settings_model: ClassVar[type[VendorSettings]] = Kxt3Settings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.PUSH_REPORTS, Capability.PUSH_INBOUND, Capability.SCHEDULED_SEND, Capability.DAILY_WINDOW}
    )
    push_ack: ClassVar[PushReply] = PushReply(200, "0")
    codes: ClassVar[CodeTable] = CODES

    settings: Kxt3Settings

    def __init__(self, settings: Any, session: Any = None, timestamps: TimestampSource | None = None):
        super().__init__(settings, session)
        self.timestamps = timestamps or TIMESTAMPS

    # -- protocol
    def _message(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        timestamp = self.timestamps.next()
        return {
            "cid": self.settings.cid,
            "uid": self.settings.uid,
            "pwd": sign(self.settings.password.get_secret_value(), timestamp),
            "timestamp": timestamp,
            **fields,
        }

    def _post(self, op: str, fields: Mapping[str, Any]) -> str:
        """One request; a 230 (timestamp collision: nothing accepted) is retried once with a new timestamp."""
        text = ""
        for _ in range(2):
            message = json.dumps(self._message(fields), ensure_ascii=False)
            response = self.http.request("POST", self.base_url, data={"op": op, "message": message})
            text = _decode(response.content)
            try:
                code = parse_answer(text).stateCode
            except VendorParseError:
                return text  # the caller's parser raises it with the right context
            if code != CODE_TIMESTAMP:
                return text
        return text

    # -- sending
    def send_chunk(self, recipients: Sequence[str], content: str, options: SendOptions) -> list[SubmitResult]:
        if not content:
            raise InvalidInput(VENDOR, "empty content")
        if len(content) > MAX_CONTENT:
            raise InvalidInput(
                VENDOR, f"content has {len(content)} characters, kxt3 takes at most {MAX_CONTENT}"
            )
        domestic: dict[str, str] = {}
        for to in recipients:
            number = e164_to_domestic_cn(to)
            if number and _CN_MOBILE.fullmatch(number):
                domestic[to] = number
        refused = self.reject_all(
            [to for to in recipients if to not in domestic],
            CODE_BAD_NUMBER,
            "not sent: kxt3 takes Chinese mobile numbers (+861xxxxxxxxxx) only",
        )
        if not domestic:
            return refused
        fields: dict[str, Any] = {"mobiles": list(dict.fromkeys(domestic.values())), "content": content}
        if options.send_at is not None:
            fields["atTime"] = format_vendor_time(options.send_at, TIME_FORMAT)
        if options.daily_window is not None:
            begin, end = options.daily_window  # wall-clock times of the vendor (UTC+8)
            fields["dailyBeginTime"] = begin.strftime("%H:%M:%S")
            fields["dailyEndTime"] = end.strftime("%H:%M:%S")
        token = parse_send_answer(self._post("sendSm", fields))
        by_to = {r.to: r for r in refused}
        return [
            by_to.get(to)
            or SubmitResult(
                to=to, vendor=VENDOR, vendor_ref=token, outcome=Outcome.OK, code="0", description="accepted"
            )
            for to in recipients
        ]

    # -- account
    def balance(self) -> Balance:
        return parse_balance_answer(self._post("login", {}))

    # -- pushes
    def parse_push(self, request: RawRequest) -> PushBatch:
        return parse_push_request(request)

    def check_push_credentials(self, request: RawRequest) -> bool:
        expected_uid, expected_pwd = self.settings.push_uid, self.settings.push_pwd
        if not expected_uid or expected_pwd is None:
            return False  # no push credentials configured: accept no push
        try:
            envelope = _envelope(request)
        except VendorParseError:
            return False
        try:
            uid, pwd = _scalar_text(envelope.get("uid")), _scalar_text(envelope.get("pwd"))
        except ValueError:
            return False
        # Both compared, constant-time, so the answer time tells nothing about either.
        uid_ok = hmac.compare_digest(uid.encode(), expected_uid.encode())
        pwd_ok = hmac.compare_digest(pwd.encode(), expected_pwd.get_secret_value().encode())
        return uid_ok and pwd_ok
