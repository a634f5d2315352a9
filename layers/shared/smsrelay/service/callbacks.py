"""One vendor push: token, source and credentials checked; parsed; applied; answered exactly
as the vendor expects. A refused push stores nothing. A push whose envelope cannot be read gets
400; inside a readable push each record stands alone: an unreadable one is logged (masked),
counted (`UnreadableRecords`) and skipped, the others are applied and the vendor gets its ack."""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass

from ..dal import StoreError
from ..deps import Deps
from ..events import EventPublishError
from ..observability import logger, mask_numbers_in, metrics, vendor_metric
from ..vendor_config import VendorNotConfigured
from ..vendors import RawRequest, UnreadableRecord, VendorParseError
from .reports import apply_reports, store_inbound

#: A busy gateway pushes thousands of reports in one array (sms57, kxt3: ~150 bytes each), and a
#: refused push is refused again on every retry: room for ~25,000 of them, under Lambda's 6 MB
#: payload once API Gateway has base64-encoded a form body.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: credential fields a push may carry in its body (kxt3 `pwd`, ...): their values never reach a log
_SECRET_FIELD = re.compile(
    r"""(?i)((?:pwd|password|passwd|cppwd|app_?secret|secret|token)["']?\s*[=:]\s*["']?)([^&"'\s,}]*)"""
)


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: str
    content_type: str = "text/plain"


FORBIDDEN = Reply(403, "forbidden")


def receive(deps: Deps, vendor: str, token: str, request: RawRequest) -> Reply:
    try:
        adapter = deps.vendors.adapter(vendor)
    except VendorNotConfigured:
        logger.warning("push for a vendor that is not configured", extra={"vendor": vendor})
        return FORBIDDEN
    expected = adapter.settings.callback_token.get_secret_value() if adapter.settings.callback_token else ""
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return _refused(vendor, "token")
    if adapter.settings.allowed_ips and not _ip_allowed(request.source_ip, adapter.settings.allowed_ips):
        return _refused(vendor, "source_ip")
    if len(request.body) > MAX_BODY_BYTES:
        metrics.add_metric(name="CallbackRefused", unit="Count", value=1)
        return Reply(413, "too large")
    if not adapter.check_push_credentials(request):
        return _refused(vendor, "credentials")
    try:
        batch = adapter.parse_push(request)
    except VendorParseError as exc:
        metrics.add_metric(name="CallbackUnparsable", unit="Count", value=1)
        logger.warning(
            "push could not be parsed",
            extra={
                "vendor": vendor,
                "error": loggable(str(exc)),
                "raw_body": loggable(request.body[:2000].decode("utf-8", "replace")),
            },
        )
        return Reply(400, "unparsable")
    note_unreadable(vendor, batch.unreadable, "push")
    try:
        applied = apply_reports(batch.reports, deps)
        stored = store_inbound(batch.inbound, deps)
    except (StoreError, EventPublishError) as exc:
        # 5xx so that vendors that retry, retry; what was applied stays applied (moves are idempotent).
        logger.error("push could not be stored", extra={"vendor": vendor, "error": str(exc)})
        return Reply(503, "store unavailable")
    logger.info(
        "push applied",
        extra={
            "vendor": vendor,
            "reports": len(batch.reports),
            "applied": applied.applied,
            "early": applied.early,
            "ignored": applied.ignored,
            "inbound": stored,
            "unreadable": len(batch.unreadable),
        },
    )
    ack = adapter.push_ack
    return Reply(ack.status_code, ack.body, ack.content_type)


def note_unreadable(vendor: str, records: list[UnreadableRecord], source: str) -> None:
    """Each unreadable record of a push or a pull: one log line (numbers masked), one count."""
    for record in records:
        logger.warning(
            "unreadable record skipped",
            extra={
                "vendor": vendor,
                "source": source,
                "error": loggable(record.reason),
                "raw_record": loggable(record.raw),
            },
        )
    if records:
        vendor_metric("UnreadableRecords", vendor, len(records))


def loggable(text: str) -> str:
    """Free text from a push, fit for a log line: phone numbers masked, credential values removed."""
    return mask_numbers_in(_SECRET_FIELD.sub(lambda m: m.group(1) + "***", text))


def _refused(vendor: str, why: str) -> Reply:
    metrics.add_metric(name="CallbackRefused", unit="Count", value=1)
    logger.warning("push refused", extra={"vendor": vendor, "reason": why})
    return FORBIDDEN


def _ip_allowed(source_ip: str, allowed: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowed)
