"""Requests as they are taken in: the request item, its parts, and the rows refused at send.

- request    R#{request_id} / R          state (accepting/accepted/refused), options, rows or file,
                                         lease, cursor, counters c_<status>, total, rejected_count
- part       R#{request_id} / P#{n:06d}  one slice of its rows: state (writing/written/enqueued),
                                         lease, counts, its first rejections and message indices
- rejection  X#{request_id}#{part} / {index:07d}   a row refused at send, with its reason
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..models import RejectedRecipient, RequestState
from .table import (
    NotFound,
    Table,
    attribute_values,
    deserialize,
    from_decimals,
    part_key,
    request_key,
    serialize,
)

ACCEPTING_GPK = "ACC"


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

    def count(self, name: str) -> int:
        """A counter: `total`, `rejected_count`, `segments`, `c_<status>`, `sg_<vendor>`."""
        return self.counters.get(name, 0)

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
            cursor=from_decimals(item.get("cursor")),
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


@dataclass(frozen=True)
class PartSummary:
    """What writing a part produced: counted into the request once, with the part's state move."""

    accepted: int
    rejected: int
    segments: int
    segments_by_vendor: dict[str, int]
    first_rejected: list[RejectedRecipient]
    first_messages: list[int]


@dataclass(frozen=True)
class PartItem:
    """A part as stored. Its answer lists are read only when asked for (they can be long)."""

    request_id: str
    number: int
    state: str  # writing | written | enqueued
    first_row: int = 0
    last_row: int = -1
    accepted: int = 0
    rejected: int = 0
    first_rejected: tuple[RejectedRecipient, ...] = ()
    first_messages: tuple[int, ...] = ()

    @property
    def written(self) -> bool:
        return self.state in ("written", "enqueued")

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> PartItem:
        rejected = json.loads(item["first_rejected"]) if item.get("first_rejected") else []
        return cls(
            request_id=item["pk"][2:],
            number=int(item["sk"][2:]),
            state=str(item.get("state", "writing")),
            first_row=int(item.get("first_row", 0)),
            last_row=int(item.get("last_row", -1)),
            accepted=int(item.get("accepted", 0)),
            rejected=int(item.get("rejected", 0)),
            first_rejected=tuple(RejectedRecipient.model_validate(r) for r in rejected),
            first_messages=tuple(int(i) for i in item.get("first_messages", [])),
        )


#: a part's attributes but its answer lists
_PART_BRIEF = "pk, sk, #st, first_row, last_row, accepted, rejected"


