"""快信通 3 (kxt3) simulator: the one POST endpoint (`op` + `message` JSON), pushes of reports and
inbound messages as four form fields (uid, pwd, type, jsonData). The vendor has no pull: reports
that cannot be pushed stay in `pending_reports`. `malformed_push_records` adds a broken item
(a report without `token`) to every push of reports, as a gateway's bad record would come.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
import re
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from .base import CHINA_TZ, Accepted, VendorSimulator

MAX_NUMBERS = 10_000
MAX_CONTENT = 1_000
REPORT_OK_CODE = "0"  # 4.6 example: resultCode "0", success true
REPORT_FAIL_CODE = "2:46"  # 4.6 example: resultCode "2:46", success false
PUSH_BATCH = 100  # reports per push (the document batches several per jsonData)

_MESSAGES = {
    0: "操作成功",
    100: "不支持的操作",
    110: "提交了无效的 JSON 数据",
    120: "缺少参数",
    130: "不支持 GET 请求",
    200: "认证错",
    230: "无效的时间戳",
    240: "认证失败",
    300: "号码数不正确",
    310: "包含无效号码",
    320: "内容长度不正确",
    330: "定时时间不正确",
    340: "每日限发时段不正确",
    400: "余额不足",
}

_TIMESTAMP = re.compile(r"\d{18}")
_MOBILE = re.compile(r"1\d{10}")


def _answer(code: int, **fields: Any) -> Response:
    body = {"stateCode": code, "message": _MESSAGES.get(code, "错误"), **fields}
    return Response(json.dumps(body, ensure_ascii=False), content_type="application/json;charset=UTF-8")


def _fee(count: int, content: str) -> int:
    """Fee grows with numbers and content length (3.3): 70 chars per SMS, 67 per part when longer."""
    parts = 1 if len(content) <= 70 else math.ceil(len(content) / 67)
    return count * parts


class Kxt3Simulator(VendorSimulator):
    vendor_id = "kxt3"
    base_path = "/webservice/http/service"

    def __init__(
        self,
        *,
        cid: str = "12345678",
        uid: str = "test",
        password: str = "kxt3-secret",
        push_uid: str = "abc",
        push_pwd: str = "123",
        malformed_push_records: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.cid = cid
        self.uid = uid
        self.password = password
        self.push_uid = push_uid
        self.push_pwd = push_pwd
        self.malformed_push_records = malformed_push_records
        self.mm_balance = 0
        self.timestamps_seen: set[str] = set()
        self.tokens: dict[str, list[Accepted]] = {}  # token -> the recipients it covers
        self._next_token = itertools.count(376)  # 3.4 example token
        self._outbox: list[Accepted] = []

    def settings(self) -> dict[str, Any]:
        """The kxt3 vendor settings (design.md names) that point the adapter at this simulator."""
        return {
            "base_url": self.base_url,
            "cid": self.cid,
            "uid": self.uid,
            "password": self.password,
            "push_uid": self.push_uid,
            "push_pwd": self.push_pwd,
        }

    # ------------------------------------------------------------------ the endpoint
    def handle(self, request: Request) -> Response:
        if request.path.rstrip("/") != self.base_path:
            return Response("Not Found", status=404)
        if request.method != "POST":  # 1.2: POST only
            return _answer(130)
        op, raw = request.form.get("op"), request.form.get("message")
        if not op or raw is None:
            return _answer(120)
        if op not in ("login", "sendSm"):
            return _answer(100)
        try:
            message = json.loads(raw)
        except ValueError:
            return _answer(110)
        if not isinstance(message, dict):
            return _answer(110)
        refusal = self._authenticate(message)
        if refusal is not None:
            return refusal
        if op == "login":
            return _answer(0, smBalance=int(self.balance), mmBalance=self.mm_balance)
        return self._send(message)

    def _authenticate(self, message: dict[str, Any]) -> Response | None:
        fields = [message.get(key) for key in ("cid", "uid", "pwd", "timestamp")]
        if any(not isinstance(value, str) or not value for value in fields):
            return _answer(120)
        cid, uid, pwd, timestamp = fields
        if not _TIMESTAMP.fullmatch(timestamp) or not _valid_time(timestamp[:14], "%Y%m%d%H%M%S"):
            return _answer(230)
        with self.lock:  # every timestamp ever seen is burnt, whatever the outcome (1.6)
            if timestamp in self.timestamps_seen:
                return _answer(230)
            self.timestamps_seen.add(timestamp)
        if cid != self.cid or uid != self.uid:
            return _answer(240)  # reading: unknown organisation/user -> 240 认证失败
        expected = hashlib.md5((self.password + timestamp).encode()).hexdigest()
        if pwd != expected:  # 6.1: 32 lowercase hex, compared exactly
            return _answer(200)
        return None

    def _send(self, message: dict[str, Any]) -> Response:
        mobiles, content = message.get("mobiles"), message.get("content")
        if mobiles is None or content is None:
            return _answer(120)
        if not isinstance(mobiles, list) or not isinstance(content, str):
            return _answer(110)
        if not 0 < len(mobiles) <= MAX_NUMBERS:
            return _answer(300)
        # The vendor refuses the whole request for one bad number (it does not say which).
        if any(
            not isinstance(m, str) or not _MOBILE.fullmatch(m) or self.fate_of(m) == "refused"
            for m in mobiles
        ):
            return _answer(310)
        if not 0 < len(content) <= MAX_CONTENT:
            return _answer(320)
        at_time = message.get("atTime") or ""
        if at_time and (
            not isinstance(at_time, str)
            or len(at_time) != 19
            or not _valid_time(at_time, "%Y-%m-%d %H:%M:%S")
        ):
            return _answer(330)
        window = [message.get("dailyBeginTime") or "", message.get("dailyEndTime") or ""]
        for value in window:
            if value and (
                not isinstance(value, str) or len(value) != 8 or not _valid_time(value, "%H:%M:%S")
            ):
                return _answer(340)
        if all(window) and window[0] >= window[1]:
            return _answer(340)
        fee = _fee(len(mobiles), content)
        with self.lock:
            if fee > self.balance:
                return _answer(400)
            self.balance -= fee
            token = next(self._next_token)
        extra = {"at_time": at_time, "daily_begin": window[0], "daily_end": window[1]}
        records = [self.accept(str(token), mobile, content, **extra) for mobile in mobiles]
        with self.lock:
            self.tokens[str(token)] = records
        if self.is_slow_answer(mobiles):  # accepted, answered too late for the client
            time.sleep(self.slow_answer_s)
        return _answer(0, token=token, fee=fee)  # 3.4: token is a JSON number

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.tokens.clear()
            self._outbox.clear()  # a flush cleared with the timers must not block the next test's pushes

    # ------------------------------------------------------------------ pushes
    def _report_due(self, record: Accepted) -> None:
        """Reports due together go out in one push: collect them, flush a moment later."""
        with self.lock:
            record.report_sent = True
            self._outbox.append(record)
            first = len(self._outbox) == 1
        if first:
            self.later(0.02, self._flush_reports)

    def _flush_reports(self) -> None:
        with self.lock:
            batch, self._outbox = self._outbox, []
        if not self.push_url:  # no pull at kxt3: kept for inspection only
            with self.lock:
                self.pending_reports.extend(batch)
            return
        for start in range(0, len(batch), PUSH_BATCH):
            self.push_reports(batch[start : start + PUSH_BATCH])

    def push_reports(self, records: list[Accepted]) -> None:
        items = [
            {
                "token": int(r.vendor_ref) if r.vendor_ref.isdigit() else r.vendor_ref,
                "mobile": r.mobile,
                "resultCode": REPORT_OK_CODE if r.fate == "delivered" else REPORT_FAIL_CODE,
                "success": r.fate == "delivered",
            }
            for r in records
        ]
        for start in range(0, len(items), PUSH_BATCH):
            data = items[start : start + PUSH_BATCH]
            if self.malformed_push_records:
                data = [*data, {"mobile": "13500000000", "resultCode": "0", "success": True}]
            if not self._push("report", data):
                with self.lock:  # not acknowledged: keep them visible rather than lose them
                    self.pending_reports.extend(records[start : start + PUSH_BATCH])

    def push_inbound(self, items: list[dict[str, Any]]) -> None:
        data = [
            {
                "mobile": item["mobile"],
                "content": item["content"],
                "smgRecvDate": item["time"].astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S"),
            }
            for item in items
        ]
        if not self._push("mo", data):
            with self.lock:
                self.pending_inbound.extend(items)

    def _push(self, kind: str, data: list[dict[str, Any]]) -> bool:
        """4.4/5.4: POST form fields uid, pwd (plain), type, jsonData; the client answers `0` (4.7)."""
        form = {
            "uid": self.push_uid,
            "pwd": self.push_pwd,
            "type": kind,
            "jsonData": json.dumps(data, ensure_ascii=False),
        }
        response = self.deliver("POST", self.push_url or "", data=form)
        return response is not None and response.status_code == 200 and response.text.strip() == "0"


def _valid_time(text: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True
