"""Vendor health: calls and errors in a rolling window, the circuit, the last balance read.

- vendor health      H#{vendor} / H   win (window number), calls/errors/latency_ms of this window,
                                      prev_calls/prev_errors of the one before, open_until
                                      (circuit open until this epoch second), balance, balance_at
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .table import Table, attribute_values, deserialize, single_key


@dataclass(frozen=True)
class HealthItem:
    vendor: str
    calls: int = 0  # this window and the one before
    errors: int = 0
    latency_ms: int = 0  # summed over this window's calls
    open_until: float = 0.0
    balance: str | None = None
    balance_at: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> HealthItem:
        return cls(
            vendor=item["pk"][2:],
            calls=int(item.get("calls", 0)) + int(item.get("prev_calls", 0)),
            errors=int(item.get("errors", 0)) + int(item.get("prev_errors", 0)),
            latency_ms=int(item.get("latency_ms", 0)),
            open_until=float(item.get("open_until", 0)),
            balance=str(item["balance"]) if item.get("balance") is not None else None,
            balance_at=item.get("balance_at"),
        )


class HealthStore:
    def __init__(self, table: Table):
        self.table = table

    def get_many(self, vendors: Iterable[str]) -> dict[str, HealthItem]:
        keys = [single_key("H", v) for v in dict.fromkeys(vendors)]
        if not keys:
            return {}
        items = (HealthItem.from_item(i) for i in self.table.batch_get(keys, consistent=False))
        return {item.vendor: item for item in items}

    def get(self, vendor: str) -> HealthItem:
        return self.get_many([vendor]).get(vendor) or HealthItem(vendor=vendor)

    def add_call(self, vendor: str, window: int, error: bool, latency_ms: float) -> HealthItem:
        """Count one vendor call in window number `window`; the item as it is afterwards."""
        values = {":w": window, ":one": 1, ":e": 1 if error else 0, ":l": int(latency_ms)}
        key = single_key("H", vendor)
        try:
            answer = self._update(
                key, "ADD calls :one, errors :e, latency_ms :l", "win = :w", values, ReturnValues="ALL_NEW"
            )
        except ClientError:
            # A new window: this window's counters become the previous ones (zero if it was older).
            values |= {":prev": window - 1, ":zero": 0}
            try:
                answer = self._update(
                    key,
                    "SET win = :w, prev_calls = if_not_exists(calls, :zero), "
                    "prev_errors = if_not_exists(errors, :zero), calls = :one, errors = :e, latency_ms = :l",
                    "attribute_not_exists(win) OR win = :prev",
                    values,
                    ReturnValues="ALL_NEW",
                )
            except ClientError:
                answer = self._update(
                    key,
                    "SET win = :w, prev_calls = :zero, prev_errors = :zero, "
                    "calls = :one, errors = :e, latency_ms = :l",
                    "win < :w",
                    values,
                    ReturnValues="ALL_NEW",
                )
        return HealthItem.from_item(deserialize(answer["Attributes"]))

    def open_circuit(self, vendor: str, until: float, now: float) -> bool:
        """Open the circuit (once: a concurrent opener loses) and start counting afresh."""
        return self.table.update_if(
            single_key("H", vendor),
            "SET open_until = :u, opened_at = :n, calls = :zero, errors = :zero, "
            "prev_calls = :zero, prev_errors = :zero, latency_ms = :zero",
            "attribute_not_exists(open_until) OR open_until < :n",
            {":u": until, ":n": now, ":zero": 0},
        )

    def set_balance(self, vendor: str, balance: str, at: str) -> None:
        self.table.call(
            "update_item",
            TableName=self.table.name,
            Key=single_key("H", vendor),
            UpdateExpression="SET balance = :b, balance_at = :t",
            ExpressionAttributeValues=attribute_values({":b": balance, ":t": at}),
        )

    def _update(
        self, key: dict[str, Any], update: str, condition: str, values: dict[str, Any], **kw: Any
    ) -> Any:
        return self.table.call(
            "update_item",
            TableName=self.table.name,
            Key=key,
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=attribute_values(values),
            **kw,
        )
