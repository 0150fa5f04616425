"""Rendering a harmonised chunk: what a chunk task carries, the renderer for each output
format (CSV, JSON Lines, Parquet) and its rejects."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from base.errors import (
    InvalidEvent,
)
from streams.bulk.options import SIBLING_SUFFIX, Counts, Format, HarmoniseOptions
from streams.bulk.parquet_files import (
    encode_columns,
    output_schema,
)
from streams.bulk.roles import column_roles, reject_keys


@dataclass(frozen=True, slots=True)
class Spec:
    """Everything a worker needs besides the data; hashable, so workers cache per spec."""

    options: HarmoniseOptions
    out_format: Format
    rejects_format: Format
    columns: tuple[str, ...] | None  # a CSV output's input columns (from the first input)


@dataclass(frozen=True, slots=True)
class FileRange:
    """Whole records of a file, `size` bytes from `start`: a worker reads them itself, so the
    parent does not ship them through a pipe."""

    path: str
    start: int
    size: int

    def read(self) -> bytes:
        with open(self.path, "rb") as file:
            file.seek(self.start)
            return file.read(self.size)


@dataclass(frozen=True, slots=True)
class Task:
    spec: Spec
    kind: Format
    header: tuple[str, ...] | None  # CSV: this input's columns
    # CSV: whole records (bytes or a FileRange); JSON Lines: lines (the same), or one message
    # each; a Parquet batch
    data: Any
    # Where the worker writes the chunk's output and rejects (`<part>.out`, `<part>.rejects`)
    # instead of sending them back; None: in the result.
    part: str | None = None


@dataclass(slots=True)
class ChunkResult:
    out: bytes
    rejects: bytes
    counts: Counts
    rejected_at: list[int]  # indices of the rejected rows within the chunk
    part: str | None = None  # out and rejects are in `<part>.out` and `<part>.rejects`


class Renderer:
    """Writes one chunk's harmonised rows and rejects in the job's formats."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.counts = Counts()
        self.labels: list[str] = []
        self.rejected_at: list[int] = []
        self.out_text = io.StringIO()
        self.out_lines: list[bytes] = []
        self.reject_text = io.StringIO()
        self.reject_lines: list[bytes] = []
        self.csv_row = csv.writer(self.out_text).writerow
        self.csv_reject = csv.writer(self.reject_text).writerow
        self.columns = spec.columns or ()
        self.column_set = frozenset(self.columns)
        self.csv_output = column_roles(self.columns, spec.options).output
        self.objects: list[list[Any]] = []  # Parquet output of JSON objects: rows, then columns

    def row(self, columns: Sequence[str], values: Sequence[Any]) -> None:
        if self.spec.out_format == "csv":
            self.csv_row(values)
        else:
            self.out_lines.append(orjson.dumps(dict(zip(columns, values, strict=True))) + b"\n")

    def obj(self, obj: dict[str, Any]) -> None:
        if self.spec.out_format == "parquet":
            fields = parquet_schema(self.spec)
            self.objects.append([_parquet_cell(obj.get(f.name), f) for f in fields])
        elif self.spec.out_format == "csv":
            self.csv_row([_csv_cell(obj.get(c)) for c in self.csv_output])
        else:
            self.out_lines.append(orjson.dumps(obj) + b"\n")

    def reject(self, index: int, original: dict[str, Any], exc: InvalidEvent) -> None:
        """`original`: the row's columns and values as they came in."""
        self._count(index, exc)
        if self.spec.rejects_format == "jsonl":
            reason_key, message_key = reject_keys(original)
            fields = {reason_key: exc.reason.value, message_key: exc.message}
            self.reject_lines.append(_json_line({**original, **fields}))
            return
        extra = {k: v for k, v in original.items() if k not in self.column_set}
        message = exc.message
        if extra:
            message += f"; columns outside the output: {orjson.dumps(extra).decode()}"
        cells = [_csv_cell(original.get(c)) for c in self.columns]
        self.csv_reject([*cells, exc.reason.value, message])

    def reject_line(self, index: int, line: str, exc: InvalidEvent) -> None:
        self._count(index, exc)
        if self.spec.rejects_format == "jsonl":
            fields = {"line": line, "reason": exc.reason.value, "message": exc.message}
            self.reject_lines.append(orjson.dumps(fields) + b"\n")
            return
        empty = [""] * len(self.columns)
        self.csv_reject([*empty, exc.reason.value, f"{exc.message}; line: {line}"])

    def reject_csv_row(
        self, index: int, header: Sequence[str], row: list[str], exc: InvalidEvent
    ) -> None:
        """A CSV row as it came: in a CSV rejects file its cells stay as they were, surplus
        cells (a ragged row) after the message."""
        if self.spec.rejects_format == "jsonl" or tuple(header) != self.spec.columns:
            original: dict[str, Any] = dict(zip(header, row, strict=False))
            if len(row) > len(header):
                original["extra_fields"] = row[len(header) :]
            self.reject(index, original, exc)
            return
        self._count(index, exc)
        width = len(header)
        cells = row[:width] + [""] * (width - len(row))
        self.csv_reject([*cells, exc.reason.value, exc.message, *row[width:]])

    def _count(self, index: int, exc: InvalidEvent) -> None:
        reason = exc.reason.value
        self.counts.rejected[reason] = self.counts.rejected.get(reason, 0) + 1
        self.rejected_at.append(index)

    def result(self, rows: int) -> ChunkResult:
        self.counts.rows_in = rows
        self.counts.rows_out = rows - len(self.rejected_at)
        self.counts.formats = dict(Counter(self.labels))
        if self.objects:
            columns = list(zip(*self.objects, strict=True))
            self.out_lines.append(encode_columns(parquet_schema(self.spec), columns, None))
        out = self.out_text.getvalue().encode() + b"".join(self.out_lines)
        rejects = self.reject_text.getvalue().encode("utf-8", "surrogateescape")
        return ChunkResult(
            out, rejects + b"".join(self.reject_lines), self.counts, self.rejected_at
        )


