"""Vendor adapters behind one interface, and the registry: vendor id -> adapter.

Adding a vendor means one new module here and one line in `_ADAPTERS`. Modules are imported
on first use so a function only pays for the vendors it talks to.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from .base import PushReply, RawRequest, VendorAdapter, VendorSettings
from .errors import (
    InvalidInput,
    VendorConnectError,
    VendorError,
    VendorHTTPError,
    VendorParseError,
    VendorRequestError,
    VendorTimeout,
    VendorUnsupported,
)
from .models import (
    Balance,
    Capability,
    DeliveryReport,
    InboundMessage,
    Outcome,
    PullBatch,
    PushBatch,
    ReportQuery,
    ReportStatus,
    SendOptions,
    SubmitResult,
    UnreadableRecord,
)

# vendor id -> "module:Class"
_ADAPTERS: dict[str, str] = {
    "sms57": "smsrelay.vendors.sms57:Sms57Adapter",
    "kxt3": "smsrelay.vendors.kxt3:Kxt3Adapter",
    "smsadmin": "smsrelay.vendors.smsadmin:SmsAdminAdapter",
    "intl": "smsrelay.vendors.intl:IntlAdapter",
    "santo": "smsrelay.vendors.santo:SantoAdapter",
}

VENDOR_IDS: tuple[str, ...] = tuple(_ADAPTERS)


def adapter_class(vendor_id: str) -> type[VendorAdapter]:
    try:
        target = _ADAPTERS[vendor_id]
    except KeyError:
        raise KeyError(f"unknown vendor {vendor_id!r}; known: {', '.join(VENDOR_IDS)}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_adapter(vendor_id: str, settings: VendorSettings | Mapping[str, Any]) -> VendorAdapter:
    return adapter_class(vendor_id)(settings)


__all__ = [
    "VENDOR_IDS",
    "Balance",
    "Capability",
    "DeliveryReport",
    "InboundMessage",
    "InvalidInput",
    "Outcome",
    "PullBatch",
    "PushBatch",
    "PushReply",
    "RawRequest",
    "ReportQuery",
    "ReportStatus",
    "SendOptions",
    "SubmitResult",
    "UnreadableRecord",
    "VendorAdapter",
    "VendorConnectError",
    "VendorError",
    "VendorHTTPError",
    "VendorParseError",
    "VendorRequestError",
    "VendorSettings",
    "VendorTimeout",
    "VendorUnsupported",
    "adapter_class",
    "create_adapter",
]
