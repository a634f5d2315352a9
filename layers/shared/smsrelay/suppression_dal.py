"""DynamoDB access for opt-out (suppression list) and vendor health; same table as `dal`.

Keys:
- suppressed number  S#{e164} / S     number, source, vendor, keyword, created_at;
                                      listed through the by_state index (gpk "SUP", gsk = number)
- vendor health      H#{vendor} / H   win (window number), calls/errors/latency_ms of this window,
                                      prev_calls/prev_errors of the one before, open_until
                                      (circuit open until this epoch second), balance, balance_at
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from .dal import Store, _call, _values, deserialize, iso, utcnow

SUPPRESSION_GPK = "SUP"


def _suppression_key(number: str) -> dict[str, Any]:
    return {"pk": {"S": f"S#{number}"}, "sk": {"S": "S"}}


def _health_key(vendor: str) -> dict[str, Any]:
    return {"pk": {"S": f"H#{vendor}"}, "sk": {"S": "H"}}


class SuppressionStore:
    def __init__(self, store: Store):
        self.store = store

    @property
    def table(self) -> str:
        return self.store.table

    def put(self, number: str, *, source: str, vendor: str | None = None, keyword: str | None = None) -> bool:
        """Suppress a number; False when it was suppressed already (the first record is kept)."""
        item = {
            "pk": f"S#{number}",
            "sk": "S",
            "number": number,
            "source": source,
            "vendor": vendor,
            "keyword": keyword,
            "created_at": iso(utcnow()),
            "gpk": SUPPRESSION_GPK,
            "gsk": number,
        }
        return self.store.put_new(item)

    def delete(self, number: str) -> bool:
        answer = _call(
            "delete_item", TableName=self.table, Key=_suppression_key(number), ReturnValues="ALL_OLD"
        )
        return "Attributes" in answer

    def get(self, number: str) -> dict[str, Any] | None:
        answer = _call("get_item", TableName=self.table, Key=_suppression_key(number), ConsistentRead=True)
        return deserialize(answer["Item"]) if "Item" in answer else None

    def suppressed(self, numbers: Iterable[str]) -> set[str]:
        """Which of `numbers` are suppressed: BatchGetItem, 100 keys per call, a few calls at once."""
        unique = list(dict.fromkeys(numbers))
        batches = [unique[i : i + 100] for i in range(0, len(unique), 100)]
        if not batches:
            return set()
        if len(batches) == 1:
            return self._batch(batches[0])
        found: set[str] = set()
        with ThreadPoolExecutor(max_workers=min(8, len(batches))) as pool:
            for part in pool.map(self._batch, batches):
                found |= part
        return found

    def _batch(self, numbers: list[str]) -> set[str]:
        found: set[str] = set()
        pending: dict[str, Any] = {
            self.table: {"Keys": [_suppression_key(n) for n in numbers], "ProjectionExpression": "pk"}
        }
        while pending:
            answer = _call("batch_get_item", RequestItems=pending)
            for raw in answer.get("Responses", {}).get(self.table, []):
                found.add(raw["pk"]["S"][2:])
            pending = answer.get("UnprocessedKeys") or {}
        return found

    def page(
        self, limit: int = 100, next_token: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Suppressed numbers in number order, `limit` at a time; and the token of the next page."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "by_state",
            "KeyConditionExpression": "gpk = :g",
            "ExpressionAttributeValues": _values({":g": SUPPRESSION_GPK}),
            "Limit": max(1, min(limit, 1000)),
        }
        if next_token:
            kwargs["ExclusiveStartKey"] = _start_key(next_token)
        answer = _call("query", **kwargs)
        items = [
            {k: v for k, v in deserialize(raw).items() if k not in ("pk", "sk", "gpk", "gsk")}
            for raw in answer.get("Items", [])
        ]
        last = answer.get("LastEvaluatedKey")
        token = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
        return items, token


def _start_key(next_token: str) -> dict[str, Any]:
    """The page key a token names; ValueError for anything this API did not give out (a forged
    key would reach DynamoDB and come back as a server error)."""
    try:
        key = json.loads(base64.urlsafe_b64decode(next_token.encode()))
    except (ValueError, UnicodeDecodeError, RecursionError):
        key = None
    shaped = (
        isinstance(key, dict)
        and set(key) == {"pk", "sk", "gpk", "gsk"}
        and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values())
        and key["gpk"]["S"] == SUPPRESSION_GPK
        and key["sk"]["S"] == "S"
        and key["pk"]["S"] == f"S#{key['gsk']['S']}"
        and len(next_token) < 400
    )
    if not shaped:
        raise ValueError("next_token: not a token this API gave out; start again without it")
    return key  # type: ignore[return-value]


class HealthStore:
    def __init__(self, store: Store):
        self.store = store

    @property
    def table(self) -> str:
        return self.store.table

    def get_many(self, vendors: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = [_health_key(v) for v in dict.fromkeys(vendors)]
        if not keys:
            return {}
        found: dict[str, dict[str, Any]] = {}
        pending: dict[str, Any] = {self.table: {"Keys": keys}}
        while pending:
            answer = _call("batch_get_item", RequestItems=pending)
            for raw in answer.get("Responses", {}).get(self.table, []):
                item = deserialize(raw)
                found[item["pk"][2:]] = item
            pending = answer.get("UnprocessedKeys") or {}
        return found

    def add_call(self, vendor: str, window: int, error: bool, latency_ms: float) -> dict[str, Any]:
        """Count one vendor call in window number `window`; the item as it is afterwards."""
        values = {":w": window, ":one": 1, ":e": 1 if error else 0, ":l": int(latency_ms)}
        try:
            answer = _call(
                "update_item",
                TableName=self.table,
                Key=_health_key(vendor),
                UpdateExpression="ADD calls :one, errors :e, latency_ms :l",
                ConditionExpression="win = :w",
                ExpressionAttributeValues=_values(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError:
            # A new window: this window's counters become the previous ones (zero if it was older).
            values |= {":prev": window - 1, ":zero": 0}
            try:
                answer = _call(
                    "update_item",
                    TableName=self.table,
                    Key=_health_key(vendor),
                    UpdateExpression=(
                        "SET win = :w, prev_calls = if_not_exists(calls, :zero), "
                        "prev_errors = if_not_exists(errors, :zero), calls = :one, errors = :e, latency_ms = :l"
                    ),
                    ConditionExpression="attribute_not_exists(win) OR win = :prev",
                    ExpressionAttributeValues=_values(values),
                    ReturnValues="ALL_NEW",
                )
            except ClientError:
                answer = _call(
                    "update_item",
                    TableName=self.table,
                    Key=_health_key(vendor),
                    UpdateExpression=(
                        "SET win = :w, prev_calls = :zero, prev_errors = :zero, "
                        "calls = :one, errors = :e, latency_ms = :l"
                    ),
                    ConditionExpression="win < :w",
                    ExpressionAttributeValues=_values(values),
                    ReturnValues="ALL_NEW",
                )
        return deserialize(answer["Attributes"])

    def open_circuit(self, vendor: str, until: float, now: float) -> bool:
        """Open the circuit (once: a concurrent opener loses) and start counting afresh."""
        try:
            _call(
                "update_item",
                TableName=self.table,
                Key=_health_key(vendor),
                UpdateExpression=(
                    "SET open_until = :u, opened_at = :n, calls = :zero, errors = :zero, "
                    "prev_calls = :zero, prev_errors = :zero, latency_ms = :zero"
                ),
                ConditionExpression="attribute_not_exists(open_until) OR open_until < :n",
                ExpressionAttributeValues=_values({":u": until, ":n": now, ":zero": 0}),
            )
        except ClientError:
            return False
        return True

    def set_balance(self, vendor: str, balance: str, at: str) -> None:
        _call(
            "update_item",
            TableName=self.table,
            Key=_health_key(vendor),
            UpdateExpression="SET balance = :b, balance_at = :t",
            ExpressionAttributeValues=_values({":b": balance, ":t": at}),
        )
