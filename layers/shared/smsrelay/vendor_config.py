"""Vendor settings (one Secrets Manager secret per vendor, or one JSON file locally) and adapters.

Secrets are fetched with Powertools Parameters and cached for `secrets_max_age_s`; adapters
(and their HTTP sessions) are rebuilt only when a vendor's settings change.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from .config import Settings, get_settings
from .vendors import VENDOR_IDS, VendorAdapter, create_adapter


class VendorNotConfigured(LookupError):
    pass


_lock = threading.Lock()
_adapters: dict[str, tuple[str, VendorAdapter]] = {}
_file_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _from_file(path: str) -> dict[str, Any]:
    import os

    mtime = os.stat(path).st_mtime
    cached = _file_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    _file_cache[path] = (mtime, data)
    return data


def vendor_settings(vendor_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The raw settings dict of one vendor; VendorNotConfigured when it has none or is disabled."""
    settings = settings or get_settings()
    if settings.vendor_settings_file:
        raw = _from_file(settings.vendor_settings_file).get(vendor_id)
    else:
        if not settings.vendor_secret_prefix:
            raise VendorNotConfigured(f"no secret configured for vendor {vendor_id!r} (VENDOR_SECRET_PREFIX)")
        from aws_lambda_powertools.utilities import parameters

        secret = settings.vendor_secret_prefix + vendor_id
        try:
            raw = parameters.get_secret(secret, transform="json", max_age=settings.secrets_max_age_s)
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


def get_adapter(vendor_id: str, settings: Settings | None = None) -> VendorAdapter:
    raw = vendor_settings(vendor_id, settings)
    fingerprint = json.dumps(raw, sort_keys=True, default=str)
    with _lock:
        cached = _adapters.get(vendor_id)
        if cached and cached[0] == fingerprint:
            return cached[1]
        adapter = create_adapter(vendor_id, raw)
        _adapters[vendor_id] = (fingerprint, adapter)
        return adapter


def configured_vendors(settings: Settings | None = None) -> list[str]:
    result = []
    for vendor_id in VENDOR_IDS:
        try:
            vendor_settings(vendor_id, settings)
        except VendorNotConfigured:
            continue
        result.append(vendor_id)
    return result


def reset_caches() -> None:
    """For tests: forget adapters and cached settings."""
    with _lock:
        _adapters.clear()
        _file_cache.clear()
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
