"""SMS57-SMGW simulator: `/sms` with actions send, p2p, balance, report and mo (GET or POST, rt=json).

What it enforces, as the vendor document says:
- STATUS 3 for a wrong account or password (checked in the account's password mode: the plain
  password, or MD5(password+extno+content+mobile) / MD5(password+extno+list without line breaks) /
  MD5(password));
- STATUS 102 for more than `max_numbers` numbers (the document's 500 by default; 200 plays a
  gateway that enforces the advice of 102, "建议 200 以内"), nothing accepted; STATUS 1 for a
  malformed request (missing action or parameters, empty content, a number that is not a Chinese
  mobile, rt other than json), STATUS 7 for a disabled account;
- p2p records separated by CR only, as the document's only example (`%0d`, one after every
  record): an LF stays inside the record it is in (so LF-joined records read as one record whose
  text holds the rest), and a record that does not start `1xxxxxxxxxx#` (e.g. after CRLF, an LF
  first) makes the request malformed (STATUS 1);
- per recipient RESULT 10 (extno not the account's access number or an extension of it),
  17 (signature check on and no 【签名】 in the text), 15 (pre-paid balance too low; also the
  test ending 4220);
- `status` a string for send, p2p and mo and a number for balance and report, as in the
  document's examples; balance in 厘, reduced per accepted message;
- pushes: POST a JSON array mixing flag:1 reports and flag:0 inbound messages, expecting `OK`
  (6.3); the document promises no second push, so an unacknowledged push is not repeated;
  `malformed_push_records` adds a broken report record (no `mid`) to every push;
  without push_url, reports and inbound messages wait for `report`/`mo` pulls, each handed once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

from werkzeug.wrappers import Request, Response

from .base import (
    ENDING_REFUSED,
    ENDING_UNDELIVERED,
    PUSH_MAX_RECORDS,
    Accepted,
    Fate,
    VendorSimulator,
    now_china,
)

MAX_NUMBERS = 500
MOBILE_RE = re.compile(r"^1\d{10}$")
SIGNATURE_RE = re.compile(r"【[^】]+】")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# STAT codes from the document's table, for undelivered messages.
UNDELIVERED_STATS = ("MA:0029", "EXPIRED", "REJECTED", "MA:0001", "MA:0023", "MA:0022", "MO:0254")
REFUSED_RESULT = 15


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # the vendor protocol's "encryption"


class Sms57Simulator(VendorSimulator):
    vendor_id = "sms57"
    base_path = ""  # the adapter appends /sms

    def __init__(
        self,
        account: str = "922011",
        password: str = "123456",
        extno: str = "10690231221",
        password_mode: Literal["md5", "plain"] = "md5",
        *,
        charge_type: Literal["PRECHARGE", "POSTCHARGE"] = "PRECHARGE",
        price_li: int = 50,
        require_signature: bool = False,
        disabled: bool = False,
        max_numbers: int = MAX_NUMBERS,
        malformed_push_records: bool = False,
        **kwargs: Any,
    ):
        kwargs.setdefault("balance", 1_000_000)  # 厘: 1000 yuan
        super().__init__(**kwargs)
        self.account = account
        self.password = password
        self.extno = extno
        self.password_mode = password_mode
        self.charge_type = charge_type
        self.price_li = price_li
        self.require_signature = require_signature
        self.disabled = disabled
        self.max_numbers = max_numbers
        self.malformed_push_records = malformed_push_records
        self.balance = int(self.balance)
        # mids look like the document's "4C372C4382720007": a fixed prefix and a counter, 16 hex chars.
        self._mid_prefix = self.random.getrandbits(32)
        self._mid_counter = itertools.count(self.random.getrandbits(20))
        self._push_buffer: list[dict[str, Any]] = []
        self._push_scheduled = False
        self._push_lock = threading.Lock()

    def settings(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "account": self.account,
            "password": self.password,
            "extno": self.extno,
            "password_mode": self.password_mode,
        }

    # ------------------------------------------------------------------ routes
    def handle(self, request: Request) -> Response:
        if request.path.rstrip("/") != "/sms":
            return Response("Not Found", status=404)
        if request.method not in ("GET", "POST"):
            return Response("Method Not Allowed", status=405)
        params = request.values.to_dict()  # query and form, as the document allows both
        action = params.get("action", "")
        string_status = action in ("send", "p2p", "mo")
        if params.get("rt") != "json" or action not in ("send", "p2p", "balance", "report", "mo"):
            return self._refusal(1, string_status)
        if params.get("account") != self.account:
            return self._refusal(3, string_status)
        if action == "send":
            return self._send(params)
        if action == "p2p":
            return self._p2p(params)
        if not self._password_ok(params.get("password", ""), ""):
            return self._refusal(3, string_status)
        if self.disabled:
            return self._refusal(7, string_status)
        if action == "balance":
            return self._json({"status": 0, "balance": self.balance, "chargeType": self.charge_type})
        if action == "report":
            size = _size(params.get("size"), 10, 10000)
            records = self.take(self.pending_reports, size)
            return self._json(
                {"status": 0, "balance": self.balance, "list": [self._report_item(r) for r in records]}
            )
        size = _size(params.get("size") or params.get("szie"), 10, 1000)
        items = self.take(self.pending_inbound, size)
        return self._json(
            {"status": "0", "balance": self.balance, "list": [self._inbound_item(i) for i in items]}
        )

    def _password_ok(self, given: str, signed: str) -> bool:
        if self.password_mode == "plain":
            return given == self.password
        return given.lower() == _md5(self.password + signed)

    def _send(self, params: Mapping[str, str]) -> Response:
        mobile = params.get("mobile", "")
        content = params.get("content", "")
        extno = params.get("extno", "")
        if not self._password_ok(params.get("password", ""), extno + content + mobile):
            return self._refusal(3, True)
        if self.disabled:
            return self._refusal(7, True)
        numbers = [m.strip() for m in mobile.split(",") if m.strip()]
        if len(numbers) > self.max_numbers:
            return self._refusal(102, True)
        if not numbers or not content or not all(MOBILE_RE.match(m) for m in numbers):
            return self._refusal(1, True)
        return self._submit([(m, content) for m in numbers], extno)

    def _p2p(self, params: Mapping[str, str]) -> Response:
        listing = params.get("mobileContentList", "")
        extno = params.get("extno", "")
        flat = listing.replace("\r", "").replace("\n", "")  # "换行符去掉"
        if not self._password_ok(params.get("password", ""), extno + flat):
            return self._refusal(3, True)
        if self.disabled:
            return self._refusal(7, True)
        pairs: list[tuple[str, str]] = []
        for record in listing.split("\r"):  # CR, as the example: a trailing one ends the last record
            if not record:
                continue
            mobile, sep, content = record.partition("#")
            if not sep or not content or not MOBILE_RE.fullmatch(mobile):
                return self._refusal(1, True)
            pairs.append((mobile, content))
        if len(pairs) > self.max_numbers:
            return self._refusal(102, True)
        if not pairs:
            return self._refusal(1, True)
        return self._submit(pairs, extno)

    def _submit(self, pairs: list[tuple[str, str]], extno: str) -> Response:
        results: list[dict[str, Any]] = []
        extno_ok = bool(extno) and extno.startswith(self.extno)  # an extension of the access number is fine
        for mobile, content in pairs:
            result = 0
            if not extno_ok:
                result = 10
            elif self.require_signature and not SIGNATURE_RE.search(content):
                result = 17
            elif mobile.endswith(ENDING_REFUSED):
                result = REFUSED_RESULT
            else:
                with self.lock:
                    if self.charge_type == "PRECHARGE" and self.balance < self.price_li:
                        result = 15
                    else:
                        self.balance -= self.price_li
            mid = self._new_mid()
            if result == 0:
                self.accept(mid, mobile, content, extno=extno)
            results.append({"mid": mid, "mobile": mobile, "result": result})
        if self.is_slow_answer([m for m, _ in pairs]):
            time.sleep(self.slow_answer_s)  # accepted, answered too late for the client
        return self._json({"status": "0", "balance": self.balance, "list": results})

    # ------------------------------------------------------------------ shapes
    def _new_mid(self) -> str:
        with self.lock:
            return f"{self._mid_prefix:08X}{next(self._mid_counter) & 0xFFFFFFFF:08X}"

    def _json(self, payload: Any) -> Response:
        return Response(json.dumps(payload, ensure_ascii=False), mimetype="application/json")

    def _refusal(self, status: int, as_string: bool) -> Response:
        return self._json(
            {"status": str(status) if as_string else status, "balance": self.balance, "list": []}
        )

    def stat_of(self, record: Accepted) -> str:
        if record.fate == Fate.DELIVERED:
            return "DELIVRD"
        if record.mobile.endswith(ENDING_UNDELIVERED):
            return "MA:0029"  # the document's own example of a failure
        return self.random.choice(UNDELIVERED_STATS)

    def _report_item(self, record: Accepted) -> dict[str, Any]:
        stat = record.extra.get("stat")
        if stat is None:
            stat = record.extra["stat"] = self.stat_of(record)
        return {
            "flag": 1,
            "mid": record.vendor_ref,
            "spid": self.account,
            "accessCode": record.extra.get("extno") or self.extno,
            "mobile": record.mobile,
            "stat": stat,
            "time": now_china().strftime(TIME_FORMAT),
        }

    def _inbound_item(self, item: dict[str, Any]) -> dict[str, Any]:
        when = item.get("time")
        record = {
            "flag": 0,
            "mid": item.get("mid") or self._new_mid(),
            "spid": self.account,
            "accessCode": item.get("accessCode") or self.extno,
            "mobile": item["mobile"],
            "content": item["content"],
            "time": when.strftime(TIME_FORMAT) if hasattr(when, "strftime") else str(when or ""),
        }
        if "mid" in item and item["mid"] is None:  # 5.3: an inbound mid "可忽略" (may be left out)
            del record["mid"]
        return record

    # ------------------------------------------------------------------ pushes
    def push_reports(self, records: list[Accepted]) -> None:
        self._buffer_push([self._report_item(r) for r in records])

    def push_inbound(self, items: list[dict[str, Any]]) -> None:
        self._buffer_push([self._inbound_item(i) for i in items])

    def _buffer_push(self, items: list[dict[str, Any]]) -> None:
        """Records due together go out in one array, reports and inbound mixed, as the gateway does."""
        with self._push_lock:
            self._push_buffer.extend(items)
            if self.malformed_push_records:  # a report the receiver cannot match (no mid)
                self._push_buffer.append({"flag": 1, "mobile": "13800000000", "stat": "DELIVRD"})
            if self._push_scheduled:
                return
            self._push_scheduled = True
        self.later(0.02, self._flush_pushes)

    def _flush_pushes(self) -> None:
        with self._push_lock:
            items, self._push_buffer = self._push_buffer, []
            self._push_scheduled = False
        for start in range(0, len(items), PUSH_MAX_RECORDS):
            self._push(items[start : start + PUSH_MAX_RECORDS])

    def _push(self, items: list[dict[str, Any]]) -> None:
        """One POST; the receiver answers OK (6.3). Nothing in the document pushes again."""
        if not self.push_url:
            return
        body = json.dumps(items, ensure_ascii=False).encode("utf-8")
        self.deliver(
            "POST", self.push_url, data=body, headers={"Content-Type": "application/json;charset=utf-8"}
        )


def _size(value: str | None, low: int, high: int) -> int:
    """The document's size bounds; a missing or unreadable size means the default 1000."""
    try:
        size = int(value) if value else 1000
    except ValueError:
        size = 1000
    return max(low, min(high, size))
