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
  with CRLF line ends (with "\n" alone, Python's writer would leave a field holding a bare
  "\r" unquoted). A row with the wrong number of fields is rejected `invalid_field`, one with
  invalid UTF-8 (or bytes its encoding cannot decode) `invalid_encoding` (the rejects file keeps
  its original bytes). JSON Lines: one object a line; blank lines skipped.
- Rejects: the original columns, untouched, then `reason` and `message` (`reject_reason` and
  `reject_message` when the input has a column so named). A line that is not a JSON object becomes
  `{"line": ..., "reason", "message"}` (in a CSV rejects file: the line goes in the message).
- Parquet (parquet_files): every input column is read as text, nulls as empty; the output
  has the input columns as strings and `<column>_utc_ms` as int64, like a CSV output's columns;
  its rejects are JSON Lines. `warehouse:TABLE` (sinks/harmonised) gets the same columns (String,
  Int64) and is replaced whole when the job ends; from a topic range, the columns are the first
  JSON object's keys.
- Files are cut into chunks at record boundaries (by quote parity for CSV; Parquet by record
  batch) and harmonised by a pool of processes, in order, with at most two chunks per process in
  flight. Output and rejects are written to `.<name>.partial-<pid>` beside them and renamed into
  place when the job ends; a partial file left by a killed job is removed by the next job writing
  the same file.
- A CSV or Parquet chunk is harmonised column by column, cells as UTF-8 bytes (csv_files reads
  and writes them as the csv module would): time columns through streams.timestd.columns (the
  common shapes at once, the rest through parse_instant, so every value reads exactly as
  parse_instant reads it), text through memoised repair of the distinct non-ASCII values. JSON
  objects go one by one.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from tqdm import tqdm

from base.errors import (
    ConfigError,
    HarmoniseError,
)
from infra.kafka_security import PLAINTEXT, KafkaSecurity
from streams.bulk.options import (
    CHUNK_BYTES,
    CHUNK_RECORDS,
    FORMAT_BY_SUFFIX,
    WAREHOUSE_PREFIX,
    Format,
    HarmoniseOptions,
    HarmoniseSummary,
    TopicRange,
)
from streams.bulk.outputs import (
    FileSink,
    Sink,
    TopicSink,
    output_headers,
    partial_path,
    parts_folder,
    remove_stale_partials,
)
from streams.bulk.parquet_files import (
    BATCH_ROWS,
    ParquetSink,
    parquet_batches,
    parquet_columns,
    parquet_rows,
)
from streams.bulk.pool import ordered_map
from streams.bulk.reading import (
    check_encoding,
    default_rejects_path,
    first_columns,
    input_format,
    object_keys,
    output_format,
    read_header,
    record_blocks,
)
from streams.bulk.render import FileRange, Spec, Task, parquet_schema
from streams.timestd import MIN_EPOCH_MS, format_iso

log = logging.getLogger(__name__)


Work = Iterable[tuple[Task, tuple[int, list[Any] | None]]]  # tasks with (progress, records)


def _execute(
    open_sinks: Sequence[Callable[[], Sink]], work: Work, summary: HarmoniseSummary, bar: tqdm
) -> None:
    """Harmonise every chunk into the (output, rejects) sinks, then commit both; on any failure,
    SIGTERM included, discard them instead."""
    sinks: list[Sink] = []
    with _terminate_as_exit():
        try:
            sinks.extend(open_sink() for open_sink in open_sinks)
            out, rejects = sinks
            with closing(ordered_map(work, summary.workers)) as results:
                for result, (size, records) in results:
                    if result.part is not None:
                        # written by the worker: only files are (see _file_work)
                        assert isinstance(out, FileSink) and isinstance(rejects, FileSink)
                        out.append(Path(f"{result.part}.out"))
                        rejects.append(Path(f"{result.part}.rejects"))
                    else:
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
    chunk_bytes: int = CHUNK_BYTES,
    batch_rows: int = BATCH_ROWS,
) -> HarmoniseSummary:
    """Harmonise CSV / JSON Lines / Parquet files, in order, into one output file, or into a
    warehouse table when OUT is `warehouse:TABLE` (`warehouse`: a sinks.warehouse.Warehouse; the
    table is replaced whole when the job ends). Rejected rows go to `rejects` (default: OUT's
    sibling `<stem>.rejects<suffix>`, `TABLE.rejects.jsonl`). Files are cut into chunks of
    about `chunk_bytes` (CSV, JSON Lines) or `batch_rows` (Parquet). Raises ConfigError for a
    request that does not fit the inputs, HarmoniseError when a file cannot be read or
    written."""
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
        first = first_columns(paths, formats, options, same=fixed)
        columns = first if fixed else None
        spec = Spec(options, kind, rejects_kind, columns)
        out_header, rejects_header = output_headers(spec)
        sinks: list[Callable[[], Sink]] = [_out_sink(out, spec, out_header, warehouse)]
        sinks.append(partial(FileSink, rejects, rejects_header))
        total = sum(p.stat().st_size for p in paths)
        # With a pool and a file output, workers read their chunks from the inputs and write
        # their results to part files: the parent only finds record boundaries and appends.
        parts = None
        if summary.workers > 1 and table is None and kind != "parquet":
            parts = parts_folder(out, os.getpid())
        with _progress(total, "B", progress) as bar, _parts_made(parts):
            work = _file_work(paths, formats, spec, chunk_bytes, batch_rows, parts)
            _execute(sinks, work, summary, bar)
    summary.seconds = time.monotonic() - started
    log.info(
        "harmonised rows_in=%d rows_out=%d rejected=%d out=%s",
        summary.counts.rows_in,
        summary.counts.rows_out,
        summary.rows_rejected,
        out,
    )
    return summary


