"""The warehouse behind one interface: rows are added in batches and flushed as one Arrow table
per table (columnar: chDB reads it without parsing text, a server gets it as Arrow over HTTP);
queries return rows as dicts. `ChdbWarehouse` (embedded, file-backed) and `ClickHouseWarehouse`
(a server via clickhouse-connect) run the same DDL and the same SQL."""

from __future__ import annotations

import hashlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson
import pyarrow as pa

from base.errors import ConfigError, SinkBackpressure, StackError
from infra.folders import ensure_writable_folder

log = logging.getLogger(__name__)

TABLES = (
    "gps_pings",
    "alerts",
    "assignments",
    "dispatch_events",
    "officer_status_changes",
    "cameras",
    "backup_requests",
    "dead_letters",
)
METRIC_TABLES = ("loader_batches", "consumer_lag")
_WRITABLE = frozenset(TABLES + METRIC_TABLES)


class Warehouse(ABC):
    """A batching writer and query runner over one ClickHouse database."""

    is_server = False

    def __init__(self, database: str, *, max_pending_rows: int = 100_000) -> None:
        self.database = database
        self.max_pending_rows = max_pending_rows
        self._pending: dict[str, list[Mapping[str, Any]]] = {t: [] for t in _WRITABLE}
        self._pending_rows = 0
        self.rows_written = 0

    # -- the batching interface -----------------------------------------------------------
    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def add(self, table: str, row: Mapping[str, Any]) -> None:
        """Queue a row (kept as given, turned into columns at flush). The row must not be
        changed after it is added."""
        if self._pending_rows >= self.max_pending_rows:
            raise SinkBackpressure(f"{self._pending_rows} rows pending; flush first")
        try:
            self._pending[table].append(row)
        except KeyError:
            raise ValueError(f"unknown warehouse table {table!r}") from None
        self._pending_rows += 1

    def pending_by_table(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self._pending.items() if rows}

    def discard_pending(self) -> None:
        for rows in self._pending.values():
            rows.clear()
        self._pending_rows = 0

    def flush(self) -> int:
        """Write every pending row, one insert per table (an Arrow table of the rows); returns
        how many were written. An insert that fails leaves its rows pending: calling flush
        again writes the same columns with the same deduplication token (their hash), so a
        write that reached the warehouse before its acknowledgement was lost is not stored
        twice."""
        written = 0
        for table, rows in self._pending.items():
            if rows:
                columns = to_arrow(rows)
                self._insert_arrow(table, columns, token=arrow_token(columns))
                written += len(rows)
                self._pending_rows -= len(rows)
                rows.clear()
        self.rows_written += written
        return written

    # -- queries --------------------------------------------------------------------------

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run a SELECT; `{db}` in the SQL is the configured database."""
        data = self.query_text(sql.replace("{db}", self.database), "JSONEachRow")
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]

    def insert_rows(self, table: str, json_lines: bytes) -> None:
        """Insert JSON Lines rows into any table of the database, now (no batching): for jobs
        that write tables of their own, such as `harmonise --out warehouse:TABLE`."""
        if json_lines:
            self._insert(table, json_lines, token=None)

    def count(self, table: str) -> int:
        rows = self.query(f"SELECT count() AS n FROM {{db}}.{table} FINAL")
        return int(rows[0]["n"])

    @abstractmethod
    def execute(self, sql: str) -> None: ...

    @abstractmethod
    def _insert(self, table: str, json_lines: bytes, *, token: str | None) -> None: ...

    @abstractmethod
    def _insert_arrow(self, table: str, columns: pa.Table, *, token: str) -> None: ...

    @abstractmethod
    def query_text(self, sql: str, fmt: str) -> bytes:
        """The result of `sql` in the ClickHouse output format `fmt`."""

    def close(self) -> None:  # noqa: B027  (chDB's shared session has nothing to release)
        """Release the connection (pending rows are not flushed implicitly)."""


class ChdbWarehouse(Warehouse):
    """Embedded ClickHouse (chDB), file-backed. chDB allows one data path per process, so the
    session is shared by every instance in the process."""

    _sessions: ClassVar[dict[Path, Any]] = {}
    _lock = threading.Lock()

    def __init__(self, path: Path, database: str, **kwargs: Any) -> None:
        super().__init__(database, **kwargs)
        self.path = path.resolve()
        self._session = self._open(self.path)

    @classmethod
    def _open(cls, path: Path) -> Any:
        with cls._lock:
            if path in cls._sessions:
                return cls._sessions[path]
            if cls._sessions:
                other = next(iter(cls._sessions))
                raise StackError(
                    f"chDB is already open at {other} in this process; cannot open {path}"
                )
            ensure_writable_folder(path, "warehouse folder")
            from chdb import session  # imported late: it loads the whole engine

            cls._sessions[path] = session.Session(str(path))
            return cls._sessions[path]

    def execute(self, sql: str) -> None:
        with self._lock:
            self._session.query(sql)

    def _insert(self, table: str, json_lines: bytes, *, token: str | None) -> None:
        settings = f" SETTINGS insert_deduplication_token = '{token}'" if token else ""
        sql = (
            f"INSERT INTO {self.database}.{table}{settings} FORMAT JSONEachRow\n"
            f"{json_lines.decode()}"
        )
        with self._lock:
            self._session.query(sql)

    def _insert_arrow(self, table: str, columns: pa.Table, *, token: str) -> None:
        # chDB's Python() table function reads the local Arrow table `columns` by its name.
        sql = (
            f"INSERT INTO {self.database}.{table} ({', '.join(columns.column_names)}) "
            f"SETTINGS insert_deduplication_token = '{token}' SELECT * FROM Python(columns)"
        )
        with self._lock:
            self._session.query(sql)

    def query_text(self, sql: str, fmt: str) -> bytes:
        with self._lock:
            result = self._session.query(sql, fmt)
        return bytes(result.bytes())


class ClickHouseWarehouse(Warehouse):
    """A ClickHouse server reached over HTTP(S) with clickhouse-connect."""

    def __init__(self, url: str, database: str, **kwargs: Any) -> None:
        super().__init__(database, **kwargs)
        import clickhouse_connect

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("clickhouse_url must look like http(s)://user:password@host:port")
        try:
            self._client = clickhouse_connect.get_client(
                host=parts.hostname,
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                username=parts.username or "default",
                password=parts.password or "",
                secure=parts.scheme == "https",
                connect_timeout=5,
            )
        except Exception as exc:  # the driver raises several types; the message is what matters
            where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"  # never the password
            raise StackError(
                f"ClickHouse server at {where} is unreachable: {type(exc).__name__}"
            ) from exc

    def execute(self, sql: str) -> None:
        self._client.command(sql)

    is_server = True

    def _insert(self, table: str, json_lines: bytes, *, token: str | None) -> None:
        self._client.raw_insert(
            f"{self.database}.{table}",
            insert_block=json_lines,
            fmt="JSONEachRow",
            settings={"insert_deduplication_token": token} if token else None,
        )

    def _insert_arrow(self, table: str, columns: pa.Table, *, token: str) -> None:
        self._client.insert_arrow(
            f"{self.database}.{table}",
            columns,
            settings={"insert_deduplication_token": token},
        )

    def query_text(self, sql: str, fmt: str) -> bytes:
        return bytes(self._client.raw_query(sql, fmt=fmt))

    def close(self) -> None:
        self._client.close()


def to_arrow(rows: list[Mapping[str, Any]]) -> pa.Table:
    """The rows as columns; a column with no value in any row (all None, or all empty lists) is
    left out: Arrow cannot type it, and its default (NULL, an empty array) is what is stored."""
    names = dict.fromkeys(chain.from_iterable(rows))
    if names.keys() == rows[0].keys():
        columns = pa.Table.from_pylist(rows)
    else:  # from_pylist takes the first row's keys only
        columns = pa.Table.from_pydict({name: [row.get(name) for row in rows] for name in names})
    empty = [i for i, field in enumerate(columns.schema) if _no_values(field.type)]
    return columns.drop_columns([columns.column_names[i] for i in empty]) if empty else columns


def _no_values(column_type: pa.DataType) -> bool:
    if pa.types.is_list(column_type):
        return _no_values(column_type.value_type)
    return bool(pa.types.is_null(column_type))


def arrow_token(columns: pa.Table) -> str:
    """A deduplication token for these columns: the hash of their names and buffers."""
    digest = hashlib.blake2b(",".join(columns.column_names).encode(), digest_size=16)
    for column in columns.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(buffer)
    return digest.hexdigest()


def open_warehouse(*, warehouse_dir: Path, database: str, clickhouse_url: str | None) -> Warehouse:
    """A writer on the configured backend; its tables come from `sinks.migrations.migrate`."""
    if clickhouse_url:
        return ClickHouseWarehouse(clickhouse_url, database)
    return ChdbWarehouse(warehouse_dir, database)
