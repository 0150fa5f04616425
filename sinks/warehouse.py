"""The warehouse behind one interface: rows are added in batches and flushed as JSONEachRow;
queries return rows as dicts. `ChdbWarehouse` (embedded, file-backed) and `ClickHouseWarehouse`
(a server via clickhouse-connect) run the same DDL and the same SQL."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson

from base.errors import ConfigError, SinkBackpressure, StackError
from infra.folders import ensure_writable_folder

log = logging.getLogger(__name__)

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
TABLES = ("gps_pings", "alerts", "assignments", "dispatch_events", "dead_letters")


def schema_statements(database: str) -> list[str]:
    text = "\n".join(
        line for line in SCHEMA_SQL.read_text().splitlines() if not line.lstrip().startswith("--")
    )
    return [stmt.strip().replace("{db}", database) for stmt in text.split(";") if stmt.strip()]


class Warehouse(ABC):
    """A batching writer and query runner over one ClickHouse database."""

    def __init__(self, database: str, *, max_pending_rows: int = 100_000) -> None:
        self.database = database
        self.max_pending_rows = max_pending_rows
        self._pending: dict[str, list[bytes]] = defaultdict(list)
        self._pending_rows = 0
        self.rows_written = 0

    # -- the batching interface -----------------------------------------------------------
    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def add(self, table: str, row: Mapping[str, Any]) -> None:
        if table not in TABLES:
            raise ValueError(f"unknown warehouse table {table!r}")
        if self._pending_rows >= self.max_pending_rows:
            raise SinkBackpressure(f"{self._pending_rows} rows pending; flush first")
        self._pending[table].append(orjson.dumps(row))
        self._pending_rows += 1

    def flush(self) -> int:
        """Write every pending row; returns how many were written."""
        written = 0
        for table, rows in list(self._pending.items()):
            if rows:
                self._insert(table, b"\n".join(rows))
                written += len(rows)
            del self._pending[table]
        self._pending_rows = 0
        self.rows_written += written
        return written

    # -- schema and queries ---------------------------------------------------------------
    def create_schema(self) -> None:
        for statement in schema_statements(self.database):
            self.execute(statement)

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run a SELECT; `{db}` in the SQL is the configured database."""
        data = self._query_json_each_row(sql.replace("{db}", self.database))
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]

    def insert_rows(self, table: str, json_lines: bytes) -> None:
        """Insert JSON Lines rows into any table of the database, now (no batching): for jobs
        that write tables of their own, such as `harmonise --out warehouse:TABLE`."""
        if json_lines:
            self._insert(table, json_lines)

    def count(self, table: str) -> int:
        rows = self.query(f"SELECT count() AS n FROM {{db}}.{table} FINAL")
        return int(rows[0]["n"])

    @abstractmethod
    def execute(self, sql: str) -> None: ...

    @abstractmethod
    def _insert(self, table: str, json_lines: bytes) -> None: ...

    @abstractmethod
    def _query_json_each_row(self, sql: str) -> bytes: ...

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

    def _insert(self, table: str, json_lines: bytes) -> None:
        sql = f"INSERT INTO {self.database}.{table} FORMAT JSONEachRow\n{json_lines.decode()}"
        with self._lock:
            self._session.query(sql)

    def _query_json_each_row(self, sql: str) -> bytes:
        with self._lock:
            result = self._session.query(sql, "JSONEachRow")
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

    def _insert(self, table: str, json_lines: bytes) -> None:
        self._client.raw_insert(
            f"{self.database}.{table}", insert_block=json_lines, fmt="JSONEachRow"
        )

    def _query_json_each_row(self, sql: str) -> bytes:
        return bytes(self._client.raw_query(sql, fmt="JSONEachRow"))

    def close(self) -> None:
        self._client.close()


def open_warehouse(
    *, warehouse_dir: Path, database: str, clickhouse_url: str | None, create: bool = True
) -> Warehouse:
    warehouse: Warehouse
    if clickhouse_url:
        warehouse = ClickHouseWarehouse(clickhouse_url, database)
    else:
        warehouse = ChdbWarehouse(warehouse_dir, database)
    if create:
        warehouse.create_schema()
    return warehouse
