"""Read side of the status API: one message with its history, one request with its counters."""

from __future__ import annotations

import base64
import re

from ..dal import NotFound, Store, message_id, split_message_id
from ..models import HistoryEntry, MessageView, RequestView, Status

PAGE_SIZE = 100
#: what a request id can look like; anything else is not one of ours (and must not reach DynamoDB,
#: which refuses keys over 2 KB with an error, not an empty answer)
_REQUEST_ID = re.compile(r"[0-9A-Za-z_.]{1,64}")


def _known_shape(request_id: str) -> str:
    if not _REQUEST_ID.fullmatch(request_id):
        raise NotFound(f"{request_id[:80]!r} is not a request id")
    return request_id


def message_view(item: dict) -> MessageView:
    return MessageView(
        message_id=message_id(item["request_id"], int(item["idx"])),
        request_id=item["request_id"],
        to=item["to"],
        vendor=item.get("vendor"),
        status=Status(item["status"]),
        vendor_ref=item.get("vendor_ref"),
        code=item.get("code"),
        description=item.get("description"),
        client_ref=item.get("client_ref"),
        segments=int(item["segments"]) if "segments" in item else None,
        history=[HistoryEntry.model_validate(h) for h in item.get("history", [])],
    )


def get_message(store: Store, value: str) -> MessageView:
    request_id, index = split_message_id(value)
    return message_view(store.get_message(_known_shape(request_id), index))


def get_request(
    store: Store, request_id: str, next_token: str | None = None, limit: int = PAGE_SIZE
) -> RequestView:
    request = store.get_request(_known_shape(request_id))
    total = int(request.get("total", 0))
    start = 0
    if next_token:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise NotFound("next_token is not one this API gave out") from None
    items, next_start = store.list_messages(request_id, total, start, max(1, min(limit, 1000)))
    counts = {status.value: int(request.get(f"c_{status.value}", 0)) for status in Status}
    counts["invalid"] = int(request.get("invalid", 0))
    return RequestView(
        request_id=request_id,
        client_ref=request.get("client_ref"),
        created_at=request["created_at"],
        total=total,
        counts=counts,
        messages=[message_view(i) for i in items],
        next_token=base64.urlsafe_b64encode(str(next_start).encode()).decode()
        if next_start is not None
        else None,
    )
