"""Bulk harmonisation: CSV / JSON Lines / Parquet files, or a bounded range of a Kafka topic,
rewritten (to a file, a topic or a warehouse table) with every time column in the standard form
plus `<column>_utc_ms`, Chinese mojibake repaired and full-width identifiers folded. Rows that
cannot be harmonised go to the rejects with their original values, a reason code and a message.
Constant memory, every core, atomic output.

Decisions the tests pin down:
- Time columns: `time_columns`, else by name (`is_time_column`): the last word of the name
  (snake_case, camelCase or kebab-case) is at/time/date/ts/timestamp/datetime/dt, or the first is
  time/date/timestamp/datetime and the last is not a unit (`time_local`, `date_reported`, not
  `time_taken_s`), or a Chinese name holding 时间/日期/时刻. `<column>_utc_ms` is never a time
  column: it is recomputed, so harmonising an output again changes nothing.
- Every time cell must parse, an empty one included (`empty`): one failure rejects the row. A
  time column named in `time_columns` but absent from a JSON object rejects it (`missing_field`).
- Text columns: `text_columns`, else every non-time column; only non-ASCII strings can change.
  Identifier columns (last word id/no/number/phone/tel/mobile/code, or a Chinese name ending in
  号/号码/编号/电话/手机) are also folded from full-width to half-width, after any repair.
- The reference column (optional) gives each row's context instant (any accepted form, epoch ms
  included) for times that need one; an unreadable reference is no context.
- Output: every input column in input order, each time column followed by `<column>_utc_ms`.
  When a CSV file is written, its columns come from the first input: a later CSV input must have
  the same column names (in any order); a JSON object with another key is rejected
  (`invalid_field`).
- CSV is UTF-8 (a BOM is skipped; `encoding` names another ASCII-compatible one for CSV and
  JSON Lines inputs, decoded per chunk; outputs are UTF-8) with RFC 4180 quoting, written
  with CRLF line ends (with "\\n" alone, Python's writer would leave a field holding a bare
  "\\r" unquoted). A row with the wrong number of fields is rejected `invalid_field`, one with
  invalid UTF-8 (or bytes its encoding cannot decode) `invalid_encoding` (the rejects file keeps
  its original bytes). JSON Lines: one object a line; blank lines skipped.
- Rejects: the original columns, untouched, then `reason` and `message` (`reject_reason` and
  `reject_message` when the input has a column so named). A line that is not a JSON object becomes
  `{"line": ..., "reason", "message"}` (in a CSV rejects file: the line goes in the message).
- Parquet (harmonise_parquet): every input column is read as text, nulls as empty; the output
  has the input columns as strings and `<column>_utc_ms` as int64, like a CSV output's columns;
  its rejects are JSON Lines. `warehouse:TABLE` (sinks/harmonised) gets the same columns (String,
  Int64) and is replaced whole when the job ends; from a topic range, the columns are the first
  JSON object's keys.
- Files are cut into chunks at record boundaries (by quote parity for CSV; Parquet by record
  batch) and harmonised by a pool of processes, in order, with at most two chunks per process in
  flight. Output and rejects are written to `.<name>.partial-<pid>` beside them and renamed into
  place when the job ends; a partial file left by a killed job is removed by the next job writing
  the same file.
- A CSV or Parquet chunk is harmonised column by column, cells as UTF-8 bytes (harmonise_csv reads
  and writes them as the csv module would): time columns through timecolumns (the common shapes
  at once, the rest through parse_instant, so every value reads exactly as parse_instant reads
  it), text through memoised repair of the distinct non-ASCII values. JSON objects go one by one.
"""

from __future__ import annotations

import codecs
import csv
import gc
import glob
import io
import itertools
import logging
import os
import re
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from functools import cache, partial
from itertools import compress, filterfalse
from multiprocessing import get_context
from operator import is_not, itemgetter
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal, Protocol, TypeVar

import orjson
from tqdm import tqdm

from infra.broker import pid_alive
from streams.errors import ConfigError, InvalidEvent, Reason, SmartStationError
from streams.harmonise_csv import UnreadableCsv, read_columns, read_records, render_columns
from streams.harmonise_parquet import (
    ParquetSink,
    batch_cells,
    encode_columns,
    is_bytes_column,
    output_schema,
    parquet_batches,
    parquet_columns,
    parquet_rows,
)
from streams.textfix import fold_fullwidth, repair_short_field, repair_text
from streams.timecolumns import read_column
from streams.timefmt import (
    DEFAULT_ZONE,
    MIN_EPOCH_MS,
    Instant,
    SourceConvention,
    format_iso,
    parse_instant,
)

log = logging.getLogger(__name__)

Format = Literal["csv", "jsonl", "parquet"]
M = TypeVar("M")
SIBLING_SUFFIX = "_utc_ms"
WAREHOUSE_PREFIX = "warehouse:"  # --out warehouse:TABLE
CHUNK_BYTES = 1 << 20  # ~6k rows of a typical export: amortises the hand-off, fits a cache
CHUNK_RECORDS = 5_000  # Kafka messages per chunk
MAX_RECORD_BYTES = 64 << 20  # a CSV "record" this long means unbalanced quotes, not data
MEMO_SIZE = 1 << 16  # distinct values remembered per worker (parsed times, repaired texts)
REPEAT_SAMPLE = 512  # values looked at to tell a column of few distinct values
FORMAT_BY_SUFFIX: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}


class HarmoniseError(SmartStationError):
    """The job cannot go on: an unreadable or unwritable file, a broken CSV, a missing topic."""


@dataclass(frozen=True, slots=True)
class HarmoniseOptions:
    """What to harmonise and how; None means 'decide from the column names'."""

    zone: str = DEFAULT_ZONE
    convention: SourceConvention | None = None
    time_columns: tuple[str, ...] | None = None
    text_columns: tuple[str, ...] | None = None
    reference_column: str | None = None
    encoding: str = "utf-8"  # of CSV / JSON Lines input files; outputs are always UTF-8


@dataclass(frozen=True, slots=True)
class TopicRange:
    """Which messages of a topic: offsets [start, end) of every partition, or the messages
    timestamped in [since_ms, until_ms). An unset end is the end captured when the job starts."""

    start_offset: int | None = None
    end_offset: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass(slots=True)
class Counts:
    rows_in: int = 0
    rows_out: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # by reason code
    formats: dict[str, int] = field(default_factory=dict)  # time cells by Instant.source_format
    inferred: int = 0  # time cells settled by the reference column
    text_repaired: int = 0
    identifiers_folded: int = 0

    def add(self, more: Counts) -> None:
        self.rows_in += more.rows_in
        self.rows_out += more.rows_out
        self.inferred += more.inferred
        self.text_repaired += more.text_repaired
        self.identifiers_folded += more.identifiers_folded
        for total, part in ((self.rejected, more.rejected), (self.formats, more.formats)):
            for key, n in part.items():
                total[key] = total.get(key, 0) + n


