"""Follow the vendor secrets in the emulator, so that a changed secret applies to the local stack.

The local functions read the vendor settings file (fast, and the benchmarks count no secret
reads); `smsrelay setup --endpoint-url` writes Secrets Manager, as it would in a real account.
This thread copies a changed secret into the file, like a deployed function re-reading its secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .worker import Worker

log = logging.getLogger("smsrelay.local")


class SecretsMirror(Worker):
    def __init__(
        self,
        secretsmanager: Any,
        arns: dict[str, str],
        known: dict[str, dict[str, Any]],
        on_change: Callable[[dict[str, dict[str, Any]]], None],
        interval_s: float = 0.5,
    ) -> None:
        self._sm = secretsmanager
        self._arns = dict(arns)
        self._known = {vendor: dict(values) for vendor, values in known.items()}
        self._on_change = on_change
        self._interval_s = interval_s
        super().__init__("local-secrets-mirror")

    def check(self) -> dict[str, dict[str, Any]]:
        """Read every secret once; hand the vendors whose settings changed to `on_change`."""
        changed: dict[str, dict[str, Any]] = {}
        for vendor, arn in self._arns.items():
            try:
                text = self._sm.get_secret_value(SecretId=arn).get("SecretString") or ""
                values = json.loads(text) if text.strip() else {}
            except Exception as exc:  # an outside ARN, an empty or unreadable secret: nothing to copy
                log.debug("secret of %s not read: %s", vendor, exc)
                continue
            if isinstance(values, dict) and values and values != self._known.get(vendor):
                self._known[vendor] = values
                changed[vendor] = values
        if changed:
            self._on_change(changed)
        return changed

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            try:
                self.check()
            except Exception:
                log.exception("secrets mirror failed; trying again")