class RequestStore:
    def __init__(self, table: Table):
        self.table = table

    # ------------------------------------------------------------------ the request
    def create(self, record: RequestRecord) -> bool:
        """Write a new request (state accepting, leased to its creator); False when it exists."""
        return self.table.put_new(record.to_item())

    def load(self, request_id: str) -> RequestRecord:
        item = self.table.get(request_key(request_id))
        if item is None:
            raise NotFound(f"no request {request_id!r}")
        return RequestRecord.from_item(item)

    def take(self, request_id: str, owner: str, until: float) -> bool:
        """Lease a request still being accepted; False while another live invocation holds it."""
        return self.table.update_if(
            request_key(request_id),
            "SET lease_owner = :o, lease_until = :u, touched_at = :now",
            "#st = :accepting AND (attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :o)",
            {":o": owner, ":u": until, ":now": time.time(), ":accepting": RequestState.ACCEPTING.value},
        )

    def release(self, request_id: str, owner: str) -> None:
        """Give the lease back (best effort): a retry may then resume at once."""
        self.table.update_if(
            request_key(request_id), "REMOVE lease_owner, lease_until", "lease_owner = :o", {":o": owner}
        )

    def save_cursor(self, request_id: str, owner: str, cursor: dict[str, Any]) -> bool:
        return self.table.update_if(
            request_key(request_id),
            "SET #cursor = :c, touched_at = :now",
            "lease_owner = :o",
            {":c": cursor, ":o": owner, ":now": time.time()},
            names={"#cursor": "cursor"},
        )

    def set_parts_total(self, request_id: str, owner: str, parts: int, rows: int) -> bool:
        return self.table.update_if(
            request_key(request_id),
            "SET parts_total = :p, rows_total = :r, touched_at = :now",
            "lease_owner = :o",
            {":p": parts, ":r": rows, ":o": owner, ":now": time.time()},
        )

    def finish(self, request_id: str, state: RequestState, answer: str, error: str | None = None) -> bool:
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
        return self.table.update_if(
            request_key(request_id),
            sets + " REMOVE lease_owner, lease_until, rows_json",
            condition,
            values,
            names=names,
        )

    def mark_announced(self, request_id: str) -> None:
        """`SMS Request Accepted` is out: the request leaves the index of unfinished ones."""
        self.table.call(
            "update_item",
            TableName=self.table.name,
            Key=request_key(request_id),
            UpdateExpression="REMOVE gpk, gsk",
        )

    def unfinished(self, limit: int = 1000) -> list[RequestRecord]:
        """Requests still being accepted, or final but not yet announced (index ACC)."""
        return [RequestRecord.from_item(i) for i in self.table.query_state(ACCEPTING_GPK, limit=limit)]

    # ------------------------------------------------------------------ parts
    def get_part(self, request_id: str, part: int) -> PartItem | None:
        item = self.table.get(part_key(request_id, part))
        return PartItem.from_item(item) if item else None

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
            "expires_at": self.table.expires(),
        }
        if self.table.put_new(item):
            return "writing"
        found = self.get_part(request_id, part)
        if found is None:
            return "busy"
        if found.state != "writing":
            return found.state
        taken = self.table.update_if(
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
            "TableName": self.table.name,
            "Key": request_key(request_id),
            "UpdateExpression": f"SET touched_at = :now ADD {adds}",
            "ConditionExpression": "#st = :accepting",
            "ExpressionAttributeNames": {f"#{k}": k for k in counters} | {"#st": "state"},
            "ExpressionAttributeValues": attribute_values(
                {f":{k}": v for k, v in counters.items()}
                | {":accepting": RequestState.ACCEPTING.value, ":now": time.time()}
            ),
        }
        part_update = {
            "TableName": self.table.name,
            "Key": part_key(request_id, part),
            "UpdateExpression": "SET #st = :written, accepted = :a, rejected = :r, first_rejected = :fr, "
            "first_messages = :fm REMOVE lease_owner, lease_until",
            "ConditionExpression": "#st = :writing AND lease_owner = :o",
            "ExpressionAttributeNames": {"#st": "state"},
            "ExpressionAttributeValues": attribute_values(
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
            self.table.call(
                "transact_write_items", TransactItems=[{"Update": part_update}, {"Update": request_update}]
            )
        except ClientError:
            return False
        return True

    def release_part(self, request_id: str, part: int, owner: str) -> None:
        """An invocation that failed while writing gives the part back (a retry may take it at once)."""
        self.table.update_if(
            part_key(request_id, part),
            "SET lease_until = :zero",
            "#st = :writing AND lease_owner = :o",
            {":zero": 0, ":writing": "writing", ":o": owner},
        )

    def mark_part_enqueued(self, request_id: str, part: int) -> None:
        self.table.update_if(
            part_key(request_id, part), "SET #st = :e", "#st = :w", {":e": "enqueued", ":w": "written"}
        )

    def list_parts(self, request_id: str, *, with_answer_lists: bool = False) -> list[PartItem]:
        """The request's parts in part order."""
        kwargs: dict[str, Any] = {}
        if not with_answer_lists:
            kwargs = {"ProjectionExpression": _PART_BRIEF, "ExpressionAttributeNames": {"#st": "state"}}
        items = self.table.query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues=attribute_values({":pk": f"R#{request_id}", ":p": "P#"}),
            ConsistentRead=True,
            **kwargs,
        )
        return [PartItem.from_item(i) for i in items]

    # ------------------------------------------------------------------ rejections
    def put_rejections(
        self, request_id: str, part: int, rejected: Sequence[RejectedRecipient], expires: int
    ) -> None:
        self.table.batch_write(
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
            "TableName": self.table.name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": attribute_values({":pk": f"X#{request_id}#{part}"}),
            "Limit": limit,
        }
        if after_index is not None:
            kwargs["ExclusiveStartKey"] = {
                "pk": {"S": f"X#{request_id}#{part}"},
                "sk": {"S": f"{after_index:07d}"},
            }
        answer = self.table.call("query", **kwargs)
        items = [deserialize(i) for i in answer.get("Items", [])]
        rejected = [
            RejectedRecipient(
                to=i["to"], reason=i["reason"], index=int(i["idx"]), row=int(i["row"]) if "row" in i else None
            )
            for i in items
        ]
        return rejected, "LastEvaluatedKey" in answer
