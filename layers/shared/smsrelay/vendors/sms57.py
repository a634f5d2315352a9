"""SMS57-SMGW: one endpoint `{base_url}/sms`, form parameters (UTF-8), JSON answers (`rt=json`).

Protocol points this adapter relies on (vendor document, see docs/vendors.md):
- actions `send` (≤ 500 numbers, comma separated), `p2p` (`mobile#content` records), `balance`,
  `report` (pull, `size` 10..10000), `mo` (pull, `size` 10..1000, spelled `szie` in the table);
- p2p records are separated by "换行" (a line break); the document's only example uses CR
  (`%0d`), so CR is the default and `p2p_separator` (`cr`, `lf`, `crlf`) follows a gateway that
  differs; the "encrypted" password hashes the list with its separators removed;
- the "encrypted" password is MD5(password+extno+content+mobile) for send, MD5(password+extno+
  mobileContentList without line breaks) for p2p and MD5(password) otherwise;
- STATUS 102 ("单次提交的号码数过多 (建议 200 以内)") accepts nothing: the request is sent again
  in halves, and the smaller size is kept for this adapter's later requests;
- `status` is a string or a number; `balance` is in 厘 (1/1000 yuan) and may be negative;
- one `mid` per recipient, reports match on (mid, mobile); an inbound `mid` may be left out
  ("可忽略");
- push: a JSON array mixing flag:1 reports and flag:0 inbound messages, answered `OK`; the
  document promises no re-push, so each record stands alone: an unreadable one is skipped.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .base import (
    CodeTable,
    PushReply,
    RawRequest,
    VendorAdapter,
    VendorSettings,
    e164_to_domestic_cn,
    md5_hex,
    parse_vendor_time,
    unreadable,
    vendor_number_to_e164,
)
from .errors import VendorError, VendorParseError, VendorRequestError
from .models import (
    Balance,
    Capability,
    DeliveryReport,
    InboundMessage,
    Outcome,
    PullBatch,
    PushBatch,
    ReportStatus,
    SendOptions,
    SubmitResult,
    UnreadableRecord,
)

logger = logging.getLogger("smsrelay.vendors.sms57")
T = TypeVar("T")

VENDOR = "sms57"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
STAT_DELIVERED = "DELIVRD"
CODE_TOO_MANY = "102"
# Our own codes for numbers refused before any request (not vendor codes).
CODE_NOT_CN_MOBILE = "NOT_CN_MOBILE"
P2P_SEPARATORS = {"cr": "\r", "lf": "\n", "crlf": "\r\n"}

_P, _T, _OK, _C = Outcome.PERMANENT, Outcome.TRANSIENT, Outcome.OK, Outcome.CONFIGURATION

# STATUS (request level), RESULT (per recipient) and STAT (delivery) share no key except "0",
# which means success in both STATUS and RESULT, so one table holds them all.
CODES: dict[str, tuple[Outcome, str]] = {
    # STATUS
    "0": (_OK, "accepted"),
    "1": (_P, "malformed request packet"),
    "2": (_C, "our source IP is not allowed by the vendor (IP 鉴权错误)"),
    "3": (_C, "wrong account or password"),
    "4": (_C, "wrong protocol version for this account"),
    "5": (_T, "other error"),
    "6": (_C, "wrong access type for this account (e.g. a CMPP account)"),
    "7": (_C, "account disabled at the vendor"),
    "21": (_T, "too many connections"),
    # No outbound route for the number's carrier on this account: another vendor may have one.
    "100": (_T, "internal error, no route for the number"),
    # Nothing was accepted: the adapter resends in halves; left over only for one number.
    CODE_TOO_MANY: (_T, "too many numbers in one request (the gateway advises at most 200)"),
    # RESULT
    "10": (_C, "wrong extno (access number) in the vendor settings"),
    "15": (_P, "balance too low"),
    "17": (_P, "account signature (签名) invalid"),
    # STAT
    STAT_DELIVERED: (_OK, "delivered"),
    "EXPIRED": (_P, "message validity period has expired"),
    "DELETED": (_P, "message has been deleted"),
    "REJECTED": (_P, "message rejected"),
    "MA:0001": (_P, "number on the global blacklist"),
    "MA:0002": (_P, "illegal content"),
    "MA:0003": (_P, "no downstream route"),
    "MA:0004": (_P, "unknown failure"),
    "MA:0005": (_P, "bad destination number format"),
    "MA:0006": (_P, "refused by the system"),
    "MA:0009": (_P, "undefined error"),
    "MA:0011": (_P, "unknown internal system error"),
    "MA:0012": (_P, "anti-phishing"),
    "MA:0013": (_P, "illegal packet sequence"),
    "MA:0014": (_P, "illegal OP_ISDN number range"),
    "MA:0021": (_P, "bad number format"),
    "MA:0022": (_P, "number over its half-hour sending limit"),
    "MA:0023": (_P, "number on the customer blacklist"),
    "MA:0024": (_P, "content not registered"),
    "MA:0025": (_P, "message type not supported"),
    "MA:0026": (_P, "multipart message reassembly timed out"),
    "MA:0027": (_P, "number on the channel blacklist"),
    "MA:0028": (_P, "number range on the global blacklist"),
    "MA:0029": (_P, "number range on the channel blacklist"),
    "MA:0030": (_P, "rejection report generated directly"),
    "MO:200": (_P, "multipart messages not supported"),
    "MO:0254": (_P, "forwarding submit timed out"),
    "MO:0255": (_P, "connection lost while forwarding"),
}


# --------------------------------------------------------------------------- settings


class Sms57Settings(VendorSettings):
    account: str
    password: SecretStr
    extno: str = Field(default="", description="access number (SP service number, 106…)")
    password_mode: Literal["md5", "plain"] = "md5"
    report_pull_size: int = Field(default=1000, ge=10, le=10000)
    inbound_pull_size: int = Field(default=1000, ge=10, le=1000)
    #: what separates p2p records: the document's example uses CR
    p2p_separator: Literal["cr", "lf", "crlf"] = Field(
        default="cr", json_schema_extra={"tuning": True}, description="between p2p records; CR as the example"
    )


# --------------------------------------------------------------------------- vendor payloads

_Scalar = str | int


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class _SendItem(_Answer):
    mid: _Scalar | None = None
    mobile: _Scalar
    result: _Scalar


class _SendAnswer(_Answer):
    balance: _Scalar | None = None
    items: list[_SendItem] = Field(default_factory=list, alias="list")


class _BalanceAnswer(_Answer):
    balance: _Scalar
    chargeType: str | None = None


class _PushRecord(_Answer):
    flag: _Scalar | None = None
    mid: _Scalar | None = None  # a report needs it; an inbound message may leave it out (可忽略)
    spid: _Scalar | None = None
    accessCode: _Scalar | None = None
    mobile: _Scalar | None = None  # required: checked with the record's other fields
    stat: str | None = None
    content: str | None = None
    time: str | None = None


# --------------------------------------------------------------------------- reading answers


def _text(kind: str, body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise VendorParseError(VENDOR, f"{kind}: not UTF-8") from exc


def _json(kind: str, body: bytes | str) -> Any:
    text = _text(kind, body)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise VendorParseError(VENDOR, f"{kind}: not JSON: {text[:120]!r}") from exc


def _scalar(value: object) -> str | None:
    """A code or id the vendor wrote as a string or a number, as a string (None when neither)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return None


