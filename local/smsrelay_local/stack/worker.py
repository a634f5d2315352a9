"""The thread shell every background worker of the local stack shares: start, stop, join."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class Worker(ABC):
    """A daemon thread running `_run` until `stop()`; `_stopped` is what `_run` waits on."""

    #: how long join() waits for `_run` to notice the stop (plus the subclass's own work)
    join_timeout_s: float = 6.0

    def __init__(self, name: str) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for `_run` to end: at most `join_timeout_s`, or `timeout_s` when that is shorter."""
        if self._thread.is_alive():
            limit = self.join_timeout_s if timeout_s is None else min(timeout_s, self.join_timeout_s)
            self._thread.join(timeout=max(0.0, limit))

    @abstractmethod
    def _run(self) -> None: ...
