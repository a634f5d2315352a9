"""santo (闪通国际短信通道平台 API v2.0): GET query params, form-encoded or JSON answers.

Readings taken where the document is unclear (see docs/vendors.md):
- the multi-number success answer spells the code key `mtterrcode`: both spellings are read;
- the balance query is `/verifyPhoneNumber` without `da` (that is what section 4.4 shows);
- the pushed report text is `msgid|status|code|…` as hex of the charset `dc` names
  (15 = GBK is documented; 8 = UCS-2 and 0/3 = ASCII/Latin-1 are read as in SMPP); the
  document's table flattens the `|` into spaces, so whitespace also separates fields;
- a multi-number request refused with 0110 (bad number) does not say which number: it is
  split into one request per number so the good numbers still go out (REJECTD means nothing
  was accepted, so nothing is sent twice);
- a request refused with 0112 ("下发国内号码没有对应模板": no template for domestic numbers) is
  sent again without its +86 numbers, so the others still go out; the +86 numbers are refused
  with 0112 (another vendor of the route may take them);
- `get-rptstatus` (4.6) is asked for `da=8613910825657` in the example and answers a record for
  `8615711586282`: each record is matched by its own `msgid` and `da`, never by the number
  asked; a record without `da` cannot be matched and is set aside;
- references (`mtmsgid`: 20 decimal digits in the send examples, 14 hex digits in the report
  examples) are opaque strings, matched exactly as the vendor wrote them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .base import (
    CodeTable,
    PushReply,
    RawRequest,
    VendorAdapter,
    VendorSettings,
    e164_to_digits,
    unreadable,
    vendor_number_to_e164,
)
from .errors import InvalidInput, VendorError, VendorParseError, VendorRequestError
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
    ReportStatus,
    SendOptions,
    SubmitResult,
    UnreadableRecord,
)

VENDOR = "santo"

OK_CODE = "000"
BAD_NUMBER_CODE = "0110"
NO_TEMPLATE_CODE = "0112"
DOMESTIC_PREFIX = "+86"  # 国内: mainland China, the vendor's home

# Section 5.1 (request answers) and 5.2 (report status values and codes).
CODES = CodeTable(
    VENDOR,
    {
        "000": (Outcome.OK, "request accepted"),
        "0100": (Outcome.PERMANENT, "bad request parameters"),
        "0101": (Outcome.PERMANENT, "invalid command"),
        "0104": (Outcome.CONFIGURATION, "wrong account (cpid)"),
        "0106": (Outcome.CONFIGURATION, "wrong password (cppwd)"),
        "0107": (Outcome.PERMANENT, "balance or credit too low"),
        "0108": (Outcome.CONFIGURATION, "our source IP is not on the vendor's whitelist"),
        "0110": (Outcome.PERMANENT, "bad number format or more than 100 numbers"),
        "0111": (Outcome.PERMANENT, "empty content"),
        "0112": (Outcome.PERMANENT, "no template registered for domestic (CN) numbers"),
        "0600": (Outcome.TRANSIENT, "unknown error"),
        # report status values (first field) and codes (second field)
        "0": (Outcome.OK, "delivered"),
        "DELIVRD": (Outcome.OK, "delivered"),
        "400": (Outcome.PERMANENT, "not delivered"),
        "401": (Outcome.PERMANENT, "no sending permission (balance too low)"),
        "402": (Outcome.PERMANENT, "content contains an illegal keyword"),
        "403": (Outcome.PERMANENT, "content lacks a whitelisted keyword"),
        "404": (Outcome.PERMANENT, "not sent for another reason (ask support)"),
        "500": (Outcome.TRANSIENT, "unknown error"),
        "501": (Outcome.TRANSIENT, "unknown error (ask support)"),
    },
)

# Request-level codes: an `errcode` among these on a pulled record means the query was refused.
REQUEST_CODES = frozenset({"0100", "0101", "0104", "0106", "0107", "0108", "0110", "0111", "0112", "0600"})

_SENDER_DIGITS = re.compile(r"[0-9]{1,16}")
_SENDER_ALNUM = re.compile(r"[A-Za-z0-9]{1,11}")
_MSISDN = re.compile(r"\+[1-9][0-9]{6,14}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")

# dc (data coding) -> charset of the hex report text; 15 is the document's default.
_DC_CHARSETS = {"15": "gb18030", "": "gb18030", "8": "utf-16-be", "0": "ascii", "3": "latin-1"}

# SMPP-style intermediate states: a report saying these is not final.
_PENDING_WORDS = frozenset({"ENROUTE", "ACCEPTD", "ACCEPTED", "UNKNOWN", "NONE"})


class SantoSettings(VendorSettings):
    cpid: str = Field(min_length=1)
    cppwd: SecretStr
    sender: str = Field(
        default="", description="default `sa` (≤16 digits or ≤11 letters/digits); empty: none"
    )


# --------------------------------------------------------------------------- answer models


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_containers(cls, value: Any) -> Any:
        # Scalars only: a nested object where the document shows a scalar is unreadable.
        if isinstance(value, dict | list):
            raise ValueError("nested value")
        return value


class SubmitAnswer(_Answer):
    command: str = ""
    mtmsgid: str = ""
    mtstat: str = ""
    mterrcode: str = ""
    mtterrcode: str = ""  # the multi-number example's spelling

    @property
    def code(self) -> str:
        return (self.mterrcode or self.mtterrcode).strip()


class BalanceAnswer(_Answer):
    cpid: str = ""
    errcode: str = ""
    mtstat: str = ""
    balance: Decimal


class PricingAnswer(_Answer):
    cpid: str = ""
    errcode: str = ""
    mtstat: str = ""
    country: str = ""
    mtPrice: Decimal  # the vendor's key
    prefix: str = ""


class VerifyAnswer(_Answer):
    cpid: str = ""
    errcode: str = ""
    mtstat: str = ""
    country: str | None = ""
    isValid: bool  # the vendor's key
    da: str = ""

    @field_validator("isValid", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text in ("1", "true"):
            return True
        if text in ("0", "false", ""):
            return False
        raise ValueError("isValid is not 1/0")


class ReportRecord(_Answer):
    cpid: str = ""
    errcode: str = ""
    mtstat: str = ""
    msgid: str = ""
    da: str = ""


# --------------------------------------------------------------------------- answer parsing


def read_answer(text: str) -> Any:
    """A santo answer: JSON (the query endpoints) or form-encoded text (submit)."""
    stripped = text.strip()
    if not stripped:
        raise VendorParseError(VENDOR, "empty answer")
    if stripped[0] in "[{":
        try:
            return json.loads(stripped, parse_float=Decimal)
        except (ValueError, RecursionError) as exc:
            raise VendorParseError(VENDOR, f"answer is not JSON: {stripped[:120]!r}") from exc
    # Form values never hold raw whitespace (they would be %20 or +): whitespace is line wrapping.
    compact = re.sub(r"\s+", "", stripped)
    if "=" not in compact or compact.startswith("<"):
        raise VendorParseError(VENDOR, f"answer is neither JSON nor a form: {stripped[:120]!r}")
    try:
        pairs = parse_qsl(compact, keep_blank_values=True, errors="replace")
    except ValueError as exc:
        raise VendorParseError(VENDOR, f"unreadable form answer: {stripped[:120]!r}") from exc
    return dict(pairs)


def _model(model: type[BaseModel], data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise VendorParseError(VENDOR, f"{what} answer is not an object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise VendorParseError(VENDOR, f"unreadable {what} answer: {exc.error_count()} problem(s)") from exc


def _is_ok(code: str) -> bool:
    return code.strip() in ("000", "00", "0")


def _refusal(code: str) -> VendorRequestError:
    info = CODES.lookup(code)
    return VendorRequestError(VENDOR, code, info.outcome, info.description)


def _check_errcode(data: Any) -> None:
    """Raise the vendor's refusal when an answer carries a non-zero error code."""
    if not isinstance(data, dict):
        return
    raw = data.get("errcode", data.get("mterrcode", data.get("mtterrcode")))
    if raw is None or isinstance(raw, dict | list):
        return
    code = str(raw).strip()
    if code and not _is_ok(code):
        raise _refusal(code)


