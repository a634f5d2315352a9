"""The one DynamoDB table: its calls (errors made ours), item (de)serialisation, conditional
updates, batches, the by_state index, and the ids and keys every aggregate shares."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ..aws import client
from ..config import Settings

BUCKET = 1000
SHARDS = 8
_ser = TypeSerializer()
_deser = TypeDeserializer()


class StoreError(RuntimeError):
    """The store could not be reached or refused a write (callers answer 5xx / retry)."""


class NotFound(LookupError):
    pass


# --------------------------------------------------------------------------- ids and keys


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def derived_id(kind: str, value: str) -> str:
    """A request id from what identifies a delivery (client_ref, SQS message id, event id, ...):
    24 hex characters, the same for every retry of the same delivery."""
    return hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()[:24]


def new_request_id() -> str:
    """Time-ordered, 24 hex characters (for deliveries that carry no id of their own)."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def message_id(request_id: str, index: int) -> str:
    return f"{request_id}-{index}"


def split_message_id(value: str) -> tuple[str, int]:
    request_id, _, index = value.rpartition("-")
    if not request_id or not index.isdigit():
        raise NotFound(f"{value!r} is not a message id")
    return request_id, int(index)


def message_key(request_id: str, index: int) -> dict[str, Any]:
    return {"pk": {"S": f"M#{request_id}#{index // BUCKET}"}, "sk": {"S": f"{index:07d}"}}


def request_key(request_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"R#{request_id}"}, "sk": {"S": "R"}}


def part_key(request_id: str, part: int) -> dict[str, Any]:
    return {"pk": {"S": f"R#{request_id}"}, "sk": {"S": f"P#{part:06d}"}}


def single_key(prefix: str, name: str) -> dict[str, Any]:
    """The key of an item that is alone in its partition (claims, references, health, ...)."""
    return {"pk": {"S": f"{prefix}#{name}"}, "sk": {"S": prefix}}


def shard_of(index: int) -> int:
    return index % SHARDS


# --------------------------------------------------------------------------- values


def plain(value: Any) -> Any:
    """DynamoDB numbers are Decimals; floats are written as their exact decimal text."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def from_decimals(value: Any) -> Any:
    """DynamoDB Decimals back to ints (a stored cursor)."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: from_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_decimals(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(plain(v)) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deser.deserialize(v) for k, v in item.items()}


def attribute_values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(plain(v)) for k, v in values.items()}


# --------------------------------------------------------------------------- the table


class Table:
    """The table's calls. Every aggregate store goes through `call`, so one patch (tests) or
    one change of error handling reaches them all."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.name = settings.table_name

    def call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(client("dynamodb"), operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise
            raise StoreError(f"DynamoDB {operation} failed: {code}") from exc
        except Exception as exc:  # endpoint down, throttled past retries, ...
            raise StoreError(f"DynamoDB {operation} failed: {type(exc).__name__}") from exc

    def expires(self, send_at: dt.datetime | None = None) -> int:
        """When an item may go (TTL): after the retention, and never before a report can still
        come for a message sent at `send_at` (or now)."""
        start = max(time.time(), send_at.timestamp() if send_at else 0)
        keep = max(
            self.settings.retention_days * 86400, int(self.settings.report_window_hours * 3600) + 86400
        )
        return int(start) + keep

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        answer = self.call("get_item", TableName=self.name, Key=key, ConsistentRead=True)
        return deserialize(answer["Item"]) if "Item" in answer else None

    def put_new(self, item: dict[str, Any]) -> bool:
        """Write an item only if its key is new; False when it exists (the first write is kept)."""
        try:
            self.call(
                "put_item",
                TableName=self.name,
                Item=serialize(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError:
            return False
        return True

    def update_if(
        self,
        key: dict[str, Any],
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        """One conditional update; False when the condition did not hold."""
        used = {k: v for k, v in ({"#st": "state"} | (names or {})).items() if k in update or k in condition}
        kwargs: dict[str, Any] = {"ExpressionAttributeNames": used} if used else {}
        try:
            self.call(
                "update_item",
                TableName=self.name,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=attribute_values(values),
                **kwargs,
            )
        except ClientError:
            return False
        return True

    def query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a query, page after page."""
        found: list[dict[str, Any]] = []
        while True:
            answer = self.call("query", TableName=self.name, **kwargs)
            found += [deserialize(i) for i in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                return found
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending = {self.name: requests[start : start + 25]}
            delay = 0.05
            for _attempt in range(10):
                answer = self.call("batch_write_item", RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                raise StoreError("BatchWriteItem kept leaving items unprocessed")

    def batch_get(
        self, keys: Sequence[dict[str, Any]], projection: str | None = None, consistent: bool = True
    ) -> list[dict[str, Any]]:
        """Items by key, 100 a call; missing keys are left out."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {"Keys": list(keys[start : start + 100]), "ConsistentRead": consistent}
            if projection:
                request["ProjectionExpression"] = projection
            pending: dict[str, Any] = {self.name: request}
            delay = 0.05
            while pending:
                answer = self.call("batch_get_item", RequestItems=pending)
                found += [deserialize(raw) for raw in answer.get("Responses", {}).get(self.name, [])]
                pending = answer.get("UnprocessedKeys") or {}
                if pending:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
        return found

    def query_state(
        self, gpk_prefix: str, *, before: str | None = None, after: str | None = None, limit: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Items of the by_state index under `gpk_prefix` (all shards), gsk in (after, before)."""
        sharded = gpk_prefix == "Q" or gpk_prefix.startswith("P#")  # queued, and awaiting a report
        shard_keys = [f"{gpk_prefix}#{s}" for s in range(SHARDS)] if sharded else [gpk_prefix]
        produced = 0
        for gpk in shard_keys:
            condition, values = "gpk = :g", {":g": gpk}
            if before and after:
                condition += " AND gsk BETWEEN :a AND :b"
                values |= {":a": after, ":b": before}
            elif before:
                condition += " AND gsk < :b"
                values[":b"] = before
            elif after:
                condition += " AND gsk > :a"
                values[":a"] = after
            kwargs: dict[str, Any] = {
                "TableName": self.name,
                "IndexName": "by_state",
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": attribute_values(values),
            }
            while produced < limit:
                answer = self.call("query", Limit=min(1000, limit - produced), **kwargs)
                for item in answer.get("Items", []):
                    produced += 1
                    yield deserialize(item)
                if "LastEvaluatedKey" not in answer:
                    break
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
            if produced >= limit:
                return
