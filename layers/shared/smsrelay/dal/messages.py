"""Messages: one item per accepted recipient, moved from status to status by conditional writes
whose counters move in the same transaction.

- message    M#{request_id}#{bucket} / {index:07d}   (bucket = index // 1000 spreads a big request)

Index `by_state` (gpk/gsk): queued messages Q#{shard}, messages awaiting a report
P#{vendor}#{shard}, unknown ones U#{vendor}#{number} (a report with an unlearnt reference
still finds them)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..models import ALLOWED_FROM, FINAL_STATUSES, HistoryEntry, SendWindow, Status
from .table import (
    BUCKET,
    NotFound,
    StoreError,
    Table,
    attribute_values,
    deserialize,
    iso,
    message_id,
    message_key,
    request_key,
    shard_of,
    utcnow,
)

#: messages moved per transaction: with the request's counter item, DynamoDB's limit of 100
TRANSACTION_MESSAGES = 99


def unknown_key(vendor: str, to: str) -> str:
    return f"U#{vendor}#{to}"


@dataclass(frozen=True)
class MessageItem:
    """A message as stored."""

    request_id: str
    index: int
    to: str
    status: Status
    vendor: str | None = None
    chunk: str | None = None  # the chunk it belongs to: only that chunk may send it
    part: int | None = None
    segments: int | None = None
    content: str | None = None  # personalised text
    fallback: tuple[str, ...] = ()
    window: SendWindow | None = None
    zone: str | None = None
    client_ref: str | None = None
    hop: int = 0
    vendor_ref: str | None = None
    code: str | None = None
    description: str | None = None
    history: tuple[HistoryEntry, ...] = field(default=(), compare=False)

    @property
    def message_id(self) -> str:
        return message_id(self.request_id, self.index)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> MessageItem:
        window = item.get("window")
        return cls(
            request_id=item["request_id"],
            index=int(item["idx"]),
            to=item["to"],
            status=Status(item["status"]),
            vendor=item.get("vendor"),
            chunk=item.get("chunk"),
            part=int(item["part"]) if "part" in item else None,
            segments=int(item["segments"]) if "segments" in item else None,
            content=item.get("content"),
            fallback=tuple(item.get("fallback", ())),
            window=SendWindow.model_validate(window) if window else None,
            zone=item.get("zone"),
            client_ref=item.get("client_ref"),
            hop=int(item.get("hop", 0)),
            vendor_ref=item.get("vendor_ref"),
            code=item.get("code"),
            description=item.get("description"),
            history=tuple(HistoryEntry.model_validate(h) for h in item.get("history", ())),
        )


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


class MessageStore:
    def __init__(self, table: Table):
        self.table = table

    # ------------------------------------------------------------------ reading
    def get(self, request_id: str, index: int) -> MessageItem:
        item = self.table.get(message_key(request_id, index))
        if item is None:
            raise NotFound(f"no message {message_id(request_id, index)!r}")
        return MessageItem.from_item(item)

    def get_many(self, request_id: str, indices: Iterable[int]) -> list[MessageItem]:
        keys = [message_key(request_id, i) for i in dict.fromkeys(indices)]
        return [MessageItem.from_item(i) for i in self.table.batch_get(keys)]

    def between(self, request_id: str, first: int, last: int) -> list[MessageItem]:
        """Messages with index in [first, last], in index order."""
        found: list[MessageItem] = []
        for bucket in range(first // BUCKET, last // BUCKET + 1):
            items = self.table.query_all(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
                ExpressionAttributeValues=attribute_values(
                    {":pk": f"M#{request_id}#{bucket}", ":a": f"{first:07d}", ":b": f"{last:07d}"}
                ),
                ConsistentRead=True,
            )
            found += [MessageItem.from_item(i) for i in items]
        return found

    def page(
        self, request_id: str, total: int, start: int, limit: int
    ) -> tuple[list[MessageItem], int | None]:
        """Messages of a request from index `start`, at most `limit`; and the next start (or None)."""
        found: list[MessageItem] = []
        index = start
        while index < total and len(found) < limit:
            bucket = index // BUCKET
            answer = self.table.call(
                "query",
                TableName=self.table.name,
                KeyConditionExpression="pk = :pk AND sk >= :sk",
                ExpressionAttributeValues=attribute_values(
                    {":pk": f"M#{request_id}#{bucket}", ":sk": f"{index:07d}"}
                ),
                Limit=limit - len(found),
            )
            items = [MessageItem.from_item(deserialize(i)) for i in answer.get("Items", [])]
            found.extend(items)
            if answer.get("LastEvaluatedKey") and len(found) >= limit:
                index = items[-1].index + 1
                break
            index = (bucket + 1) * BUCKET
        next_start = index if index < total and len(found) >= limit else None
        return found, next_start

    def queued_before(self, before: str, limit: int) -> Iterator[MessageItem]:
        """Messages queued since before `before` (ISO time)."""
        return (MessageItem.from_item(i) for i in self.table.query_state("Q", before=before, limit=limit))

    def awaiting_report(
        self, vendor: str, *, before: str, after: str | None = None, limit: int = 1000
    ) -> Iterator[MessageItem]:
        """Messages of `vendor` submitted in (after, before) and still waiting for their report."""
        items = self.table.query_state(f"P#{vendor}", before=before, after=after, limit=limit)
        return (MessageItem.from_item(i) for i in items)

    def unknown_of(self, vendor: str, to: str, limit: int = 2) -> list[MessageItem]:
        """`unknown` messages of this vendor and number."""
        return [
            MessageItem.from_item(i) for i in self.table.query_state(unknown_key(vendor, to), limit=limit)
        ]

    # ------------------------------------------------------------------ writing
    def put_new(self, request_id: str, part: int, messages: Sequence[NewMessage], expires: int) -> None:
        """Write queued message items (BatchWriteItem, unprocessed retried). Only the invocation
        that holds the part's lease writes them, and only before the part is counted."""
        now = iso(utcnow())
        self.table.batch_write(
            [{"PutRequest": {"Item": m.to_item(request_id, part, now, expires)}} for m in messages]
        )

    def apply(self, transitions: Sequence[Transition]) -> tuple[list[Transition], list[Transition]]:
        """Apply each transition with its condition; counters move in the same transaction.

        Returns (applied, conflicts): a conflict is a message that was not in `previous` any more.
        Write the transitions' references first (ReferenceStore.put): a report that comes while
        the transaction runs then finds its message."""
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
                "TableName": self.table.name,
                "Key": request_key(request_id),
                "UpdateExpression": f"ADD {adds}",
                "ExpressionAttributeNames": {f"#{name}": name for name in deltas},
                "ExpressionAttributeValues": attribute_values({f":{name}": n for name, n in deltas.items()}),
            }
        }
        items = [{"Update": t.update(self.table.name)} for t in batch] + [counter]
        delay = 0.05
        for _attempt in range(8):
            try:
                self.table.call("transact_write_items", TransactItems=items)
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

    def hand_over(
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
                "TableName": self.table.name,
                "Key": message_key(request_id, index),
                "UpdateExpression": "SET chunk = :c, vendor = :v, fallback = :f, hop = :hop, gsk = :now, "
                "history = list_append(if_not_exists(history, :e), :h)",
                "ConditionExpression": "#s = :q AND chunk = :from",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": attribute_values(
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
                self.table.call("transact_write_items", TransactItems=[{"Update": update(i)} for i in batch])
                moved += batch
            except ClientError:  # one of them moved on meanwhile: do them one by one
                for index in batch:
                    try:
                        self.table.call("update_item", **update(index))
                        moved.append(index)
                    except ClientError:
                        continue
        return moved