def read_status(kind: str, body: bytes | str) -> dict[str, Any]:
    """The answer as a JSON object whose `status` is "0"; a documented refusal raises VendorRequestError."""
    data = _json(kind, body)
    if not isinstance(data, dict):
        raise VendorParseError(VENDOR, f"{kind}: answer is not a JSON object")
    status = _scalar(data.get("status"))
    if not status:
        raise VendorParseError(VENDOR, f"{kind}: answer has no readable status")
    if status != "0":
        info = Sms57Adapter.codes.lookup(status)
        raise VendorRequestError(VENDOR, status, info.outcome, info.description)
    return data


def _validate(model: type[BaseModel], data: object, kind: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise VendorParseError(
            VENDOR, f"{kind}: unexpected answer shape ({exc.error_count()} errors)"
        ) from exc


def read_send_answer(body: bytes | str, sent: Sequence[tuple[str, str]]) -> list[SubmitResult]:
    """Results of one send/p2p answer; `sent` is [(e164, domestic)] in request order.

    Every recipient the answer does not speak of may have been accepted: VendorParseError carries
    the results that were readable in `partial`.
    """
    answer: _SendAnswer = _validate(_SendAnswer, read_status("send", body), "send")
    by_mobile: dict[str, deque[_SendItem]] = {}
    for item in answer.items:
        mobile = _scalar(item.mobile) or ""
        by_mobile.setdefault(mobile, deque()).append(item)
    results: list[SubmitResult] = []
    missing = 0
    for e164, domestic in sent:
        queue = by_mobile.get(domestic)
        item = queue.popleft() if queue else None
        code = _scalar(item.result) if item else None
        mid = _scalar(item.mid) if item else None
        if item is None or not code or (code == "0" and not mid):
            missing += 1
            continue
        info = Sms57Adapter.codes.lookup(code)
        outcome = Outcome.OK if code == "0" else info.outcome
        if outcome is Outcome.OK and code != "0":  # a RESULT never reads as a STAT: non-zero is a refusal
            outcome = Outcome.PERMANENT
        results.append(
            SubmitResult(
                to=e164,
                vendor=VENDOR,
                vendor_ref=mid if code == "0" else None,
                outcome=outcome,
                code=code,
                description=info.description,
            )
        )
    if missing:
        raise VendorParseError(
            VENDOR, f"send: answer lacks a result for {missing} recipient(s)", partial=results
        )
    return results


def read_balance_answer(body: bytes | str) -> Balance:
    data = read_status("balance", body)
    answer: _BalanceAnswer = _validate(_BalanceAnswer, data, "balance")
    li = _scalar(answer.balance)
    try:
        value = Decimal(li or "x")
    except InvalidOperation as exc:
        raise VendorParseError(VENDOR, "balance: balance is not a number") from exc
    if not value.is_finite():
        raise VendorParseError(VENDOR, "balance: balance is not a number")
    raw = dict(data)
    raw["balance_li"] = li
    return Balance(vendor=VENDOR, balance=value / 1000, unit="CNY", raw=raw)


def _flag(record: _PushRecord) -> str:
    flag = _scalar(record.flag)
    if flag in ("0", "1"):
        return flag
    # No usable flag: a record with a status code is a report, one with content an inbound message.
    if record.stat is not None:
        return "1"
    if record.content is not None:
        return "0"
    raise VendorParseError(VENDOR, "record is neither a report nor an inbound message")


def _report(record: _PushRecord, raw: dict[str, Any]) -> DeliveryReport:
    mid = _scalar(record.mid)
    to = vendor_number_to_e164(_scalar(record.mobile) or "")
    stat = (record.stat or "").strip()
    if not mid or len(to) < 4 or not stat:
        raise VendorParseError(VENDOR, "report lacks mid, mobile or stat")
    return DeliveryReport(
        vendor=VENDOR,
        vendor_ref=mid,
        to=to,
        status=ReportStatus.DELIVERED if stat == STAT_DELIVERED else ReportStatus.UNDELIVERED,
        code=stat,
        description=stat_description(stat),
        occurred_at=parse_vendor_time(record.time, TIME_FORMAT),
        raw=raw,
    )


def _inbound(record: _PushRecord, raw: dict[str, Any]) -> InboundMessage:
    sender = vendor_number_to_e164(_scalar(record.mobile) or "")
    if len(sender) < 4 or record.content is None:
        raise VendorParseError(VENDOR, "inbound message lacks mobile or content")
    return InboundMessage(
        vendor=VENDOR,
        from_=sender,
        to=_scalar(record.accessCode) or "",  # the SP service number, not a handset: kept as written
        content=record.content,
        received_at=parse_vendor_time(record.time, TIME_FORMAT),
        vendor_ref=_scalar(record.mid) or None,
        raw=raw,
    )


def read_record(item: object) -> DeliveryReport | InboundMessage:
    if not isinstance(item, dict):
        raise VendorParseError(VENDOR, "record is not a JSON object")
    record: _PushRecord = _validate(_PushRecord, item, "record")
    return _report(record, item) if _flag(record) == "1" else _inbound(record, item)


def read_records(kind: str, data: object) -> PushBatch:
    """Reports and inbound messages of a push or a pull. The envelope is a JSON array (a lone
    object is taken as a one-record push, and must then be readable); inside an array each
    record stands alone: an unreadable one is set aside and the others are kept."""
    if isinstance(data, dict):
        record = read_record(data)
        if isinstance(record, DeliveryReport):
            return PushBatch(reports=[record])
        return PushBatch(inbound=[record])
    if not isinstance(data, list):
        raise VendorParseError(VENDOR, f"{kind}: expected a JSON array")
    reports: list[DeliveryReport] = []
    inbound: list[InboundMessage] = []
    skipped: list[UnreadableRecord] = []
    for item in data:
        try:
            record = read_record(item)
        except VendorParseError as exc:
            skipped.append(unreadable(item, str(exc)))
            continue
        except Exception as exc:  # pydantic or value errors from a hostile record
            skipped.append(unreadable(item, f"{kind}: unreadable record ({type(exc).__name__})"))
            continue
        if isinstance(record, DeliveryReport):
            reports.append(record)
        else:
            inbound.append(record)
    return PushBatch(reports=reports, inbound=inbound, unreadable=skipped)


def read_pull_answer(kind: str, body: bytes | str) -> PullBatch:
    """One `report`/`mo` answer. Records are handed out once: a non-empty answer may have more
    behind it."""
    data = read_status(kind, body)
    items = data.get("list") or []
    if not isinstance(items, list):
        raise VendorParseError(VENDOR, f"{kind}: list is not an array")
    batch = read_records(kind, items)
    return PullBatch(**dict(batch), more=bool(items))


def stat_description(stat: str) -> str:
    if stat in Sms57Adapter.codes:
        return Sms57Adapter.codes.lookup(stat).description
    if stat.startswith("MO:"):
        return f"upstream gateway code {stat[3:]}"
    return f"unknown code {stat}"


# --------------------------------------------------------------------------- the adapter


class Sms57Adapter(VendorAdapter):
    vendor_id: ClassVar[str] = VENDOR
    balance_alarm_default = Decimal("100")  # CNY; post-paid accounts go negative
    max_batch: ClassVar[int] = 500
    settings_model: ClassVar[type[VendorSettings]] = Sms57Settings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.PERSONALISED_NATIVE,
            Capability.PULL_REPORTS,
            Capability.PULL_INBOUND,
            Capability.PUSH_REPORTS,
            Capability.PUSH_INBOUND,
        }
    )
    push_ack: ClassVar[PushReply] = PushReply(200, "OK")
    codes: ClassVar[CodeTable] = CodeTable(VENDOR, CODES)

    settings: Sms57Settings

    def __init__(self, settings: Any, session: Any = None):
        super().__init__(settings, session)
        # Lowered when the gateway answers 102; adapters live as long as their process.
        self.learned_limit: int | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/sms"

    @property
    def batch_limit(self) -> int:
        limit = super().batch_limit
        return min(limit, self.learned_limit) if self.learned_limit else limit

    # -- passwords
    def password_for(self, signed: str | None = None) -> str:
        """The `password` parameter: plain, or MD5(password + signed) in md5 mode ("" for MD5(password))."""
        secret = self.settings.password.get_secret_value()
        if self.settings.password_mode == "plain":
            return secret
        return md5_hex(secret + (signed or ""))

    def _call(self, params: Mapping[str, str]) -> bytes:
        response = self.http.request("POST", self.url, data={**params, "rt": "json"})
        return response.content

    def _split_numbers(self, recipients: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
        """(e164, domestic) pairs the vendor can take, and the E.164 numbers it cannot."""
        good: list[tuple[str, str]] = []
        bad: list[str] = []
        for to in recipients:
            domestic = e164_to_domestic_cn(to)
            if domestic and domestic.isdigit() and domestic.startswith("1"):
                good.append((to, domestic))
            else:
                bad.append(to)
        return good, bad

    def _refuse(self, numbers: Sequence[str]) -> list[SubmitResult]:
        return self.reject_all(numbers, CODE_NOT_CN_MOBILE, "sms57 takes Chinese mobile numbers only")

    def _in_requests(
        self, items: Sequence[T], call: Callable[[Sequence[T]], list[SubmitResult]]
    ) -> list[SubmitResult]:
        """`items` in requests of `batch_limit`; on 102 (nothing accepted) the limit is halved
        and the same items go again, so nothing is sent twice and nothing is left out."""
        results: list[SubmitResult] = []
        rest = list(items)
        while rest:
            part = rest[: self.batch_limit]
            try:
                results.extend(call(part))
            except VendorRequestError as exc:
                if exc.code == CODE_TOO_MANY and len(part) > 1:
                    self.learned_limit = (len(part) + 1) // 2
                    logger.warning(
                        "sms57 refused %d numbers in one request (102): sending at most %d a request",
                        len(part),
                        self.learned_limit,
                        extra={"vendor": VENDOR},
                    )
                    continue
                exc.partial = results + exc.partial
                raise
            except VendorError as exc:
                exc.partial = results + exc.partial
                raise
            rest = rest[len(part) :]
        return results

    # -- sending
    def send_chunk(self, recipients: Sequence[str], content: str, options: SendOptions) -> list[SubmitResult]:
        # options.send_at / sender_id: the vendor has neither (extno comes from the settings).
        good, bad = self._split_numbers(recipients)
        refused = self._refuse(bad)
        if not good:
            return refused
        try:
            results = self._in_requests(good, lambda part: self._send_once(part, content))
        except VendorError as exc:
            exc.partial = refused + exc.partial
            raise
        return _in_order(recipients, refused + results)

    def _send_once(self, good: Sequence[tuple[str, str]], content: str) -> list[SubmitResult]:
        mobile = ",".join(domestic for _, domestic in good)
        extno = self.settings.extno
        body = self._call(
            {
                "action": "send",
                "account": self.settings.account,
                "password": self.password_for(extno + content + mobile),
                "mobile": mobile,
                "content": content,
                "extno": extno,
            }
        )
        return read_send_answer(body, good)

    def send_personalised(
        self, messages: Sequence[tuple[str, str]], options: SendOptions | None = None
    ) -> list[SubmitResult]:
        """Native p2p: `mobile#content` records, up to `batch_limit` a request."""
        options = options or SendOptions()
        lines: list[tuple[str, str, str]] = []  # (e164, domestic, content)
        refused_numbers: list[str] = []
        multiline: list[tuple[str, str]] = []
        for to, content in messages:
            good, _ = self._split_numbers([to])
            if not good:
                refused_numbers.append(to)
            elif "\r" in content or "\n" in content:
                multiline.append((to, content))  # a line break cannot travel in a p2p record: plain send
            else:
                lines.append((to, good[0][1], content))
        results: list[SubmitResult] = self._refuse(refused_numbers)
        try:
            results.extend(self._in_requests(lines, self._send_p2p))
            if multiline:
                results.extend(super().send_personalised(multiline, options))
        except VendorError as exc:
            exc.partial = results + exc.partial
            raise
        return _in_order([to for to, _ in messages], results)

    def p2p_listing(self, chunk: Sequence[tuple[str, str, str]]) -> tuple[str, str]:
        """(mobileContentList, what its password hashes): the records joined with the separator,
        and the same without it ("加密时 mobileContentList 换行符去掉")."""
        records = [f"{domestic}#{content}" for _, domestic, content in chunk]
        return P2P_SEPARATORS[self.settings.p2p_separator].join(records), "".join(records)

    def _send_p2p(self, chunk: Sequence[tuple[str, str, str]]) -> list[SubmitResult]:
        listing, signed = self.p2p_listing(chunk)
        extno = self.settings.extno
        body = self._call(
            {
                "action": "p2p",
                "account": self.settings.account,
                "password": self.password_for(extno + signed),
                "mobileContentList": listing,
                "extno": extno,
            }
        )
        return read_send_answer(body, [(to, domestic) for to, domestic, _ in chunk])

    # -- account
    def balance(self) -> Balance:
        body = self._call(
            {"action": "balance", "account": self.settings.account, "password": self.password_for()}
        )
        return read_balance_answer(body)

    # -- pulls (one call each; the poll drains)
    def pull_reports(self) -> PullBatch:
        body = self._call(
            {
                "action": "report",
                "account": self.settings.account,
                "password": self.password_for(),
                "size": str(self.settings.report_pull_size),
            }
        )
        batch = read_pull_answer("report", body)
        return batch.model_copy(update={"inbound": []})

    def pull_inbound(self) -> PullBatch:
        size = str(self.settings.inbound_pull_size)
        body = self._call(
            {
                "action": "mo",
                "account": self.settings.account,
                "password": self.password_for(),
                "size": size,
                "szie": size,  # the document's table spells it so: send both
            }
        )
        batch = read_pull_answer("mo", body)
        return batch.model_copy(update={"reports": []})

    # -- pushes
    def parse_push(self, request: RawRequest) -> PushBatch:
        try:
            return read_records("push", _json("push", request.body))
        except VendorParseError:
            raise
        except Exception as exc:  # the contract: nothing but VendorParseError leaves a parser
            raise VendorParseError(VENDOR, f"push: unreadable ({type(exc).__name__})") from exc


def _in_order(recipients: Sequence[str], results: list[SubmitResult]) -> list[SubmitResult]:
    """Results in the order of the request (a number may appear twice)."""
    by_to: dict[str, deque[SubmitResult]] = {}
    for result in results:
        by_to.setdefault(result.to, deque()).append(result)
    ordered = [by_to[to].popleft() for to in recipients if by_to.get(to)]
    ordered.extend(r for queue in by_to.values() for r in queue)
    return ordered