@dataclass(slots=True)
class HarmoniseSummary:
    inputs: list[str]
    output: str
    rejects: str
    workers: int
    counts: Counts = field(default_factory=Counts)
    seconds: float = 0.0

    @property
    def rows_rejected(self) -> int:
        return sum(self.counts.rejected.values())

    def lines(self) -> list[str]:
        c = self.counts
        rate = c.rows_in / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"harmonised {c.rows_in:,} rows from {len(self.inputs)} input(s) in "
            f"{self.seconds:.1f} s ({rate:,.0f} rows/s, {self.workers} worker(s)): "
            f"{c.rows_out:,} -> {self.output}, {self.rows_rejected:,} rejected -> {self.rejects}"
        ]
        if c.rejected:
            lines.append(f"rejected: {_counts_text(c.rejected)}")
        if c.formats:
            lines.append(f"time formats: {_counts_text(c.formats)}; inferred {c.inferred:,}")
        lines.append(
            f"text: {c.text_repaired:,} cells repaired, {c.identifiers_folded:,} identifiers folded"
        )
        return lines


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


# --- column roles, by name ---------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_TIME_LAST = frozenset({"at", "time", "date", "ts", "timestamp", "datetime", "dt"})
_TIME_FIRST = frozenset({"time", "date", "timestamp", "datetime"})
_NOT_A_TIME = frozenset(
    {"s", "ms", "sec", "secs", "seconds", "min", "mins", "minutes", "h", "hours", "zone", "tz"}
    | {"format", "fmt", "taken", "spent", "elapsed", "left", "remaining"}
)
_ID_LAST = frozenset({"id", "no", "number", "phone", "tel", "mobile", "code"})
_ZH_TIME = ("时间", "日期", "时刻")
_ZH_ID = ("号", "号码", "编号", "电话", "手机")


def _words(name: str) -> list[str]:
    return [w for w in _NOT_WORD.split(_CAMEL.sub("_", name).lower()) if w]


def is_time_column(name: str) -> bool:
    """Whether a column holds timestamps, judged by its name (see the module docstring)."""
    if name.endswith(SIBLING_SUFFIX):
        return False
    if any(marker in name for marker in _ZH_TIME):
        return True
    words = _words(name)
    if not words:
        return False
    return words[-1] in _TIME_LAST or (words[0] in _TIME_FIRST and words[-1] not in _NOT_A_TIME)


def is_identifier_column(name: str) -> bool:
    words = _words(name)
    return name.endswith(_ZH_ID) or bool(words and words[-1] in _ID_LAST)


def _reject_keys(columns: Iterable[str]) -> tuple[str, str]:
    taken = set(columns)
    if "reason" in taken or "message" in taken:
        return "reject_reason", "reject_message"
    return "reason", "message"


@dataclass(frozen=True, slots=True)
class _Roles:
    """What each column of one header is, and the output's columns."""

    time: tuple[str, ...]
    text: frozenset[str]
    identifiers: frozenset[str]
    reference: str | None
    missing_times: tuple[str, ...]  # named time columns the header lacks
    siblings: frozenset[str]  # old `<time>_utc_ms` columns, recomputed
    output: tuple[str, ...]


def _roles(columns: Sequence[str], options: HarmoniseOptions) -> _Roles:
    present = set(columns)
    if options.time_columns is not None:
        times = tuple(c for c in options.time_columns if c in present)
        missing = tuple(c for c in options.time_columns if c not in present)
    else:
        times, missing = tuple(c for c in columns if is_time_column(c)), ()
    siblings = frozenset(t + SIBLING_SUFFIX for t in times)
    plain = [c for c in columns if c not in siblings and c not in times]
    wanted = present if options.text_columns is None else set(options.text_columns)
    output: list[str] = []
    for name in columns:
        if name not in siblings:
            output.extend((name, name + SIBLING_SUFFIX) if name in times else (name,))
    return _Roles(
        time=times,
        text=frozenset(c for c in plain if c in wanted),
        identifiers=frozenset(c for c in plain if is_identifier_column(c)),
        reference=options.reference_column if options.reference_column in present else None,
        missing_times=missing,
        siblings=siblings,
        output=tuple(output),
    )


# --- one worker's tools: memoised parsing and repair -------------------------------------------


class _Cells:
    """Parses and repairs cells under one set of options. Values repeat a lot in real exports
    (dates, station names, categories) and both functions are pure: results are memoised."""

    def __init__(self, options: HarmoniseOptions) -> None:
        self.zone = options.zone
        self.convention = options.convention
        self.instants: dict[object, Instant | InvalidEvent] = {}
        self.repairs: dict[str, str] = {}  # "" when the text needs no repair
        self.repaired_cells: dict[bytes, bytes] = {}  # the same for UTF-8 cells
        self.folded_cells: dict[bytes, bytes] = {}  # b"" when there is nothing to fold
        # Cells repaired from GBK mojibake: a row that has one is evidence for its short fields.
        self.gbk_cells: set[bytes] = set()
        self.short_cells: dict[bytes, bytes] = {}  # b"" when the short field stays as it is

    def instant(self, value: object, reference_ms: int | None = None) -> Instant:
        if reference_ms is not None:  # the answer depends on the row: not memoised
            return parse_instant(
                value, zone=self.zone, convention=self.convention, reference_ms=reference_ms
            )
        hashable = value is None or isinstance(value, str | int | float)
        key = value if value is None or value.__class__ is str else (type(value), value)
        found = self.instants.get(key) if hashable else None
        if found is None:
            try:
                found = parse_instant(value, zone=self.zone, convention=self.convention)
            except InvalidEvent as exc:
                found = exc.with_traceback(None)  # a traceback would keep its chunk alive
            if hashable:
                if len(self.instants) >= MEMO_SIZE:
                    self.instants.clear()
                self.instants[key] = found
        if isinstance(found, InvalidEvent):
            raise InvalidEvent(found.reason, found.message)
        return found

    def reference(self, value: object) -> int | None:
        try:
            return self.instant(value).utc_ms
        except InvalidEvent:
            return None

    def times(self, values: Sequence[bytes], references: Sequence[int | None] | None) -> _TimeCells:
        """A column's instants (values: UTF-8 text): the common shapes all at once, the others
        one by one as `instant` reads them (what the column reader settles needs no context).
        A column of few distinct values (dates, say) is read value by distinct value."""
        if references is None and _repetitive(values):
            distinct = list(dict.fromkeys(values))
            return self.times(distinct, None).spread(values, distinct)
        found = read_column(values, self.zone, self.convention)
        errors: dict[int, InvalidEvent] = {}
        inferred: list[int] = []
        for k in found.unsettled:
            reference = None if references is None else references[k]
            try:
                instant = self.instant(values[k].decode(), reference)
            except InvalidEvent as exc:
                errors[k] = exc.with_traceback(None)
                continue
            found.utc_ms[k], found.labels[k] = instant.utc_ms, instant.source_format
            found.iso[k], found.utc_ms_text[k] = instant.iso.encode(), b"%d" % instant.utc_ms
            if instant.inferred:
                inferred.append(k)
        return _TimeCells(
            found.utc_ms, found.iso, found.utc_ms_text, found.labels, errors, inferred
        )

    def references(self, values: Sequence[bytes]) -> list[int | None]:
        """Each row's context instant; None where the reference is unreadable."""
        found = read_column(values, self.zone, self.convention)
        references: list[int | None] = list(found.utc_ms)
        for k in found.unsettled:
            references[k] = self.reference(values[k].decode())
        return references

    def repaired(self, value: str) -> str:
        """The repaired text, or "" when `value` needs no repair."""
        found = self.repairs.get(value)
        if found is None:
            repair = repair_text(value)
            found = repair.text if repair.changed else ""
            if len(self.repairs) >= MEMO_SIZE:
                self.repairs.clear()
            self.repairs[value] = found
        return found

    def repairs_of(self, column: Sequence[bytes]) -> dict[bytes, bytes]:
        """{cell: repaired cell} for the cells of `column` that need repair."""
        return _changes(column, self.repaired_cells, self._repaired_cell)

    def _repaired_cell(self, cell: bytes) -> bytes:
        repair = repair_text(cell.decode())
        if not repair.changed:
            return b""
        if repair.source_encoding == "gbk":
            if len(self.gbk_cells) >= MEMO_SIZE:
                self.gbk_cells.clear()
            self.gbk_cells.add(cell)
        return repair.text.encode()

    def short_repairs_of(self, cells: Sequence[bytes]) -> dict[bytes, bytes]:
        """{cell: repaired cell} for short fields of rows whose other text was GBK mojibake."""
        return _changes(cells, self.short_cells, _short_repaired_cell)

    def folds_of(self, column: Sequence[bytes]) -> dict[bytes, bytes]:
        """{cell: folded cell} for the cells of `column` with full-width forms."""
        return _changes(column, self.folded_cells, _folded_cell)


