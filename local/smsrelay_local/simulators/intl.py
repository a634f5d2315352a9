"""Simulator of intl: International SMS API v1 (seeds/003, digest in docs/vendors.md).

Routes (every one checks appKey -> 1002, appSecret = MD5(secret) upper hex -> 1003):
- POST /api/v1/international/sms/send    {mobile "cc+number,...", content, senderID?, sendTime?}
- GET  /api/v1/international/sms/balance -> {balance, currencyName, currencyCode}
- POST /api/v1/international/sms/status  {data:[{msgId, mobile}]} (<= 500, last 30 days)
Answers are {code, msg, data?}; failures carry no data. Reports are pushed one JSON object per
report with appKey/appSecret headers; an answer other than {"code":0} is re-pushed twice more.
The document has no inbound messages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from .base import CHINA_TZ, Accepted, Fate, VendorSimulator, now_china

SEND_PATH = "/api/v1/international/sms/send"
BALANCE_PATH = "/api/v1/international/sms/balance"
STATUS_PATH = "/api/v1/international/sms/status"

MAX_NUMBERS = 1000
MAX_QUERY = 500
REPORT_WINDOW_S = 30 * 24 * 3600  # "只能获取最近30天的状态报告"

# Country code (not 0) + number, digits only: no '+', no leading 0.
_NUMBER = re.compile(r"^[1-9][0-9]{6,14}$")
_SEND_TIME = re.compile(r"^[0-9]{14}$")


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()  # the vendor's protocol asks for MD5


def _answer(code: int, msg: str, data: Any = None) -> Response:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")


class IntlSimulator(VendorSimulator):
    vendor_id = "intl"
    base_path = ""
    pushes_inbound = False

    def __init__(
        self,
        app_key: str = "10002",
        app_secret: str = "abc123",
        *,
        sender_id: str = "",
        price_per_sms: float = 0.05,
        currency_name: str = "人民币",
        currency_code: str = "CNY",
        push_retry_interval_s: float = 0.2,
        push_failed_status: int = 2,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.app_key = app_key
        self.app_secret = app_secret
        self.sender_id = sender_id
        self.price_per_sms = price_per_sms
        self.currency_name = currency_name
        self.currency_code = currency_code
        self.push_retry_interval_s = push_retry_interval_s
        # The push table says 1 = failed, the push example shows 2 (as the pull does): 2 by default.
        self.push_failed_status = push_failed_status
        self.by_key: dict[tuple[str, str], Accepted] = {}  # (msgId, mobile) -> record, for the query
        self.headers_seen: list[dict[str, str]] = []
        self._msg_seq = itertools.count(100000)

    def settings(self) -> dict[str, Any]:
        """The intl vendor settings (design.md names) that point the adapter at this simulator."""
        return {
            "base_url": self.base_url,
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "sender_id": self.sender_id,
        }

    # ------------------------------------------------------------------ routes
    def handle(self, request: Request) -> Response:
        routes = {
            SEND_PATH: ("POST", self._send),
            BALANCE_PATH: ("GET", self._balance),
            STATUS_PATH: ("POST", self._status),
        }
        route = routes.get(request.path)
        if route is None:
            return Response("Not Found", status=404)
        method, handler = route
        if request.method != method:
            return Response("Method Not Allowed", status=405)
        with self.lock:
            self.headers_seen.append(dict(request.headers.items()))
        if request.headers.get("appKey", "") != self.app_key:
            return _answer(1002, "AppKeyError")
        if not hmac.compare_digest(
            request.headers.get("appSecret", "").encode("utf-8", "replace"),
            md5_upper(self.app_secret).encode(),
        ):
            return _answer(1003, "PasswordError")
        if method == "GET":
            return handler(None)
        if "application/json" not in request.headers.get("Content-Type", "").lower():
            return _answer(1001, "ParamError: Content-Type must be application/json")
        try:
            body = json.loads(request.get_data().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return _answer(1001, "ParamError: body is not JSON")
        if not isinstance(body, dict):
            return _answer(1001, "ParamError: body is not a JSON object")
        return handler(body)

    def _send(self, body: dict[str, Any] | None) -> Response:
        assert body is not None
        mobile, content = body.get("mobile"), body.get("content")
        sender, send_time = body.get("senderID"), body.get("sendTime")
        if not isinstance(mobile, str) or not isinstance(content, str):
            return _answer(1001, "ParamError: mobile and content are required strings")
        if sender is not None and not isinstance(sender, str):
            return _answer(1001, "ParamError: senderID")
        if not content.strip():
            return _answer(1006, "ContentError")
        mobiles = [m.strip() for m in mobile.split(",")]
        if not mobile.strip() or len(mobiles) > MAX_NUMBERS:
            return _answer(1007, "MobileError: 1 to 1000 numbers")
        if any(not _NUMBER.match(m) or self.fate_of(m) == Fate.REFUSED for m in mobiles):
            return _answer(1007, "Illegal cell phone")
        send_at: dt.datetime | None = None
        if send_time not in (None, ""):
            if not isinstance(send_time, str) or not _SEND_TIME.match(send_time):
                return _answer(1011, "SendTimeError")
            try:
                send_at = dt.datetime.strptime(send_time, "%Y%m%d%H%M%S").replace(tzinfo=CHINA_TZ)
            except ValueError:
                return _answer(1011, "SendTimeError")
        cost = self.price_per_sms * len(mobiles)
        with self.lock:
            if self.balance < cost:
                return _answer(1009, "AmountNotEnough")
            self.balance -= cost
            # Like the document's "240924162017564896": yyMMddHHmmss + 6 digits.
            msg_id = now_china().strftime("%y%m%d%H%M%S") + f"{next(self._msg_seq) % 1000000:06d}"
        for m in mobiles:
            record = self.accept(msg_id, m, content, sender_id=sender or "", send_at=send_at)
            with self.lock:
                self.by_key[(msg_id, m)] = record
        if self.is_slow_answer(mobiles):
            time.sleep(self.slow_answer_s)  # accepted, but the answer comes too late for the client
        return _answer(0, "ok", {"msgId": msg_id})

    def _balance(self, _body: dict[str, Any] | None) -> Response:
        with self.lock:
            balance = round(self.balance, 4)
        return _answer(
            0,
            "ok",
            {"balance": balance, "currencyName": self.currency_name, "currencyCode": self.currency_code},
        )

    def _status(self, body: dict[str, Any] | None) -> Response:
        assert body is not None
        items = body.get("data")
        if not isinstance(items, list) or not items or len(items) > MAX_QUERY:
            return _answer(1001, "ParamError: data must hold 1 to 500 records")
        if not all(
            isinstance(i, dict) and isinstance(i.get("msgId"), str) and isinstance(i.get("mobile"), str)
            for i in items
        ):
            return _answer(1001, "ParamError: every record needs msgId and mobile")
        now = time.time()
        out: list[dict[str, Any]] = []
        known = 0
        with self.lock:
            for item in items:
                record = self.by_key.get((item["msgId"], item["mobile"]))
                if record is not None and now - record.accepted_at <= REPORT_WINDOW_S:
                    known += 1
                    out.append(self._record_json(record, pushed=False))
                else:  # status 1: "状态没返回" (no report)
                    out.append(self._pending_json(item["msgId"], item["mobile"]))
        if not known:
            return _answer(1012, "NoReportError")
        return _answer(0, "ok", out)

    # ------------------------------------------------------------------ reports
    def _timestamp(self) -> str:
        return now_china().strftime("%Y%m%d%H%M%S")  # the examples' 14 digits

    def _pending_json(self, msg_id: str, mobile: str) -> dict[str, Any]:
        return {"desc": "", "errorCode": "", "mobile": mobile, "msgId": msg_id, "status": 1, "timestamp": ""}

    def _record_json(self, record: Accepted, *, pushed: bool) -> dict[str, Any]:
        if not record.report_sent:
            return self._pending_json(record.vendor_ref, record.mobile)
        delivered = record.fate == Fate.DELIVERED
        failed_status = self.push_failed_status if pushed else 2
        return {
            "desc": "" if delivered else "Undelivered",
            "errorCode": "DELIVRD" if delivered else "UNDELIV",
            "mobile": record.mobile,
            "msgId": record.vendor_ref,
            "status": 0 if delivered else failed_status,
            "timestamp": record.extra.get("report_time", ""),
        }

    def _report_due(self, record: Accepted) -> None:
        # A scheduled message is not sent (and reported) before its sendTime.
        send_at: dt.datetime | None = record.extra.get("send_at")
        if send_at is not None:
            wait = (send_at - now_china()).total_seconds()
            if wait > 0:
                self.later(wait + self.report_delay_s, lambda: self._report_due(record))
                return
        with self.lock:
            record.extra["report_time"] = self._timestamp()
        super()._report_due(record)

    def push_reports(self, records: list[Accepted]) -> None:
        for record in records:
            self._push_one(self._record_json(record, pushed=True), attempt=1)

    def _push_one(self, payload: dict[str, Any], attempt: int) -> None:
        assert self.push_url is not None
        response = self.deliver(
            "POST",
            self.push_url,
            data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            headers={
                "Content-Type": "application/json;charset=utf-8",
                "appKey": self.app_key,
                "appSecret": md5_upper(self.app_secret),
            },
        )
        if self._acked(response) or attempt >= 3:
            return
        # "如果返回code是非0将重推两次": two more pushes, off the clock thread's back.
        self.later(self.push_retry_interval_s, lambda: self._push_one(payload, attempt + 1))

    @staticmethod
    def _acked(response: Any) -> bool:
        if response is None or response.status_code >= 400:
            return False
        try:
            answer = json.loads(response.text)
        except ValueError:
            return False
        return isinstance(answer, dict) and answer.get("code") in (0, "0")

    def inject_inbound(self, mobile: str, content: str, **extra: Any) -> None:
        raise NotImplementedError("intl has no inbound (MO) messages in its document")

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.by_key.clear()
            self.headers_seen.clear()
