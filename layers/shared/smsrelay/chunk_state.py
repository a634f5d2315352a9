"""The states of a chunk's claim and the one decision taken from them (pure: no I/O).

A chunk's claim item says what happened to it; the data layer moves it only from the state
(and attempt) it was read in, so two actors never both act on one chunk."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ChunkState(StrEnum):
    HELD = "held"  # waiting for its send time, quiet-hours window or bulk pacing slot; never sent
    INFLIGHT = "inflight"  # a vendor call may be under way
    RETRY = "retry"  # the vendor took none of its remaining recipients: they may be sent again
    DONE = "done"  # the vendor's answer is recorded
    UNKNOWN = "unknown"  # an attempt may have reached the vendor unheard: never resent
    FAILED = "failed"  # its recipients ended rejected or failed
    FAILED_OVER = "failed_over"  # its recipients went on to the next vendor of the route
    SPLIT = "split"  # halved: the halves carry its recipients
    SWEPT = "swept"  # the sweeper took it over: a new chunk carries its recipients


#: states after which the chunk itself is never sent again
FINISHED = frozenset(
    {
        ChunkState.DONE,
        ChunkState.FAILED,
        ChunkState.FAILED_OVER,
        ChunkState.SPLIT,
        ChunkState.SWEPT,
    }
)


class Claim(BaseModel):
    """A chunk's claim item as read (state None: nobody has touched the chunk yet)."""

    model_config = ConfigDict(frozen=True)

    chunk_id: str
    state: ChunkState | None = None
    attempt: int = 0
    claimed_at: float = 0.0
    due_at: float | None = None
    paced: bool = False  # held for its vendor's bulk slot, which starts at `due_at`

    @classmethod
    def none(cls, chunk_id: str) -> Claim:
        return cls(chunk_id=chunk_id)


class Next(StrEnum):
    """What may be done with a chunk, given its claim."""

    SEND = "send"  # claim it and call the vendor
    HOLD = "hold"  # its time has not come
    WAIT = "wait"  # another attempt is calling the vendor right now
    MARK_UNKNOWN = "mark_unknown"  # an attempt died mid-call: its recipients become unknown
    FINISHED = "finished"  # nothing more to send for it


def next_step(claim: Claim, now: float, lease_s: float, held_grace_s: float = 0) -> Next:
    """The one decision dispatch and the sweeper both take: may this chunk be sent (again)?

    A chunk is sent again only when its claim proves the vendor took none of its recipients
    (never claimed, held, or `retry`); an attempt that may have reached the vendor is never
    repeated, it makes the recipients `unknown`."""
    state = claim.state
    if state is None or state == ChunkState.RETRY:
        return Next.SEND
    if state == ChunkState.HELD:
        return Next.SEND if now >= (claim.due_at or 0) + held_grace_s else Next.HOLD
    if state == ChunkState.INFLIGHT:
        return Next.WAIT if now - claim.claimed_at < lease_s else Next.MARK_UNKNOWN
    if state == ChunkState.UNKNOWN:
        return Next.MARK_UNKNOWN
    return Next.FINISHED
