"""The suppression list (opt-out).

- suppressed number  S#{e164} / S     number, source, vendor, keyword, created_at;
                                      listed through the by_state index (gpk "SUP", gsk = number)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from .table import Table, attribute_values, deserialize, iso, single_key, utcnow

SUPPRESSION_GPK = "SUP"


class Suppression(BaseModel):
    """A suppressed number as the API lists it."""

    number: str
    source: str
    vendor: str | None = None
    keyword: str | None = None
    created_at: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Suppression:
        return cls.model_validate({k: v for k, v in item.items() if k in cls.model_fields})


class SuppressionStore:
    def __init__(self, table: Table):
        self.table = table

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
        return self.table.put_new(item)

    def delete(self, number: str) -> bool:
        answer = self.table.call(
            "delete_item", TableName=self.table.name, Key=single_key("S", number), ReturnValues="ALL_OLD"
        )
        return "Attributes" in answer

    def get(self, number: str) -> Suppression | None:
        item = self.table.get(single_key("S", number))
        return Suppression.from_item(item) if item else None

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
        keys = [single_key("S", n) for n in numbers]
        return {item["pk"][2:] for item in self.table.batch_get(keys, projection="pk", consistent=False)}

    def page(self, limit: int = 100, next_token: str | None = None) -> tuple[list[Suppression], str | None]:
        """Suppressed numbers in number order, `limit` at a time; and the token of the next page."""
        kwargs: dict[str, Any] = {
            "TableName": self.table.name,
            "IndexName": "by_state",
            "KeyConditionExpression": "gpk = :g",
            "ExpressionAttributeValues": attribute_values({":g": SUPPRESSION_GPK}),
            "Limit": max(1, min(limit, 1000)),
        }
        if next_token:
            kwargs["ExclusiveStartKey"] = _start_key(next_token)
        answer = self.table.call("query", **kwargs)
        items = [Suppression.from_item(deserialize(raw)) for raw in answer.get("Items", [])]
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
