"""Dispatch claims: one item per chunk, moved only from the state (and attempt) it was read in.

- chunk      C#{chunk_id} / C            state (chunk_state.ChunkState), attempt, claimed_at, due_at
"""

from __future__ import annotations

import time
from typing import Any

from ..chunk_state import ChunkState, Claim
from .table import Table, single_key


class ClaimStore:
    def __init__(self, table: Table):
        self.table = table

    def get(self, chunk_id: str) -> Claim:
        item = self.table.get(single_key("C", chunk_id))
        if item is None:
            return Claim.none(chunk_id)
        return Claim(
            chunk_id=chunk_id,
            state=ChunkState(item["state"]),
            attempt=int(item.get("attempt", 0)),
            claimed_at=float(item.get("claimed_at", 0)),
            due_at=float(item["due_at"]) if "due_at" in item else None,
        )

    def move(
        self, claim: Claim, to: ChunkState, *, vendor: str | None = None, due_at: float | None = None
    ) -> Claim | None:
        """The one conditional move of a chunk's claim: from the state and attempt it was read in
        (or from nothing) to `to`. INFLIGHT starts a new attempt. None when someone moved it first."""
        now = time.time()
        attempt = claim.attempt + 1 if to == ChunkState.INFLIGHT else claim.attempt
        sets = ["#st = :to", "attempt = :a", "expires_at = :x"]
        values: dict[str, Any] = {":to": to.value, ":a": attempt, ":x": self.table.expires()}
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
        key = single_key("C", claim.chunk_id)
        if not self.table.update_if(key, "SET " + ", ".join(sets), condition, values):
            return None
        return Claim(
            chunk_id=claim.chunk_id,
            state=to,
            attempt=attempt,
            claimed_at=now if to == ChunkState.INFLIGHT else claim.claimed_at,
            due_at=due_at if due_at is not None else claim.due_at,
        )
