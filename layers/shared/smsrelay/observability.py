"""Logger, Tracer and Metrics, created once; everything imports them from here."""

from __future__ import annotations

import re

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="smsrelay")
tracer = Tracer(service="smsrelay")
metrics = Metrics(namespace="smsrelay", service="smsrelay")

_NUMBER = re.compile(r"\+?\d{7,15}")


def mask_number(number: str) -> str:
    """'+8613800138000' -> '+86138****8000': enough to correlate, not enough to call."""
    if len(number) <= 6:
        return "*" * len(number)
    keep_head = min(6, len(number) - 4)
    return number[:keep_head] + "*" * (len(number) - keep_head - 4) + number[-4:]


def mask_numbers_in(text: str) -> str:
    """Mask every phone-number-like run of digits in free text (raw bodies logged on errors)."""
    return _NUMBER.sub(lambda m: mask_number(m.group(0)), text)


def vendor_metric(name: str, vendor: str, value: float, unit: str = "Count") -> None:
    """A metric with a `vendor` dimension (EMF, flushed at once so dimensions do not mix)."""
    from aws_lambda_powertools.metrics import single_metric

    with single_metric(name=name, unit=unit, value=value, namespace="smsrelay") as metric:
        metric.add_dimension(name="vendor", value=vendor)