def _changes(
    column: Sequence[bytes], memo: dict[bytes, bytes], change: Callable[[bytes], bytes]
) -> dict[bytes, bytes]:
    """{cell: changed cell} for the distinct cells that `change` changes; it returns b"" for no
    change, and never changes ASCII. Memoised: text values repeat a lot in real exports."""
    distinct = set(filterfalse(bytes.isascii, column))
    fresh = distinct.difference(memo)
    if len(memo) + len(fresh) > MEMO_SIZE:
        memo.clear()
        fresh = distinct
    memo.update(zip(fresh, map(change, fresh), strict=True))
    changed = list(map(memo.__getitem__, distinct))
    return dict(compress(zip(distinct, changed, strict=True), changed))


def _repetitive(values: Sequence[bytes]) -> bool:
    """Whether values repeat enough to read each distinct one once (judged on a sample)."""
    sample = values[:REPEAT_SAMPLE]
    return len(values) > REPEAT_SAMPLE and len(set(sample)) * 2 <= len(sample)


def _short_repaired_cell(cell: bytes) -> bytes:
    repair = repair_short_field(cell.decode())
    return repair.text.encode() if repair.changed else b""


def _folded_cell(cell: bytes) -> bytes:
    text = cell.decode()
    folded = fold_fullwidth(text)
    return folded.encode() if folded != text else b""


@dataclass(slots=True)
class _TimeCells:
    """One time column of a chunk: per row, the instant's fields, or an error."""

    utc_ms: list[int]
    iso: list[bytes]
    utc_ms_text: list[bytes]
    labels: list[str]
    errors: dict[int, InvalidEvent]  # by row
    inferred: list[int]  # rows settled by the reference column

    def spread(self, values: Sequence[bytes], distinct: list[bytes]) -> _TimeCells:
        """From the cells of the distinct `values` to those of every value."""
        at = list(map({value: k for k, value in enumerate(distinct)}.__getitem__, values))
        errors = {}
        if self.errors:
            errors = {k: self.errors[d] for k, d in enumerate(at) if d in self.errors}
        return _TimeCells(
            list(map(self.utc_ms.__getitem__, at)),
            list(map(self.iso.__getitem__, at)),
            list(map(self.utc_ms_text.__getitem__, at)),
            list(map(self.labels.__getitem__, at)),
            errors,
            [],  # no reference, nothing inferred
        )


_CELLS: dict[HarmoniseOptions, _Cells] = {}


def _cells_for(options: HarmoniseOptions) -> _Cells:
    found = _CELLS.get(options)
    if found is None:
        found = _CELLS[options] = _Cells(options)
    return found


# --- a chunk: raw records in, rendered output and rejects out ----------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    """Everything a worker needs besides the data; hashable, so workers cache per spec."""

    options: HarmoniseOptions
    out_format: Format
    rejects_format: Format
    columns: tuple[str, ...] | None  # a CSV output's input columns (from the first input)


@dataclass(frozen=True, slots=True)
class _Task:
    spec: _Spec
    kind: Format
    header: tuple[str, ...] | None  # CSV: this input's columns
    data: Any  # CSV: whole records; JSON Lines: lines, or one message each; a Parquet batch


@dataclass(slots=True)
class _ChunkResult:
    out: bytes
    rejects: bytes
    counts: Counts
    rejected_at: list[int]  # indices of the rejected rows within the chunk


class _Renderer:
    """Writes one chunk's harmonised rows and rejects in the job's formats."""

    def __init__(self, spec: _Spec) -> None:
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
        self.csv_output = _roles(self.columns, spec.options).output
        self.objects: list[list[Any]] = []  # Parquet output of JSON objects: rows, then columns

    def row(self, columns: Sequence[str], values: Sequence[Any]) -> None:
        if self.spec.out_format == "csv":
            self.csv_row(values)
        else:
            self.out_lines.append(orjson.dumps(dict(zip(columns, values, strict=True))) + b"\n")

    def obj(self, obj: dict[str, Any]) -> None:
        if self.spec.out_format == "parquet":
            fields = _parquet_schema(self.spec)
            self.objects.append([_parquet_cell(obj.get(f.name), f) for f in fields])
        elif self.spec.out_format == "csv":
            self.csv_row([_csv_cell(obj.get(c)) for c in self.csv_output])
        else:
            self.out_lines.append(orjson.dumps(obj) + b"\n")

    def reject(self, index: int, original: dict[str, Any], exc: InvalidEvent) -> None:
        """`original`: the row's columns and values as they came in."""
        self._count(index, exc)
        if self.spec.rejects_format == "jsonl":
            reason_key, message_key = _reject_keys(original)
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

    def result(self, rows: int) -> _ChunkResult:
        self.counts.rows_in = rows
        self.counts.rows_out = rows - len(self.rejected_at)
        self.counts.formats = dict(Counter(self.labels))
        if self.objects:
            columns = list(zip(*self.objects, strict=True))
            self.out_lines.append(encode_columns(_parquet_schema(self.spec), columns, None))
        out = self.out_text.getvalue().encode() + b"".join(self.out_lines)
        rejects = self.reject_text.getvalue().encode("utf-8", "surrogateescape")
        return _ChunkResult(
            out, rejects + b"".join(self.reject_lines), self.counts, self.rejected_at
        )


@cache
def _parquet_schema(spec: _Spec) -> Any:
    """The output's columns: the input's as text, `<time>_utc_ms` as int64."""
    times = _roles(spec.columns or (), spec.options).time
    output = _roles(spec.columns or (), spec.options).output
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
class _CsvPlan:
    """Positions for one CSV header: what to parse, repair and fold, and the output order."""

    permutation: tuple[int, ...] | None  # to the output's column order, when it differs
    columns: tuple[str, ...]
    time: tuple[int, ...]
    text: tuple[int, ...]
    identifiers: tuple[int, ...]
    reference: int | None
    order: tuple[int, ...]  # output columns: positions in (columns + one utc ms per time column)
    output: tuple[str, ...]


