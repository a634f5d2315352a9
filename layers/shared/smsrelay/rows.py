"""A request's recipients as rows, read in order and in constant memory: the inline lists of a
request, and recipients files (CSV with a header, or JSON Lines) streamed from S3.

Every row has its index (position among the recipients, 0-based), the number as written and,
where texts differ, its own text (a `messages` entry, or the request's `content` with its
{{name}} placeholders filled from the row). A row that cannot be read becomes a rejection
that names its file line; the file as a whole is refused only when it cannot be read at all.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .models import SendRequest

#: {{name}} in a text: filled from the row's column `name`
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
#: the column (CSV) or key (JSON Lines) that holds the number
TO = "to"


class FileRefused(ValueError):
    """The recipients file cannot be read at all (no `to` column, unknown placeholder, ...)."""


@dataclass(frozen=True, slots=True)
class Row:
    index: int
    to: str
    content: str | None = None  # None: the request's one text
    line: int | None = None  # the file line (1-based) where the row ends
    error: str | None = None  # why the row cannot be sent (it becomes a rejection)


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading stopped: the next row's index, its byte offset in the file and its line."""

    row: int = 0
    byte: int = 0
    line: int = 1


class Template:
    """A text with {{name}} placeholders."""

    def __init__(self, text: str | None):
        self.text = text or ""
        self.names = list(dict.fromkeys(_PLACEHOLDER.findall(self.text)))

    def fill(self, values: dict[str, str]) -> str:
        missing = [n for n in self.names if values.get(n) in (None, "")]
        if missing:
            raise ValueError(f"no value for {', '.join('{{' + n + '}}' for n in missing)}")
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), self.text)


# --------------------------------------------------------------------------- inline


def inline_rows(request: SendRequest) -> list[list[str]]:
    """The request's own recipients as stored rows: [to] or [to, text]."""
    if request.messages is not None:
        return [[m.to, m.content] for m in request.messages]
    return [[number] for number in request.recipients or []]


def stored_rows(rows: Iterable[list[str]], start: int = 0) -> Iterator[Row]:
    for index, row in enumerate(rows):
        if index >= start:
            yield Row(index=index, to=str(row[0]), content=row[1] if len(row) > 1 else None)


def jsonl_of(rows: Iterable[list[str]]) -> bytes:
    """Stored rows as the JSON Lines file a big request is kept in."""
    return b"".join(
        json.dumps({TO: r[0]} | ({"content": r[1]} if len(r) > 1 else {}), ensure_ascii=False).encode()
        + b"\n"
        for r in rows
    )


# --------------------------------------------------------------------------- files


def lines_of(chunks: Iterable[bytes], start: Position) -> Iterator[tuple[bytes, int]]:
    """Split a byte stream (starting at `start.byte`) into lines: (line without its end, offset after it)."""
    offset = start.byte
    pending = b""
    for chunk in chunks:
        pending += chunk
        while True:
            cut = pending.find(b"\n")
            if cut < 0:
                break
            line, pending = pending[: cut + 1], pending[cut + 1 :]
            offset += len(line)
            yield line.rstrip(b"\r\n"), offset
    if pending:
        offset += len(pending)
        yield pending.rstrip(b"\r\n"), offset


def decode(line: bytes) -> str:
    """UTF-8 (with or without a BOM); else GB18030, which Chinese spreadsheet exports use."""
    try:
        return line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return line.decode("gb18030", errors="replace")


