"""Accept a send request: normalise and route every number, store one item per recipient,
and enqueue vendor-sized chunks for dispatch. Big requests are split into parts that `send`
processes through its own queue, so no single invocation has to write a million items."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache

from ..config import Settings, get_settings
from ..dal import Store, message_id, new_request_id, utcnow
from ..models import (
    SMALL_REQUEST,
    ChunkItem,
    DispatchChunk,
    RejectedRecipient,
    SendAnswer,
    SendPart,
    SendRequest,
    SendWindow,
)
from ..numbers import InvalidNumber, normalise
from ..observability import logger, metrics
from ..segments import segments
from ..vendor_config import VendorNotConfigured, vendor_settings
from ..vendors import Capability, adapter_class
from . import quiet_hours
from .common import dumps, send_batches, vendor_batch_limit, vendor_supports
from .health import HealthView
from .suppression import OPTED_OUT, suppressed

CHUNK_BYTES = 200_000  # one dispatch message stays well under SQS's 256 KB


class RequestRefused(ValueError):
    """The request as a whole cannot be taken (e.g. an unknown vendor)."""


def accept(request: SendRequest, settings: Settings | None = None, store: Store | None = None) -> SendAnswer:
    settings = settings or get_settings()
    store = store or Store(settings)
    routable = _routable_vendors(request, settings)
    health = HealthView.load(store, routable)
    steered: dict[tuple[str, ...], tuple[str, ...]] = {}
    rejected: list[RejectedRecipient] = []
    numbers: list[str] = []
    raws: list[str] = []
    contents: list[str] = []
    route_ids: dict[tuple[tuple[str, ...], tuple[str, str] | None], int] = {}
    route_of: list[int] = []
    seen: set[tuple[str, str]] = set()
    personalised = request.messages is not None
    for raw, content in request.pairs():
        try:
            number = normalise(raw, settings.default_region)
        except InvalidNumber as exc:
            rejected.append(RejectedRecipient(to=raw, reason=f"invalid_number: {exc}"))
            continue
        if (number, content) in seen:
            continue  # duplicates are dropped
        seen.add((number, content))
        route = tuple([request.vendor] if request.vendor else settings.route_for(number))
        route = tuple(v for v in route if v in routable)
        if not route:
            rejected.append(
                RejectedRecipient(to=raw, reason="no_route: no configured vendor serves this number")
            )
            continue
        if route not in steered:  # an open circuit or a low balance sends traffic to the next vendor
            steered[route] = health.steer(route)
        route = steered[route]
        window = request.window or settings.window_for(number)
        too_long = _too_long(content, route[0])
        if too_long:
            rejected.append(RejectedRecipient(to=raw, reason=too_long))
            continue
        numbers.append(number)
        raws.append(raw)
        contents.append(content)
        window_key = (window.start, window.end) if window else None
        route_of.append(route_ids.setdefault((route, window_key), len(route_ids)))
    if numbers and request.category != "transactional":
        blocked = suppressed(numbers, store)
        if blocked:
            keep = [i for i, number in enumerate(numbers) if number not in blocked]
            rejected.extend(
                RejectedRecipient(to=raws[i], reason=f"{OPTED_OUT}: the recipient opted out")
                for i, number in enumerate(numbers)
                if number in blocked
            )
            numbers = [numbers[i] for i in keep]
            contents = [contents[i] for i in keep]
            route_of = [route_of[i] for i in keep]

    request_id = new_request_id()
    store.create_request(
        request_id,
        client_ref=request.client_ref,
        sender_id=request.sender_id,
        total=len(numbers),
        invalid=len(rejected),
        content=request.content,
    )
    routes = [list(r) for r, _ in route_ids]
    windows = [SendWindow(start=w[0], end=w[1]) if w else None for _, w in route_ids]
    parts = [
        SendPart(
            smsrelay_part=n,
            request_id=request_id,
            start_index=start,
            numbers=numbers[start : start + settings.part_size],
            contents=contents[start : start + settings.part_size] if personalised else None,
            content=None if personalised else request.content,
            routes=routes,
            route_of=route_of[start : start + settings.part_size] if len(routes) > 1 else None,
            windows=windows if any(windows) else None,
            send_at=request.send_at,
            sender_id=request.sender_id,
            client_ref=request.client_ref,
        )
        for n, start in enumerate(range(0, len(numbers), settings.part_size))
    ]
    if len(parts) == 1:
        process_part(parts[0], settings, store)
    elif parts:  # fan out: each part becomes one invocation of `send` through its queue
        send_batches(settings.send_queue_url, [dumps(p) for p in parts])
    segment_total, cost = _segments_and_cost(numbers, contents, route_of, routes)
    metrics.add_metric(name="Accepted", unit="Count", value=len(numbers))
    metrics.add_metric(name="Segments", unit="Count", value=segment_total)
    metrics.add_metric(name="RejectedAtSend", unit="Count", value=len(rejected))
    logger.info(
        "send request accepted",
        extra={
            "request_id": request_id,
            "accepted": len(numbers),
            "rejected": len(rejected),
            "parts": len(parts),
        },
    )
    return SendAnswer(
        request_id=request_id,
        accepted=len(numbers),
        rejected=rejected,
        message_ids=[message_id(request_id, i) for i in range(len(numbers))]
        if len(numbers) <= SMALL_REQUEST
        else None,
        segments=segment_total,
        estimated_cost=cost,
    )


@lru_cache(maxsize=4096)
def segment_count(content: str) -> int:
    return segments(content).count


@lru_cache(maxsize=16)
def _content_limit(vendor: str) -> int | None:
    # The document's limit is a class attribute: no need to read the vendor's settings per recipient.
    return adapter_class(vendor).max_content_chars


def _too_long(content: str, vendor: str) -> str | None:
    """A text longer than the vendor takes is refused before any call, with the limit in the reason."""
    limit = _content_limit(vendor)
    if limit and len(content) > limit:
        return f"content_too_long: {len(content)} characters, {vendor} takes at most {limit}"
    return None


def _segments_and_cost(
    numbers: list[str], contents: list[str], route_of: list[int], routes: list[list[str]]
) -> tuple[int, dict[str, str] | None]:
    """Segments of every accepted message, and their estimated cost per first-choice vendor."""
    per_vendor: dict[str, int] = {}
    for i in range(len(numbers)):
        vendor = routes[route_of[i]][0] if routes else ""
        per_vendor[vendor] = per_vendor.get(vendor, 0) + segment_count(contents[i])
    cost: dict[str, str] = {}
    for vendor, count in per_vendor.items():
        try:
            price = vendor_settings(vendor).get("price_per_segment")
        except VendorNotConfigured:
            price = None
        if price is not None:
            cost[vendor] = str(Decimal(str(price)) * count)
    return sum(per_vendor.values()), cost or None


def _routable_vendors(request: SendRequest, settings: Settings) -> set[str]:
    from ..vendor_config import configured_vendors
    from ..vendors import VENDOR_IDS

    configured = set(configured_vendors(settings))
    if request.vendor is not None:
        if request.vendor not in VENDOR_IDS:
            raise RequestRefused(
                f"vendor: unknown vendor {request.vendor!r}; use one of {', '.join(VENDOR_IDS)}"
            )
        if request.vendor not in configured:
            raise RequestRefused(
                f"vendor: {request.vendor!r} is not configured or disabled; fill its settings"
            )
    return configured


def process_part(part: SendPart, settings: Settings | None = None, store: Store | None = None) -> int:
    """Write the part's message items once, count them once, enqueue its chunks (idempotent)."""
    settings = settings or get_settings()
    store = store or Store(settings)
    chunks = plan_part_chunks(part)
    rows = [
        (
            item.index,
            item.to,
            chunk.vendor,
            chunk.chunk_id,
            part.contents[item.index - part.start_index] if part.contents is not None else None,
            chunk.fallback,
            segment_count(
                part.contents[item.index - part.start_index]
                if part.contents is not None
                else part.content or ""
            ),
            f"{chunk.window.start}-{chunk.window.end}" if chunk.window else None,
            chunk.zone,
        )
        for chunk in chunks
        for item in chunk.items
    ]
    counted = part.smsrelay_part in set(store.get_request(part.request_id).get("parts", set()))
    if not counted:
        store.put_messages(part.request_id, rows, part.client_ref)
        store.record_part(part.request_id, part.smsrelay_part, len(rows))
    now = utcnow()
    delays = [_hold_delay(chunk, now) for chunk in chunks]
    send_batches(settings.dispatch_queue_url, [dumps(c) for c in chunks], delays)
    return len(chunks)