def parse_submit_answer(text: str) -> SubmitAnswer:
    """Read an MT_RESPONSE / MULTI_MT_RESPONSE; raise the refusal when REJECTD."""
    answer: SubmitAnswer = _model(SubmitAnswer, read_answer(text), "submit")
    status = answer.mtstat.strip().upper()
    code = answer.code
    if status == "ACCEPTD" and answer.mtmsgid and (not code or _is_ok(code)):
        return answer
    if status and status != "ACCEPTD" and code and not _is_ok(code):
        raise _refusal(code)
    # ACCEPTD without an id, or a contradiction: it may have been accepted.
    raise VendorParseError(VENDOR, f"unclear submit answer (mtstat={status!r}, code={code!r})")


def parse_balance_answer(text: str) -> tuple[BalanceAnswer, dict[str, Any]]:
    data = read_answer(text)
    _check_errcode(data)
    return _model(BalanceAnswer, data, "balance"), _plain(data)


def parse_pricing_answer(text: str) -> tuple[PricingAnswer, dict[str, Any]]:
    data = read_answer(text)
    _check_errcode(data)
    return _model(PricingAnswer, data, "pricing"), _plain(data)


def parse_verify_answer(text: str) -> VerifyAnswer:
    data = read_answer(text)
    _check_errcode(data)
    return _model(VerifyAnswer, data, "verifyPhoneNumber")


