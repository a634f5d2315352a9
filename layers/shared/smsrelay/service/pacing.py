"""Per-vendor pacing of bulk chunks: at most `bulk_rate_per_s` messages a second to a vendor,
across every dispatch invocation. The priority lane is never paced.

A vendor's schedule is one DynamoDB item (`B#{vendor}`): when its next bulk slot is free. A
chunk of n recipients takes a slot of n / rate seconds, moving the item from what it read to
max(free, now) + n / rate with a conditional write on what it read: two invocations never take
the same slot. The chunk is sent at its slot's start, waiting in-process up to `SLEEP_S`; a slot
further off is not taken: the chunk goes back to the queue (SQS delay) and asks again when it
is within reach. Slots never overlap, so in any window of T seconds a vendor gets at most
rate x T bulk messages plus one chunk.

Why a slot schedule in DynamoDB: concurrent Lambdas share nothing else that is consistent, and
a conditional write on one small item costs one read and one write per chunk (not per message).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..dal import Store

#: a slot this close is waited for in the invocation (billed, but cheaper than a queue round trip)
SLEEP_S = 2.0
#: reads and conditional writes before giving up for this time (many invocations racing for slots)
ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Decision:
    """What a chunk does about its vendor's schedule: take a slot and wait `wait_s` for it, or
    take none and ask again in `wait_s`."""

    take: bool
    wait_s: float
    free_at: float  # the schedule after a taken slot


def decide(free_at: float | None, now: float, cost_s: float, sleep_s: float = SLEEP_S) -> Decision:
    start = max(free_at or 0.0, now)
    wait = start - now
    if wait <= sleep_s:
        return Decision(True, wait, start + cost_s)
    return Decision(False, wait - sleep_s, free_at or now)


class Pacer:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store, self.clock, self.sleep = store, clock, sleep

    def admit(self, vendor: str, rate_per_s: float, count: int) -> float:
        """0 once the chunk may be sent now (its slot taken, waited for); else the seconds after
        which to ask again (no slot taken)."""
        for _ in range(ATTEMPTS):
            seen = self.store.get_pace(vendor)
            decision = decide(seen, self.clock(), count / rate_per_s)
            if not decision.take:
                return decision.wait_s
            if self.store.move_pace(vendor, seen, decision.free_at):
                if decision.wait_s > 0:
                    self.sleep(decision.wait_s)
                return 0.0
        return 1.0