def plan_part_chunks(part: SendPart) -> list[DispatchChunk]:
    """Group the part's recipients by route (and by text unless the vendor takes personalised
    batches natively) and cut each group to the first vendor's batch size."""
    groups: dict[tuple[int, str | None, str | None], list[ChunkItem]] = {}
    native: dict[str, bool] = {}
    for i, number in enumerate(part.numbers):
        route_id = part.route_of[i] if part.route_of else 0
        vendor = part.routes[route_id][0]
        # with quiet hours, recipients are grouped by time zone: one zone decides for a chunk
        zone = quiet_hours.zone_of(number) if part.windows and part.windows[route_id] else None
        if part.contents is None:
            key, item = (route_id, None, zone), ChunkItem(index=part.start_index + i, to=number)
        else:
            if vendor not in native:
                native[vendor] = vendor_supports(vendor, Capability.PERSONALISED_NATIVE)
            content = part.contents[i]
            key = (route_id, None if native[vendor] else content, zone)
            item = ChunkItem(
                index=part.start_index + i, to=number, content=content if native[vendor] else None
            )
        groups.setdefault(key, []).append(item)
    chunks: list[DispatchChunk] = []
    for (route_id, group_content, zone), items in groups.items():
        route = part.routes[route_id]
        content = part.content if part.contents is None else group_content
        for batch in cut(items, route[0], content):
            chunks.append(
                DispatchChunk(
                    chunk_id=f"{part.request_id}.{part.smsrelay_part}.{len(chunks)}",
                    request_id=part.request_id,
                    vendor=route[0],
                    fallback=route[1:],
                    content=content,
                    items=batch,
                    send_at=part.send_at,
                    sender_id=part.sender_id,
                    client_ref=part.client_ref,
                    window=part.windows[route_id] if part.windows else None,
                    zone=zone,
                )
            )
    return chunks


