"""Per-vendor pacing of bulk chunks: at most `bulk_rate_per_s` messages a second to a vendor,
across every dispatch invocation. The priority lane is never paced.

A vendor's schedule is one DynamoDB item (`B#{vendor}`): when its next bulk slot is free. A
chunk of n recipients takes the next slot, n / rate seconds long, moving the item from what it
read to max(free, now) + n / rate with a conditional write on what it read: two invocations
never take the same slot. The chunk is sent at its slot's start: waiting in the invocation up
to `SLEEP_S`, else back in the queue (SQS delay, its claim `held` with the slot), and sent
without asking again when it comes back on time. One reservation per chunk: a long blast costs
one read and one write per chunk, not a chunk re-asking until its turn. A chunk back more than
`LATE_S` after its slot's start (a busy queue) takes a new slot, so late chunks cannot bunch up.
Slots never overlap, so any window of T seconds sees at most rate x (T + LATE_S) messages plus
one chunk.

Why a slot schedule in DynamoDB: concurrent Lambdas share nothing else that is consistent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..dal import Store

#: a slot this close is waited for in the invocation (billed, but cheaper than a queue round trip)
SLEEP_S = 2.0
#: a held chunk back this late for its slot takes a new one
LATE_S = 1.0
#: reads and conditional writes before giving up for now (many invocations racing for slots)
ATTEMPTS = 5


def next_slot(free_at: float | None, now: float, cost_s: float) -> tuple[float, float]:
    """(the slot's start, when the vendor's next slot is free after it)."""
    start = max(free_at or 0.0, now)
    return start, start + cost_s


class Pacer:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store, self.clock, self.sleep = store, clock, sleep

    def reserve(self, vendor: str, rate_per_s: float, count: int) -> float | None:
        """Take the vendor's next slot for `count` messages; its start (epoch s), or None when
        other invocations kept taking the slots first (ask again shortly)."""
        for _ in range(ATTEMPTS):
            seen = self.store.pacing.get(vendor)
            start, free_at = next_slot(seen, self.clock(), count / rate_per_s)
            if self.store.pacing.move(vendor, seen, free_at):
                return start
        return None

    def wait_for(self, start: float) -> float:
        """Wait in the invocation for a slot within SLEEP_S (0 after); else the seconds left."""
        wait = start - self.clock()
        if wait > SLEEP_S:
            return wait
        if wait > 0:
            self.sleep(wait)
        return 0.0

    def on_time(self, start: float) -> bool:
        return self.clock() - start <= LATE_S