class FileReader:
    """Rows of a recipients file, from `start`; `position` says where the next row begins."""

    def __init__(self, fmt: str, template: Template, columns: list[str] | None = None):
        self.fmt = fmt
        self.template = template
        self.columns = columns  # CSV: the header, once read
        self.position = Position()

    def rows(self, chunks: Iterable[bytes], start: Position) -> Iterator[Row]:
        self.position = start
        lines = lines_of(chunks, start)
        if self.fmt == "csv":
            yield from self._csv(lines, start)
        else:
            yield from self._jsonl(lines, start)

    # -- CSV
    def _csv(self, lines: Iterator[tuple[bytes, int]], start: Position) -> Iterator[Row]:
        last = [(start.byte, start.line - 1)]  # (offset after, line number) of the line csv read last
        line_no = start.line

        def text() -> Iterator[str]:
            nonlocal line_no
            for raw, after in lines:
                last[0] = (after, line_no)
                line_no += 1
                yield decode(raw) + "\n"

        reader = csv.reader(text())
        if self.columns is None:
            header = next(reader, None)
            if header is None:
                raise FileRefused("the recipients file is empty: give a header line such as `to,name`")
            self.columns = [c.strip() for c in header]
            self._check_header()
            after, line = last[0]
            self.position = Position(start.row, after, line + 1)
        index = self.position.row
        for fields in reader:
            after, line = last[0]
            self.position = Position(index + 1, after, line + 1)
            if not any(f.strip() for f in fields):
                continue  # blank line
            yield self._row(index, line, fields)
            index += 1

    def _check_header(self) -> None:
        columns = self.columns or []
        if TO not in columns:
            raise FileRefused(
                f"the header has no `{TO}` column (it has {', '.join(columns[:10]) or 'nothing'}); "
                f"name the column of phone numbers `{TO}`"
            )
        unknown = [n for n in self.template.names if n not in columns]
        if unknown:
            raise FileRefused(
                f"`content` uses {', '.join('{{' + n + '}}' for n in unknown)}, "
                f"but the file has no such column (columns: {', '.join(columns[:20])})"
            )

    def _row(self, index: int, line: int, fields: list[str]) -> Row:
        columns = self.columns or []
        if len(fields) != len(columns):
            return Row(
                index,
                fields[0] if fields else "",
                line=line,
                error=f"line {line}: {len(fields)} fields where the header has {len(columns)}",
            )
        values = dict(zip(columns, (f.strip() for f in fields), strict=True))
        return self._filled(index, line, values)

    # -- JSON Lines
    def _jsonl(self, lines: Iterator[tuple[bytes, int]], start: Position) -> Iterator[Row]:
        index, line = start.row, start.line
        for raw, after in lines:
            self.position = Position(index + 1, after, line + 1)
            if raw.strip():
                try:
                    value = json.loads(decode(raw))
                except (ValueError, RecursionError):
                    value = None
                if not isinstance(value, dict):
                    yield Row(index, "", line=line, error=f"line {line}: not a JSON object")
                else:
                    values = {
                        str(k): "" if v is None else str(v)
                        for k, v in value.items()
                        if isinstance(v, str | int | float) or v is None
                    }
                    yield self._filled(index, line, values)
                index += 1
            else:
                self.position = Position(index, after, line + 1)
            line += 1

    def _filled(self, index: int, line: int, values: dict[str, str]) -> Row:
        to = values.get(TO, "")
        if not to:
            return Row(index, "", line=line, error=f"line {line}: no `{TO}` value")
        own = values.get("content")
        if own and not self.template.names:
            return Row(index, to, content=own, line=line)
        if not self.template.names:
            return Row(index, to, line=line)
        try:
            return Row(index, to, content=self.template.fill(values), line=line)
        except ValueError as exc:
            return Row(index, to, line=line, error=f"line {line}: {exc}")


def file_format(key: str, first_bytes: bytes = b"") -> str:
    """`csv` or `jsonl`, from the object's name, else from its first character."""
    name = key.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".txt")):
        return "csv"
    return "jsonl" if first_bytes.lstrip().startswith(b"{") else "csv"


# --------------------------------------------------------------------------- duplicates


class Fingerprints:
    """A set of 64-bit fingerprints in one flat array (16 bytes per entry at most): the duplicate
    check of a million-row file without a million Python objects. Open addressing, linear probing."""

    def __init__(self, data: bytes | None = None):
        self._slots = array("Q")
        if data:
            self._slots.frombytes(data)
        else:
            self._slots.extend([0] * 1024)
        self._count = sum(1 for v in self._slots if v)

    def __len__(self) -> int:
        return self._count

    def add(self, key: str) -> bool:
        """Add; False when it was there already."""
        value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") or 1
        slots = self._slots
        mask = len(slots) - 1
        i = value & mask
        while True:
            found = slots[i]
            if found == 0:
                break
            if found == value:
                return False
            i = (i + 1) & mask
        slots[i] = value
        self._count += 1
        if self._count * 2 > len(slots):
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("Q", bytes(8 * len(old) * 2))
        mask = len(self._slots) - 1
        for value in old:
            if value:
                i = value & mask
                while self._slots[i]:
                    i = (i + 1) & mask
                self._slots[i] = value

    def to_bytes(self) -> bytes:
        return self._slots.tobytes()