_PLANS: dict[tuple[_Spec, tuple[str, ...]], _CsvPlan] = {}


def _csv_plan(spec: _Spec, header: tuple[str, ...]) -> _CsvPlan:
    plan = _PLANS.get((spec, header))
    if plan is None:
        plan = _PLANS[(spec, header)] = _make_csv_plan(spec, header)
    return plan


def _make_csv_plan(spec: _Spec, header: tuple[str, ...]) -> _CsvPlan:
    columns = spec.columns if spec.columns is not None else header
    roles = _roles(columns, spec.options)
    where = {name: i for i, name in enumerate(columns)}
    where |= {t + SIBLING_SUFFIX: len(columns) + k for k, t in enumerate(roles.time)}
    return _CsvPlan(
        permutation=None if columns == header else tuple(header.index(c) for c in columns),
        columns=columns,
        time=tuple(where[t] for t in roles.time),
        text=tuple(where[c] for c in columns if c in roles.text),
        identifiers=tuple(where[c] for c in columns if c in roles.identifiers),
        reference=where[roles.reference] if roles.reference is not None else None,
        order=tuple(where[name] for name in roles.output),
        output=roles.output,
    )


def _harmonise_csv(task: _Task) -> _ChunkResult:
    assert isinstance(task.data, bytes) and task.header is not None
    try:
        table = _read_csv_chunk(task.data, len(task.header))
    except UnreadableCsv as exc:
        raise HarmoniseError(f"unreadable CSV after {exc.rows} rows of a chunk: {exc}") from exc
    return _harmonise_table(task.spec, task.header, table)


def _harmonise_parquet(task: _Task) -> _ChunkResult:
    assert task.header is not None
    columns: list[Sequence[bytes]] = list(batch_cells(task.data))
    count = len(columns[0]) if columns else 0
    raw = [i for i, field in enumerate(task.data.schema) if is_bytes_column(field.type)]
    dirty = sorted({k for i in raw for k, cell in enumerate(columns[i]) if not _is_utf8(cell)})
    if not dirty:
        return _harmonise_table(task.spec, task.header, _CsvChunk(columns, range(count), count, {}))
    problem = InvalidEvent(Reason.INVALID_ENCODING, "bytes that are not UTF-8")
    malformed = {k: ([column[k] for column in columns], problem) for k in dirty}
    at = [k for k in range(count) if k not in malformed]
    kept: list[Sequence[bytes]] = [[column[k] for k in at] for column in columns]
    return _harmonise_table(task.spec, task.header, _CsvChunk(kept, at, count, malformed))


def _harmonise_table(spec: _Spec, header: tuple[str, ...], table: _CsvChunk) -> _ChunkResult:
    """A chunk column by column, cells as UTF-8 bytes: each time column is read at once
    (timecolumns), rows with a bad time are set aside, text columns repaired value by distinct
    value, and the kept rows written. Rows keep their order; rejects are written in row order
    whatever their reason."""
    plan = _csv_plan(spec, header)
    cells = _cells_for(spec.options)
    out = _Renderer(spec)
    columns = table.columns
    if plan.permutation is not None:
        columns = [columns[i] for i in plan.permutation]
    references = cells.references(columns[plan.reference]) if plan.reference is not None else None
    times = [cells.times(columns[i], references) for i in plan.time]
    bad_times: dict[int, InvalidEvent] = {}
    for found in times:
        for k, problem in found.errors.items():
            bad_times.setdefault(k, problem)  # the first bad column's error, as row by row
    rejects = [(k, header, record, problem) for k, (record, problem) in table.malformed.items()]
    rejects += [
        (table.at[k], plan.columns, [column[k] for column in columns], problem)
        for k, problem in bad_times.items()
    ]
    for k, columns_of, row, problem in sorted(rejects, key=itemgetter(0)):
        out.reject_csv_row(k, columns_of, [_text(cell) for cell in row], problem)
    keep = None
    if bad_times:
        keep = [True] * len(table.at)
        for k in bad_times:
            keep[k] = False
    _emit_columns(plan, columns, times, keep, cells, out)
    return out.result(table.records)


@dataclass(slots=True)
class _CsvChunk:
    """A chunk's well-formed rows, column by column, and its malformed records."""

    columns: list[Sequence[bytes]]  # in the header's order
    at: Sequence[int]  # each row's index among the chunk's records
    records: int
    malformed: dict[int, tuple[list[bytes], InvalidEvent]]  # by index among the records


def _read_csv_chunk(blob: bytes, width: int) -> _CsvChunk:
    """Raises UnreadableCsv."""
    dirty = not _is_utf8(blob)
    columns: list[Sequence[bytes]] | None = None
    if not dirty:
        columns = list(read_columns(blob, width) or ()) or None
    if columns is not None:
        count = len(columns[0])
        return _CsvChunk(columns, range(count), count, {})
    records = read_records(blob)
    malformed = _malformed_records(records, width, dirty)
    at: Sequence[int] = range(len(records))
    rows = records
    if malformed:
        at = [k for k in at if k not in malformed]
        rows = [records[k] for k in at]
    columns = list(zip(*rows, strict=True)) or [()] * width
    found = {k: (records[k], problem) for k, problem in malformed.items()}
    return _CsvChunk(columns, at, len(records), found)


def _is_utf8(blob: bytes) -> bool:
    try:
        blob.decode()
    except UnicodeDecodeError:
        return False
    return True


def _text(cell: bytes) -> str:
    """A cell as text; bytes that are not UTF-8 become surrogates (written back as they were)."""
    return cell.decode("utf-8", "surrogateescape")


def _malformed_records(
    records: list[list[bytes]], width: int, dirty: bool
) -> dict[int, InvalidEvent]:
    if not dirty and set(map(len, records)) <= {width}:
        return {}
    found = {k: _malformed(row, width, dirty) for k, row in enumerate(records)}
    return {k: problem for k, problem in found.items() if problem is not None}


def _malformed(row: list[bytes], width: int, dirty: bool) -> InvalidEvent | None:
    if len(row) != width:
        return InvalidEvent(Reason.INVALID_FIELD, f"{len(row)} fields, the header has {width}")
    if dirty and not all(map(_is_utf8, row)):
        return InvalidEvent(Reason.INVALID_ENCODING, "bytes that are not UTF-8")
    return None


