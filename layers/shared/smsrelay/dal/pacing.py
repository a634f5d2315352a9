"""Bulk pacing: one schedule item per vendor, moved only from the value it was read at.

- pace       B#{vendor} / B              free_at: when the vendor's next bulk slot is free (epoch s)
"""

from __future__ import annotations

from typing import Any

from .table import Table, single_key


class PaceStore:
    def __init__(self, table: Table):
        self.table = table

    def get(self, vendor: str) -> float | None:
        """When the vendor's next bulk slot is free (epoch s); None before its first bulk send."""
        item = self.table.get(single_key("B", vendor))
        return float(item["free_at"]) if item else None

    def move(self, vendor: str, seen: float | None, free_at: float) -> bool:
        """Move the vendor's schedule from what was read to `free_at`; False when another
        invocation moved it first (read again)."""
        condition = "attribute_not_exists(pk)" if seen is None else "free_at = :seen"
        values: dict[str, Any] = {":f": free_at, ":x": self.table.expires()}
        if seen is not None:
            values[":seen"] = seen
        return self.table.update_if(
            single_key("B", vendor), "SET free_at = :f, expires_at = :x", condition, values
        )
