"""Vendor adapters behind one interface, and the registry: vendor id -> adapter.

A vendor is a module of this package named by its id (`sms57.py` -> `sms57`) holding one
`VendorAdapter` subclass: the registry finds the modules without importing them, and imports a
vendor's module only when its adapter is first asked for (a function pays for the vendors it
talks to). Adding a vendor means adding its module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from functools import cache
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

#: modules of this package that are not vendors
_SHARED_MODULES = frozenset({"base", "errors", "models"})

#: every vendor id, in a stable order (the module names, sorted)
VENDOR_IDS: tuple[str, ...] = tuple(
    sorted(
        m.name
        for m in pkgutil.iter_modules(__path__)
        if not m.name.startswith("_") and m.name not in _SHARED_MODULES and not m.ispkg
    )
)


@cache
def adapter_class(vendor_id: str) -> type[VendorAdapter]:
    if vendor_id not in VENDOR_IDS:
        raise KeyError(f"unknown vendor {vendor_id!r}; known: {', '.join(VENDOR_IDS)}")
    module = importlib.import_module(f"{__name__}.{vendor_id}")
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, VendorAdapter)
        and getattr(value, "vendor_id", None) == vendor_id
    ]
    if len(found) != 1:
        raise TypeError(f"{module.__name__} must define one VendorAdapter with vendor_id = {vendor_id!r}")
    return found[0]


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
