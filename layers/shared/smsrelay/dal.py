"""All DynamoDB access. One table; every status transition is a conditional write.

Keys (single table):
- request    R#{request_id} / R          counters c_<status>, total, invalid, parts
- message    M#{request_id}#{bucket} / {index:07d}   (bucket = index // 1000 spreads a big request)
- chunk      C#{chunk_id} / C            the dispatch claim: state, attempt, claimed_at
- reference  F#{match_key} / F           vendor#ref#number -> its message (request_id, idx)
- early rpt  E#{match_key} / E           a report that came before its message was known
- inbound    I#{vendor}#{digest} / I     inbound messages (a repeated push is stored once)

Reports find their message through the reference items, by key: consistent reads, 100 a
BatchGetItem, where an index would be read one Query per report, eventually consistent, and
rewritten on every status change. GSI `by_state` (gpk/gsk): queued messages Q#{shard}, messages
awaiting a report P#{vendor}#{shard}, early reports E#{vendor}, unknown ones U#{vendor}#{number}.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .aws import client
from .config import Settings, get_settings
from .models import ALLOWED_FROM, FINAL_STATUSES, Status

BUCKET = 1000
#: (index, E.164 number, vendor, chunk id, personalised content or None, fail-over vendors, segments)
#: ... and the quiet-hours window ("08:00-21:00") with the recipients' time zone, or None
MessageRow = tuple[int, str, str, str, str | None, list[str], int, str | None, str | None]
SHARDS = 8
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


def new_request_id() -> str:
    """Time-ordered, 24 hex characters."""
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

    def _expires(self) -> int:
        return int(time.time()) + self.settings.retention_days * 86400

    # ------------------------------------------------------------------ requests
    def create_request(
        self,
        request_id: str,
        *,
        client_ref: str | None,
        total: int,
        invalid: int,
        content: str | None = None,
        sender_id: str | None = None,
    ) -> None:
        item = {
            "content": content,
            "sender_id": sender_id,
            "pk": f"R#{request_id}",
            "sk": "R",
            "request_id": request_id,
            "client_ref": client_ref,
            "created_at": iso(utcnow()),
            "total": total,
            "invalid": invalid,
            "expires_at": self._expires(),
        }
        _call("put_item", TableName=self.table, Item=serialize(item))

    def get_request(self, request_id: str) -> dict[str, Any]:
        answer = _call("get_item", TableName=self.table, Key=request_key(request_id), ConsistentRead=True)
        if "Item" not in answer:
            raise NotFound(f"no request {request_id!r}")
        return deserialize(answer["Item"])

    def put_messages(
        self, request_id: str, rows: Sequence[tuple[int, str, str]], client_ref: str | None
    ) -> None:
        """Write queued message items: rows of (index, E.164, first vendor). BatchWriteItem, unprocessed retried."""
        now = iso(utcnow())
        expires = self._expires()
        requests = []
        for index, to, vendor, chunk_id, content, fallback, segment_count, window, zone in rows:
            item = message_key(request_id, index) | {
                "chunk": {"S": chunk_id},
                "segments": {"N": str(segment_count)},
                "request_id": {"S": request_id},
                "idx": {"N": str(index)},
                "to": {"S": to},
                "vendor": {"S": vendor},
                "status": {"S": Status.QUEUED.value},
                "created_at": {"S": now},
                "updated_at": {"S": now},
                "history": {"L": [{"M": {"status": {"S": "queued"}, "at": {"S": now}}}]},
                "gpk": {"S": f"Q#{shard_of(index)}"},
                "gsk": {"S": now},
                "expires_at": {"N": str(expires)},
            }
            if client_ref:
                item["client_ref"] = {"S": client_ref}
            if content is not None:  # personalised: the sweeper may need to send it again
                item["content"] = {"S": content}
            if fallback:
                item["fallback"] = {"L": [{"S": v} for v in fallback]}
            if window:  # the sweeper keeps honouring quiet hours when it sends again
                item["window"] = {"S": window}
                if zone:
                    item["zone"] = {"S": zone}
            requests.append({"PutRequest": {"Item": item}})
        self.batch_write(requests)

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

    def record_part(self, request_id: str, part: int, queued: int) -> bool:
        """Count a part's queued messages once; False when this part was counted before."""
        try:
            _call(
                "update_item",
                TableName=self.table,
                Key=request_key(request_id),
                UpdateExpression="ADD c_queued :n, parts :p",
                ConditionExpression="attribute_exists(pk) AND NOT contains(parts, :part)",
                ExpressionAttributeValues=_values({":n": queued, ":p": {part}, ":part": part}),
            )
        except ClientError:
            return False
        return True

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
        shard_keys = (
            [f"{gpk_prefix}#{s}" for s in range(SHARDS)]
            if not gpk_prefix.startswith(("E#", "U#"))
            else [gpk_prefix]
        )
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
        chunk_id: str,
        next_vendor: str,
        fallback: Sequence[str],
        vendor: str,
        code: str | None,
        description: str | None,
    ) -> None:
        """Queued messages go on under another chunk (retry or fail-over): point them at it (and
        its vendor), so the sweeper judges the chunk that carries them now, and keep what the
        failing vendor said in their history. Messages no longer queued are left as they are."""
        entry = {"status": Status.QUEUED.value, "at": iso(utcnow()), "vendor": vendor}
        entry |= {k: v for k, v in (("code", code), ("description", description)) if v}

        def update(index: int) -> dict[str, Any]:
            return {
                "TableName": self.table,
                "Key": message_key(request_id, index),
                "UpdateExpression": "SET chunk = :c, vendor = :v, fallback = :f, "
                "history = list_append(if_not_exists(history, :e), :h)",
                "ConditionExpression": "#s = :q",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": _values(
                    {
                        ":c": chunk_id,
                        ":v": next_vendor,
                        ":f": list(fallback),
                        ":e": [],
                        ":h": [entry],
                        ":q": Status.QUEUED.value,
                    }
                ),
            }

        for start in range(0, len(indices), 100):
            batch = indices[start : start + 100]
            try:
                _call("transact_write_items", TransactItems=[{"Update": update(i)} for i in batch])
            except ClientError:  # one of them moved on meanwhile: do them one by one
                for index in batch:
                    try:
                        _call("update_item", **update(index))
                    except ClientError:
                        continue

    # ------------------------------------------------------------------ chunks (dispatch claims)
    def get_chunk(self, chunk_id: str) -> dict[str, Any] | None:
        answer = _call("get_item", TableName=self.table, Key=_chunk_key(chunk_id), ConsistentRead=True)
        return deserialize(answer["Item"]) if "Item" in answer else None

    def claim_chunk(self, chunk_id: str, *, vendor: str, previous: dict[str, Any] | None) -> int | None:
        """Take the chunk for an attempt; the attempt number, or None if someone else changed it first."""
        now = time.time()
        if previous is None:
            condition, attempt = "attribute_not_exists(pk)", 1
            values: dict[str, Any] = {}
        else:
            attempt = int(previous["attempt"]) + 1
            condition = "#st = :prev_state AND attempt = :prev_attempt"
            values = {":prev_state": previous["state"], ":prev_attempt": int(previous["attempt"])}
        try:
            _call(
                "update_item",
                TableName=self.table,
                Key=_chunk_key(chunk_id),
                UpdateExpression="SET #st = :inflight, attempt = :a, vendor = :v, claimed_at = :t, expires_at = :x",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues=_values(
                    values
                    | {":inflight": "inflight", ":a": attempt, ":v": vendor, ":t": now, ":x": self._expires()}
                ),
            )
        except ClientError:
            return None
        return attempt

    def take_over_chunk(self, chunk_id: str, previous: dict[str, Any] | None) -> bool:
        """The sweeper takes a chunk nobody finished: a late redelivery then finds it `swept`."""
        if previous is None:
            condition, values = "attribute_not_exists(pk)", {":s": "swept"}
        else:
            condition = "#st = :prev_state AND attempt = :prev_attempt"
            values = {
                ":s": "swept",
                ":prev_state": previous["state"],
                ":prev_attempt": int(previous["attempt"]),
            }
        try:
            _call(
                "update_item",
                TableName=self.table,
                Key=_chunk_key(chunk_id),
                UpdateExpression="SET #st = :s, attempt = if_not_exists(attempt, :zero), expires_at = :x",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues=_values(values | {":zero": 0, ":x": self._expires()}),
            )
        except ClientError:
            return False
        return True

    def hold_chunk(self, chunk_id: str, due_at: float) -> bool:
        """Mark a scheduled chunk as waiting for its time; False when it was taken meanwhile."""
        try:
            _call(
                "update_item",
                TableName=self.table,
                Key=_chunk_key(chunk_id),
                UpdateExpression="SET #st = :held, attempt = if_not_exists(attempt, :zero), due_at = :due, "
                "expires_at = :x",
                ConditionExpression="attribute_not_exists(pk) OR #st = :held",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues=_values(
                    {":held": "held", ":zero": 0, ":due": due_at, ":x": self._expires()}
                ),
            )
        except ClientError:
            return False
        return True

    def set_chunk_state(self, chunk_id: str, state: str, attempt: int, **extra: Any) -> bool:
        names = {"#st": "state"}
        sets = ["#st = :s"]
        values: dict[str, Any] = {":s": state, ":inflight": "inflight", ":a": attempt}
        for key, value in extra.items():
            sets.append(f"{key} = :{key}")
            values[f":{key}"] = value
        try:
            _call(
                "update_item",
                TableName=self.table,
                Key=_chunk_key(chunk_id),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="#st = :inflight AND attempt = :a",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_values(values),
            )
        except ClientError:
            return False
        return True

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


def unknown_key(vendor: str, to: str) -> str:
    return f"U#{vendor}#{to}"


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
        return {
            "TableName": table,
            "Key": message_key(self.request_id, self.index),
            "UpdateExpression": expression,
            "ConditionExpression": "#s = :old",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
        }
