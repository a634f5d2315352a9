"""Vendor settings (one Secrets Manager secret per vendor, or one JSON file locally) and adapters.

Secrets are fetched with Powertools Parameters and cached for `secrets_max_age_s`; adapters
(and their HTTP sessions) are rebuilt only when a vendor's settings change. One `Vendors` per
cold start (it lives in `Deps`)."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from .config import Settings
from .vendors import VENDOR_IDS, VendorAdapter, create_adapter


class VendorNotConfigured(LookupError):
    pass


class Vendors:
    """The adapter registry: vendor id -> its adapter, built from its current settings."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._adapters: dict[str, tuple[str, VendorAdapter]] = {}
        self._file: tuple[float, dict[str, Any]] | None = None

    def settings_of(self, vendor_id: str) -> dict[str, Any]:
        """The raw settings of one vendor; VendorNotConfigured when it has none or is disabled."""
        if self.settings.vendors and vendor_id not in self.settings.vendors:
            raise VendorNotConfigured(f"vendor {vendor_id!r} is not in the stack's Vendors list")
        if self.settings.vendor_settings_file:
            raw = self._from_file(self.settings.vendor_settings_file).get(vendor_id)
        else:
            prefix = self.settings.vendor_secret_prefix
            if not prefix:
                raise VendorNotConfigured(
                    f"no secret configured for vendor {vendor_id!r} (VENDOR_SECRET_PREFIX)"
                )
            from aws_lambda_powertools.utilities import parameters

            secret = prefix + vendor_id
            try:
                raw = parameters.get_secret(secret, transform="json", max_age=self.settings.secrets_max_age_s)
            except parameters.exceptions.TransformParameterError:
                raw = None
            except parameters.exceptions.GetParameterError as exc:
                if "ResourceNotFoundException" not in str(exc):
                    raise
                # Not in the stack's Vendors list: no secret was made for it.
                raise VendorNotConfigured(f"vendor {vendor_id!r} has no secret {secret!r}") from exc
        if not raw:
            raise VendorNotConfigured(
                f"vendor {vendor_id!r} has no settings (fill its secret with the JSON of the README)"
            )
        if raw.get("enabled", True) is False:
            raise VendorNotConfigured(f"vendor {vendor_id!r} is disabled")
        return raw

    def adapter(self, vendor_id: str) -> VendorAdapter:
        """The vendor's adapter; VendorNotConfigured when it cannot have one."""
        raw = self.settings_of(vendor_id)
        fingerprint = json.dumps(raw, sort_keys=True, default=str)
        with self._lock:
            cached = self._adapters.get(vendor_id)
            if cached and cached[0] == fingerprint:
                return cached[1]
            adapter = create_adapter(vendor_id, raw)
            self._adapters[vendor_id] = (fingerprint, adapter)
            return adapter

    def get(self, vendor_id: str) -> VendorAdapter | None:
        """The vendor's adapter, or None when it is not configured."""
        try:
            return self.adapter(vendor_id)
        except VendorNotConfigured:
            return None

    def configured(self) -> list[str]:
        result = []
        for vendor_id in self.settings.vendors or VENDOR_IDS:
            try:
                self.settings_of(vendor_id)
            except VendorNotConfigured:
                continue
            result.append(vendor_id)
        return result

    def forget(self) -> None:
        """Drop cached adapters and settings (a SnapStart restore: secrets may have changed)."""
        with self._lock:
            self._adapters.clear()
            self._file = None

    def _from_file(self, path: str) -> dict[str, Any]:
        mtime = os.stat(path).st_mtime
        if self._file and self._file[0] == mtime:
            return self._file[1]
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        self._file = (mtime, data)
        return data
