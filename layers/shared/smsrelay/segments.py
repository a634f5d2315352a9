"""How handsets split a text: encoding (GSM-7 or UCS-2) and segment count.

GSM-7: 160 septets in one segment, 153 per segment when concatenated; characters of the
extension table (e.g. € [ ] { } ~ ^ | \\) take two septets and are never split across segments.
UCS-2: 70 code units in one segment, 67 per segment when concatenated; a character outside the
BMP takes two units (a surrogate pair) and is never split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True)
class Segments:
    encoding: Literal["GSM-7", "UCS-2"]
    count: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def _pack(widths: list[int], single: int, multi: int) -> int:
    total = sum(widths)
    if total <= single:
        return 1
    count, used = 1, 0
    for width in widths:
        if used + width > multi:  # a character (or its escape / surrogate pair) never straddles two segments
            count += 1
            used = 0
        used += width
    return count


def segments(text: str) -> Segments:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        widths = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return Segments("GSM-7", _pack(widths, 160, 153), sum(widths))
    widths = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return Segments("UCS-2", _pack(widths, 70, 67), sum(widths))