def _emit_columns(
    plan: _CsvPlan,
    columns: list[Sequence[bytes]],
    times: list[_TimeCells],
    keep: list[bool] | None,
    cells: _Cells,
    out: _Renderer,
) -> None:
    """The rows that `keep` (None: all), harmonised, into `out`: times, repaired text, folded
    identifiers. Rows are dropped only as they are written: one pass over the cells fewer."""

    def kept(values: Iterable[Any]) -> Iterable[Any]:
        return values if keep is None else compress(values, keep)

    counts = out.counts
    for i, found in zip(plan.time, times, strict=True):
        columns[i] = found.iso
        out.labels.extend(kept(found.labels))
        counts.inferred += sum(1 for k in found.inferred if keep is None or keep[k])
    originals = {i: columns[i] for i in plan.text}
    for i in plan.text:
        fixes = cells.repairs_of(columns[i])
        if fixes:
            counts.text_repaired += sum(kept(map(fixes.__contains__, columns[i])))
            columns[i] = list(map(fixes.get, columns[i], columns[i]))
    if len(plan.text) > 1 and cells.gbk_cells:
        _repair_short_fields(plan.text, originals, columns, cells, keep, counts)
    for i in plan.identifiers:
        folds = cells.folds_of(columns[i])
        if folds:
            counts.identifiers_folded += sum(kept(map(folds.__contains__, columns[i])))
            columns[i] = list(map(folds.get, columns[i], columns[i]))
    if out.spec.out_format == "csv":
        sources = [*columns, *(found.utc_ms_text for found in times)]
        out.out_lines.append(render_columns([sources[j] for j in plan.order], keep))
        return
    if out.spec.out_format == "parquet":
        values: list[Sequence[Any]] = [*columns, *(found.utc_ms for found in times)]
        schema = _parquet_schema(out.spec)
        out.out_lines.append(encode_columns(schema, [values[j] for j in plan.order], keep))
        return
    values_by_column: list[Sequence[Any]] = [[cell.decode() for cell in c] for c in columns]
    values_by_column += [found.utc_ms for found in times]
    for values in kept(zip(*(values_by_column[j] for j in plan.order), strict=True)):
        out.row(plan.output, values)


def _repair_short_fields(
    text: Sequence[int],
    originals: dict[int, Sequence[bytes]],
    columns: list[Sequence[bytes]],
    cells: _Cells,
    keep: list[bool] | None,
    counts: Counts,
) -> None:
    """Record-level evidence: in the rows where a text column was GBK mojibake, the short
    fields the repair left alone (one or two hanzi, '·Ö' for 分) are repaired too."""
    gbk = cells.gbk_cells
    every = range(len(originals[text[0]]))
    evidence: set[int] = set()
    for i in text:
        if columns[i] is originals[i]:
            continue  # nothing repaired in this column: no evidence, and no hashing of its cells
        changed = compress(every, map(is_not, columns[i], originals[i]))
        evidence.update(k for k in changed if originals[i][k] in gbk)
    if not evidence:
        return
    rows = sorted(evidence)
    for i in text:
        column = originals[i]
        in_rows = list(map(column.__getitem__, rows))
        if all(map(bytes.isascii, in_rows)):
            continue  # most columns (ids, numbers): settled without a loop over the rows
        fixes = cells.short_repairs_of(in_rows)
        if not fixes:
            continue
        candidates = [k for k in rows if column[k] is columns[i][k]]
        repaired = list(columns[i])
        for k in candidates:
            fixed = fixes.get(column[k])
            if fixed is not None:
                repaired[k] = fixed
                counts.text_repaired += keep is None or keep[k]
        columns[i] = repaired


_OBJECT_ROLES: dict[tuple[HarmoniseOptions, tuple[str, ...]], _Roles] = {}


def _object_roles(options: HarmoniseOptions, keys: tuple[str, ...]) -> _Roles:
    roles = _OBJECT_ROLES.get((options, keys))
    if roles is None:
        if len(_OBJECT_ROLES) >= 4096:  # objects with ever new keys: keep memory bounded
            _OBJECT_ROLES.clear()
        roles = _OBJECT_ROLES[(options, keys)] = _roles(keys, options)
    return roles


def _harmonise_object(obj: dict[str, Any], spec: _Spec, cells: _Cells, out: _Renderer) -> None:
    """Harmonise one JSON object into `out`; raises InvalidEvent for the rejects."""
    roles = _object_roles(spec.options, tuple(obj))
    if roles.missing_times:
        raise InvalidEvent(Reason.MISSING_FIELD, f"no time column {roles.missing_times[0]!r}")
    if spec.out_format in ("csv", "parquet"):
        outside = [k for k in obj if k not in out.column_set and k not in roles.siblings]
        if outside:
            raise InvalidEvent(
                Reason.INVALID_FIELD,
                f"column {outside[0]!r} is not among the output's (the first input's) columns",
            )
    reference = cells.reference(obj[roles.reference]) if roles.reference is not None else None
    instants = {name: cells.instant(obj[name], reference) for name in roles.time}
    harmonised: dict[str, Any] = {}
    for name, value in obj.items():
        instant = instants.get(name)
        if instant is not None:
            harmonised[name] = instant.iso
            harmonised[name + SIBLING_SUFFIX] = instant.utc_ms
            out.labels.append(instant.source_format)
            out.counts.inferred += instant.inferred
        elif name not in roles.siblings:
            harmonised[name] = _harmonise_value(name, value, roles, cells, out.counts)
    out.obj(harmonised)


def _harmonise_value(name: str, value: Any, roles: _Roles, cells: _Cells, counts: Counts) -> Any:
    if not isinstance(value, str) or value.isascii():
        return value
    if name in roles.text and (repaired := cells.repaired(value)):
        counts.text_repaired += 1
        value = repaired
    if name in roles.identifiers:
        folded = fold_fullwidth(value)
        counts.identifiers_folded += folded != value
        value = folded
    return value


def _harmonise_jsonl(task: _Task) -> _ChunkResult:
    """Lines of a file (blank ones skipped), or Kafka messages (one row each, always)."""
    lines = task.data.split(b"\n") if isinstance(task.data, bytes) else task.data
    skip_blank = isinstance(task.data, bytes)
    cells = _cells_for(task.spec.options)
    out = _Renderer(task.spec)
    index = -1
    for line in lines:
        if skip_blank and not line.strip():
            continue
        index += 1
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            out.reject_line(index, _printable(line), _not_json(line, exc))
            continue
        if not isinstance(obj, dict):
            problem = f"expected a JSON object, got {type(obj).__name__}"
            out.reject_line(index, _printable(line), InvalidEvent(Reason.INVALID_JSON, problem))
            continue
        try:
            _harmonise_object(obj, task.spec, cells, out)
        except InvalidEvent as exc:
            out.reject(index, obj, exc)
    return out.result(index + 1)


def _printable(line: bytes) -> str:
    return line.decode("utf-8", "backslashreplace").rstrip("\r")


def _not_json(line: bytes, exc: Exception) -> InvalidEvent:
    try:
        line.decode()
    except UnicodeDecodeError:
        return InvalidEvent(Reason.INVALID_ENCODING, "bytes that are not UTF-8")
    return InvalidEvent(Reason.INVALID_JSON, f"not JSON: {exc}")


def _run_task(task: _Task) -> _ChunkResult:
    encoding = task.spec.options.encoding
    if isinstance(task.data, bytes) and task.kind != "parquet" and not _is_utf8_codec(encoding):
        task = replace(task, data=_to_utf8(task.data, encoding))
    with _collector_paused():
        if task.kind == "csv":
            return _harmonise_csv(task)
        if task.kind == "parquet":
            return _harmonise_parquet(task)
        return _harmonise_jsonl(task)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A chunk makes a container per row and per cell, all freed by reference counting (no
    cycles: stored errors drop their tracebacks); the cyclic collector's passes over them took a
    sixth of the job and found nothing, so it waits until the chunk is done."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- reading: chunks that end on record boundaries ---------------------------------------------


def _last_record_end(data: bytes, quoted: bool) -> int:
    """Just past the last newline that ends a record (outside CSV quotes); 0 if none does."""
    end = data.rfind(b"\n")
    if not quoted:
        return end + 1
    quotes = data.count(b'"', 0, end)
    while end >= 0:
        if quotes % 2 == 0:
            return end + 1
        previous = data.rfind(b"\n", 0, end)
        quotes -= data.count(b'"', previous + 1, end)
        end = previous
    return 0


