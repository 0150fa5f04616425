"""A chunk: raw records in (CSV, JSON Lines or Parquet), rendered output and rejects out; the
task a pool process runs."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import compress
from operator import is_not, itemgetter
from typing import Any

import orjson

from base.errors import (
    HarmoniseError,
    InvalidEvent,
    Reason,
    UnreadableCsv,
)
from streams.bulk.cells import Cells, TimeCells, cells_for
from streams.bulk.csv_files import read_columns, read_records, render_columns
from streams.bulk.options import SIBLING_SUFFIX, Counts, HarmoniseOptions
from streams.bulk.parquet_files import (
    batch_cells,
    encode_columns,
    is_bytes_column,
)
from streams.bulk.reading import is_utf8_codec, to_utf8
from streams.bulk.render import (
    ChunkResult,
    CsvPlan,
    FileRange,
    Renderer,
    Spec,
    Task,
    csv_plan,
    parquet_schema,
)
from streams.bulk.roles import Roles, column_roles
from streams.text.repair import fold_fullwidth


def _harmonise_csv(task: Task) -> ChunkResult:
    assert isinstance(task.data, bytes) and task.header is not None
    try:
        table = _read_csv_chunk(task.data, len(task.header))
    except UnreadableCsv as exc:
        raise HarmoniseError(f"unreadable CSV after {exc.rows} rows of a chunk: {exc}") from exc
    return _harmonise_table(task.spec, task.header, table)


def _harmonise_parquet(task: Task) -> ChunkResult:
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


def _harmonise_table(spec: Spec, header: tuple[str, ...], table: _CsvChunk) -> ChunkResult:
    """A chunk column by column, cells as UTF-8 bytes: each time column is read at once
    (streams.timestd.columns), rows with a bad time are set aside, text columns repaired value
    by distinct value, and the kept rows written. Rows keep their order; rejects are written in
    row order whatever their reason."""
    plan = csv_plan(spec, header)
    cells = cells_for(spec.options)
    out = Renderer(spec)
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
    plan: CsvPlan,
    columns: list[Sequence[bytes]],
    times: list[TimeCells],
    keep: list[bool] | None,
    cells: Cells,
    out: Renderer,
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
        schema = parquet_schema(out.spec)
        out.out_lines.append(encode_columns(schema, [values[j] for j in plan.order], keep))
        return
    values_by_column: list[Sequence[Any]] = [[cell.decode() for cell in c] for c in columns]
    values_by_column += [found.utc_ms for found in times]
    for values in kept(zip(*(values_by_column[j] for j in plan.order), strict=True)):
        out.row(plan.output, values)


_OBJECT_ROLES: dict[tuple[HarmoniseOptions, tuple[str, ...]], Roles] = {}


def _repair_short_fields(
    text: Sequence[int],
    originals: dict[int, Sequence[bytes]],
    columns: list[Sequence[bytes]],
    cells: Cells,
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


def _object_roles(options: HarmoniseOptions, keys: tuple[str, ...]) -> Roles:
    roles = _OBJECT_ROLES.get((options, keys))
    if roles is None:
        if len(_OBJECT_ROLES) >= 4096:  # objects with ever new keys: keep memory bounded
            _OBJECT_ROLES.clear()
        roles = _OBJECT_ROLES[(options, keys)] = column_roles(keys, options)
    return roles


def _harmonise_object(obj: dict[str, Any], spec: Spec, cells: Cells, out: Renderer) -> None:
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
    gbk = cells.gbk_texts
    if gbk and any(isinstance(v := obj.get(name), str) and v in gbk for name in roles.text):
        _repair_short_values(obj, harmonised, roles, cells, out.counts)
    out.obj(harmonised)


def _repair_short_values(
    obj: dict[str, Any], harmonised: dict[str, Any], roles: Roles, cells: Cells, counts: Counts
) -> None:
    """Record-level evidence, as in _repair_short_fields: another text field of this object
    was GBK mojibake, so a short one the repair left alone ('·Ö' for 分) is repaired too."""
    for name in roles.text:
        value = obj.get(name)
        if not isinstance(value, str) or value.isascii() or harmonised.get(name) != value:
            continue
        repaired = cells.short_repaired(value)
        if repaired:
            counts.text_repaired += 1
            harmonised[name] = fold_fullwidth(repaired) if name in roles.identifiers else repaired


def _harmonise_value(name: str, value: Any, roles: Roles, cells: Cells, counts: Counts) -> Any:
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


def _harmonise_jsonl(task: Task) -> ChunkResult:
    """Lines of a file (blank ones skipped), or Kafka messages (one row each, always)."""
    lines = task.data.split(b"\n") if isinstance(task.data, bytes) else task.data
    skip_blank = isinstance(task.data, bytes)
    cells = cells_for(task.spec.options)
    out = Renderer(task.spec)
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


def run_task(task: Task) -> ChunkResult:
    if isinstance(task.data, FileRange):
        task = replace(task, data=task.data.read())
    encoding = task.spec.options.encoding
    if isinstance(task.data, bytes) and task.kind != "parquet" and not is_utf8_codec(encoding):
        task = replace(task, data=to_utf8(task.data, encoding))
    with _collector_paused():
        if task.kind == "csv":
            result = _harmonise_csv(task)
        elif task.kind == "parquet":
            result = _harmonise_parquet(task)
        else:
            result = _harmonise_jsonl(task)
    return result if task.part is None else _written(result, task.part)


def _written(result: ChunkResult, part: str) -> ChunkResult:
    """The result with its output and rejects written to the part's files, not carried back."""
    with open(f"{part}.out", "wb") as out:
        out.write(result.out)
    with open(f"{part}.rejects", "wb") as rejects:
        rejects.write(result.rejects)
    return ChunkResult(b"", b"", result.counts, result.rejected_at, part)


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
