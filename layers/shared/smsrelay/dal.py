"""All DynamoDB access. One table; every status transition is a conditional write.

Keys (single table):
- request    R#{request_id} / R          state (accepting/accepted/refused), options, rows or file,
                                         lease, cursor, counters c_<status>, total, rejected_count
- part       R#{request_id} / P#{n:06d}  one slice of its rows: state (writing/written/enqueued),
                                         lease, counts, its first rejections and message indices
- rejection  X#{request_id}#{part} / {index:07d}   a row refused at send, with its reason
- message    M#{request_id}#{bucket} / {index:07d}   (bucket = index // 1000 spreads a big request)
- chunk      C#{chunk_id} / C            the dispatch claim: state, attempt, claimed_at
- reference  F#{match_key} / F           vendor#ref#number -> its message (request_id, idx)
- early rpt  E#{match_key} / E           a report that came before its message was known
- inbound    I#{vendor}#{digest} / I     inbound messages (a repeated push is stored once)

Reports find their message through the reference items, by key: consistent reads, 100 a
BatchGetItem, where an index would be read one Query per report, eventually consistent, and
rewritten on every status change. GSI `by_state` (gpk/gsk): queued messages Q#{shard}, messages
awaiting a report P#{vendor}#{shard}, early reports E#{vendor}, unknown ones U#{vendor}#{number},
requests still being accepted ACC.

Every write that a retry could repeat is put-if-absent or conditional: ids are derived from the
request and positions, so a retried acceptance or dispatch lands on the same items.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .aws import client
from .chunk_state import ChunkState, Claim
from .config import Settings, get_settings
from .models import ALLOWED_FROM, FINAL_STATUSES, RejectedRecipient, RequestState, SendWindow, Status

BUCKET = 1000
SHARDS = 8
ACCEPTING_GPK = "ACC"
#: messages moved per transaction: with the request's counter item, DynamoDB's limit of 100
TRANSACTION_MESSAGES = 99
_ser = TypeSerializer()
_deser = TypeDeserializer()


class StoreError(RuntimeError):
    """The store could not be reached or refused a write (callers answer 5xx / retry)."""


class NotFound(LookupError):
    pass


# --------------------------------------------------------------------------- helpers


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


def shard_of(index: int) -> int:
    return index % SHARDS


def _plain(value: Any) -> Any:
    """DynamoDB numbers are Decimals; floats are written as their exact decimal text."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_plain(v)) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deser.deserialize(v) for k, v in item.items()}


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_plain(v)) for k, v in values.items()}