def _first_record_end(data: bytes) -> int:
    start = quotes = 0
    while (newline := data.find(b"\n", start)) >= 0:
        quotes += data.count(b'"', start, newline)
        if quotes % 2 == 0:
            return newline + 1
        start = newline + 1
    return 0


def _blocks(file: IO[bytes], carry: bytes, *, quoted: bool, name: str) -> Iterator[bytes]:
    while block := file.read(CHUNK_BYTES):
        carry += block
        cut = _last_record_end(carry, quoted)
        if cut:
            yield carry[:cut]
            carry = carry[cut:]
        elif len(carry) > MAX_RECORD_BYTES:
            raise HarmoniseError(f"{name}: a record longer than 64 MiB (unbalanced quotes?)")
    if carry:
        yield carry


def _is_utf8_codec(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def _to_utf8(blob: bytes, encoding: str) -> bytes:
    """A chunk of an input in another encoding, as UTF-8; bytes that do not decode stay as they
    were, so their row is rejected `invalid_encoding` with them, as in a UTF-8 file."""
    return blob.decode(encoding, "surrogateescape").encode("utf-8", "surrogateescape")


def check_encoding(encoding: str) -> None:
    """Inputs are cut at quotes and line ends before decoding: only encodings that write those
    (and ASCII) as ASCII bytes will do (GBK, GB18030, Big5, Shift-JIS, Latin-1: yes; UTF-16: no)."""
    try:
        ascii_as_is = '"a,\r\n'.encode(encoding) == b'"a,\r\n'
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r}") from None
    if not ascii_as_is:
        raise ConfigError(f"encoding {encoding!r}: only ASCII-compatible encodings are read")


def _read_header(
    file: IO[bytes], name: str, encoding: str = "utf-8"
) -> tuple[tuple[str, ...] | None, bytes]:
    """A CSV file's columns (None: an empty file) and the bytes read past them."""
    data = b""
    while not (cut := _first_record_end(data)):
        block = file.read(CHUNK_BYTES)
        if not block:
            cut = len(data)
            break
        data += block
        if len(data) > MAX_RECORD_BYTES:
            raise HarmoniseError(f"{name}: no end to the header line")
    line = data[:cut].decode("utf-8-sig" if _is_utf8_codec(encoding) else encoding, "replace")
    header = next(csv.reader(io.StringIO(line)), None)
    if not header:
        return None, data[cut:]
    duplicated = [c for c, n in Counter(header).items() if n > 1]
    if duplicated:
        raise ConfigError(f"{name}: column {duplicated[0]!r} appears twice")
    return tuple(header), data[cut:]


def _first_object_keys(path: Path, encoding: str = "utf-8") -> tuple[str, ...] | None:
    with path.open("rb") as file:
        lines = (_to_utf8(line, encoding) for line in file if line.strip())
        return next((keys for keys in map(_object_keys, lines) if keys is not None), None)


def _object_keys(raw: bytes) -> tuple[str, ...] | None:
    """The keys of `raw` when it is a JSON object, else None."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return tuple(obj) if isinstance(obj, dict) else None


def input_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    found = FORMAT_BY_SUFFIX.get(suffix)
    if found is None:
        raise ConfigError(
            f"{path}: cannot tell CSV, JSON Lines or Parquet by the suffix {suffix!r}"
        )
    return found


def output_format(path: Path, given: str | None = None) -> Format:
    if given is not None:
        if given not in ("csv", "jsonl", "parquet"):
            raise ConfigError(f"unknown format {given!r} (csv, jsonl or parquet)")
        return "csv" if given == "csv" else "parquet" if given == "parquet" else "jsonl"
    found = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        raise ConfigError(f"{path}: say --format csv, jsonl or parquet (the suffix does not tell)")
    return found


def default_rejects_path(out: Path) -> Path:
    """OUT's sibling: `calls.csv` -> `calls.rejects.csv`; a Parquet output's rejects are JSON
    Lines (`calls.parquet` -> `calls.rejects.jsonl`), the original values as they came."""
    suffix = ".jsonl" if out.suffix.lower() == ".parquet" else out.suffix
    return out.with_name(f"{out.stem}.rejects{suffix}")


def _first_columns(
    inputs: Sequence[Path], formats: Sequence[Format], options: HarmoniseOptions, *, same: bool
) -> tuple[str, ...]:
    """The first input's columns (a CSV output's), after checking that every CSV input has the
    columns the options name and, when `same`, the first input's columns."""
    named = [*(options.time_columns or ()), *(options.text_columns or ())]
    named += [options.reference_column] if options.reference_column else []
    first: tuple[str, ...] | None = None
    for path, kind in zip(inputs, formats, strict=True):
        if kind == "jsonl":
            found = _first_object_keys(path, options.encoding) if same and first is None else None
        elif kind == "parquet":
            found = parquet_columns(path)
        else:
            with path.open("rb") as file:
                found = _read_header(file, str(path), options.encoding)[0]
            unknown = [c for c in named if found is not None and c not in found]
            if unknown:
                raise ConfigError(f"{path}: no column {unknown[0]!r}")
            if same and None not in (found, first) and set(found or ()) != set(first or ()):
                raise ConfigError(f"{path}: columns differ from those of {inputs[0]}")
        first = first if first is not None else found
    return first or ()


# --- running chunks, in order, on every core ---------------------------------------------------


def _ordered_map(
    tasks: Iterable[tuple[_Task, M]], workers: int
) -> Generator[tuple[_ChunkResult, M], None, None]:
    """Results in task order. Pool.imap would read the whole input ahead: this keeps at most two
    chunks per worker in flight, so memory stays flat however large the input."""
    if workers <= 1:
        for task, meta in tasks:
            yield _run_task(task), meta
        return
    # spawn, not fork: the parent may hold Kafka client and tqdm threads.
    with get_context("spawn").Pool(workers) as pool:
        pending: deque[tuple[Any, M]] = deque()
        for task, meta in tasks:
            pending.append((pool.apply_async(_run_task, (task,)), meta))
            if len(pending) >= 2 * workers:
                result, done = pending.popleft()
                yield result.get(), done
        while pending:
            result, done = pending.popleft()
            yield result.get(), done


# --- writing: atomic files, or a topic ---------------------------------------------------------


class _Sink(Protocol):
    def write(self, data: bytes, records: Sequence[Any] | None) -> None: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...


