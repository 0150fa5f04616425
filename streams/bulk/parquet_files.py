"""Parquet for the bulk job, in constant memory: a file is read a record batch at a time and
written a row group per chunk. Every input column is read as text (numbers and timestamps in
Arrow's text form, nested values as JSON, nulls as empty), so a Parquet column is harmonised
like the same CSV column;
the output holds the input columns as strings and each `<time>_utc_ms` as int64."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from itertools import compress
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BATCH_ROWS = 8_192  # rows per chunk read from a Parquet file


def parquet_columns(path: Path) -> tuple[str, ...]:
    return tuple(pq.ParquetFile(path).schema_arrow.names)


def parquet_rows(path: Path) -> int:
    return int(pq.ParquetFile(path).metadata.num_rows)


def parquet_batches(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    with pq.ParquetFile(path) as file:
        yield from file.iter_batches(batch_size=batch_rows)


def batch_cells(batch: pa.RecordBatch) -> list[list[bytes]]:
    """Each column of `batch` as text bytes, nulls as empty: UTF-8 in Arrow's text form; a
    nested value (list, struct, map) as its JSON; a binary column's bytes as they are (they may
    not be UTF-8: the caller rejects such rows `invalid_encoding`)."""
    return [_cells(column) for column in batch.columns]


def is_bytes_column(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(data_type)
        or pa.types.is_large_binary(data_type)
        or pa.types.is_fixed_size_binary(data_type)
    )


def _cells(column: pa.Array) -> list[bytes]:
    if is_bytes_column(column.type):
        return [b"" if value is None else value for value in column.to_pylist()]
    if pa.types.is_nested(column.type):
        return [
            b"" if value is None else orjson.dumps(value, default=str)
            for value in column.to_pylist()
        ]
    text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    return list(pc.fill_null(text, "").cast(pa.binary()).to_pylist())


def output_schema(names: Sequence[str], whole_numbers: frozenset[str]) -> pa.Schema:
    return pa.schema(
        [(name, pa.int64() if name in whole_numbers else pa.string()) for name in names]
    )


def encode_columns(
    schema: pa.Schema, columns: Sequence[Sequence[object]], keep: Sequence[bool] | None
) -> bytes:
    """One record batch of the rows that `keep` (None: all), as Arrow IPC stream bytes: what a
    worker hands to ParquetSink. Text columns are UTF-8 bytes or str; whole numbers ints."""
    arrays = []
    for field, values in zip(schema, columns, strict=True):
        kept = list(values) if keep is None else list(compress(values, keep))
        if pa.types.is_integer(field.type):
            arrays.append(pa.array(kept, type=pa.int64()))
        else:
            arrays.append(pa.array(kept, type=pa.binary()).cast(pa.string()))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
    return bytes(sink.getvalue().to_pybytes())


class ParquetSink:
    """Writes the workers' batches to `.<name>.partial-<pid>` beside `path`, a row group each;
    only `commit` makes `path` appear, whole."""

    def __init__(self, path: Path, temp: Path, schema: pa.Schema) -> None:
        self.path, self.temp = path, temp
        self.writer = pq.ParquetWriter(temp, schema)

    def write(self, data: bytes, records: Sequence[object] | None) -> None:
        if data:
            with pa.ipc.open_stream(data) as reader:
                for batch in reader:
                    self.writer.write_batch(batch)

    def commit(self) -> None:
        self.writer.close()
        with self.temp.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        self.writer.close()
        self.temp.unlink(missing_ok=True)
