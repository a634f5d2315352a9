"""Read side of the status API: one message with its history, one request with its counters."""

from __future__ import annotations

import base64
import json
import re

from ..dal import MessageItem, NotFound, RequestRecord, Store, split_message_id
from ..models import (
    MessageView,
    RejectedRecipient,
    RejectionsView,
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


def message_view(item: MessageItem) -> MessageView:
    return MessageView(
        message_id=item.message_id,
        request_id=item.request_id,
        to=item.to,
        vendor=item.vendor,
        status=item.status,
        vendor_ref=item.vendor_ref,
        code=item.code,
        description=item.description,
        client_ref=item.client_ref,
        segments=item.segments,
        history=list(item.history),
    )


def get_message(store: Store, value: str) -> MessageView:
    request_id, index = split_message_id(value)
    return message_view(store.messages.get(_known_shape(request_id), index))


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


def _rows_bound(store: Store, request: RequestRecord) -> int:
    """One past the last row index that may have a message."""
    if request.rows_total is not None:
        return request.rows_total
    parts = store.requests.list_parts(request.request_id)
    return max((p.last_row for p in parts), default=-1) + 1


def get_request(
    store: Store, request_id: str, next_token: str | None = None, limit: int = PAGE_SIZE
) -> RequestView:
    request = store.requests.load(_known_shape(request_id))
    start = _decode_token(next_token) or 0
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise BadToken("next_token: not a token this API gave out; start again without it")
    items, next_start = store.messages.page(
        request_id, _rows_bound(store, request), start, max(1, min(limit, 1000))
    )
    counts = {status.value: request.count(f"c_{status.value}") for status in Status}
    counts["invalid"] = request.count("rejected_count")
    return RequestView(
        request_id=request_id,
        client_ref=request.client_ref,
        created_at=request.created_at,
        state=request.state,
        total=request.count("total"),
        rejected_count=request.count("rejected_count"),
        counts=counts,
        error=request.error,
        messages=[message_view(i) for i in items],
        next_token=_encode_token(next_start) if next_start is not None else None,
    )


def get_rejections(
    store: Store, request_id: str, next_token: str | None = None, limit: int = PAGE_SIZE
) -> RejectionsView:
    """Every number refused at send, in row order, page by page (parts without any are skipped)."""
    request = store.requests.load(_known_shape(request_id))
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
    parts = [p.number for p in store.requests.list_parts(request_id) if p.rejected]
    found: list[RejectedRecipient] = []
    token = None
    for number in [p for p in parts if p >= part]:
        page, more = store.requests.list_rejections(
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
        state=request.state,
        rejected_count=request.count("rejected_count"),
        rejected=found,
        next_token=token,
    )