def _partial_path(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.partial-{pid}")


def _remove_stale_partials(path: Path) -> None:
    """Partial files of `path` whose job is gone (killed): never those of a running job."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.partial-*"):
        pid = stale.name.rpartition("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            stale.unlink(missing_ok=True)
            log.info("removed partial=%s of a job that is gone", stale)


class _FileSink:
    """Writes to `.<name>.partial-<pid>`; only `commit` makes `path` appear, whole."""

    def __init__(self, path: Path, header: bytes) -> None:
        _remove_stale_partials(path)
        self.path = path
        self.temp = _partial_path(path, os.getpid())
        self.file = self.temp.open("wb")
        self.file.write(header)

    def write(self, data: bytes, records: Sequence[Any] | None) -> None:
        self.file.write(data)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)


class _TopicSink:
    """One message per output line, keyed like the message it came from."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def write(self, data: bytes, records: Sequence[Any] | None) -> None:
        for k, line in enumerate(data.split(b"\n")[:-1]):
            key = records[k].key if records is not None else None
            self.producer.send(self.topic, key=key, value=line)

    def commit(self) -> None:
        self.producer.flush()

    def discard(self) -> None:
        self.producer.flush()  # what was sent is sent: topics are at-least-once


def _csv_line(values: Sequence[str]) -> bytes:
    if not values:
        return b""
    text = io.StringIO()
    csv.writer(text).writerow(values)
    return text.getvalue().encode()


def _headers(spec: _Spec) -> tuple[bytes, bytes]:
    """The first lines of the output and rejects files (CSV: the column names)."""
    columns = spec.columns or ()
    out = _csv_line(_roles(columns, spec.options).output) if spec.out_format == "csv" else b""
    rejects = _csv_line([*columns, *_reject_keys(columns)]) if columns else b""
    return out, rejects if spec.rejects_format == "csv" else b""


# --- the jobs ----------------------------------------------------------------------------------

Work = Iterable[tuple[_Task, tuple[int, list[Any] | None]]]  # tasks with (progress, records)


def _execute(
    open_sinks: Sequence[Callable[[], _Sink]], work: Work, summary: HarmoniseSummary, bar: tqdm
) -> None:
    """Harmonise every chunk into the (output, rejects) sinks, then commit both; on any failure,
    SIGTERM included, discard them instead."""
    sinks: list[_Sink] = []
    with _terminate_as_exit():
        try:
            sinks.extend(open_sink() for open_sink in open_sinks)
            out, rejects = sinks
            with closing(_ordered_map(work, summary.workers)) as results:
                for result, (size, records) in results:
                    out.write(result.out, _kept(records, result.rejected_at))
                    rejects.write(result.rejects, _picked(records, result.rejected_at))
                    summary.counts.add(result.counts)
                    bar.update(size)
        except BaseException:
            for sink in sinks:
                sink.discard()
            raise
        rejects.commit()  # the output last: its presence says the job finished
        out.commit()


def _kept(records: list[Any] | None, rejected_at: list[int]) -> list[Any] | None:
    if records is None:
        return None
    rejected = set(rejected_at)
    return [r for i, r in enumerate(records) if i not in rejected]


def _picked(records: list[Any] | None, indices: list[int]) -> list[Any] | None:
    return None if records is None else [records[i] for i in indices]


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like an exception, so partial files are removed on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def _file_errors() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise HarmoniseError(f"{exc.filename or 'I/O'}: {exc.strerror or exc}") from exc


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _progress(total: int, unit: str, enabled: bool) -> tqdm:
    return tqdm(
        total=total, unit=unit, unit_scale=True, desc="harmonise", disable=not enabled, leave=False
    )


def _check_options(options: HarmoniseOptions) -> None:
    format_iso(MIN_EPOCH_MS, options.zone)  # an unknown zone is a ConfigError, now
    check_encoding(options.encoding)


def warehouse_table(out: Path | str) -> str | None:
    """TABLE of an output written `warehouse:TABLE`, else None (a file)."""
    text = str(out)
    return text[len(WAREHOUSE_PREFIX) :] if text.startswith(WAREHOUSE_PREFIX) else None


def harmonise_files(
    inputs: Sequence[Path],
    out: Path,
    *,
    rejects: Path | None = None,
    out_format: str | None = None,
    options: HarmoniseOptions | None = None,
    workers: int | None = None,
    progress: bool = False,
    warehouse: Any = None,
) -> HarmoniseSummary:
    """Harmonise CSV / JSON Lines / Parquet files, in order, into one output file, or into a
    warehouse table when OUT is `warehouse:TABLE` (`warehouse`: a sinks.warehouse.Warehouse; the
    table is replaced whole when the job ends). Rejected rows go to `rejects` (default: OUT's
    sibling `<stem>.rejects<suffix>`, `TABLE.rejects.jsonl`). Raises ConfigError for a request
    that does not fit the inputs, HarmoniseError when a file cannot be read or written."""
    started = time.monotonic()
    options = options or HarmoniseOptions()
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ConfigError("no input files")
    formats = [input_format(p) for p in paths]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"no such file: {missing[0]}")
    table = warehouse_table(out)
    if table is not None and warehouse is None:
        raise ConfigError("writing to the warehouse needs a warehouse")
    kind = "parquet" if table is not None else output_format(out, out_format)
    if table is not None:
        rejects = rejects or Path(f"{table}.rejects.jsonl")
    rejects = rejects or default_rejects_path(out)
    rejects_kind = FORMAT_BY_SUFFIX.get(
        rejects.suffix.lower(), "jsonl" if kind == "parquet" else kind
    )
    if rejects_kind == "parquet":
        raise ConfigError("rejects are written to CSV or JSON Lines, not Parquet")
    if rejects.resolve() == out.resolve() or out.resolve() in {p.resolve() for p in paths}:
        raise ConfigError("the output, the rejects and the inputs must be different files")
    _check_options(options)
    summary = HarmoniseSummary([str(p) for p in paths], str(out), str(rejects), workers or _cores())
    with _file_errors():
        fixed = kind in ("csv", "parquet") or rejects_kind == "csv"  # one set of columns
        first = _first_columns(paths, formats, options, same=fixed)
        columns = first if fixed else None
        spec = _Spec(options, kind, rejects_kind, columns)
        out_header, rejects_header = _headers(spec)
        sinks: list[Callable[[], _Sink]] = [_out_sink(out, spec, out_header, warehouse)]
        sinks.append(partial(_FileSink, rejects, rejects_header))
        total = sum(p.stat().st_size for p in paths)
        with _progress(total, "B", progress) as bar:
            _execute(sinks, _file_work(paths, formats, spec), summary, bar)
    summary.seconds = time.monotonic() - started
    log.info(
        "harmonised rows_in=%d rows_out=%d rejected=%d out=%s",
        summary.counts.rows_in,
        summary.counts.rows_out,
        summary.rows_rejected,
        out,
    )
    return summary


def _out_sink(out: Path, spec: _Spec, header: bytes, warehouse: Any) -> Callable[[], _Sink]:
    table = warehouse_table(out)
    if table is not None:
        from sinks.harmonised import HarmonisedTable

        return partial(HarmonisedTable, warehouse, table, _parquet_schema(spec))
    if spec.out_format != "parquet":
        return partial(_FileSink, out, header)

    def open_parquet() -> _Sink:
        _remove_stale_partials(out)
        return ParquetSink(out, _partial_path(out, os.getpid()), _parquet_schema(spec))

    return open_parquet


def _file_work(paths: Sequence[Path], formats: Sequence[Format], spec: _Spec) -> Work:
    for path, kind in zip(paths, formats, strict=True):
        if kind == "parquet":
            yield from _parquet_work(path, spec)
            continue
        with path.open("rb") as file:
            header: tuple[str, ...] | None = None
            carry = b""
            if kind == "csv":
                header, carry = _read_header(file, str(path), spec.options.encoding)
                if header is None:
                    continue
            skipped = file.tell() - len(carry)  # the header's bytes, for the progress bar
            for blob in _blocks(file, carry, quoted=kind == "csv", name=str(path)):
                yield _Task(spec, kind, header, blob), (len(blob) + skipped, None)
                skipped = 0


