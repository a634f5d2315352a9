"""toy: the smallest vendor there is, test data for tests/test_sixth_vendor.py, which copies this
file to layers/shared/smsrelay/vendors/toy.py in a copy of the repository.

Its protocol, JSON over HTTP: POST {base_url}/send {"to": ["+86..."], "text": "..."} answers
{"code": "0", "refs": {"+86...": "ref"}}; GET {base_url}/balance answers {"balance": "12.5"}; it
pushes one report per POST: {"ref": "...", "to": "+86...", "state": "DELIVRD" | other}.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from .base import CodeTable, RawRequest, VendorAdapter, decode_json
from .errors import VendorParseError, VendorRequestError
from .models import (
    Balance,
    Capability,
    DeliveryReport,
    Outcome,
    PushBatch,
    ReportStatus,
    SendOptions,
    SubmitResult,
)

VENDOR = "toy"


class ToyAdapter(VendorAdapter):
    vendor_id = VENDOR
    max_batch = 100
    capabilities = frozenset({Capability.PUSH_REPORTS})
    codes = CodeTable(VENDOR, {"0": (Outcome.OK, "accepted"), "9": (Outcome.CONFIGURATION, "wrong key")})

    def send_chunk(self, recipients: Sequence[str], content: str, options: SendOptions) -> list[SubmitResult]:
        response = self.http.request(
            "POST", f"{self.base_url}/send", json={"to": list(recipients), "text": content}
        )
        answer: dict[str, Any] = decode_json(VENDOR, response)
        code = str(answer.get("code", ""))
        if code != "0":
            info = self.codes.lookup(code)
            raise VendorRequestError(VENDOR, code, info.outcome, info.description)
        refs = answer.get("refs") or {}
        return [
            SubmitResult(to=to, vendor=VENDOR, vendor_ref=str(refs[to]), outcome=Outcome.OK, code="0")
            for to in recipients
        ]

    def balance(self) -> Balance:
        answer = decode_json(VENDOR, self.http.request("GET", f"{self.base_url}/balance"))
        return Balance(vendor=VENDOR, balance=Decimal(str(answer["balance"])), unit="CNY", raw=answer)

    def parse_push(self, request: RawRequest) -> PushBatch:
        try:
            record = json.loads(request.body)
            report = DeliveryReport(
                vendor=VENDOR,
                vendor_ref=str(record["ref"]),
                to=str(record["to"]),
                status=ReportStatus.DELIVERED if record["state"] == "DELIVRD" else ReportStatus.UNDELIVERED,
                code=str(record["state"]),
                raw=record,
            )
        except Exception as exc:  # the contract: nothing but VendorParseError leaves a parser
            raise VendorParseError(VENDOR, f"push: unreadable ({type(exc).__name__})") from exc
        return PushBatch(reports=[report])