@cache
def parquet_schema(spec: Spec) -> Any:
    """The output's columns: the input's as text, `<time>_utc_ms` as int64."""
    times = column_roles(spec.columns or (), spec.options).time
    output = column_roles(spec.columns or (), spec.options).output
    return output_schema(output, frozenset(t + SIBLING_SUFFIX for t in times))


def _parquet_cell(value: Any, field: Any) -> Any:
    """A JSON value for a Parquet column: an instant's ms as is, anything else as CSV text."""
    return value if field.type == "int64" else _csv_cell(value).encode()


def _json_line(obj: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(obj) + b"\n"
    except orjson.JSONEncodeError:  # undecodable bytes (surrogates): shown as \x escapes
        return orjson.dumps({k: _escaped(v) for k, v in obj.items()}) + b"\n"


def _escaped(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class CsvPlan:
    """Positions for one CSV header: what to parse, repair and fold, and the output order."""

    permutation: tuple[int, ...] | None  # to the output's column order, when it differs
    columns: tuple[str, ...]
    time: tuple[int, ...]
    text: tuple[int, ...]
    identifiers: tuple[int, ...]
    reference: int | None
    order: tuple[int, ...]  # output columns: positions in (columns + one utc ms per time column)
    output: tuple[str, ...]


_PLANS: dict[tuple[Spec, tuple[str, ...]], CsvPlan] = {}


def csv_plan(spec: Spec, header: tuple[str, ...]) -> CsvPlan:
    plan = _PLANS.get((spec, header))
    if plan is None:
        plan = _PLANS[(spec, header)] = _make_csv_plan(spec, header)
    return plan


def _make_csv_plan(spec: Spec, header: tuple[str, ...]) -> CsvPlan:
    columns = spec.columns if spec.columns is not None else header
    roles = column_roles(columns, spec.options)
    where = {name: i for i, name in enumerate(columns)}
    where |= {t + SIBLING_SUFFIX: len(columns) + k for k, t in enumerate(roles.time)}
    return CsvPlan(
        permutation=None if columns == header else tuple(header.index(c) for c in columns),
        columns=columns,
        time=tuple(where[t] for t in roles.time),
        text=tuple(where[c] for c in columns if c in roles.text),
        identifiers=tuple(where[c] for c in columns if c in roles.identifiers),
        reference=where[roles.reference] if roles.reference is not None else None,
        order=tuple(where[name] for name in roles.output),
        output=roles.output,
    )