def _parquet_work(path: Path, spec: _Spec) -> Work:
    """A Parquet file's record batches, in order (progress: the file's bytes, pro rata)."""
    header = parquet_columns(path)
    if not header:
        return
    rows, size = max(1, parquet_rows(path)), path.stat().st_size
    for batch in parquet_batches(path):
        yield _Task(spec, "parquet", header, batch), (size * batch.num_rows // rows, None)


def harmonise_topic(
    bootstrap: str,
    topic: str,
    *,
    window: TopicRange | None = None,
    out: Path | None = None,
    to_topic: str | None = None,
    rejects: Path | None = None,
    rejects_topic: str | None = None,
    options: HarmoniseOptions | None = None,
    workers: int | None = None,
    partitions: int = 4,
    progress: bool = False,
    warehouse: Any = None,
) -> HarmoniseSummary:
    """Harmonise the JSON messages of a bounded range of `topic` into a JSON Lines file, into
    `to_topic` (keys kept), or into a warehouse table when `out` is `warehouse:TABLE` (its
    columns: the first JSON object's keys; an object with other keys is rejected
    `invalid_field`; the table is replaced whole when the job ends). Rejects go to the `rejects`
    file if given, else beside `out` (`TABLE.rejects.jsonl`), else to `rejects_topic` (default
    `<to_topic>.rejects`). Writing to topics is at-least-once."""
    from kafka import KafkaConsumer, KafkaProducer

    from streams.topics import ensure_topics

    started = time.monotonic()
    options = options or HarmoniseOptions()
    if (out is None) == (to_topic is None):
        raise ConfigError("give an output file or an output topic (one of them)")
    table = warehouse_table(out) if out is not None else None
    if table is not None and warehouse is None:
        raise ConfigError("writing to the warehouse needs a warehouse")
    if out is not None and table is None and output_format(out) != "jsonl":
        raise ConfigError("a topic is written to JSON Lines, not CSV")
    if rejects is not None and FORMAT_BY_SUFFIX.get(rejects.suffix.lower()) != "jsonl":
        raise ConfigError("the rejects of a topic are written to JSON Lines (.jsonl)")
    _check_options(options)
    if table is not None:
        rejects = rejects or Path(f"{table}.rejects.jsonl")
    rejects = rejects or (default_rejects_path(out) if out is not None else None)
    rejects_topic = None if rejects is not None else rejects_topic or f"{to_topic}.rejects"
    summary = HarmoniseSummary(
        [f"topic {topic}"],
        f"topic {to_topic}" if to_topic else str(out),
        str(rejects) if rejects else f"topic {rejects_topic}",
        workers or _cores(),
    )
    spec = _Spec(options, "jsonl", "jsonl", None)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    producer = None
    try:
        bounds = _topic_bounds(consumer, topic, window or TopicRange())
        written = [t for t in (to_topic, rejects_topic) if t is not None]
        if written:
            ensure_topics(bootstrap, written, partitions)
            producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
        batches = _topic_batches(consumer, bounds)
        out_sink = _opener(out, to_topic, producer)
        if table is not None:
            columns, batches = _first_keys_of(batches)
            if columns is None:
                raise ConfigError(f"no JSON object in the range of {topic} to take columns from")
            spec = _Spec(options, "parquet", "jsonl", columns)
            from sinks.harmonised import HarmonisedTable

            out_sink = partial(HarmonisedTable, warehouse, table, _parquet_schema(spec))
        sinks = [out_sink, _opener(rejects, rejects_topic, producer)]
        work = (
            (_Task(spec, "jsonl", None, [r.value or b"" for r in batch]), (len(batch), batch))
            for batch in batches
        )
        total = sum(end - start for start, end in bounds.values())
        with _file_errors(), _progress(total, "msg", progress) as bar:
            _execute(sinks, work, summary, bar)
    finally:
        consumer.close()
        if producer is not None:
            producer.close()
    summary.seconds = time.monotonic() - started
    return summary


def _first_keys_of(
    batches: Iterator[list[Any]],
) -> tuple[tuple[str, ...] | None, Iterator[list[Any]]]:
    """The keys of the first JSON object among the records, and the batches (those read to
    find it included) to go on with."""
    read: list[list[Any]] = []
    for batch in batches:
        read.append(batch)
        for record in batch:
            keys = _object_keys(record.value or b"")
            if keys is not None:
                return keys, itertools.chain(read, batches)
    return None, iter(read)


def _opener(path: Path | None, topic: str | None, producer: Any) -> Callable[[], _Sink]:
    if path is not None:
        return partial(_FileSink, path, b"")
    assert topic is not None
    return partial(_TopicSink, producer, topic)


def _topic_bounds(consumer: Any, topic: str, window: TopicRange) -> dict[Any, tuple[int, int]]:
    """[start, end) offsets per partition, the ends captured now; empty ranges left out."""
    from kafka import TopicPartition

    deadline = time.monotonic() + 10
    ids = consumer.partitions_for_topic(topic)
    while not ids and time.monotonic() < deadline:
        time.sleep(0.2)
        ids = consumer.partitions_for_topic(topic)
    if not ids:
        raise HarmoniseError(f"no topic {topic!r}")
    partitions = [TopicPartition(topic, p) for p in sorted(ids)]
    firsts, lasts = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
    last_wanted = window.end_offset if window.end_offset is not None else 2**63 - 1
    bounds = {
        tp: (max(firsts[tp], window.start_offset or 0), min(lasts[tp], last_wanted))
        for tp in partitions
    }
    if window.since_ms is not None:
        found = consumer.offsets_for_times({tp: window.since_ms for tp in partitions})
        bounds = {
            tp: (found[tp].offset if found[tp] else end, end) for tp, (_, end) in bounds.items()
        }
    if window.until_ms is not None:
        found = consumer.offsets_for_times({tp: window.until_ms for tp in partitions})
        bounds = {
            tp: (start, min(end, found[tp].offset) if found[tp] else end)
            for tp, (start, end) in bounds.items()
        }
    return {tp: (start, end) for tp, (start, end) in bounds.items() if start < end}


def _topic_batches(consumer: Any, bounds: dict[Any, tuple[int, int]]) -> Iterator[list[Any]]:
    """The records in `bounds`, in chunks, each partition in offset order."""
    consumer.assign(list(bounds))
    for tp, (start, _) in bounds.items():
        consumer.seek(tp, start)
    ends = {tp: end for tp, (_, end) in bounds.items()}
    batch: list[Any] = []
    quiet_since = time.monotonic()
    while ends:
        polled = consumer.poll(timeout_ms=500, max_records=CHUNK_RECORDS)
        for tp, records in polled.items():
            end = ends.get(tp)
            batch.extend(r for r in records if end is not None and r.offset < end)
        for tp in [tp for tp, end in ends.items() if consumer.position(tp) >= end]:
            del ends[tp]
            consumer.pause(tp)
        if polled:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 60:
            raise HarmoniseError(f"no messages for 60 s with {len(ends)} partition(s) unread")
        while len(batch) >= CHUNK_RECORDS:
            yield batch[:CHUNK_RECORDS]
            batch = batch[CHUNK_RECORDS:]
    if batch:
        yield batch
