"""smsadmin (通用短信平台 HTTP 接口 v1.0.5): GB2312 form parameters, plain-text answers.

Everything on the wire is GB2312: requests are percent-encoded GB2312 bytes, answers are decoded
as GB18030 (a superset, so a stray GBK character does not break a reply). Our `linkid` is the
vendor reference: reports and replies carry it back, so reports match on (linkid, mobile); a new
attempt of a chunk takes a new linkid ("不得重复").

Readings taken (seeds/002, digest in docs/vendors.md):
- Pulls (§7, §8) hand each record out once, at most 20 a call, "poll again after 5 s": one call
  is one `pull_*` here, and the poll applies it before the next call. Lines are
  `mobile/date/linkid/status|content/子码`. A report line stands alone: a line that does not read
  as a report is set aside, never glued to another (gluing turned a delivered report into an
  undelivered one). Only a reply text may hold a line break (the plain `reve/` route does not
  encode it): a line continues a reply only while that reply's own line is not yet a whole
  record. The 子码 (extension) of a reply is kept as its `to`.
- Pushes (§9, §10): "类型: POST", but the examples put every field in the URL's query string:
  fields are read from the query string (the raw, still percent-encoded one where the transport
  keeps it, decoded as GB18030) and from a form body, for GET and POST alike.
- post_send_ddt (§4): the prose says "第一个参数为手机号码, 第二个参数为模板中第一个变量", and the
  worked example fills `{value1}` with the group's second field and `{value2}` with its third
  (验证码 123456, 在 10 分钟内). Its rendered texts leave `{value0}` out although the template
  starts with it, so the example is not consistent with itself; the reading kept is the one
  its `{value1}`/`{value2}` show: field N of a group fills `{valueN}`, `{value0}` is the mobile.
  We send the template `{value1}` with groups `mobile,text`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal
from urllib.parse import quote, quote_plus, unquote_to_bytes

from pydantic import Field, SecretStr

from .base import (
    CodeTable,
    PushReply,
    RawRequest,
    VendorAdapter,
    VendorSettings,
    chunked,
    e164_to_domestic_cn,
    format_vendor_time,
    group_by_content,
    md5_hex,
    parse_vendor_time,
    unreadable,
    vendor_number_to_e164,
)
from .errors import InvalidInput, VendorError, VendorParseError, VendorRequestError
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
    SensitiveWordCheck,
    SubmitResult,
    UnreadableRecord,
)

VENDOR = "smsadmin"
WIRE_ENCODING = "gb2312"  # what we send (the document: the interface only takes GB2312)
READ_ENCODING = "gb18030"  # what we read answers and pushes with (superset of GB2312 and GBK)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PULL_LIMIT = 20  # the document: at most 20 records per reve/ or report/ call
GET_LIMIT = 100  # get_send*/ take at most 100 numbers, post_send*/ 1000

NO_INBOUND = "150"
NO_REPORTS = "160"
DELIVERED_REPORTS = frozenset({"DELIVRD", "DELIVERED", "0"})

CODES = CodeTable(
    VENDOR,
    {
        "0": (Outcome.OK, "sent (发送成功)"),
        "1": (Outcome.CONFIGURATION, "wrong user id or password"),
        "2": (Outcome.PERMANENT, "balance too low"),
        "3": (Outcome.PERMANENT, "too many numbers in one request (100 GET / 1000 POST)"),
        "4": (Outcome.CONFIGURATION, "this user id may not send (not enabled at the vendor)"),
        "5": (Outcome.PERMANENT, "mobile or message empty (or no valid number left)"),
        "7": (Outcome.PERMANENT, "message too long for the channel"),
        "8": (Outcome.CONFIGURATION, "user frozen at the vendor"),
        "150": (Outcome.OK, "no inbound message to fetch"),
        "160": (Outcome.OK, "no delivery report to fetch"),
        "DELIVRD": (Outcome.OK, "delivered"),
    },
)

_LINKID = re.compile(r"[A-Za-z0-9]{1,32}")
_CODE_ANSWER = re.compile(r"\s*(\d{1,4})(?:\s+(.*))?", re.S)
_BALANCE = re.compile(r"用户\s*ID\s*=\s*(?P<uid>\S*)\s+剩余资费\s*=\s*(?P<balance>-?\d+(?:\.\d+)?)")
_RECORD_START = re.compile(r"\s*\+?\d{5,20}/")
_MOBILE = re.compile(r"\+?\d{5,20}")
# A report's status value: DELIVRD, UNDELIV, MA:0001, 0 ... never a '/' or a space.
_REPORT_CODE = re.compile(r"[A-Za-z0-9:_.\-]*")
# mobile/date/linkid/<status or content>/subcode: three fields from the left, the last from the
# right, so a reply text containing '/' survives; a date written with '/' is tolerated too.
_RECORD = re.compile(
    r"(?P<mobile>[^/]*)/"
    r"(?P<date>\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[ T]\d{1,2}:\d{1,2}(?::\d{1,2})?)?|[^/]*)/"
    r"(?P<linkid>[^/]*)/(?P<body>.*)/(?P<subcode>[^/]*)",
    re.S,
)
_TIME_FORMATS = (TIME_FORMAT, "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S")


class SmsAdminSettings(VendorSettings):
    uid: str
    password: SecretStr
    # post_send_md5/ is the default; get_send_md5/ is offered (100 numbers per call).
    send_method: Literal["post", "get"] = "post"
    pull_max_calls: int = Field(default=10, ge=1, le=1000, description="bound on calls of one pull drain")
    # The document asks for 5 s between polls while more records come.
    pull_interval_s: float = Field(default=5.0, ge=0, le=60)


# --------------------------------------------------------------------------- wire helpers


def encode_gb2312(text: str, what: str) -> bytes:
    """GB2312 bytes of `text`; a character GB2312 lacks is our input error, named."""
    try:
        return text.encode(WIRE_ENCODING)
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise InvalidInput(
            VENDOR, f"{what} contains {bad!r} (U+{ord(bad[0]):04X}) which GB2312 cannot encode"
        ) from exc


def form_encode(params: Sequence[tuple[str, str]]) -> str:
    """application/x-www-form-urlencoded in GB2312 (ASCII-only result)."""
    return "&".join(f"{quote_plus(k)}={quote_plus(encode_gb2312(v, k))}" for k, v in params)


def decode_answer(body: bytes) -> str:
    try:
        return body.decode(READ_ENCODING)
    except UnicodeDecodeError as exc:
        raise VendorParseError(VENDOR, "answer is not GB2312/GB18030 text") from exc


def parse_form(raw: bytes | str) -> dict[str, str]:
    """Strict GB2312/GB18030 form decoding; keys are stripped (the document's example has ' RevertTime')."""
    try:
        data = raw.encode("latin-1") if isinstance(raw, str) else bytes(raw)
    except UnicodeEncodeError:
        data = raw.encode("utf-8") if isinstance(raw, str) else b""
    fields: dict[str, str] = {}
    for part in data.split(b"&"):
        if not part.strip():
            continue
        key, _, value = part.partition(b"=")
        try:
            k = unquote_to_bytes(key.replace(b"+", b" ")).decode(READ_ENCODING).strip()
            v = unquote_to_bytes(value.replace(b"+", b" ")).decode(READ_ENCODING)
        except UnicodeDecodeError as exc:
            raise VendorParseError(VENDOR, "push field is not GB2312/GB18030") from exc
        if k:
            fields[k] = v
    return fields


def parse_code_answer(text: str) -> tuple[str, str]:
    """'0 发送成功!' -> ('0', '发送成功!'); anything else is unreadable."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    match = _CODE_ANSWER.fullmatch(first)
    if not match:
        raise VendorParseError(VENDOR, f"answer is not a code line: {text[:80]!r}")
    return match.group(1), (match.group(2) or "").strip()


def parse_send_answer(text: str) -> str:
    """The code of a send answer; raises VendorRequestError unless it is 0."""
    code, message = parse_code_answer(text)
    if code != "0":
        raise _refusal(code, message)
    return code


def _refusal(code: str, message: str) -> VendorRequestError:
    """The vendor's refusal: our meaning of its code, its own words beside it."""
    info = CODES.lookup(code)
    outcome = info.outcome if code != "0" else Outcome.TRANSIENT
    description = f"{info.description} ({message})" if message else info.description
    return VendorRequestError(VENDOR, code, outcome, description)


def parse_balance_answer(text: str) -> Decimal:
    match = _BALANCE.search(text)
    if match is None:
        _raise_refusal(text, "balance")
    try:
        return Decimal(match.group("balance"))
    except InvalidOperation as exc:  # pragma: no cover - the pattern only lets numbers through
        raise VendorParseError(VENDOR, f"unreadable balance {text[:80]!r}") from exc


def parse_mgz_answer(text: str) -> SensitiveWordCheck:
    stripped = text.strip()
    if stripped.startswith("不含敏感字"):
        return SensitiveWordCheck(ok=True)
    for prefix in ("敏感字:", "敏感字："):
        if stripped.startswith(prefix):
            words = [w.strip() for w in re.split(r"[;；]", stripped[len(prefix) :]) if w.strip()]
            return SensitiveWordCheck(ok=not words, words=words)
    _raise_refusal(text, "sensitive-word check")
    raise AssertionError  # unreachable: _raise_refusal always raises


def _raise_refusal(text: str, what: str) -> Any:
    """A '1 用户名或密码错误!' style refusal, or an unreadable answer."""
    try:
        code, message = parse_code_answer(text)
    except VendorParseError:
        raise VendorParseError(VENDOR, f"unreadable {what} answer: {text[:80]!r}") from None
    raise _refusal(code, message)


def _whole(text: str) -> dict[str, str] | None:
    """One line (or a reply continued over lines) as a record; None unless it reads whole."""
    match = _RECORD.fullmatch(text.strip())
    if match is None:
        return None
    record = {k: v.strip() if k != "body" else v for k, v in match.groupdict().items()}
    return record if _MOBILE.fullmatch(record["mobile"]) else None


def split_records(
    text: str, empty_code: str, *, continued: bool = False
) -> tuple[list[dict[str, str]], list[UnreadableRecord], int]:
    """Records of one reve/ or report/ answer: (readable records, unreadable ones, how many the
    vendor handed out). `empty_code` (150/160) means none. `continued` (reve/ only): a reply text
    may go on over the next lines while its record is not yet whole."""
    stripped = text.strip()
    if not stripped:
        raise VendorParseError(VENDOR, "empty pull answer")
    if "/" not in stripped:  # a code answer (150/160, or a refusal); any '/' means records
        code, message = parse_code_answer(stripped)
        if code in (NO_INBOUND, NO_REPORTS):
            return [], [], 0
        raise _refusal(code, message)
    if stripped.startswith("<"):  # an error page, not records
        raise VendorParseError(VENDOR, f"pull answer is markup: {stripped[:80]!r}")
    logical: list[str] = []
    open_record = False  # the last logical record started like one and is not whole yet
    for line in stripped.split("\n"):
        line = line.rstrip("\r")
        if continued and open_record and _whole(line) is None:
            logical[-1] += "\n" + line
            open_record = _whole(logical[-1]) is None
            continue
        if not line.strip():
            continue
        logical.append(line)
        open_record = continued and _whole(line) is None and bool(_RECORD_START.match(line))
    records: list[dict[str, str]] = []
    skipped: list[UnreadableRecord] = []
    for line in logical:
        record = _whole(line)
        if record is None:
            skipped.append(
                unreadable(line, "pull line is not mobile/date/linkid/…/子码 with a mobile number")
            )
        elif not continued and not _REPORT_CODE.fullmatch(record["body"].strip()):
            skipped.append(unreadable(line, "report line with an unreadable status value"))
        else:
            records.append(record)
    return records, skipped, len(logical)


def _e164(mobile: str) -> str:
    text = mobile.strip()
    if not re.fullmatch(r"\+?\d{5,20}", text):
        raise VendorParseError(VENDOR, "mobile number is not digits")
    return vendor_number_to_e164(text)


def _time(value: str) -> Any:
    try:
        return parse_vendor_time(value, *_TIME_FORMATS)
    except (ValueError, OverflowError):  # e.g. '0000-00-00 00:00:00' placeholders
        return None


def _report_status(code: str) -> ReportStatus:
    code = code.strip()
    if not code:
        return ReportStatus.PENDING
    return ReportStatus.DELIVERED if code.upper() in DELIVERED_REPORTS else ReportStatus.UNDELIVERED


def report_from_record(record: Mapping[str, str]) -> DeliveryReport:
    code = record["body"].strip()
    status = _report_status(code)
    return DeliveryReport(
        vendor=VENDOR,
        vendor_ref=record["linkid"],
        to=_e164(record["mobile"]),
        status=status,
        code=code,
        description=CODES.lookup(code).description if code in CODES else code,
        occurred_at=_time(record["date"]),
        raw=dict(record),
    )


def inbound_from_record(record: Mapping[str, str]) -> InboundMessage:
    return InboundMessage(
        vendor=VENDOR,
        **{"from": _e164(record["mobile"])},
        to=record.get("subcode", "").strip(),  # the 子码 (extension) the reply was sent to
        content=record["body"],
        received_at=_time(record["date"]),
        vendor_ref=record["linkid"] or None,
        raw=dict(record),
    )


def parse_push_fields(fields: Mapping[str, str]) -> PushBatch:
    """A Class=rpt / Class=mo push, as form fields (names compared case-insensitively)."""
    lower = {str(k).strip().lower(): str(v) for k, v in fields.items()}
    kind = lower.get("class", "").strip().lower()
    mobile = lower.get("mobile", "")
    if kind == "rpt":
        linkid = lower.get("linkid", "").strip()
        if not linkid:
            raise VendorParseError(VENDOR, "report push without LinkId cannot be matched")
        report = report_from_record(
            {
                "mobile": mobile,
                "date": lower.get("reporttime", ""),
                "linkid": linkid,
                "body": lower.get("report", ""),
                "subcode": "",
            }
        )
        return PushBatch(reports=[report.model_copy(update={"raw": dict(fields)})])
    if kind == "mo":
        if "message" not in lower:
            raise VendorParseError(VENDOR, "inbound push without Message")
        inbound = inbound_from_record(
            {
                "mobile": mobile,
                "date": lower.get("reverttime", ""),
                "linkid": lower.get("linkid", "").strip(),
                "body": lower["message"],
                # the documented push has no 子码; kept if a gateway adds one
                "subcode": lower.get("subcode", lower.get("extno", "")),
            }
        )
        return PushBatch(inbound=[inbound.model_copy(update={"raw": dict(fields)})])
    raise VendorParseError(VENDOR, f"unknown push Class {kind[:20]!r}")


# --------------------------------------------------------------------------- the adapter


class SmsAdminAdapter(VendorAdapter):
    vendor_id: ClassVar[str] = VENDOR
    balance_alarm_default = Decimal("100")  # CNY
    max_batch: ClassVar[int] = 1000
    settings_model: ClassVar[type[VendorSettings]] = SmsAdminSettings
    # No RESEND_SAFE: the document makes linkid unique on our side ("不得重复") but never says
    # what the platform does with a repeated one, so a resend may go out twice.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.PERSONALISED_NATIVE,
            Capability.PULL_REPORTS,
            Capability.PULL_INBOUND,
            Capability.PUSH_REPORTS,
            Capability.PUSH_INBOUND,
            Capability.SCHEDULED_SEND,
            Capability.SENSITIVE_WORDS,
        }
    )
    push_ack: ClassVar[PushReply] = PushReply(200, "OK")
    codes: ClassVar[CodeTable] = CODES
    settings: SmsAdminSettings

    # -- limits
    @property
    def batch_limit(self) -> int:
        limit = super().batch_limit
        return min(limit, GET_LIMIT) if self.settings.send_method == "get" else limit

    # -- wire
    def _password(self) -> str:
        return self.settings.password.get_secret_value()

    def _pwd_md5(self) -> str:
        password = self._password()
        encode_gb2312(password, "password")
        return md5_hex(password, encoding=WIRE_ENCODING)

    def _call(self, method: str, path: str, params: Sequence[tuple[str, str]]) -> str:
        url = f"{self.base_url}/{path}"
        body = form_encode(params)
        if method == "GET":
            response = self.http.request("GET", f"{url}?{body}")
        else:
            response = self.http.request(
                "POST",
                url,
                data=body.encode("ascii"),
                headers={"Content-Type": f"application/x-www-form-urlencoded; charset={WIRE_ENCODING}"},
            )
        return decode_answer(response.content)

    @staticmethod
    def linkid(reference: str | None, attempt: int = 1) -> str:
        """Our reference as a linkid: ≤ 32 alphanumerics, stable for a given reference and
        attempt; another attempt takes another linkid (the document: "不得重复")."""
        if reference and attempt > 1:
            reference = f"{reference}~{attempt}"
        if reference and _LINKID.fullmatch(reference):
            return reference
        if reference:
            return md5_hex(reference)  # 32 hex: same reference, same linkid
        return uuid.uuid4().hex

    @staticmethod
    def _dtime(options: SendOptions) -> str:
        return format_vendor_time(options.send_at, TIME_FORMAT) if options.send_at else ""

    @staticmethod
    def _part(options: SendOptions, suffix: str, parts: int) -> SendOptions:
        """Options for one of several requests: each gets its own (stable) linkid."""
        if options.reference and parts > 1:
            return options.model_copy(update={"reference": f"{options.reference}#{suffix}"})
        return options

    def _split_numbers(self, recipients: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
        ok: list[tuple[str, str]] = []
        bad: list[str] = []
        for to in recipients:
            domestic = e164_to_domestic_cn(to)
            (ok.append((to, domestic)) if domestic else bad.append(to))
        return ok, bad

    def _reject_numbers(self, numbers: Sequence[str]) -> list[SubmitResult]:
        return self.reject_all(numbers, "NOT_CN", "smsadmin takes mainland China numbers only")

    # -- sending
    def send(
        self, recipients: Sequence[str], content: str, options: SendOptions | None = None
    ) -> list[SubmitResult]:
        options = options or SendOptions()
        chunks = list(chunked(list(recipients), self.batch_limit))
        results: list[SubmitResult] = []
        for index, chunk in enumerate(chunks):
            try:
                results.extend(self.send_chunk(chunk, content, self._part(options, str(index), len(chunks))))
            except VendorError as exc:
                exc.partial = results + exc.partial
                raise
        return results

    def send_chunk(self, recipients: Sequence[str], content: str, options: SendOptions) -> list[SubmitResult]:
        ok, bad = self._split_numbers(recipients)
        rejected = self._reject_numbers(bad)
        if not ok:
            return rejected
        encode_gb2312(content, "content")
        linkid = self.linkid(options.reference, options.attempt)
        params = [
            ("uid", self.settings.uid),
            ("pwd", self._pwd_md5()),
            ("mobile", ";".join(domestic for _, domestic in ok)),
            ("msg", content),
            ("dtime", self._dtime(options)),
            ("linkid", linkid),
        ]
        if self.settings.send_method == "get":
            text = self._call("GET", "get_send_md5/", params)
        else:
            text = self._call("POST", "post_send_md5/", params)
        code = parse_send_answer(text)
        accepted = [
            SubmitResult(
                to=to, vendor=VENDOR, vendor_ref=linkid, outcome=Outcome.OK, code=code, description="sent"
            )
            for to, _ in ok
        ]
        return accepted + rejected

    def send_personalised(
        self, messages: Sequence[tuple[str, str]], options: SendOptions | None = None
    ) -> list[SubmitResult]:
        """post_send_ddt/ with msg '{value1}' and 'mobile,text' groups; texts with ',' or ';'
        (the group separators, which the protocol cannot escape) go by grouped post_send."""
        options = options or SendOptions()
        native: list[tuple[str, str]] = []
        grouped: list[tuple[str, str]] = []
        for to, content in messages:
            encode_gb2312(content, "content")
            (grouped if ("," in content or ";" in content) else native).append((to, content))
        # post_send_ddt/ is POST only: 1000 groups (or the settings' max_batch), whatever send_method says.
        ddt_limit = min(self.max_batch, self.settings.max_batch or self.max_batch)
        ddt_chunks = list(chunked(native, ddt_limit))
        groups = list(group_by_content(grouped).items())
        parts = len(ddt_chunks) + len(groups)
        results: list[SubmitResult] = []
        try:
            for index, chunk in enumerate(ddt_chunks):
                results.extend(self.send_ddt_chunk(chunk, self._part(options, f"d{index}", parts)))
            for index, (content, recipients) in enumerate(groups):
                results.extend(self.send(recipients, content, self._part(options, f"g{index}", parts)))
        except VendorError as exc:
            exc.partial = results + exc.partial
            raise
        return results

    def send_ddt_chunk(self, messages: Sequence[tuple[str, str]], options: SendOptions) -> list[SubmitResult]:
        """One post_send_ddt/ request (≤ 1000 groups)."""
        ok_numbers, bad = self._split_numbers([to for to, _ in messages])
        domestic = dict(ok_numbers)
        groups: list[str] = []
        for to, content in messages:
            if to not in domestic:
                continue
            if "," in content or ";" in content:
                raise InvalidInput(
                    VENDOR, "a post_send_ddt value cannot contain ',' or ';' (group separators)"
                )
            groups.append(f"{domestic[to]},{content}")
        rejected = self._reject_numbers(bad)
        if not groups:
            return rejected
        linkid = self.linkid(options.reference, options.attempt)
        # The document: msg and params are url-encoded once more inside the form.
        template = quote("{value1}", safe="")
        params_value = quote(";".join(groups).encode(WIRE_ENCODING), safe="")
        params = [
            ("uid", self.settings.uid),
            ("pwd", self._pwd_md5()),
            ("msg", template),
            ("params", params_value),
            ("dtime", self._dtime(options)),
            ("linkid", linkid),
        ]
        code = parse_send_answer(self._call("POST", "post_send_ddt/", params))
        accepted = [
            SubmitResult(
                to=to, vendor=VENDOR, vendor_ref=linkid, outcome=Outcome.OK, code=code, description="sent"
            )
            for to, _ in messages
            if to in domestic
        ]
        return accepted + rejected

    # -- account and extras (the document: plain pwd on these routes)
    def balance(self) -> Balance:
        text = self._call("GET", "user_info/", [("uid", self.settings.uid), ("pwd", self._password())])
        amount = parse_balance_answer(text)
        return Balance(vendor=VENDOR, balance=amount, unit="CNY", raw={"answer": text.strip()})

    def sensitive_words(self, content: str) -> SensitiveWordCheck:
        params = [("uid", self.settings.uid), ("pwd", self._password()), ("msg", content)]
        return parse_mgz_answer(self._call("GET", "mgz/", params))

    # -- pulls (one call each; the poll applies it, pauses `pull_interval_s`, calls again)
    @property
    def pull_interval_s(self) -> float:
        return self.settings.pull_interval_s

    @property
    def pull_max_calls(self) -> int:
        return self.settings.pull_max_calls

    def _pull(self, path: str, empty_code: str, *, continued: bool) -> PullBatch:
        text = self._call("GET", path, [("uid", self.settings.uid), ("pwd", self._password())])
        records, skipped, handed = split_records(text, empty_code, continued=continued)
        reports: list[DeliveryReport] = []
        inbound: list[InboundMessage] = []
        for record in records:
            try:
                if continued:
                    inbound.append(inbound_from_record(record))
                else:
                    reports.append(report_from_record(record))
            except (VendorParseError, ValueError) as exc:
                skipped.append(unreadable("/".join(record.values()), str(exc)))
        return PullBatch(reports=reports, inbound=inbound, unreadable=skipped, more=handed >= PULL_LIMIT)

    def pull_reports(self) -> PullBatch:
        return self._pull("report/", NO_REPORTS, continued=False)

    def pull_inbound(self) -> PullBatch:
        return self._pull("reve/", NO_INBOUND, continued=True)

    # -- pushes
    def _push_fields(self, request: RawRequest) -> dict[str, str]:
        """Query fields (the raw query as GB18030 where the transport kept it), then the form
        body's fields over them; keys stripped (the document's example writes '& RevertTime')."""
        if request.raw_query:
            fields = parse_form(request.raw_query)
        else:  # the transport decoded the query itself (API Gateway REST: as UTF-8)
            fields = {str(k).strip(): str(v) for k, v in dict(request.query or {}).items()}
        if request.body:
            fields.update(parse_form(request.body))
        return fields

    def parse_push(self, request: RawRequest) -> PushBatch:
        try:
            return parse_push_fields(self._push_fields(request))
        except VendorParseError:
            raise
        except Exception as exc:  # pydantic, type or value errors from a hostile push
            raise VendorParseError(VENDOR, f"unreadable push: {type(exc).__name__}") from exc

    def check_push_credentials(self, request: RawRequest) -> bool:
        """SmsName carries our user id: a push for another account is not ours."""
        try:
            fields = {k.lower(): v for k, v in self._push_fields(request).items()}
        except Exception:
            return False
        return fields.get("smsname", "").strip() == self.settings.uid