def _call(operation: str, **kwargs: Any) -> Any:
    try:
        return getattr(client("dynamodb"), operation)(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            raise
        raise StoreError(f"DynamoDB {operation} failed: {code}") from exc
    except Exception as exc:  # endpoint down, throttled past retries, ...
        raise StoreError(f"DynamoDB {operation} failed: {type(exc).__name__}") from exc


@dataclass
class Store:
    settings: Settings = field(default_factory=get_settings)

    @property
    def table(self) -> str:
        return self.settings.table_name

    def _expires(self, send_at: dt.datetime | None = None) -> int:
        """When an item may go (TTL): after the retention, and never before a report can still
        come for a message sent at `send_at` (or now)."""
        start = max(time.time(), send_at.timestamp() if send_at else 0)
        keep = max(
            self.settings.retention_days * 86400, int(self.settings.report_window_hours * 3600) + 86400
        )
        return int(start) + keep

    def expires_for(self, send_at: dt.datetime | None) -> int:
        return self._expires(send_at)

    # ------------------------------------------------------------------ requests
    def create_request(self, record: RequestRecord) -> bool:
        """Write a new request (state accepting, leased to its creator); False when it exists."""
        return self.put_new(record.to_item())

    def get_request(self, request_id: str) -> dict[str, Any]:
        answer = _call("get_item", TableName=self.table, Key=request_key(request_id), ConsistentRead=True)
        if "Item" not in answer:
            raise NotFound(f"no request {request_id!r}")
        return deserialize(answer["Item"])

    def load_request(self, request_id: str) -> RequestRecord:
        return RequestRecord.from_item(self.get_request(request_id))

    def take_request(self, request_id: str, owner: str, until: float) -> bool:
        """Lease a request still being accepted; False while another live invocation holds it."""
        return self._update_if(
            request_key(request_id),
            "SET lease_owner = :o, lease_until = :u, touched_at = :now",
            "#st = :accepting AND (attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :o)",
            {":o": owner, ":u": until, ":now": time.time(), ":accepting": RequestState.ACCEPTING.value},
        )

    def release_request(self, request_id: str, owner: str) -> None:
        """Give the lease back (best effort): a retry may then resume at once."""
        self._update_if(
            request_key(request_id), "REMOVE lease_owner, lease_until", "lease_owner = :o", {":o": owner}
        )

    def save_cursor(self, request_id: str, owner: str, cursor: dict[str, Any]) -> bool:
        return self._update_if(
            request_key(request_id),
            "SET #cursor = :c, touched_at = :now",
            "lease_owner = :o",
            {":c": cursor, ":o": owner, ":now": time.time()},
            names={"#cursor": "cursor"},
        )

    def set_parts_total(self, request_id: str, owner: str, parts: int, rows: int) -> bool:
        return self._update_if(
            request_key(request_id),
            "SET parts_total = :p, rows_total = :r, touched_at = :now",
            "lease_owner = :o",
            {":p": parts, ":r": rows, ":o": owner, ":now": time.time()},
        )

    def finish_request(
        self, request_id: str, state: RequestState, answer: str, error: str | None = None
    ) -> bool:
        """accepting -> accepted (every part counted) or refused; True for the one that moved it."""
        condition = "#st = :accepting"
        if state == RequestState.ACCEPTED:
            condition += " AND parts_done = parts_total"
        sets = "SET #st = :state, answer = :answer" + (", #error = :error" if error else "")
        values: dict[str, Any] = {
            ":state": state.value,
            ":answer": answer,
            ":accepting": RequestState.ACCEPTING.value,
        }
        names = {"#error": "error"} if error else {}
        if error:
            values[":error"] = error
        return self._update_if(
            request_key(request_id),
            sets + " REMOVE lease_owner, lease_until, rows_json",
            condition,
            values,
            names=names,
        )

    def mark_announced(self, request_id: str) -> None:
        """`SMS Request Accepted` is out: the request leaves the index of unfinished ones."""
        _call(
            "update_item",
            TableName=self.table,
            Key=request_key(request_id),
            UpdateExpression="REMOVE gpk, gsk",
        )

    def unfinished_requests(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Requests still being accepted, or final but not yet announced (index ACC)."""
        return list(self.query_state(ACCEPTING_GPK, limit=limit))

    def _update_if(
        self,
        key: dict[str, Any],
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        used = {k: v for k, v in ({"#st": "state"} | (names or {})).items() if k in update or k in condition}
        kwargs: dict[str, Any] = {"ExpressionAttributeNames": used} if used else {}
        try:
            _call(
                "update_item",
                TableName=self.table,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=_values(values),
                **kwargs,
            )
        except ClientError:
            return False
        return True

    # ------------------------------------------------------------------ parts
    def get_part(self, request_id: str, part: int) -> dict[str, Any] | None:
        answer = _call("get_item", TableName=self.table, Key=part_key(request_id, part), ConsistentRead=True)
        return deserialize(answer["Item"]) if "Item" in answer else None

    def claim_part(self, request_id: str, part: int, owner: str, until: float, rows: tuple[int, int]) -> str:
        """Take a part for writing. Returns `writing` (ours now), `busy` (a live invocation has it),
        or the state it is in after it was written (`written`, `enqueued`)."""
        item = {
            "pk": f"R#{request_id}",
            "sk": f"P#{part:06d}",
            "state": "writing",
            "first_row": rows[0],
            "last_row": rows[1],
            "lease_owner": owner,
            "lease_until": until,
            "expires_at": self._expires(),
        }
        if self.put_new(item):
            return "writing"
        found = self.get_part(request_id, part) or {}
        if found.get("state") != "writing":
            return str(found.get("state", "busy"))
        taken = self._update_if(
            part_key(request_id, part),
            "SET lease_owner = :o, lease_until = :u",
            "#st = :writing AND (lease_until < :now OR lease_owner = :o)",
            {":o": owner, ":u": until, ":now": time.time(), ":writing": "writing"},
        )
        return "writing" if taken else "busy"

    def complete_part(self, request_id: str, part: int, owner: str, summary: PartSummary) -> bool:
        """writing -> written, and the part's counts added to the request's in the same transaction:
        counted once, whatever retries follow."""
        counters: dict[str, int] = {
            "total": summary.accepted,
            "c_queued": summary.accepted,
            "rejected_count": summary.rejected,
            "segments": summary.segments,
            "parts_done": 1,
        } | {f"sg_{vendor}": n for vendor, n in summary.segments_by_vendor.items()}
        adds = ", ".join(f"#{k} :{k}" for k in counters)
        request_update = {
            "TableName": self.table,
            "Key": request_key(request_id),
            "UpdateExpression": f"SET touched_at = :now ADD {adds}",
            "ConditionExpression": "#st = :accepting",
            "ExpressionAttributeNames": {f"#{k}": k for k in counters} | {"#st": "state"},
            "ExpressionAttributeValues": _values(
                {f":{k}": v for k, v in counters.items()}
                | {":accepting": RequestState.ACCEPTING.value, ":now": time.time()}
            ),
        }
        part_update = {
            "TableName": self.table,
            "Key": part_key(request_id, part),
            "UpdateExpression": "SET #st = :written, accepted = :a, rejected = :r, first_rejected = :fr, "
            "first_messages = :fm REMOVE lease_owner, lease_until",
            "ConditionExpression": "#st = :writing AND lease_owner = :o",
            "ExpressionAttributeNames": {"#st": "state"},
            "ExpressionAttributeValues": _values(
                {
                    ":written": "written",
                    ":writing": "writing",
                    ":o": owner,
                    ":a": summary.accepted,
                    ":r": summary.rejected,
                    ":fr": json.dumps([r.model_dump(exclude_none=True) for r in summary.first_rejected]),
                    ":fm": summary.first_messages,
                }
            ),
        }
        try:
            _call("transact_write_items", TransactItems=[{"Update": part_update}, {"Update": request_update}])
        except ClientError:
            return False
        return True

    def release_part(self, request_id: str, part: int, owner: str) -> None:
        """An invocation that failed while writing gives the part back (a retry may take it at once)."""
        self._update_if(
            part_key(request_id, part),
            "SET lease_until = :zero",
            "#st = :writing AND lease_owner = :o",
            {":zero": 0, ":writing": "writing", ":o": owner},
        )

    def mark_part_enqueued(self, request_id: str, part: int) -> None:
        self._update_if(
            part_key(request_id, part), "SET #st = :e", "#st = :w", {":e": "enqueued", ":w": "written"}
        )

    def list_parts(
        self, request_id: str, attributes: str = "sk, #st, accepted, rejected"
    ) -> list[dict[str, Any]]:
        """The request's part items in part order (only the named attributes)."""
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": _values({":pk": f"R#{request_id}", ":p": "P#"}),
            "ProjectionExpression": attributes,
            "ConsistentRead": True,
        }
        if "#st" in attributes:
            kwargs["ExpressionAttributeNames"] = {"#st": "state"}
        while True:
            answer = _call("query", **kwargs)
            found += [deserialize(i) for i in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                return found
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    # ------------------------------------------------------------------ rejections
    def put_rejections(
        self, request_id: str, part: int, rejected: Sequence[RejectedRecipient], expires: int
    ) -> None:
        self.batch_write(
            [
                {
                    "PutRequest": {
                        "Item": serialize(
                            {
                                "pk": f"X#{request_id}#{part}",
                                "sk": f"{r.index:07d}",
                                "to": r.to,
                                "reason": r.reason,
                                "idx": r.index,
                                "row": r.row,
                                "expires_at": expires,
                            }
                        )
                    }
                }
                for r in rejected
            ]
        )

    def list_rejections(
        self, request_id: str, part: int, after_index: int | None, limit: int
    ) -> tuple[list[RejectedRecipient], bool]:
        """Rejections of one part from `after_index` on; and whether the part has more."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": _values({":pk": f"X#{request_id}#{part}"}),
            "Limit": limit,
        }
        if after_index is not None:
            kwargs["ExclusiveStartKey"] = {
                "pk": {"S": f"X#{request_id}#{part}"},
                "sk": {"S": f"{after_index:07d}"},
            }
        answer = _call("query", **kwargs)
        items = [deserialize(i) for i in answer.get("Items", [])]
        rejected = [
            RejectedRecipient(
                to=i["to"], reason=i["reason"], index=int(i["idx"]), row=int(i["row"]) if "row" in i else None
            )
            for i in items
        ]
        return rejected, "LastEvaluatedKey" in answer

    # ------------------------------------------------------------------ messages (new)
    def put_messages(self, request_id: str, part: int, messages: Sequence[NewMessage], expires: int) -> None:
        """Write queued message items (BatchWriteItem, unprocessed retried). Only the invocation
        that holds the part's lease writes them, and only before the part is counted."""
        now = iso(utcnow())
        self.batch_write(
            [{"PutRequest": {"Item": m.to_item(request_id, part, now, expires)}} for m in messages]
        )

    def messages_between(self, request_id: str, first: int, last: int) -> list[dict[str, Any]]:
        """Message items with index in [first, last], in index order."""
        found: list[dict[str, Any]] = []
        for bucket in range(first // BUCKET, last // BUCKET + 1):
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                "ExpressionAttributeValues": _values(
                    {":pk": f"M#{request_id}#{bucket}", ":a": f"{first:07d}", ":b": f"{last:07d}"}
                ),
                "ConsistentRead": True,
            }
            while True:
                answer = _call("query", **kwargs)
                found += [deserialize(i) for i in answer.get("Items", [])]
                if "LastEvaluatedKey" not in answer:
                    break
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return found

    def get_messages(self, request_id: str, indices: Iterable[int]) -> list[dict[str, Any]]:
        return self.batch_get([message_key(request_id, i) for i in dict.fromkeys(indices)])

    def batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending = {self.table: requests[start : start + 25]}
            delay = 0.05
            for _attempt in range(10):
                answer = _call("batch_write_item", RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                raise StoreError("BatchWriteItem kept leaving items unprocessed")

    # ------------------------------------------------------------------ messages
    def get_message(self, request_id: str, index: int) -> dict[str, Any]:
        answer = _call(
            "get_item", TableName=self.table, Key=message_key(request_id, index), ConsistentRead=True
        )
        if "Item" not in answer:
            raise NotFound(f"no message {message_id(request_id, index)!r}")
        return deserialize(answer["Item"])

    def list_messages(
        self, request_id: str, total: int, start: int, limit: int
    ) -> tuple[list[dict], int | None]:
        """Messages of a request from index `start`, at most `limit`; and the next start (or None)."""
        found: list[dict[str, Any]] = []
        index = start
        while index < total and len(found) < limit:
            bucket = index // BUCKET
            answer = _call(
                "query",
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND sk >= :sk",
                ExpressionAttributeValues=_values({":pk": f"M#{request_id}#{bucket}", ":sk": f"{index:07d}"}),
                Limit=limit - len(found),
            )
            items = [deserialize(i) for i in answer.get("Items", [])]
            found.extend(items)
            if answer.get("LastEvaluatedKey") and len(found) >= limit:
                index = int(items[-1]["idx"]) + 1
                break
            index = (bucket + 1) * BUCKET
        next_start = index if index < total and len(found) >= limit else None
        return found, next_start

    # ------------------------------------------------------------------ vendor references
    def put_refs(self, transitions: Iterable[Transition]) -> None:
        """A reference item per vendor reference (match_key) -> its message; idempotent puts.
        It carries what a status event names, so a report can move its message unread."""
        expires = {"N": str(self._expires())}
        items = []
        for match_key, t in {t.ref_key: t for t in transitions if t.ref_key}.items():
            item = {
                "pk": {"S": f"F#{match_key}"},
                "sk": {"S": "F"},
                "request_id": {"S": t.request_id},
                "idx": {"N": str(t.index)},
                "to": {"S": t.to},
                "expires_at": expires,
            }
            if t.client_ref:
                item["client_ref"] = {"S": t.client_ref}
            items.append({"PutRequest": {"Item": item}})
        self.batch_write(items)

    def find_refs(self, match_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """match_key -> its reference item (request_id, idx, to, client_ref), for those known."""
        keys = [{"pk": {"S": f"F#{k}"}, "sk": {"S": "F"}} for k in dict.fromkeys(match_keys)]
        return {ref["pk"][2:]: ref for ref in self.batch_get(keys)}

    def batch_get(self, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Items of the main table by key, 100 a call, consistent; missing keys are left out."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {
                self.table: {"Keys": list(keys[start : start + 100]), "ConsistentRead": True}
            }
            delay = 0.05
            while pending:
                answer = _call("batch_get_item", RequestItems=pending)
                found += [deserialize(raw) for raw in answer.get("Responses", {}).get(self.table, [])]
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
                "TableName": self.table,
                "IndexName": "by_state",
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": _values(values),
            }
            while produced < limit:
                answer = _call("query", Limit=min(1000, limit - produced), **kwargs)
                for item in answer.get("Items", []):
                    produced += 1
                    yield deserialize(item)
                if "LastEvaluatedKey" not in answer:
                    break
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
            if produced >= limit:
                return

    # ------------------------------------------------------------------ transitions
    def apply_transitions(
        self, transitions: Sequence[Transition]
    ) -> tuple[list[Transition], list[Transition]]:
        """Apply each transition with its condition; counters move in the same transaction.

        Returns (applied, conflicts): a conflict is a message that was not in `previous` any more.
        """
        # References first: a report that comes while the transaction runs finds its message.
        self.put_refs(transitions)
        applied: list[Transition] = []
        conflicts: list[Transition] = []
        by_request: dict[str, list[Transition]] = {}
        for transition in transitions:
            by_request.setdefault(transition.request_id, []).append(transition)
        for request_id, group in by_request.items():
            for start in range(0, len(group), TRANSACTION_MESSAGES):
                batch = list(group[start : start + TRANSACTION_MESSAGES])
                while batch:
                    failed = self._transact(request_id, batch)
                    if failed is None:
                        applied.extend(batch)
                        break
                    conflicts.extend(batch[i] for i in failed)
                    batch = [t for i, t in enumerate(batch) if i not in failed]
        return applied, conflicts

    def _transact(self, request_id: str, batch: list[Transition]) -> set[int] | None:
        deltas: dict[str, int] = {}
        for t in batch:
            deltas[f"c_{t.previous.value}"] = deltas.get(f"c_{t.previous.value}", 0) - 1
            deltas[f"c_{t.status.value}"] = deltas.get(f"c_{t.status.value}", 0) + 1
        adds = ", ".join(f"#{name} :{name}" for name in deltas)
        counter = {
            "Update": {
                "TableName": self.table,
                "Key": request_key(request_id),
                "UpdateExpression": f"ADD {adds}",
                "ExpressionAttributeNames": {f"#{name}": name for name in deltas},
                "ExpressionAttributeValues": _values({f":{name}": n for name, n in deltas.items()}),
            }
        }
        items = [{"Update": t.update(self.table)} for t in batch] + [counter]
        delay = 0.05
        for _attempt in range(8):
            try:
                _call("transact_write_items", TransactItems=items)
                return None
            except ClientError as exc:
                reasons = exc.response.get("CancellationReasons") or []
                failed = {
                    i
                    for i, r in enumerate(reasons[: len(batch)])
                    if r.get("Code") == "ConditionalCheckFailed"
                }
                if failed:
                    return failed
                codes = {r.get("Code") for r in reasons}
                if (
                    not codes & {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
                    and reasons
                ):
                    raise StoreError(f"transaction cancelled: {sorted(c for c in codes if c)}") from exc
                time.sleep(delay)  # contention on the same items: back off and try again
                delay = min(delay * 2, 1.0)
        raise StoreError("transaction kept conflicting")

    def note_handover(
        self,
        request_id: str,
        indices: Sequence[int],
        *,
        from_chunk: str,
        chunk_id: str,
        next_vendor: str,
        fallback: Sequence[str],
        vendor: str,
        code: str | None,
        description: str | None,
        hop: int = 0,
    ) -> list[int]:
        """Queued messages of `from_chunk` go on under another chunk (retry, fail-over, split,
        sweep): they belong to it now (only that chunk may send them), its vendor is theirs, the
        failing vendor's code goes into their history, and their time in the queue starts again.
        Messages no longer queued, or already handed to another chunk, are left as they are.
        Returns the indices handed over (the new chunk carries only those)."""
        now = iso(utcnow())
        entry = {"status": Status.QUEUED.value, "at": now, "vendor": vendor}
        entry |= {k: v for k, v in (("code", code), ("description", description)) if v}

        def update(index: int) -> dict[str, Any]:
            return {
                "TableName": self.table,
                "Key": message_key(request_id, index),
                "UpdateExpression": "SET chunk = :c, vendor = :v, fallback = :f, hop = :hop, gsk = :now, "
                "history = list_append(if_not_exists(history, :e), :h)",
                "ConditionExpression": "#s = :q AND chunk = :from",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": _values(
                    {
                        ":c": chunk_id,
                        ":from": from_chunk,
                        ":v": next_vendor,
                        ":f": list(fallback),
                        ":hop": hop,
                        ":now": now,
                        ":e": [],
                        ":h": [entry],
                        ":q": Status.QUEUED.value,
                    }
                ),
            }

        moved: list[int] = []
        for start in range(0, len(indices), 100):
            batch = list(indices[start : start + 100])
            try:
                _call("transact_write_items", TransactItems=[{"Update": update(i)} for i in batch])
                moved += batch
            except ClientError:  # one of them moved on meanwhile: do them one by one
                for index in batch:
                    try:
                        _call("update_item", **update(index))
                        moved.append(index)
                    except ClientError:
                        continue
        return moved

    # ------------------------------------------------------------------ chunks (dispatch claims)
    def get_claim(self, chunk_id: str) -> Claim:
        answer = _call("get_item", TableName=self.table, Key=_chunk_key(chunk_id), ConsistentRead=True)
        if "Item" not in answer:
            return Claim.none(chunk_id)
        item = deserialize(answer["Item"])
        return Claim(
            chunk_id=chunk_id,
            state=ChunkState(item["state"]),
            attempt=int(item.get("attempt", 0)),
            claimed_at=float(item.get("claimed_at", 0)),
            due_at=float(item["due_at"]) if "due_at" in item else None,
            paced=bool(item.get("paced", False)),
        )

    def move_claim(
        self,
        claim: Claim,
        to: ChunkState,
        *,
        vendor: str | None = None,
        due_at: float | None = None,
        paced: bool = False,
    ) -> Claim | None:
        """The one conditional move of a chunk's claim: from the state and attempt it was read in
        (or from nothing) to `to`. INFLIGHT starts a new attempt. None when someone moved it first."""
        now = time.time()
        attempt = claim.attempt + 1 if to == ChunkState.INFLIGHT else claim.attempt
        sets = ["#st = :to", "attempt = :a", "expires_at = :x", "paced = :p"]
        values: dict[str, Any] = {":to": to.value, ":a": attempt, ":x": self._expires(), ":p": paced}
        if to == ChunkState.INFLIGHT:
            sets.append("claimed_at = :t")
            values[":t"] = now
        if vendor is not None:
            sets.append("vendor = :v")
            values[":v"] = vendor
        if due_at is not None:
            sets.append("due_at = :due")
            values[":due"] = due_at
        if claim.state is None:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "#st = :from AND attempt = :from_attempt"
            values |= {":from": claim.state.value, ":from_attempt": claim.attempt}
        if not self._update_if(_chunk_key(claim.chunk_id), "SET " + ", ".join(sets), condition, values):
            return None
        return Claim(
            chunk_id=claim.chunk_id,
            state=to,
            attempt=attempt,
            claimed_at=now if to == ChunkState.INFLIGHT else claim.claimed_at,
            due_at=due_at if due_at is not None else claim.due_at,
            paced=paced,
        )

    # ------------------------------------------------------------------ bulk pacing (per vendor)
    def get_pace(self, vendor: str) -> float | None:
        """When the vendor's next bulk slot is free (epoch s); None before its first bulk send."""
        answer = _call("get_item", TableName=self.table, Key=_pace_key(vendor), ConsistentRead=True)
        item = answer.get("Item")
        return float(item["free_at"]["N"]) if item else None

    def move_pace(self, vendor: str, seen: float | None, free_at: float) -> bool:
        """Move the vendor's schedule from what was read to `free_at`; False when another
        invocation moved it first (read again)."""
        condition = "attribute_not_exists(pk)" if seen is None else "free_at = :seen"
        values: dict[str, Any] = {":f": free_at, ":x": self._expires()}
        if seen is not None:
            values[":seen"] = seen
        return self._update_if(_pace_key(vendor), "SET free_at = :f, expires_at = :x", condition, values)

    # ------------------------------------------------------------------ early reports
    def put_early_report(self, match_key: str, vendor: str, report: dict[str, Any]) -> None:
        item = {
            "pk": f"E#{match_key}",
            "sk": "E",
            "report": report,
            "gpk": f"E#{vendor}",
            "gsk": iso(utcnow()),
            "expires_at": self._expires(),
        }
        _call("put_item", TableName=self.table, Item=serialize(item))

    def get_early_reports(self, match_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """match_key -> stored report, for those that have one (consistent reads)."""
        keys = [{"pk": {"S": f"E#{k}"}, "sk": {"S": "E"}} for k in dict.fromkeys(match_keys)]
        return {item["pk"][2:]: item["report"] for item in self.batch_get(keys)}

    def delete_early_report(self, match_key: str) -> None:
        _call("delete_item", TableName=self.table, Key={"pk": {"S": f"E#{match_key}"}, "sk": {"S": "E"}})

    # ------------------------------------------------------------------ inbound
    def put_inbound(self, vendor: str, record: dict[str, Any]) -> bool:
        """Store an inbound message once; False when the same one was stored before (a re-push)."""
        digest = hashlib.sha256(
            "|".join(str(record.get(k, "")) for k in ("from", "to", "content", "time", "vendor_ref")).encode()
        ).hexdigest()[:32]
        return self.put_new(
            {"pk": f"I#{vendor}#{digest}", "sk": "I", **record, "expires_at": self._expires()}
        )

    def put_new(self, item: dict[str, Any]) -> bool:
        """Write an item only if its key is new; False when it exists (the first write is kept)."""
        try:
            _call(
                "put_item",
                TableName=self.table,
                Item=serialize(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError:
            return False
        return True


def part_key(request_id: str, part: int) -> dict[str, Any]:
    return {"pk": {"S": f"R#{request_id}"}, "sk": {"S": f"P#{part:06d}"}}


def unknown_key(vendor: str, to: str) -> str:
    return f"U#{vendor}#{to}"


def _pace_key(vendor: str) -> dict[str, Any]:
    return {"pk": {"S": f"B#{vendor}"}, "sk": {"S": "B"}}


def _chunk_key(chunk_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"C#{chunk_id}"}, "sk": {"S": "C"}}


@dataclass
class Transition:
    """Move one message from `previous` to `status` (conditional), with what the vendor said."""

    request_id: str
    index: int
    previous: Status
    status: Status
    at: dt.datetime
    to: str = ""
    vendor: str | None = None
    vendor_ref: str | None = None
    ref_key: str | None = None  # the match_key its reports will carry: a reference item is written
    code: str | None = None
    description: str | None = None
    client_ref: str | None = None
    owner: str | None = None  # only while the message still belongs to this chunk (dispatch's moves)
    vendor_time: dt.datetime | None = None  # the vendor's own time of a report, as it gave it

    def __post_init__(self) -> None:
        if self.previous not in ALLOWED_FROM[self.status]:
            raise ValueError(f"{self.previous} -> {self.status} is not a forward move")

    @property
    def message_id(self) -> str:
        return message_id(self.request_id, self.index)

    def update(self, table: str) -> dict[str, Any]:
        # Attribute values built by hand: every one is a string, and boto3's TypeSerializer was
        # three quarters of dispatch's own CPU (bench profile).
        at = iso(self.at)
        entry: dict[str, Any] = {"status": {"S": self.status.value}, "at": {"S": at}}
        sets = ["#s = :new", "updated_at = :at", "history = list_append(if_not_exists(history, :empty), :h)"]
        removes: list[str] = []
        values: dict[str, Any] = {
            ":new": {"S": self.status.value},
            ":old": {"S": self.previous.value},
            ":at": {"S": at},
            ":empty": {"L": []},
        }
        for name in ("vendor", "vendor_ref", "code", "description"):
            value = getattr(self, name)
            if value is not None:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"S": str(value)}
                if name != "vendor_ref":
                    entry[name] = {"S": str(value)}
        values[":h"] = {"L": [{"M": entry}]}
        if self.status in FINAL_STATUSES:
            removes += ["gpk", "gsk"]
        elif self.status == Status.UNKNOWN:
            # Findable by vendor and number: a report whose reference we never learnt can still settle it.
            sets += ["gpk = :gpk", "gsk = :gsk"]
            values |= {":gpk": {"S": unknown_key(self.vendor or "", self.to)}, ":gsk": {"S": at}}
        elif self.status == Status.SUBMITTED:
            sets += ["gpk = :gpk", "gsk = :gsk"]
            values |= {":gpk": {"S": f"P#{self.vendor}#{shard_of(self.index)}"}, ":gsk": {"S": at}}
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = "#s = :old"
        if self.owner is not None:
            condition += " AND chunk = :owner"
            values[":owner"] = {"S": self.owner}
        return {
            "TableName": table,
            "Key": message_key(self.request_id, self.index),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
        }


# --------------------------------------------------------------------------- records


@dataclass
class RequestRecord:
    """A request as stored while it is taken in and after: its options, where its rows are
    (inline, or a file in S3), who holds it (lease), how far reading got (cursor)."""

    request_id: str
    options: dict[str, Any]
    state: RequestState = RequestState.ACCEPTING
    client_ref: str | None = None
    created_at: str = ""
    rows_json: str | None = None  # inline rows: [[to], ...] or [[to, text], ...]
    source_uri: str | None = None  # s3://bucket/key of the rows
    source_etag: str | None = None
    source_format: str | None = None  # csv | jsonl
    caller_file: bool = False  # the caller's recipients_file (rejections name its lines), not our copy
    region: str = "CN"  # the default region numbers were read with (kept: retries read alike)
    part_rows: int = 5000
    part_bytes: int = 200_000
    lease_owner: str | None = None
    lease_until: float | None = None
    cursor: dict[str, Any] | None = None
    parts_total: int | None = None
    parts_done: int = 0
    rows_total: int | None = None
    expires_at: int = 0
    answer: str | None = None
    error: str | None = None
    announced: bool = False  # `SMS Request Accepted` was published
    touched_at: float = 0.0  # the last sign of progress while accepting
    counters: dict[str, int] = field(default_factory=dict)

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": f"R#{self.request_id}",
            "sk": "R",
            "request_id": self.request_id,
            "state": self.state.value,
            "options": json.dumps(self.options, ensure_ascii=False),
            "client_ref": self.client_ref,
            "created_at": self.created_at,
            "rows_json": self.rows_json,
            "source_uri": self.source_uri,
            "source_etag": self.source_etag,
            "source_format": self.source_format,
            "caller_file": self.caller_file,
            "region": self.region,
            "part_rows": self.part_rows,
            "part_bytes": self.part_bytes,
            "lease_owner": self.lease_owner,
            "lease_until": self.lease_until,
            "touched_at": time.time(),
            "total": 0,
            "expires_at": self.expires_at,
            "gpk": ACCEPTING_GPK,
            "gsk": self.created_at,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RequestRecord:
        counters = {k: int(v) for k, v in item.items() if k.startswith(("c_", "sg_"))}
        counters |= {k: int(item.get(k, 0)) for k in ("total", "rejected_count", "segments")}
        return cls(
            request_id=item["request_id"],
            options=json.loads(item.get("options") or "{}"),
            state=RequestState(item.get("state", RequestState.ACCEPTED.value)),
            client_ref=item.get("client_ref"),
            created_at=item.get("created_at", ""),
            rows_json=item.get("rows_json"),
            source_uri=item.get("source_uri"),
            source_etag=item.get("source_etag"),
            source_format=item.get("source_format"),
            caller_file=bool(item.get("caller_file", False)),
            region=item.get("region", "CN"),
            part_rows=int(item.get("part_rows", 5000)),
            part_bytes=int(item.get("part_bytes", 200_000)),
            lease_owner=item.get("lease_owner"),
            lease_until=float(item["lease_until"]) if "lease_until" in item else None,
            cursor=_plain_numbers(item.get("cursor")),
            parts_total=int(item["parts_total"]) if "parts_total" in item else None,
            parts_done=int(item.get("parts_done", 0)),
            rows_total=int(item["rows_total"]) if "rows_total" in item else None,
            expires_at=int(item.get("expires_at", 0)),
            answer=item.get("answer"),
            error=item.get("error"),
            announced="gpk" not in item,
            touched_at=float(item.get("touched_at", 0)),
            counters=counters,
        )


def _plain_numbers(value: Any) -> Any:
    """DynamoDB Decimals back to ints (a stored cursor)."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    return value


@dataclass
class PartSummary:
    """What writing a part produced: counted into the request once, with the part's state move."""

    accepted: int
    rejected: int
    segments: int
    segments_by_vendor: dict[str, int]
    first_rejected: list[RejectedRecipient]
    first_messages: list[int]


@dataclass(frozen=True)
class NewMessage:
    """A message item as `send` writes it: queued, owned by its first chunk."""

    index: int
    to: str
    vendor: str
    chunk_id: str
    fallback: Sequence[str] = ()
    content: str | None = None  # personalised: kept so that a resent chunk carries it
    segments: int = 1
    window: SendWindow | None = None
    zone: str | None = None
    client_ref: str | None = None

    def to_item(self, request_id: str, part: int, now: str, expires: int) -> dict[str, Any]:
        item: dict[str, Any] = message_key(request_id, self.index) | {
            "chunk": {"S": self.chunk_id},
            "part": {"N": str(part)},
            "segments": {"N": str(self.segments)},
            "request_id": {"S": request_id},
            "idx": {"N": str(self.index)},
            "to": {"S": self.to},
            "vendor": {"S": self.vendor},
            "status": {"S": Status.QUEUED.value},
            "created_at": {"S": now},
            "updated_at": {"S": now},
            "history": {"L": [{"M": {"status": {"S": "queued"}, "at": {"S": now}}}]},
            "gpk": {"S": f"Q#{shard_of(self.index)}"},
            "gsk": {"S": now},
            "expires_at": {"N": str(expires)},
        }
        if self.client_ref:
            item["client_ref"] = {"S": self.client_ref}
        if self.content is not None:
            item["content"] = {"S": self.content}
        if self.fallback:
            item["fallback"] = {"L": [{"S": v} for v in self.fallback]}
        if self.window:  # the sweeper keeps honouring quiet hours when it sends again
            item["window"] = {"M": {"start": {"S": self.window.start}, "end": {"S": self.window.end}}}
            if self.zone:
                item["zone"] = {"S": self.zone}
        return item
