"""Dispatch chunks: how they are planned, cut, regrouped and rebuilt, the states of their claim,
and the two decisions everyone asks of them (may it be sent now? how long must it wait?).

A chunk is one vendor request's worth of recipients. Its claim item in DynamoDB says what
happened to it; every move of the claim is conditional on the state (and attempt) it was read
in, so two actors (a redelivery, a second dispatch, the sweeper) never both act on one chunk.
A message belongs to the chunk its `chunk` attribute names; only that chunk may send it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..chunk_state import FINISHED, ChunkState, Claim, Next, next_step
from ..dal import MessageItem
from ..models import ChunkItem, DispatchChunk, SendOptionsSpec, SendWindow
from ..vendors import Capability, VendorAdapter
from . import quiet_hours

__all__ = ["FINISHED", "ChunkState", "Claim", "Next", "next_step"]

#: one dispatch message stays well under SQS's 256 KB
CHUNK_BYTES = 200_000


# --------------------------------------------------------------------------- waiting


def wait_seconds(chunk: DispatchChunk, adapter: VendorAdapter | None, now: dt.datetime) -> int:
    """How long a chunk must still wait before its vendor may be called (0: call now).

    A later `send_at` waits where the vendor cannot schedule natively; a quiet-hours window
    waits where the vendor cannot keep the window itself."""
    wait = quiet_hours.hold_seconds(chunk, adapter)  # quiet hours keep their own clock (tests move it)
    if chunk.send_at is not None and not (adapter and adapter.supports(Capability.SCHEDULED_SEND)):
        wait = max(wait, math.ceil((chunk.send_at - now).total_seconds()))
    return max(0, wait)


# --------------------------------------------------------------------------- planning


def cut(items: Sequence[ChunkItem], limit: int, content: str | None) -> list[list[ChunkItem]]:
    """Split items into batches of at most `limit` that also fit one queue message."""
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


def group_for(
    items: Iterable[ChunkItem], common: str | None, native: bool
) -> dict[str | None, list[ChunkItem]]:
    """Items by the text of the vendor request that carries them: one group per distinct text,
    or one group of personalised items where the vendor takes different texts in one request."""
    groups: dict[str | None, list[ChunkItem]] = {}
    for item in items:
        text = item.content if item.content is not None else common
        if native and common is None:
            groups.setdefault(None, []).append(item)
        else:
            groups.setdefault(text, []).append(item.model_copy(update={"content": None}))
    return groups


def regroup(
    chunk: DispatchChunk,
    items: Sequence[ChunkItem],
    *,
    vendor: str,
    fallback: list[str],
    limit: int,
    native: bool,
    prefix: str,
    hop: int,
) -> list[DispatchChunk]:
    """Follow-up chunks for `items` of `chunk` on `vendor` (fail-over): regrouped by text as
    that vendor needs, cut to its size; ids `{prefix}.{n}`, the same for the same input."""
    common = chunk.content
    chunks: list[DispatchChunk] = []
    for text, group in group_for(items, common, native).items():
        for batch in cut(group, limit, text):
            chunks.append(
                chunk.model_copy(
                    update={
                        "chunk_id": f"{prefix}.{len(chunks)}",
                        "vendor": vendor,
                        "fallback": fallback,
                        "content": text,
                        "items": batch,
                        "hop": hop,
                    }
                )
            )
    return chunks


def rebuild(chunk_id: str, messages: Sequence[MessageItem], options: SendOptionsSpec) -> DispatchChunk:
    """A chunk from its stored messages (same vendor, route, text or texts, window): what the
    sweeper and a resumed acceptance send when the queue message is lost."""
    first = messages[0]
    texts = {m.content for m in messages}
    personalised = any(t is not None for t in texts)
    common = (texts.pop() if len(texts) == 1 else None) if personalised else options.content
    return DispatchChunk(
        chunk_id=chunk_id,
        request_id=first.request_id,
        vendor=first.vendor or "",
        fallback=list(first.fallback),
        content=common,
        items=[
            ChunkItem(index=m.index, to=m.to, content=m.content if personalised and common is None else None)
            for m in messages
        ],
        send_at=options.send_at,
        sender_id=options.sender_id,
        client_ref=first.client_ref or options.client_ref,
        window=first.window,
        zone=first.zone,
        hop=first.hop,
    )


@dataclass(frozen=True, slots=True)
class Planned:
    """One recipient as acceptance decided it: its route (vendors in fail-over order) and window."""

    index: int
    to: str
    content: str | None  # its own text (personalised), else None: the request's text
    route: tuple[str, ...]
    window: SendWindow | None = None


@dataclass(frozen=True)
class VendorShape:
    """What planning needs of a vendor: its batch size, and whether one request takes many texts."""

    limit: int
    native_personalised: bool


def plan(
    recipients: Sequence[Planned],
    *,
    prefix: str,
    request_id: str,
    options: SendOptionsSpec,
    shape: Callable[[str], VendorShape],
    default_zone: str,
) -> list[DispatchChunk]:
    """Chunks for recipients in order: grouped by route, window, time zone (one zone decides for
    a held chunk) and text (unless the first vendor takes different texts in one request), cut
    to the first vendor's size. Ids `{prefix}.{n}`: the same recipients plan the same chunks."""
    groups: dict[tuple[Any, ...], list[ChunkItem]] = {}
    for r in recipients:
        zone = quiet_hours.zone_of(r.to, default_zone) if r.window else None
        native = r.content is not None and shape(r.route[0]).native_personalised
        text = None if native else (r.content if r.content is not None else options.content)
        window_key = (r.window.start, r.window.end) if r.window else None
        key = (r.route, window_key, zone, native, text)
        groups.setdefault(key, []).append(
            ChunkItem(index=r.index, to=r.to, content=r.content if native else None)
        )
    chunks: list[DispatchChunk] = []
    for (route, window_key, zone, _native, text), items in groups.items():
        for batch in cut(items, shape(route[0]).limit, text):
            chunks.append(
                DispatchChunk(
                    chunk_id=f"{prefix}.{len(chunks)}",
                    request_id=request_id,
                    vendor=route[0],
                    fallback=list(route[1:]),
                    content=text,
                    items=batch,
                    send_at=options.send_at,
                    sender_id=options.sender_id,
                    client_ref=options.client_ref,
                    window=SendWindow(start=window_key[0], end=window_key[1]) if window_key else None,
                    zone=zone,
                )
            )
    return chunks
