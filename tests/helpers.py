"""Helpers every test module shares."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(check: Callable[[], object], timeout_s: float = 10, what: str = "condition") -> None:
    """Poll `check` until it is true (a server thread on a loaded machine may lag a client)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
