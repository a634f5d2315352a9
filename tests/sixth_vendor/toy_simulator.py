"""The toy vendor's simulator (test data for tests/test_sixth_vendor.py, copied to
local/smsrelay_local/simulators/toy.py): the protocol of toy_adapter.py, reports pushed."""

from __future__ import annotations

import itertools
import json
from typing import Any

from werkzeug.wrappers import Request, Response

from .base import Accepted, Fate, VendorSimulator


class ToySimulator(VendorSimulator):
    vendor_id = "toy"
    base_path = "/toy"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._refs = itertools.count(1)

    def settings(self) -> dict[str, Any]:
        return {"base_url": self.base_url}

    def handle(self, request: Request) -> Response:
        if request.path == "/toy/balance":
            return _json({"balance": str(self.balance)})
        if request.path != "/toy/send" or request.method != "POST":
            return Response("not found", status=404)
        body = json.loads(request.get_data())
        refs = {}
        for to in body["to"]:
            refs[to] = f"T{next(self._refs)}"
            self.accept(refs[to], to, body["text"])
        return _json({"code": "0", "refs": refs})

    def push_reports(self, records: list[Accepted]) -> None:
        for record in records:
            state = "DELIVRD" if record.fate == Fate.DELIVERED else "UNDELIV"
            self.deliver(
                "POST", self.push_url, json={"ref": record.vendor_ref, "to": record.mobile, "state": state}
            )


def _json(value: dict[str, Any]) -> Response:
    return Response(json.dumps(value), content_type="application/json")