def cut(items: Sequence[ChunkItem], vendor: str, content: str | None) -> list[list[ChunkItem]]:
    """Split items into vendor-sized batches that also fit one queue message."""
    try:
        limit = vendor_batch_limit(vendor)
    except VendorNotConfigured:
        limit = 100
    base = len((content or "").encode()) + 600
    batches: list[list[ChunkItem]] = []
    current: list[ChunkItem] = []
    size = base
    for item in items:
        item_size = len(item.to) + 24 + (len(item.content.encode()) + 14 if item.content else 0)
        if current and (len(current) >= limit or size + item_size > CHUNK_BYTES):
            batches.append(current)
            current, size = [], base
        current.append(item)
        size += item_size
    if current:
        batches.append(current)
    return batches


def _hold_delay(chunk: DispatchChunk, now: dt.datetime) -> int:
    """Chunks for a later `send_at` wait in the queue where the vendor cannot schedule natively;
    chunks outside their quiet-hours window wait where the vendor has no native window."""
    window_wait = 0
    if chunk.window is not None and not vendor_supports(chunk.vendor, Capability.DAILY_WINDOW):
        window_wait = quiet_hours.seconds_until_open(chunk.window, chunk.zone)
    if chunk.send_at is None or vendor_supports(chunk.vendor, Capability.SCHEDULED_SEND):
        return window_wait
    return max(window_wait, int((chunk.send_at - now).total_seconds()))
