"""One simulator per vendor: vendor id -> simulator class (see base.py for the test numbers)."""

from __future__ import annotations

import importlib

from .base import VendorSimulator

_SIMULATORS: dict[str, str] = {
    "sms57": "smsrelay_local.simulators.sms57:Sms57Simulator",
    "kxt3": "smsrelay_local.simulators.kxt3:Kxt3Simulator",
    "smsadmin": "smsrelay_local.simulators.smsadmin:SmsAdminSimulator",
    "intl": "smsrelay_local.simulators.intl:IntlSimulator",
    "santo": "smsrelay_local.simulators.santo:SantoSimulator",
}


def simulator_class(vendor_id: str) -> type[VendorSimulator]:
    module_name, class_name = _SIMULATORS[vendor_id].split(":")
    return getattr(importlib.import_module(module_name), class_name)


__all__ = ["VendorSimulator", "simulator_class"]
