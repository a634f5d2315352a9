"""SnapStart priming for the functions callers wait on (send, status API, callbacks).

With the template's `SnapStart=true`, Lambda runs a function's init once per published version,
snapshots the memory, and restores the snapshot for each cold start. What init builds is then
free on every cold start: imports, pydantic schemas, Powertools, the function's Deps (all done
at import already) and the boto3 clients a function is known to need, which are otherwise made lazily on
the first call. Only under SnapStart (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`): elsewhere
clients stay lazy (moto must start before them in tests).

The runtime hooks come from `snapshot_restore_python`, which exists only in Lambda's Python
runtime (not on PyPI): guarded. After a restore, cached vendor settings are dropped, so a
secret changed since the snapshot (a new callback token) applies at once. Randomness needs no
hook: ids and tokens come from os.urandom (uuid4, secrets, SystemRandom), which a restore re-seeds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from aws_lambda_powertools.utilities import parameters

from .aws import client
from .vendor_config import Vendors

SNAP_START = "snap-start"


def prime(vendors: Vendors, services: Iterable[str]) -> bool:
    """Have the snapshot hold what a cold start would build later; True under SnapStart."""
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != SNAP_START:
        return False
    services = tuple(services)

    def before_snapshot() -> None:
        for service in services:
            client(service)

    def after_restore() -> None:
        vendors.forget()
        parameters.clear_caches()

    try:
        from snapshot_restore_python import (  # type: ignore[import-not-found]
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:  # not Lambda's runtime: prime now
        before_snapshot()
        return True
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return True
