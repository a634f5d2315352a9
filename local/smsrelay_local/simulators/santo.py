"""Simulator of santo: 闪通国际短信通道平台 API v2.0 (seeds/004, digest in docs/vendors.md).

Routes (GET only, every one checks cpid -> 0104 and cppwd -> 0106, missing ones -> 0100):
- /submit command=MT_REQUEST (one da) or MULTI_MT_REQUEST (da comma-separated, <= 100), sm, sa?
  -> form-encoded MT_RESPONSE / MULTI_MT_RESPONSE (the multi success spells `mtterrcode`,
  as the document's example does; its failure example spells `mterrcode`)
- /verifyPhoneNumber without da -> balance {cpid, errcode, mtstat, balance}; with da -> {isValid, country}
- /get-pricing countryCode (upper case) -> {cpid, errcode, mtstat, country, mtPrice, prefix}
- /get-rptstatus msgid, da? -> [{cpid, errcode, mtstat: success/failed/none, msgid, da}]: one
  record for every number of the message, whatever `da` asks (the document's 4.6 example asks
  for da=8613910825657 and answers a record for 8615711586282)
Reports are pushed as a GET to the SP's URL: command=RT_REQUEST&msgid&da&dc=15&sm=<hex GBK>&rsm.
`mtmsgid` has the send examples' form, 20 decimal digits (21426847850888196661), leading zeros
possible; reports (push and query) carry it as it was answered (4.3: "对应下发短信的 mtmsgid").
The document describes no inbound-message format: inbound is not pushed.
The JSON error answer is not documented: {"cpid", "errcode", "mtstat": "REJECTD"} is used.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from .base import ENDING_REFUSED, ENDING_UNDELIVERED, Accepted, Fate, VendorSimulator

MAX_NUMBERS = 100

# MSISDN: country code (not 0) + number, digits only.
_NUMBER = re.compile(r"[1-9][0-9]{6,14}")
_SENDER = re.compile(r"[0-9]{1,16}|[A-Za-z0-9]{1,11}")

# countryCode -> (English name, mtPrice in 元, prefix); unknown countries cost DEFAULT_PRICE.
PRICES: dict[str, tuple[str, float, str]] = {
    "CN": ("China", 0.08, "86"),
    "HK": ("Hong Kong", 0.05, "852"),
    "US": ("United States", 0.05, "1"),
    "GB": ("United Kingdom", 0.06, "44"),
    "MY": ("Malaysia", 0.04, "60"),
    "SG": ("Singapore", 0.05, "65"),
    "JP": ("Japan", 0.07, "81"),
}
DEFAULT_PRICE = 0.10
REPORT_FAILURE_CODES = ("401", "402", "403", "404")


def _json(body: str) -> Response:
    return Response(body, mimetype="application/json")


class SantoSimulator(VendorSimulator):
    vendor_id = "santo"
    base_path = ""
    pushes_inbound = False  # the document has no inbound format

    def __init__(
        self,
        cpid: str = "Test101",
        cppwd: str = "Test101",
        *,
        sender: str = "",
        allowed_ips: list[str] | None = None,
        cn_templates: list[str] | None = None,
        undelivered_code: str = "404",
        **kwargs: Any,
    ):
        kwargs.setdefault("balance", 100.0)
        super().__init__(**kwargs)
        self.cpid = cpid
        self.cppwd = cppwd
        self.sender = sender
        self.allowed_ips = allowed_ips
        # 0112: with a template list, CN numbers only take content containing one of them.
        self.cn_templates = cn_templates
        self.undelivered_code = undelivered_code
        self.by_msgid: dict[str, list[Accepted]] = {}
        self._ids = itertools.count(1)

    def reset(self) -> None:
        """Forget everything, including reports not yet due (tests share one simulator)."""
        super().reset()
        with self._wake:
            self._timers.clear()
            self.by_msgid.clear()

    def settings(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "cpid": self.cpid, "cppwd": self.cppwd, "sender": self.sender}

    # ------------------------------------------------------------------ helpers
    def new_msgid(self) -> str:
        # 20 decimal digits like the send examples' 21426847850888196661 (more than 64 bits, so
        # only an opaque string keeps it); a leading zero now and then.
        return f"{self.random.randrange(10**13):013d}{next(self._ids) % 10**7:07d}"

    @staticmethod
    def country_of(number: str) -> tuple[str, str, float] | None:
        """(countryCode, prefix, price) by longest prefix."""
        best: tuple[str, str, float] | None = None
        for code, (_name, price, prefix) in PRICES.items():
            if number.startswith(prefix) and (best is None or len(prefix) > len(best[1])):
                best = (code, prefix, price)
        return best

    def valid_number(self, number: str) -> bool:
        if not _NUMBER.fullmatch(number):
            return False
        country = self.country_of(number)
        # "号码应该为 601129855877, 而不是: 6001129855877": no 0 after the country code.
        return not (country and number[len(country[1]) :].startswith("0"))

    def price_of(self, number: str) -> float:
        country = self.country_of(number)
        return country[2] if country else DEFAULT_PRICE

    def _auth_error(self, request: Request) -> str | None:
        args = request.args
        if not args.get("cpid") or not args.get("cppwd"):
            return "0100"
        if args["cpid"] != self.cpid:
            return "0104"
        if args["cppwd"] != self.cppwd:
            return "0106"
        if self.allowed_ips is not None and request.remote_addr not in self.allowed_ips:
            return "0108"
        return None

    def _json_error(self, request: Request, code: str) -> Response:
        return _json(
            json.dumps(
                {"cpid": request.args.get("cpid", ""), "errcode": code, "mtstat": "REJECTD"},
                separators=(",", ":"),
            )
        )

    # ------------------------------------------------------------------ routes
    def handle(self, request: Request) -> Response:
        if request.method != "GET":
            return Response("Method Not Allowed", status=405)
        path = request.path.rstrip("/")
        if path == "/submit":
            return self._submit(request)
        if path == "/verifyPhoneNumber":
            return self._verify(request)
        if path == "/get-pricing":
            return self._pricing(request)
        if path == "/get-rptstatus":
            return self._rptstatus(request)
        return Response("Not Found", status=404)

    def _submit(self, request: Request) -> Response:
        args = request.args
        command = args.get("command", "")
        multi = command.upper() == "MULTI_MT_REQUEST"
        reply = "MULTI_MT_RESPONSE" if multi else "MT_RESPONSE"
        msgid = self.new_msgid()

        def refuse(code: str) -> Response:
            # Section 4.1/4.2 example (2): the failure carries an id, mtstat=REJECTD and `mterrcode`.
            fields = {"command": reply, "cpid": args.get("cpid", ""), "mtmsgid": msgid}
            return Response(
                urlencode({**fields, "mtstat": "REJECTD", "mterrcode": code}), mimetype="text/plain"
            )

        if command not in ("MT_REQUEST", "MULTI_MT_REQUEST"):  # upper case only; voice not simulated
            return refuse("0101")
        auth = self._auth_error(request)
        if auth:
            return refuse(auth)
        da = args.get("da", "")
        if not da:
            return refuse("0100")
        sender = args.get("sa")
        if sender is not None and not _SENDER.fullmatch(sender):
            return refuse("0100")
        content = args.get("sm", "")
        if not content.strip():
            return refuse("0111")
        numbers = da.split(",")
        if len(numbers) > MAX_NUMBERS or (not multi and len(numbers) > 1):
            return refuse("0110")
        if any(not self.valid_number(n) or n.endswith(ENDING_REFUSED) for n in numbers):
            return refuse("0110")  # the whole request, whichever number is bad
        cn = any(n.startswith("86") for n in numbers)
        if cn and self.cn_templates is not None and not any(t in content for t in self.cn_templates):
            return refuse("0112")
        cost = sum(self.price_of(n) for n in numbers)
        with self.lock:
            if cost > self.balance + 1e-9:
                return refuse("0107")
            self.balance -= cost
        records = [self.accept(msgid, n, content, sa=sender or "", command=command) for n in numbers]
        with self.lock:
            self.by_msgid[msgid] = records
        if self.is_slow_answer(numbers):
            time.sleep(self.slow_answer_s)  # accepted, answered too late for the client
        code_key = "mtterrcode" if multi else "mterrcode"  # the document's multi example spells it so
        body = f"command={reply}&cpid={args['cpid']}&cppwd=000&mtmsgid={msgid}&mtstat=ACCEPTD&{code_key}=000"
        return Response(body, mimetype="text/plain")

    def _verify(self, request: Request) -> Response:
        auth = self._auth_error(request)
        if auth:
            return self._json_error(request, auth)
        cpid = json.dumps(self.cpid)
        if "da" not in request.args:  # section 4.4: the balance query
            with self.lock:
                balance = self.balance
            return _json(f'{{"cpid":{cpid},"errcode":"000","mtstat":"ACCEPTD","balance":{balance:.2f}}}')
        da = request.args.get("da", "")
        country = self.country_of(da) if self.valid_number(da) else None
        body = {
            "cpid": self.cpid,
            "errcode": "000",
            "mtstat": "ACCEPTD",
            "country": country[0] if country else "",
            "isValid": 1 if country else 0,
            "da": da,
        }
        return _json(json.dumps(body, separators=(",", ":")))

    def _pricing(self, request: Request) -> Response:
        auth = self._auth_error(request)
        if auth:
            return self._json_error(request, auth)
        code = request.args.get("countryCode", "")
        if code not in PRICES:  # upper case only, as the document asks
            return self._json_error(request, "0100")
        name, price, prefix = PRICES[code]
        body = {
            "cpid": self.cpid,
            "errcode": "000",
            "mtstat": "ACCEPTD",
            "country": name,
            "mtPrice": price,
            "prefix": prefix,
        }
        return _json(json.dumps(body, separators=(",", ":")))

    def _rptstatus(self, request: Request) -> Response:
        auth = self._auth_error(request)
        if auth:
            return self._json_error(request, auth)
        msgid = request.args.get("msgid", "")
        if not msgid:
            return self._json_error(request, "0100")
        with self.lock:  # every number of the message, whatever `da` asks (4.6's example)
            records = list(self.by_msgid.get(msgid, []))
            items = [
                {
                    "cpid": self.cpid,
                    "errcode": "000",
                    "mtstat": self._pull_state(r),
                    "msgid": msgid,
                    "da": r.mobile,
                }
                for r in records
            ]
        return _json(json.dumps(items, separators=(",", ":")))

    @staticmethod
    def _pull_state(record: Accepted) -> str:
        if not record.report_sent:
            return "none"
        return "success" if record.fate == Fate.DELIVERED else "failed"

    def accept(self, vendor_ref: str, mobile: str, content: str, **extra: Any) -> Accepted:
        record = super().accept(vendor_ref, mobile, content, **extra)
        if record.fate == Fate.UNDELIVERED and not mobile.endswith(ENDING_UNDELIVERED):
            # a random failure (delivered_ratio < 1) gets one of the document's 5.2 codes
            record.extra["report_code"] = self.random.choice((*REPORT_FAILURE_CODES, "501"))
        return record

    # ------------------------------------------------------------------ pushes
    def report_text(self, record: Accepted) -> str:
        if record.fate == Fate.DELIVERED:
            return f"{record.vendor_ref}|0|DELIVRD||"
        code = record.extra.get("report_code") or self.undelivered_code
        status = "500" if code == "501" else "400"
        return f"{record.vendor_ref}|{status}|{code}||"

    def push_reports(self, records: list[Accepted]) -> None:
        if not self.push_url:
            return
        for record in records:
            text = self.report_text(record)
            params = {
                "command": "RT_REQUEST",
                "msgid": record.vendor_ref,
                "da": record.mobile,
                "dc": "15",
                "sm": text.encode("gbk").hex(),
                "rsm": text,
            }
            self.deliver("GET", self.push_url, params=params)  # the SP answers OK; no retry is documented