def _out_sink(out: Path, spec: Spec, header: bytes, warehouse: Any) -> Callable[[], Sink]:
    table = warehouse_table(out)
    if table is not None:
        from sinks.harmonised import HarmonisedTable

        return partial(HarmonisedTable, warehouse, table, parquet_schema(spec))
    if spec.out_format != "parquet":
        return partial(FileSink, out, header)

    def open_parquet() -> Sink:
        remove_stale_partials(out)
        return ParquetSink(out, partial_path(out, os.getpid()), parquet_schema(spec))

    return open_parquet


@contextmanager
def _parts_made(parts: Path | None) -> Iterator[None]:
    if parts is None:
        yield
        return
    parts.mkdir(mode=0o700)
    try:
        yield
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def _file_work(
    paths: Sequence[Path],
    formats: Sequence[Format],
    spec: Spec,
    chunk_bytes: int = CHUNK_BYTES,
    batch_rows: int = BATCH_ROWS,
    parts: Path | None = None,
) -> Work:
    """The inputs' chunks; with `parts`, as byte ranges the workers read themselves, each with
    the part files its worker writes its results to."""
    chunks = itertools.count()
    for path, kind in zip(paths, formats, strict=True):
        if kind == "parquet":
            yield from _parquet_work(path, spec, batch_rows)
            continue
        with path.open("rb") as file:
            header: tuple[str, ...] | None = None
            carry = b""
            if kind == "csv":
                header, carry = read_header(file, str(path), spec.options.encoding)
                if header is None:
                    continue
            start = skipped = file.tell() - len(carry)  # skipped: the header, for the bar
            blocks = record_blocks(
                file, carry, quoted=kind == "csv", name=str(path), chunk_bytes=chunk_bytes
            )
            for blob in blocks:
                if parts is None:
                    task = Task(spec, kind, header, blob)
                else:
                    data = FileRange(str(path), start, len(blob))
                    task = Task(spec, kind, header, data, str(parts / f"{next(chunks):08d}"))
                yield task, (len(blob) + skipped, None)
                start += len(blob)
                skipped = 0


def _parquet_work(path: Path, spec: Spec, batch_rows: int) -> Work:
    """A Parquet file's record batches, in order (progress: the file's bytes, pro rata)."""
    header = parquet_columns(path)
    if not header:
        return
    rows, size = max(1, parquet_rows(path)), path.stat().st_size
    for batch in parquet_batches(path, batch_rows):
        yield Task(spec, "parquet", header, batch), (size * batch.num_rows // rows, None)


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
    security: KafkaSecurity = PLAINTEXT,
) -> HarmoniseSummary:
    """Harmonise the JSON messages of a bounded range of `topic` into a JSON Lines file, into
    `to_topic` (keys kept), or into a warehouse table when `out` is `warehouse:TABLE` (its
    columns: the first JSON object's keys; an object with other keys is rejected
    `invalid_field`; the table is replaced whole when the job ends). Rejects go to the `rejects`
    file if given, else beside `out` (`TABLE.rejects.jsonl`), else to `rejects_topic` (default
    `<to_topic>.rejects`). Writing to topics is at-least-once."""
    from kafka import KafkaConsumer, KafkaProducer

    from infra.topics import ensure_topics

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
    spec = Spec(options, "jsonl", "jsonl", None)
    auth = security.kafka_python()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **auth
    )
    producer = None
    try:
        bounds = _topic_bounds(consumer, topic, window or TopicRange())
        written = [t for t in (to_topic, rejects_topic) if t is not None]
        if written:
            ensure_topics(bootstrap, written, partitions, security=security)
            producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all", **auth)
        batches = _topic_batches(consumer, bounds)
        out_sink = _opener(out, to_topic, producer)
        if table is not None:
            columns, batches = _first_keys_of(batches)
            if columns is None:
                raise ConfigError(f"no JSON object in the range of {topic} to take columns from")
            spec = Spec(options, "parquet", "jsonl", columns)
            from sinks.harmonised import HarmonisedTable

            out_sink = partial(HarmonisedTable, warehouse, table, parquet_schema(spec))
        sinks = [out_sink, _opener(rejects, rejects_topic, producer)]
        work = (
            (Task(spec, "jsonl", None, [r.value or b"" for r in batch]), (len(batch), batch))
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
            keys = object_keys(record.value or b"")
            if keys is not None:
                return keys, itertools.chain(read, batches)
    return None, iter(read)


def _opener(path: Path | None, topic: str | None, producer: Any) -> Callable[[], Sink]:
    if path is not None:
        return partial(FileSink, path, b"")
    assert topic is not None
    return partial(TopicSink, producer, topic)


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
