"""One simulator per vendor: a module of this package named by the vendor id, holding one
`VendorSimulator` subclass (see base.py for the test numbers). Found without importing."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from .base import VendorSimulator

#: vendor ids with a simulator, in a stable order (the module names, sorted)
SIMULATED: tuple[str, ...] = tuple(
    sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base" and not m.name.startswith("_"))
)


@cache
def simulator_class(vendor_id: str) -> type[VendorSimulator]:
    if vendor_id not in SIMULATED:
        raise KeyError(f"no simulator for vendor {vendor_id!r}; known: {', '.join(SIMULATED)}")
    module = importlib.import_module(f"{__name__}.{vendor_id}")
    (found,) = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, VendorSimulator) and value.vendor_id == vendor_id
    ]
    return found


__all__ = ["SIMULATED", "VendorSimulator", "simulator_class"]
