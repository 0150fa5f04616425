"""A warehouse table written by a bulk harmonisation job (`harmonise --out warehouse:TABLE`):
the input columns as String, each `<time>_utc_ms` as Int64. A run loads a fresh copy beside the
table and swaps it in when the job ends (EXCHANGE TABLES, atomic), so a re-run replaces the rows
instead of adding them again, and a failed run leaves the table as it was."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa

from base.errors import ConfigError
from sinks.warehouse import Warehouse

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LOADING_SUFFIX = "__loading"


def _quoted(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def table_sql(database: str, table: str, schema: pa.Schema) -> str:
    columns = ", ".join(
        f"{_quoted(field.name)} {'Int64' if field.type == pa.int64() else 'String'}"
        for field in schema
    )
    engine = "ENGINE = MergeTree ORDER BY tuple()"
    return f"CREATE TABLE IF NOT EXISTS {database}.{table} ({columns}) {engine}"


class HarmonisedTable:
    """The job's output sink: Arrow record batches (Arrow IPC bytes) in, rows of `table` out."""

    def __init__(self, warehouse: Warehouse, table: str, schema: pa.Schema) -> None:
        if not _NAME.fullmatch(table):
            raise ConfigError(f"warehouse table {table!r}: letters, digits and _ only")
        self.warehouse, self.table = warehouse, table
        self.loading = table + LOADING_SUFFIX
        database = warehouse.database
        warehouse.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        warehouse.execute(table_sql(database, table, schema))
        warehouse.execute(f"DROP TABLE IF EXISTS {database}.{self.loading}")
        warehouse.execute(table_sql(database, self.loading, schema))

    def write(self, data: bytes, records: Sequence[Any] | None) -> None:
        if not data:
            return
        with pa.ipc.open_stream(data) as reader:
            for batch in reader:
                lines = b"\n".join(map(orjson.dumps, batch.to_pylist()))
                self.warehouse.insert_rows(self.loading, lines)

    def commit(self) -> None:
        database = self.warehouse.database
        self.warehouse.execute(
            f"EXCHANGE TABLES {database}.{self.table} AND {database}.{self.loading}"
        )
        self.warehouse.execute(f"DROP TABLE IF EXISTS {database}.{self.loading}")

    def discard(self) -> None:
        self.warehouse.execute(f"DROP TABLE IF EXISTS {self.warehouse.database}.{self.loading}")