def parse_rptstatus_answer(
    text: str,
) -> tuple[list[tuple[ReportRecord, dict[str, Any]]], list[UnreadableRecord]]:
    """The records of a get-rptstatus answer, and those that cannot be read (set aside)."""
    data = read_answer(text)
    if isinstance(data, dict):  # an error object, or a single record without the list
        _check_errcode(data)
        data = [data]
    if not isinstance(data, list):
        raise VendorParseError(VENDOR, "get-rptstatus answer is not a list")
    records: list[tuple[ReportRecord, dict[str, Any]]] = []
    skipped: list[UnreadableRecord] = []
    for item in data:
        try:
            record: ReportRecord = _model(ReportRecord, item, "get-rptstatus")
        except VendorParseError as exc:
            skipped.append(unreadable(_plain(item) or item, str(exc)))
            continue
        if record.errcode.strip() in REQUEST_CODES:
            raise _refusal(record.errcode.strip())
        records.append((record, _plain(item)))
    return records, skipped


def _plain(data: Any) -> dict[str, Any]:
    """The raw record with numbers as strings (JSON- and DynamoDB-safe, exact)."""
    if not isinstance(data, dict):
        return {}
    return {str(k): (str(v) if isinstance(v, Decimal) else v) for k, v in data.items()}


def rptstatus_to_status(mtstat: str) -> ReportStatus:
    word = mtstat.strip().lower()
    if word == "success":
        return ReportStatus.DELIVERED
    if word == "failed":
        return ReportStatus.UNDELIVERED
    return ReportStatus.PENDING  # "none" (and anything unknown: never settle on a guess)


# --------------------------------------------------------------------------- push parsing


def _push_fields(request: RawRequest) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, value in request.query_fields(errors="replace").items():
        fields[str(key)] = _scalar(value)
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8", errors="replace")
    if body.strip():
        try:
            text = body.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            text = body.decode("gb18030", errors="replace")
            encoding = "gb18030"
        try:
            pairs = parse_qsl(text.strip(), keep_blank_values=True, encoding=encoding, errors="replace")
        except ValueError as exc:
            raise VendorParseError(VENDOR, "push body is not a form") from exc
        fields.update(pairs)  # the body wins over the query
    return fields


