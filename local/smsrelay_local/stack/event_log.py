"""The events smsrelay published on the stack's buses, as EventBridge accepted them: kept in
order, handed to listeners, waited for by tests, the demo and the bench."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("smsrelay.local")
Event = dict[str, Any]


class EventLog:
    def __init__(self) -> None:
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._listeners: list[Callable[[Event], None]] = []

    def add(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed")

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call `listener(event)` for every event added from now on."""
        self._listeners.append(listener)

    def events(self, detail_type: str | None = None) -> list[Event]:
        """The events so far, oldest first (of one detail-type if given)."""
        with self._cond:
            return [e for e in self._events if detail_type is None or e.get("detail-type") == detail_type]

    def wait_for(
        self, predicate: Callable[[Event], bool] | str | None = None, count: int = 1, timeout: float = 30.0
    ) -> list[Event]:
        """Wait until `count` events match (a detail-type or a predicate); TimeoutError otherwise."""
        if isinstance(predicate, str):
            detail_type = predicate
            predicate = lambda e: e.get("detail-type") == detail_type  # noqa: E731
        match = predicate or (lambda e: True)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self._events if match(e)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(found)} of {count} events after {timeout} s")
                self._cond.wait(left)

    def clear(self) -> None:
        with self._cond:
            self._events.clear()
