"""Read side of the status API: one message with its history, one request with its counters."""

from __future__ import annotations

import base64
import json
import re

from ..dal import NotFound, Store, message_id, split_message_id
from ..models import (
    HistoryEntry,
    MessageView,
    RejectedRecipient,
    RejectionsView,
    RequestState,
    RequestView,
    Status,
)

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


def _decode_token(next_token: str | None) -> object:
    if not next_token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(next_token.encode()).decode())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadToken("next_token: not a token this API gave out; start again without it") from None


def _encode_token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


class BadToken(ValueError):
    """A next_token that this API did not give out (the API answers 400)."""


def _rows_bound(store: Store, request: dict) -> int:
    """One past the last row index that may have a message."""
    if "rows_total" in request:
        return int(request["rows_total"])
    parts = store.list_parts(request["request_id"], "sk, last_row")
    return max((int(p.get("last_row", -1)) for p in parts), default=-1) + 1


def get_request(
    store: Store, request_id: str, next_token: str | None = None, limit: int = PAGE_SIZE
) -> RequestView:
    request = store.get_request(_known_shape(request_id))
    start = _decode_token(next_token) or 0
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise BadToken("next_token: not a token this API gave out; start again without it")
    items, next_start = store.list_messages(
        request_id, _rows_bound(store, request), start, max(1, min(limit, 1000))
    )
    counts = {status.value: int(request.get(f"c_{status.value}", 0)) for status in Status}
    counts["invalid"] = int(request.get("rejected_count", 0))
    return RequestView(
        request_id=request_id,
        client_ref=request.get("client_ref"),
        created_at=request["created_at"],
        state=RequestState(request.get("state", RequestState.ACCEPTED.value)),
        total=int(request.get("total", 0)),
        rejected_count=int(request.get("rejected_count", 0)),
        counts=counts,
        error=request.get("error"),
        messages=[message_view(i) for i in items],
        next_token=_encode_token(next_start) if next_start is not None else None,
    )


def get_rejections(
    store: Store, request_id: str, next_token: str | None = None, limit: int = PAGE_SIZE
) -> RejectionsView:
    """Every number refused at send, in row order, page by page (parts without any are skipped)."""
    request = store.get_request(_known_shape(request_id))
    cursor = _decode_token(next_token) or [0, None]
    if (
        not isinstance(cursor, list)
        or len(cursor) != 2
        or not isinstance(cursor[0], int)
        or not (cursor[1] is None or isinstance(cursor[1], int))
    ):
        raise BadToken("next_token: not a token this API gave out; start again without it")
    part, after = cursor
    limit = max(1, min(limit, 1000))
    parts = [
        int(p["sk"][2:]) for p in store.list_parts(request_id, "sk, rejected") if int(p.get("rejected", 0))
    ]
    found: list[RejectedRecipient] = []
    token = None
    for number in [p for p in parts if p >= part]:
        page, more = store.list_rejections(
            request_id, number, after if number == part else None, limit - len(found)
        )
        found += page
        if len(found) >= limit:
            if more or number != parts[-1]:
                token = _encode_token(
                    [number, page[-1].index] if more else [parts[parts.index(number) + 1], None]
                )
            break
    return RejectionsView(
        request_id=request_id,
        state=RequestState(request.get("state", RequestState.ACCEPTED.value)),
        rejected_count=int(request.get("rejected_count", 0)),
        rejected=found,
        next_token=token,
    )
