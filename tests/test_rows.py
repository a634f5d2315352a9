"""Reading recipients: resuming a file from any saved position reads exactly the rows a reading
from the start would; the duplicate check's compact set behaves as a set; the claim decision."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smsrelay.chunk_state import ChunkState, Claim, Next, next_step
from smsrelay.rows import FileReader, Fingerprints, Position, Template, lines_of

cells = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from(',"\n'),
    max_size=8,
)


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def read_all(fmt: str, data: bytes, template: str | None = None, chunk: int = 7) -> list:
    reader = FileReader(fmt, Template(template))
    return list(reader.rows(chunks_of(data, chunk), Position()))


def read_resumed(fmt: str, data: bytes, stop_after: int, chunk: int = 5) -> list:
    """Read `stop_after` rows, keep the position, then read the rest in a new reader from there."""
    first = FileReader(fmt, Template(None))
    rows = []
    for row in first.rows(chunks_of(data, chunk), Position()):
        rows.append(row)
        if len(rows) == stop_after:
            break
    position, columns = first.position, first.columns
    rest = FileReader(fmt, Template(None), columns).rows(chunks_of(data[position.byte :], chunk), position)
    return rows + list(rest)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), cells), min_size=1, max_size=12),
    stop=st.integers(min_value=1, max_value=12),
    crlf=st.booleans(),
)
def test_a_csv_read_resumed_from_a_saved_position_reads_the_same_rows(rows, stop, crlf) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(["to", "name"])
    writer.writerows(rows)
    data = out.getvalue().encode()
    whole = read_all("csv", data)
    assert [r.to for r in whole] == [r[0] for r in rows]
    assert read_resumed("csv", data, min(stop, len(rows))) == whole


@settings(max_examples=100, deadline=None)
@given(
    objects=st.lists(
        st.fixed_dictionaries({"to": st.from_regex(r"1[3-9]\d{9}", fullmatch=True), "n": cells})
    ),
    stop=st.integers(min_value=1, max_value=12),
)
def test_json_lines_resumed_read_the_same_rows(objects, stop) -> None:
    data = b"".join(json.dumps(o, ensure_ascii=False).encode() + b"\n" for o in objects)
    whole = read_all("jsonl", data)
    assert [r.to for r in whole] == [o["to"] for o in objects]
    if objects:
        assert read_resumed("jsonl", data, min(stop, len(objects))) == whole


def test_lines_keep_their_exact_byte_offsets() -> None:
    data = b"a\r\nbb\n\nccc"
    assert list(lines_of(chunks_of(data, 2), Position())) == [(b"a", 3), (b"bb", 6), (b"", 7), (b"ccc", 10)]


def test_a_template_names_what_it_misses() -> None:
    template = Template("Hi {{ name }}, {{code}} {{name}}")
    assert template.names == ["name", "code"]
    assert template.fill({"name": "Ann", "code": "1"}) == "Hi Ann, 1 Ann"
    try:
        template.fill({"name": "Ann"})
    except ValueError as exc:
        assert str(exc) == "no value for {{code}}"
    else:
        raise AssertionError("a missing value must be refused")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=3000))
def test_fingerprints_behave_as_a_set(keys: list[str]) -> None:
    seen, fingerprints = set(), Fingerprints()
    for key in keys:
        assert fingerprints.add(key) == (key not in seen)
        seen.add(key)
    assert len(fingerprints) == len(seen)
    again = Fingerprints(fingerprints.to_bytes())  # a saved duplicate check goes on where it was
    assert all(not again.add(key) for key in seen)


@pytest.mark.slow
def test_fingerprints_of_a_million_numbers_stay_small() -> None:
    fingerprints = Fingerprints()
    for n in range(1_000_000):
        fingerprints.add(f"+86139{n:08d}")
    assert len(fingerprints) == 1_000_000
    assert len(fingerprints.to_bytes()) <= 32 * 1024 * 1024  # 16-32 bytes a number, no objects


# --------------------------------------------------------------------------- the claim decision


def claim(state: ChunkState | None, **kw: float) -> Claim:
    return Claim(chunk_id="c", state=state, attempt=1, **kw)


def test_the_one_decision_on_a_chunk() -> None:
    now, lease = 1000.0, 120.0
    table = {
        claim(None): Next.SEND,
        claim(ChunkState.RETRY): Next.SEND,
        claim(ChunkState.HELD, due_at=now - 1): Next.SEND,
        claim(ChunkState.HELD, due_at=now + 1): Next.HOLD,
        claim(ChunkState.INFLIGHT, claimed_at=now - 10): Next.WAIT,
        claim(ChunkState.INFLIGHT, claimed_at=now - 121): Next.MARK_UNKNOWN,
        claim(ChunkState.UNKNOWN): Next.MARK_UNKNOWN,
        claim(ChunkState.DONE): Next.FINISHED,
        claim(ChunkState.FAILED): Next.FINISHED,
        claim(ChunkState.FAILED_OVER): Next.FINISHED,
        claim(ChunkState.SPLIT): Next.FINISHED,
        claim(ChunkState.SWEPT): Next.FINISHED,
    }
    for given_claim, expected in table.items():
        assert next_step(given_claim, now, lease) == expected, given_claim
    # the sweeper gives a held chunk its grace before taking it over
    assert next_step(claim(ChunkState.HELD, due_at=now - 1), now, lease, held_grace_s=60) == Next.HOLD
    assert set(table.values()) == set(Next) and {c.state for c in table} == {None, *ChunkState}
