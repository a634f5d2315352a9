"""Simulator of smsadmin (通用短信平台 HTTP 接口 v1.0.5): GB2312 form parameters in, GB2312 text out.

Readings taken where the document is silent:
- A parameter that is not valid GB2312 cannot be read: uid/pwd -> `1 用户名或密码错误!`,
  mobile/msg/params -> `5 手机号或发送信息不能为空!` (the platform sees no usable value).
- Malformed numbers are filtered out (the document: 格式不符的参数, 系统自动过滤掉) and repeated
  numbers dropped (v1.0.3 排重); if no number is left the answer is 5. A test number ending in
  4220 refuses the whole request with 5 (the document has no invalid-number code).
- A repeated linkid is recorded in `reused_linkids`; the document only says it must not repeat,
  so by default the request is sent again (`dedupe_linkid=True` makes it a silent no-op).
- Pushes (§9, §10) say "类型: POST" while their examples carry every field in the URL's query
  string (`http://pushURL?Class=mo&…`), GB2312 percent-encoded: `push_method` picks `get` (query
  string), `post_query` (POST, fields in the query string, empty body) or `post_form` (POST form
  body). `post_form` is the default while our callback route takes POST only (the GET route
  comes with the callbacks' own API); tests run all three. Never retried (§9: "我方不再传递").
- `raw_report_lines` are handed out by the next `report/` pulls before the records, verbatim:
  a test's way to put a malformed line into a pull.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import quote_plus, unquote_to_bytes

from werkzeug.wrappers import Request, Response

from .base import Accepted, Fate, VendorSimulator, now_china

OK = "0 发送成功!"
BAD_AUTH = "1 用户名或密码错误!"
NO_BALANCE = "2 余额不足!"
NOT_ALLOWED = "4 此用户不允许发送!"
EMPTY = "5 手机号或发送信息不能为空!"
FROZEN = "8 用户已冻结, 请联系客服人员!"
NO_INBOUND = "150"
NO_REPORTS = "160"
PULL_LIMIT = 20
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_MOBILE = re.compile(r"1\d{10}")
_LINKID = re.compile(r"[A-Za-z0-9]{1,32}")
_PLACEHOLDER = re.compile(r"\{value(\d+)\}")


class Unreadable(Exception):
    """A parameter that is not GB2312."""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("gb2312")).hexdigest()  # the vendor's password form


def parse_gb2312_form(raw: bytes) -> dict[str, bytes]:
    """Form fields as raw (percent-decoded) bytes; decoding is per field, strict GB2312."""
    fields: dict[str, bytes] = {}
    for part in raw.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        name = unquote_to_bytes(key.replace(b"+", b" ")).decode("latin-1").strip()
        fields[name] = unquote_to_bytes(value.replace(b"+", b" "))
    return fields


def gb(value: bytes) -> str:
    try:
        return value.decode("gb2312")
    except UnicodeDecodeError as exc:
        raise Unreadable from exc


class SmsAdminSimulator(VendorSimulator):
    vendor_id = "smsadmin"
    base_path = "/smsmarketing/wwwroot/api"

    SEND_ROUTES: ClassVar[
        dict[str, tuple[str, bool, bool, int]]
    ] = {  # path -> (method, pwd is md5, msg url-encoded again, number limit)
        "get_send": ("GET", False, False, 100),
        "get_send_md5": ("GET", True, False, 100),
        "get_send_urldecode": ("GET", False, True, 100),
        "post_send": ("POST", False, False, 1000),
        "post_send_md5": ("POST", True, False, 1000),
        "post_send_urldecode": ("POST", False, True, 1000),
    }

    def __init__(
        self,
        uid: str = "smsrelay",
        password: str = "secret",
        *,
        max_chars: int = 500,
        fee_per_message: float = 0.05,
        sensitive_words: Sequence[str] = ("发票", "赌博", "代开"),
        frozen: bool = False,
        allowed: bool = True,
        dedupe_linkid: bool = False,
        undelivered_code: str = "UNDELIV",
        push_method: Literal["post_form", "post_query", "get"] = "post_form",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.uid = uid
        self.password = password
        self.max_chars = max_chars
        self.fee_per_message = fee_per_message
        self.sensitive = list(sensitive_words)
        self.frozen = frozen
        self.allowed = allowed
        self.dedupe_linkid = dedupe_linkid
        self.undelivered_code = undelivered_code
        self.push_method = push_method
        self.raw_report_lines: deque[str] = deque()
        self.linkids: set[str] = set()
        self.reused_linkids: list[str] = []
        self.calls: list[dict[str, Any]] = []  # every call: route and decoded params (tests inspect pwd etc.)
        self._initial = {
            "balance": self.balance,
            "max_chars": max_chars,
            "frozen": frozen,
            "allowed": allowed,
        }

    def reset(self) -> None:
        """Forget everything (base state, linkids, calls, scheduled reports) and restore the account."""
        super().reset()
        with self._wake:
            self._timers.clear()
        with self.lock:
            self.linkids.clear()
            self.reused_linkids.clear()
            self.raw_report_lines.clear()
            self.calls.clear()
            self.balance = self._initial["balance"]
            self.max_chars = self._initial["max_chars"]
            self.frozen = self._initial["frozen"]
            self.allowed = self._initial["allowed"]

    def settings(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "uid": self.uid, "password": self.password}

    # ------------------------------------------------------------------ HTTP
    @staticmethod
    def _text(text: str, status: int = 200) -> Response:
        return Response(text.encode("gb2312"), status=status, content_type="text/html; charset=gb2312")

    def handle(self, request: Request) -> Response:
        path = request.path
        if not path.startswith(self.base_path + "/"):
            return Response("Not Found", status=404)
        route = path[len(self.base_path) + 1 :].strip("/")
        raw = request.query_string if request.method == "GET" else request.get_data()
        if request.method == "POST" and request.query_string:  # tolerate a query on POST too
            raw = request.query_string + b"&" + raw
        fields = parse_gb2312_form(raw)
        with self.lock:
            self.calls.append(
                {
                    "route": route,
                    "method": request.method,
                    "fields": {k: v.decode("gb18030", "replace") for k, v in fields.items()},
                }
            )
        if route in self.SEND_ROUTES:
            method, md5, urldecode, limit = self.SEND_ROUTES[route]
            if request.method != method:
                return Response("Method Not Allowed", status=405)
            return self._text(self._send(fields, md5=md5, urldecode=urldecode, limit=limit))
        if route == "post_send_ddt":
            if request.method != "POST":
                return Response("Method Not Allowed", status=405)
            return self._text(self._send_ddt(fields))
        if route in ("user_info", "user_info_urldecode"):
            return self._text(self._user_info(fields, urldecode=route.endswith("urldecode")))
        if route == "mgz":
            return self._text(self._mgz(fields))
        if route in ("reve", "reve_urlencode"):
            return self._text(self._reve(fields, urlencode=route == "reve_urlencode"))
        if route == "report":
            return self._text(self._report(fields))
        return Response("Not Found", status=404)

    # ------------------------------------------------------------------ checks
    def _auth(self, fields: dict[str, bytes], *, md5: bool, urldecode_uid: bool = False) -> bool:
        try:
            uid = gb(fields.get("uid", b""))
            if urldecode_uid:
                uid = gb(unquote_to_bytes(uid.replace("+", " ")))
            pwd = gb(fields.get("pwd", b""))
        except Unreadable:
            return False
        expected = _md5(self.password) if md5 else self.password
        return uid == self.uid and pwd == expected

    def _account_refusal(self) -> str | None:
        if self.frozen:
            return FROZEN
        if not self.allowed:
            return NOT_ALLOWED
        return None

    def _numbers(self, raw: list[str]) -> list[str]:
        """Valid numbers, repeats dropped (v1.0.3), malformed ones filtered."""
        seen: dict[str, None] = {}
        for number in raw:
            number = number.strip()
            if _MOBILE.fullmatch(number):
                seen.setdefault(number)
        return list(seen)

    def _linkid(self, fields: dict[str, bytes]) -> tuple[str, bool]:
        """(linkid, reused). An empty linkid is generated by the platform (the document)."""
        try:
            linkid = gb(fields.get("linkid", b"")).strip()
        except Unreadable:
            linkid = ""
        if not linkid or not _LINKID.fullmatch(linkid):
            linkid = uuid.uuid4().hex[:20]
        with self.lock:
            reused = linkid in self.linkids
            self.linkids.add(linkid)
            if reused:
                self.reused_linkids.append(linkid)
        return linkid, reused

    def _charge(self, count: int) -> bool:
        with self.lock:
            cost = count * self.fee_per_message
            if self.balance < cost:
                return False
            self.balance -= cost
            return True

    def _too_long(self, text: str) -> str | None:
        # One English character and one Chinese character count the same (the document).
        if len(text) > self.max_chars:
            return f"7 超过 {self.max_chars} 个字,请修改后发送!"
        return None

    # ------------------------------------------------------------------ sends
    def _send(self, fields: dict[str, bytes], *, md5: bool, urldecode: bool, limit: int) -> str:
        if not self._auth(fields, md5=md5, urldecode_uid=urldecode and "uid" in fields):
            # post_send_urldecode url-encodes uid too; a plain uid reads the same once decoded.
            return BAD_AUTH
        refusal = self._account_refusal()
        if refusal:
            return refusal
        try:
            mobile = gb(fields.get("mobile", b""))
            msg = gb(fields.get("msg", b""))
            if urldecode:
                msg = gb(unquote_to_bytes(msg.replace("+", " ")))
            dtime = gb(fields.get("dtime", b"")).strip()
        except Unreadable:
            return EMPTY
        raw_numbers = [m for m in mobile.split(";") if m.strip()]
        if not raw_numbers or not msg.strip():
            return EMPTY
        if len(raw_numbers) > limit:
            return f"3 超过发送最大量 {limit} 条"
        numbers = self._numbers(raw_numbers)
        if not numbers or any(self.fate_of(n) == Fate.REFUSED for n in numbers):
            return EMPTY
        too_long = self._too_long(msg)
        if too_long:
            return too_long
        if not self._charge(len(numbers)):
            return NO_BALANCE
        linkid, reused = self._linkid(fields)
        if reused and self.dedupe_linkid:
            return OK
        for number in numbers:
            self.accept(linkid, number, msg, dtime=dtime)
        if self.is_slow_answer(numbers):
            time.sleep(self.slow_answer_s)
        return OK

    def _send_ddt(self, fields: dict[str, bytes]) -> str:
        if not self._auth(fields, md5=True):
            return BAD_AUTH
        refusal = self._account_refusal()
        if refusal:
            return refusal
        try:
            # The document: msg and params are url-encoded (again) inside the form.
            template = gb(unquote_to_bytes(gb(fields.get("msg", b"")).replace("+", " ")))
            params = gb(unquote_to_bytes(gb(fields.get("params", b"")).replace("+", " ")))
            dtime = gb(fields.get("dtime", b"")).strip()
        except Unreadable:
            return EMPTY
        groups = [g for g in params.split(";") if g.strip()]
        if not groups or not template.strip():
            return EMPTY
        if len(groups) > 1000:
            return "3 超过发送最大量 1000 条"
        needed = max((int(n) for n in _PLACEHOLDER.findall(template)), default=0)
        messages: dict[str, str] = {}
        for group in groups:
            values = [v.strip() for v in group.split(",")]  # the example writes "13712345678, 123456, 10"
            number = values[0]
            # Reading: field N fills {valueN}, so {value0} is the mobile; short groups are filtered.
            if not _MOBILE.fullmatch(number) or len(values) <= needed or number in messages:
                continue
            messages[number] = _PLACEHOLDER.sub(lambda m, v=values: v[int(m.group(1))], template)
        if not messages or any(self.fate_of(n) == Fate.REFUSED for n in messages):
            return EMPTY
        for text in messages.values():
            too_long = self._too_long(text)
            if too_long:
                return too_long
        if not self._charge(len(messages)):
            return NO_BALANCE
        linkid, reused = self._linkid(fields)
        if reused and self.dedupe_linkid:
            return OK
        for number, text in messages.items():
            self.accept(linkid, number, text, dtime=dtime, route="ddt")
        if self.is_slow_answer(list(messages)):
            time.sleep(self.slow_answer_s)
        return OK

    # ------------------------------------------------------------------ account routes
    def _user_info(self, fields: dict[str, bytes], *, urldecode: bool) -> str:
        if not self._auth(fields, md5=False, urldecode_uid=urldecode):
            return BAD_AUTH
        with self.lock:
            balance = self.balance
        return f"用户ID={self.uid} 剩余资费={balance:.2f}"

    def _mgz(self, fields: dict[str, bytes]) -> str:
        if not self._auth(fields, md5=False):
            return BAD_AUTH
        try:
            msg = gb(fields.get("msg", b""))
        except Unreadable:
            return EMPTY
        found = [w for w in self.sensitive if w in msg]
        return "敏感字:" + "".join(f"{w};" for w in found) if found else "不含敏感字"

    # ------------------------------------------------------------------ pulls
    def _latest_linkid(self, mobile: str) -> str:
        with self.lock:
            for record in reversed(self.accepted):
                if record.mobile == mobile:
                    return record.vendor_ref
        return ""

    def _report_text(self, record: Accepted) -> str:
        return "DELIVRD" if record.fate == Fate.DELIVERED else self.undelivered_code

    def _report(self, fields: dict[str, bytes]) -> str:
        if not self._auth(fields, md5=False):
            return BAD_AUTH
        raw = self.take(self.raw_report_lines, PULL_LIMIT)
        records = self.take(self.pending_reports, PULL_LIMIT - len(raw))
        if not records and not raw:
            return NO_REPORTS
        when = now_china().strftime(TIME_FORMAT)
        return "".join(f"{line}\n" for line in raw) + "".join(
            f"{r.mobile}/{when}/{r.vendor_ref}/{self._report_text(r)}/{r.extra.get('subcode', '')}\n"
            for r in records
        )

    def _reve(self, fields: dict[str, bytes], *, urlencode: bool) -> str:
        if not self._auth(fields, md5=False):
            return BAD_AUTH
        items = self.take(self.pending_inbound, PULL_LIMIT)
        if not items:
            return NO_INBOUND
        lines = []
        for item in items:
            content = quote_plus(item["content"].encode("gb2312")) if urlencode else item["content"]
            linkid = item.get("linkid", self._latest_linkid(item["mobile"]))
            when = item["time"].strftime(TIME_FORMAT)
            lines.append(f"{item['mobile']}/{when}/{linkid}/{content}/{item.get('subcode', '')}\n")
        return "".join(lines)

    # ------------------------------------------------------------------ pushes (GB2312, never retried)
    def _post_form(self, params: list[tuple[str, str]]) -> None:
        fields = "&".join(f"{quote_plus(k)}={quote_plus(v.encode('gb2312'))}" for k, v in params)
        url = str(self.push_url)
        if self.push_method == "post_form":
            self.deliver(
                "POST",
                url,
                data=fields.encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=gb2312"},
            )
            return
        url += ("&" if "?" in url else "?") + fields  # as the examples: http://pushURL?Class=mo&…
        self.deliver("GET" if self.push_method == "get" else "POST", url)

    def push_reports(self, records: list[Accepted]) -> None:
        for record in records:
            self._post_form(
                [
                    ("Class", "rpt"),
                    ("SmsName", self.uid),
                    ("Mobile", record.mobile),
                    ("LinkId", record.vendor_ref),
                    ("Report", self._report_text(record)),
                    ("ReportTime", now_china().strftime(TIME_FORMAT)),
                ]
            )

    def push_inbound(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self._post_form(
                [
                    ("Class", "mo"),
                    ("SmsName", self.uid),
                    ("Mobile", item["mobile"]),
                    ("Message", item["content"]),
                    ("LinkId", item.get("linkid", self._latest_linkid(item["mobile"]))),
                    ("RevertTime", item["time"].strftime(TIME_FORMAT)),
                ]
            )
