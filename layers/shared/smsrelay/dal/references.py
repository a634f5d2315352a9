"""What reports and inbound messages are matched and kept by.

- reference  F#{match_key} / F           vendor#ref#number -> its message (request_id, idx)
- early rpt  E#{match_key} / E           a report that came before its message was known
                                         (index by_state: E#{vendor})
- inbound    I#{vendor}#{digest} / I     inbound messages (a repeated push is stored once)

Reports find their message through the reference items, by key: consistent reads, 100 a
BatchGetItem, where an index would be read one Query per report, eventually consistent, and
rewritten on every status change."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .messages import Transition
from .table import Table, iso, serialize, single_key, utcnow


@dataclass(frozen=True)
class ReferenceItem:
    """A vendor reference (its match_key) and the message it names, with what a status event
    names, so a report can move its message unread."""

    match_key: str
    request_id: str
    index: int
    to: str
    client_ref: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ReferenceItem:
        return cls(
            match_key=item["pk"][2:],
            request_id=item["request_id"],
            index=int(item["idx"]),
            to=item["to"],
            client_ref=item.get("client_ref"),
        )


@dataclass(frozen=True)
class InboundRecord:
    """An inbound message as stored."""

    vendor: str
    from_: str
    to: str
    content: str
    time: str | None = None
    vendor_ref: str | None = None

    def digest(self) -> str:
        fields = (self.from_, self.to, self.content, self.time, self.vendor_ref)
        return hashlib.sha256("|".join(str(f) for f in fields).encode()).hexdigest()[:32]

    def to_item(self, expires: int) -> dict[str, Any]:
        return {
            "pk": f"I#{self.vendor}#{self.digest()}",
            "sk": "I",
            "vendor": self.vendor,
            "from": self.from_,
            "to": self.to,
            "content": self.content,
            "time": self.time,
            "vendor_ref": self.vendor_ref,
            "expires_at": expires,
        }


class ReferenceStore:
    def __init__(self, table: Table):
        self.table = table

    # ------------------------------------------------------------------ vendor references
    def put(self, transitions: Iterable[Transition]) -> None:
        """A reference item per vendor reference a transition carries (idempotent puts)."""
        expires = {"N": str(self.table.expires())}
        items = []
        for match_key, t in {t.ref_key: t for t in transitions if t.ref_key}.items():
            item = single_key("F", match_key) | {
                "request_id": {"S": t.request_id},
                "idx": {"N": str(t.index)},
                "to": {"S": t.to},
                "expires_at": expires,
            }
            if t.client_ref:
                item["client_ref"] = {"S": t.client_ref}
            items.append({"PutRequest": {"Item": item}})
        self.table.batch_write(items)

    def find(self, match_keys: Iterable[str]) -> dict[str, ReferenceItem]:
        """match_key -> its reference, for those known."""
        keys = [single_key("F", k) for k in dict.fromkeys(match_keys)]
        refs = (ReferenceItem.from_item(i) for i in self.table.batch_get(keys))
        return {ref.match_key: ref for ref in refs}

    # ------------------------------------------------------------------ early reports
    def keep_early(self, match_key: str, vendor: str, report: dict[str, Any]) -> None:
        item = {
            "pk": f"E#{match_key}",
            "sk": "E",
            "report": report,
            "gpk": f"E#{vendor}",
            "gsk": iso(utcnow()),
            "expires_at": self.table.expires(),
        }
        self.table.call("put_item", TableName=self.table.name, Item=serialize(item))

    def early(self, match_keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """match_key -> kept report (its JSON), for those that have one (consistent reads)."""
        keys = [single_key("E", k) for k in dict.fromkeys(match_keys)]
        return {item["pk"][2:]: item["report"] for item in self.table.batch_get(keys)}

    def early_of(self, vendor: str, limit: int = 1000) -> dict[str, dict[str, Any]]:
        """Reports of `vendor` kept until their message is known: match_key -> report."""
        return {i["pk"][2:]: i["report"] for i in self.table.query_state(f"E#{vendor}", limit=limit)}

    def forget_early(self, match_key: str) -> None:
        self.table.call("delete_item", TableName=self.table.name, Key=single_key("E", match_key))

    # ------------------------------------------------------------------ inbound
    def put_inbound(self, record: InboundRecord) -> bool:
        """Store an inbound message once; False when the same one was stored before (a re-push)."""
        return self.table.put_new(record.to_item(self.table.expires()))
