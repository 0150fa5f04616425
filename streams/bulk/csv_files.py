"""CSV bytes to records and columns back to CSV bytes, exactly as Python's `csv` module reads and
writes them (excel dialect: `,` and `"`, RFC 4180 quoting, CRLF line ends), but with bytes.split
and bytes.join wherever they give the same answer, which is most of the time: a line that holds
no quote, or only whole quoted fields, is one record; the csv module itself reads any other chunk.

Cells stay UTF-8 bytes (`,`, `"`, CR and LF never occur inside a multi-byte character), so text is
decoded only where something must read it; bytes that are not UTF-8 come back as they were."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from itertools import compress, repeat

from base.errors import UnreadableCsv

# One line whose every field is either unquoted without a quote, or quoted whole (`"a ""b"", c"`).
_WHOLE_FIELDS = re.compile(rb'(?:[^",]*|"(?:[^"]|"")*")(?:,(?:[^",]*|"(?:[^"]|"")*"))*')
_NEEDS_QUOTES = re.compile(b'[,"\r\n]')


def read_columns(blob: bytes, width: int) -> list[list[bytes]] | None:
    """The columns of `blob` when it is the simple case: no quote, no empty line, no bare CR, and
    every record `width` fields; else None (read_records then). Cutting the whole chunk at once
    spares a list per row."""
    lines = _lines(blob) if b'"' not in blob and b"\n\n" not in blob else None
    if lines is None or not lines or not lines[0] or b"\r\n\r\n" in blob:
        return None
    if set(map(bytes.count, lines, repeat(b","))) != {width - 1}:
        return None
    if max(map(len, lines)) > csv.field_size_limit():
        return None
    cells = b",".join(lines).split(b",")
    return [cells[k::width] for k in range(width)]


def read_records(blob: bytes) -> list[list[bytes]]:
    """The records of `blob` (whole lines), empty ones skipped, as `csv.reader` reads them."""
    lines = _lines(blob)
    if lines is None or max(map(len, lines), default=0) > csv.field_size_limit():
        return _csv_records(blob)  # bare CRs, or a line so long csv may raise: let csv say
    quoted = [k for k, line in enumerate(lines) if b'"' in line]
    if any(_WHOLE_FIELDS.fullmatch(lines[k]) is None for k in quoted):
        return _csv_records(blob)  # a field spanning lines, or a stray quote
    records = [line.split(b",") for line in lines if line]
    if quoted:
        unquoted = dict(zip(quoted, map(_csv_line, (lines[k] for k in quoted)), strict=True))
        kept = (k for k, line in enumerate(lines) if line)
        records = [unquoted.get(k, record) for k, record in zip(kept, records, strict=True)]
    return records


def _lines(blob: bytes) -> list[bytes] | None:
    """The lines of `blob` without their LF or CRLF; None if it holds a CR of another kind."""
    crs = blob.count(b"\r")
    if not crs:
        lines = blob.split(b"\n")
    elif crs == blob.count(b"\r\n") == blob.count(b"\n"):
        lines = blob.split(b"\r\n")
    else:
        return None
    if not lines[-1]:
        lines.pop()
    return lines


def _decoded(blob: bytes) -> str:
    return blob.decode("utf-8", "surrogateescape")


def _encoded(cell: str) -> bytes:
    return cell.encode("utf-8", "surrogateescape")


def _csv_line(line: bytes) -> list[bytes]:
    return [_encoded(cell) for cell in next(csv.reader([_decoded(line)]))]


def _csv_records(blob: bytes) -> list[list[bytes]]:
    records: list[list[bytes]] = []
    try:
        for record in csv.reader(io.StringIO(_decoded(blob))):
            if record:
                records.append([_encoded(cell) for cell in record])
    except csv.Error as exc:
        raise UnreadableCsv(len(records), exc) from exc
    return records


def render_columns(columns: Sequence[Sequence[bytes]], keep: Sequence[bool] | None) -> bytes:
    """The rows where `keep` holds (None: every row), given column by column, as
    `csv.writer(...).writerows` writes them."""
    count = len(columns[0]) if keep is None else sum(keep)
    if not count:
        return b""
    lines = b"\r\n".join(map(b",".join, _rows(columns, keep))) + b"\r\n"
    width = len(columns)
    plain = (
        lines.count(b",") == count * (width - 1)
        and lines.count(b"\n") == lines.count(b"\r") == count
        and b'"' not in lines
        and width > 1  # csv writes a row of one empty field as `""`
    )
    if plain:
        return lines
    cells = [_quoted_cells(column, width) for column in columns]
    return b"\r\n".join(map(b",".join, _rows(cells, keep))) + b"\r\n"


def _rows(
    columns: Sequence[Sequence[bytes]], keep: Sequence[bool] | None
) -> Iterable[tuple[bytes, ...]]:
    rows = zip(*columns, strict=True)
    return rows if keep is None else compress(rows, keep)


def _quoted_cells(column: Sequence[bytes], width: int) -> list[bytes]:
    return [
        b'"' + cell.replace(b'"', b'""') + b'"'
        if _NEEDS_QUOTES.search(cell) or (width == 1 and not cell)
        else cell
        for cell in column
    ]
