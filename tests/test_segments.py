"""Segments are counted the way handsets split texts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smsrelay.segments import GSM7_BASIC, GSM7_EXTENSION, segments


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # the extension table counts double
        ("€" * 81, "GSM-7", 2),
        ("a" * 152 + "€", "GSM-7", 1),
        ("a" * 153 + "€" + "a" * 10, "GSM-7", 2),  # the escape pair is not split
        ("中" * 70, "UCS-2", 1),
        ("中" * 71, "UCS-2", 2),
        ("中" * 134, "UCS-2", 2),
        ("中" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # a surrogate pair takes two units
        ("😀" * 36, "UCS-2", 2),
        ("a" * 66 + "😀" + "a" * 3, "UCS-2", 2),  # 71 units: two segments, the pair not split at 67
        ("【Acme】Your code is 4711", "UCS-2", 1),
    ],
)
def test_known_lengths(text: str, encoding: str, count: int) -> None:
    result = segments(text)
    assert (result.encoding, result.count) == (encoding, count)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=800))
def test_gsm7_segments_hold_every_septet(text: str) -> None:
    result = segments(text)
    assert result.encoding == "GSM-7"
    capacity = 160 if result.count == 1 else 153 * result.count
    assert result.units <= capacity
    assert result.count == 1 or result.units > 160


@settings(max_examples=300, deadline=None)
@given(
    st.text(min_size=1, max_size=400).filter(lambda t: any(c not in GSM7_BASIC | GSM7_EXTENSION for c in t))
)
def test_ucs2_segments_hold_every_unit(text: str) -> None:
    result = segments(text)
    assert result.encoding == "UCS-2"
    assert result.units == len(text.encode("utf-16-le")) // 2
    assert result.units <= (70 if result.count == 1 else 67 * result.count)