def _scalar(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = value[-1] if value else ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def decode_report_text(sm: str, dc: str) -> str | None:
    """The report text from `sm` (hex in the charset `dc` names); None when it cannot be read."""
    hex_text = re.sub(r"\s+", "", sm)
    if not hex_text:
        return None
    try:
        raw = bytes.fromhex(hex_text)
    except ValueError:
        return None
    try:
        return raw.decode(_DC_CHARSETS.get(dc.strip(), "gb18030"))
    except (UnicodeDecodeError, LookupError):
        return None


def split_report_text(text: str) -> list[str]:
    """`msgid|status|code||` (the document's table shows the same with spaces)."""
    text = text.strip()
    parts = text.split("|") if "|" in text else text.split()
    return [part.strip() for part in parts]


def report_status(status: str, code: str) -> ReportStatus:
    if status == "0" or code.upper() == "DELIVRD":
        return ReportStatus.DELIVERED
    if status.isdigit() or code.isdigit() or code.upper() in ("UNDELIV", "EXPIRED", "REJECTD", "DELETED"):
        return ReportStatus.UNDELIVERED
    if status.upper() in _PENDING_WORDS or code.upper() in _PENDING_WORDS:
        return ReportStatus.PENDING
    raise VendorParseError(VENDOR, f"unknown report status {status[:20]!r}/{code[:20]!r}")


# --------------------------------------------------------------------------- the adapter


class SantoAdapter(VendorAdapter):
    vendor_id = VENDOR
    balance_alarm_default = Decimal("100")  # CNY
    max_batch = 100
    settings_model = SantoSettings
    capabilities = frozenset(
        {
            Capability.PUSH_REPORTS,
            Capability.QUERY_REPORTS,
            Capability.SENDER_ID,
            Capability.PRICING,
            Capability.NUMBER_CHECK,
        }
    )
    push_ack = PushReply(200, "OK")
    codes = CODES

    settings: SantoSettings

    # -- plumbing
    def _auth(self) -> dict[str, str]:
        return {"cpid": self.settings.cpid, "cppwd": self.settings.cppwd.get_secret_value()}

    def _get(self, path: str, params: Mapping[str, str]) -> str:
        response = self.http.request("GET", f"{self.base_url}{path}", params={**self._auth(), **params})
        return response.content.decode("utf-8", errors="replace")

    def _sender(self, options: SendOptions) -> str:
        sender = (options.sender_id or self.settings.sender or "").strip()
        if sender and not (_SENDER_DIGITS.fullmatch(sender) or _SENDER_ALNUM.fullmatch(sender)):
            raise InvalidInput(VENDOR, "sender must be ≤16 digits or ≤11 letters/digits", code="sa")
        return sender

    # -- sending
    def send_chunk(self, recipients: Sequence[str], content: str, options: SendOptions) -> list[SubmitResult]:
        sender = self._sender(options)
        good = [to for to in recipients if _MSISDN.fullmatch(to)]
        bad = [to for to in recipients if not _MSISDN.fullmatch(to)]
        results = self.reject_all(
            bad, BAD_NUMBER_CODE, "not an international number santo can take (refused here)"
        )
        if not good:
            return results
        try:
            results.extend(self._submit(good, content, sender))
        except VendorError as exc:
            exc.partial = results + exc.partial
            raise
        # one result per recipient, in the order given
        order = {to: i for i, to in enumerate(recipients)}
        return sorted(results, key=lambda r: order.get(r.to, len(order)))

    def _submit(self, recipients: Sequence[str], content: str, sender: str) -> list[SubmitResult]:
        multi = len(recipients) > 1
        params = {
            "command": "MULTI_MT_REQUEST" if multi else "MT_REQUEST",
            "da": ",".join(e164_to_digits(to) for to in recipients),
            "sm": content,  # requests urlencodes it as UTF-8 (what section 4.2 asks)
        }
        if sender:
            params["sa"] = sender
        try:
            answer = parse_submit_answer(self._get("/submit", params))
        except VendorRequestError as exc:
            if exc.code == NO_TEMPLATE_CODE:
                return self._without_domestic(recipients, content, sender, exc)
            if exc.code != BAD_NUMBER_CODE:
                raise
            if not multi:
                return self.reject_all(recipients, exc.code, exc.description)
            return self._submit_one_by_one(recipients, content, sender)
        return [
            SubmitResult(
                to=to,
                vendor=VENDOR,
                vendor_ref=answer.mtmsgid,
                outcome=Outcome.OK,
                code=answer.code or OK_CODE,
            )
            for to in recipients
        ]

    def _without_domestic(
        self, recipients: Sequence[str], content: str, sender: str, refusal: VendorRequestError
    ) -> list[SubmitResult]:
        """0112 refused the request for its +86 numbers, and accepted nothing: the others go
        again on their own; the +86 ones leave with the refusal (so they may fail over)."""
        domestic = [to for to in recipients if to.startswith(DOMESTIC_PREFIX)]
        others = [to for to in recipients if not to.startswith(DOMESTIC_PREFIX)]
        if not domestic or not others:
            raise refusal
        results = self._submit(others, content, sender)
        refusal.partial = results + refusal.partial
        raise refusal

    def _submit_one_by_one(self, recipients: Sequence[str], content: str, sender: str) -> list[SubmitResult]:
        results: list[SubmitResult] = []
        for to in recipients:
            try:
                results.extend(self._submit([to], content, sender))
            except VendorError as exc:
                exc.partial = results + exc.partial
                raise
        return results

    # -- account
    def balance(self) -> Balance:
        # Section 4.4: the balance query is /verifyPhoneNumber without `da`.
        answer, raw = parse_balance_answer(self._get("/verifyPhoneNumber", {}))
        return Balance(vendor=VENDOR, balance=answer.balance, unit="CNY", raw=raw)

    def pricing(self, country_code: str) -> Price:
        if not _COUNTRY.fullmatch(country_code or ""):
            raise InvalidInput(VENDOR, "country code must be two letters (ISO 3166-1 alpha-2)")
        answer, raw = parse_pricing_answer(self._get("/get-pricing", {"countryCode": country_code.upper()}))
        return Price(country=answer.country, prefix=answer.prefix, price=answer.mtPrice, raw=raw)

    def verify_number(self, number: str) -> NumberCheck:
        if not _MSISDN.fullmatch(number):
            return NumberCheck(number=number, valid=False)
        answer = parse_verify_answer(self._get("/verifyPhoneNumber", {"da": e164_to_digits(number)}))
        return NumberCheck(number=number, valid=answer.isValid, country=answer.country or "")

    # -- reports by query
    def query_report_batches(self, queries: Sequence[ReportQuery]) -> Iterator[PullBatch]:
        """One call per message (reference), with `da` when one number is asked; numbers the
        answer leaves out are asked one by one. Every record comes back under its own `da`."""
        by_ref: dict[str, list[str]] = {}
        for query in queries:
            numbers = by_ref.setdefault(query.vendor_ref, [])
            if query.to not in numbers:
                numbers.append(query.to)
        for ref, numbers in by_ref.items():
            seen: set[str] = set()
            batch = self._query(ref, numbers[0] if len(numbers) == 1 else None)
            seen.update(r.to for r in batch.reports)
            yield batch
            if len(numbers) == 1:
                continue
            for to in numbers:
                if to in seen:
                    continue
                batch = self._query(ref, to)
                fresh = [r for r in batch.reports if r.to not in seen]
                seen.update(r.to for r in fresh)
                yield batch.model_copy(update={"reports": fresh})

    def _query(self, ref: str, to: str | None) -> PullBatch:
        params = {"msgid": ref}
        if to is not None:
            params["da"] = e164_to_digits(to)
        reports: list[DeliveryReport] = []
        records, skipped = parse_rptstatus_answer(self._get("/get-rptstatus", params))
        for record, raw in records:
            number = vendor_number_to_e164(record.da, with_country_code=True) if record.da.strip() else ""
            msgid = record.msgid.strip() or ref
            if not _MSISDN.fullmatch(number):
                skipped.append(unreadable(raw, "get-rptstatus record without a readable da"))
                continue
            status = rptstatus_to_status(record.mtstat)
            reports.append(
                DeliveryReport(
                    vendor=VENDOR,
                    vendor_ref=msgid,
                    to=number,
                    status=status,
                    code=record.mtstat.strip() or record.errcode,
                    description={"delivered": "delivered", "undelivered": "failed"}.get(
                        status, "no report yet"
                    ),
                    raw=raw,
                )
            )
        return PullBatch(reports=reports, unreadable=skipped)

    # -- pushes
    def parse_push(self, request: RawRequest) -> PushBatch:
        fields = _push_fields(request)
        command = fields.get("command", "").strip().upper()
        if command and command != "RT_REQUEST":
            raise VendorParseError(VENDOR, f"unsupported push command {command[:20]!r}")
        text = decode_report_text(fields.get("sm", ""), fields.get("dc", "15"))
        if text is None or ("|" not in text and len(text.split()) < 2):
            text = fields.get("rsm", "")
        parts = split_report_text(text)
        if len(parts) < 2:
            raise VendorParseError(VENDOR, "push carries no readable report text (sm/rsm)")
        msgid = fields.get("msgid", "").strip() or parts[0]
        status_value, code = parts[1], parts[2] if len(parts) > 2 else ""
        to = vendor_number_to_e164(fields.get("da", ""), with_country_code=True)
        if not msgid or len(to) < 2:
            raise VendorParseError(VENDOR, "push lacks msgid or da")
        status = report_status(status_value, code)
        raw_code = code or status_value
        try:
            report = DeliveryReport(
                vendor=VENDOR,
                vendor_ref=msgid,
                to=to,
                status=status,
                code=raw_code,
                description=CODES.lookup(raw_code).description,
                raw={**fields, "text": text},
            )
        except ValidationError as exc:
            raise VendorParseError(VENDOR, "push report cannot be shaped") from exc
        return PushBatch(reports=[report])
