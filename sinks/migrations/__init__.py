"""Numbered, idempotent warehouse migrations. The version reached is recorded in the warehouse
(`schema_migrations`); a warehouse newer than this code refuses to start. Each migration may be
re-run after a crash half-way: it checks what is already done."""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from base.errors import StackError
from sinks.callers import PhoneProtector
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
VERSION_TABLE = "schema_migrations"
NEXT = "__next"
COPY_CHUNK_ROWS = 50_000
GRAFANA_READER = "grafana_reader"


class WarehouseTooNew(StackError):
    """The warehouse was migrated by a newer smart-station than this one."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Warehouse, PhoneProtector], None]


@dataclass(frozen=True, slots=True)
class MigrationResult:
    before: int
    after: int


def sql_statements(name: str, database: str) -> list[str]:
    text = "\n".join(
        line
        for line in (HERE / name).read_text().splitlines()
        if not line.lstrip().startswith("--")
    )
    return [s.strip().replace("{db}", database) for s in text.split(";") if s.strip()]


def _sql(name: str) -> Callable[[Warehouse, PhoneProtector], None]:
    """A migration that is only idempotent SQL statements."""

    def apply(warehouse: Warehouse, _: PhoneProtector) -> None:
        for statement in sql_statements(name, warehouse.database):
            warehouse.execute(statement)

    return apply


_baseline = _sql("v0001_baseline.sql")


# -- version 2: the layout, and callers' numbers rewritten ------------------------------------


def _copy_sql(table: str) -> str:
    """Rows of a version-1 table in the version-2 columns (no phone in these two)."""
    if table == "gps_pings":
        return (
            "SELECT event_id, officer_id, station_id, lat, lon, h3_cell, event_time, "
            "event_utc_ms, ingest_utc_ms, accuracy_m, time_format, time_inferred, "
            "-1 AS kafka_partition, -1 AS kafka_offset, "
            "toDateTime(intDiv(ingest_utc_ms, 1000)) AS loaded_at FROM {src}"
        )
    return (
        "SELECT kind, alert_id, officer_id, detail, at_utc_ms, NULL AS radius_m, "
        "NULL AS waited_ms, -1 AS kafka_partition, -1 AS kafka_offset, "
        "toDateTime(intDiv(at_utc_ms, 1000)) AS loaded_at FROM {src}"
    )


def _alert_v2(row: dict[str, Any], protector: PhoneProtector) -> dict[str, Any]:
    phone = protector.protect(row.pop("caller_phone", ""))
    row.update(caller_phone_masked=phone.masked, caller_phone_hmac=phone.hmac)
    return _unplaced(row, row["ingest_utc_ms"])


def _assignment_v2(row: dict[str, Any], protector: PhoneProtector) -> dict[str, Any]:
    message = protector.message(orjson.loads(row["payload"]))
    row.update(
        payload=orjson.dumps(message).decode(),
        caller_phone_masked=message["caller_phone"],
        caller_phone_hmac=message["caller_phone_hmac"],
        reason=message.get("reason", "dispatch"),
        units_needed=message.get("units_needed", 1),
    )
    return _unplaced(row, row["assigned_utc_ms"])


def _dead_letter_v2(row: dict[str, Any], protector: PhoneProtector) -> dict[str, Any]:
    raw, hashes = protector.raw_bytes(base64.b64decode(row["original_b64"]))
    row.update(original_b64=base64.b64encode(raw).decode(), phone_hmacs=hashes)
    return _unplaced(row, row["dead_utc_ms"])


def _unplaced(row: dict[str, Any], utc_ms: int) -> dict[str, Any]:
    # Rows loaded before offsets were recorded: -1 never counts as a loaded offset.
    row.update(kafka_partition=-1, kafka_offset=-1, loaded_at=utc_ms // 1000)
    return row


PYTHON_COPIES: Mapping[str, tuple[str, Callable[[dict[str, Any], PhoneProtector], Any]]] = {
    "alerts": ("alert_id", _alert_v2),
    "assignments": ("assignment_id", _assignment_v2),
    "dead_letters": ("source_offset", _dead_letter_v2),
}


def _chunks(warehouse: Warehouse, table: str, key: str) -> Iterator[list[dict[str, Any]]]:
    db = warehouse.database
    total = int(warehouse.query(f"SELECT count() AS n FROM {db}.{table}")[0]["n"])
    parts = max(1, -(-total // COPY_CHUNK_ROWS))
    for part in range(parts):
        yield warehouse.query(
            f"SELECT * FROM {db}.{table} WHERE cityHash64({key}) % {parts} = {part}"
        )


def _columns(warehouse: Warehouse, table: str) -> set[str]:
    rows = warehouse.query(
        f"SELECT name FROM system.columns WHERE database = '{warehouse.database}' "
        f"AND table = '{table}'"
    )
    return {r["name"] for r in rows}


def _layout(warehouse: Warehouse, protector: PhoneProtector) -> None:
    db = warehouse.database
    statements = sql_statements("v0002_layout.sql", db)
    for statement in statements:
        target = statement.split("(", 1)[0].split()[-1]  # CREATE TABLE IF NOT EXISTS db.name
        name = target.split(".", 1)[1]
        if not name.endswith(NEXT):
            warehouse.execute(statement)
            continue
        table = name.removesuffix(NEXT)
        warehouse.execute(f"DROP TABLE IF EXISTS {db}.{name}")
        if "kafka_offset" in _columns(warehouse, table):
            continue  # rebuilt by an earlier, interrupted run
        warehouse.execute(statement)
        if table in PYTHON_COPIES:
            key, convert = PYTHON_COPIES[table]
            for chunk in _chunks(warehouse, table, key):
                lines = b"\n".join(orjson.dumps(convert(row, protector)) for row in chunk)
                warehouse.insert_rows(name, lines)
        else:
            select = _copy_sql(table).replace("{src}", f"{db}.{table}")
            warehouse.execute(f"INSERT INTO {db}.{name} {select}")
        warehouse.execute(f"EXCHANGE TABLES {db}.{table} AND {db}.{name}")
        warehouse.execute(f"DROP TABLE {db}.{name}")
        log.info("migration=2 table=%s rebuilt", table)


# -- version 3: KPI tables fed on insert ---------------------------------------------------------

_FEEDING_VIEW = re.compile(r"CREATE MATERIALIZED VIEW IF NOT EXISTS \w+\.(\w+) TO ")
BACKFILLS = {
    "alert_lifecycle": "alert_lifecycle_mv",
    "load_h3_minute": "load_h3_minute_mv",
}


def _kpis(warehouse: Warehouse, _: PhoneProtector) -> None:
    """Tables first, then their rows from what is already stored (only into an empty table, so
    a re-run after a crash adds nothing twice), then the views that keep them current: the
    loader is not running during a migration, so no insert falls between the two."""
    db = warehouse.database
    statements = sql_statements("v0003_kpis.sql", db)
    views = {m.group(1): s for s in statements if (m := _FEEDING_VIEW.match(s))}
    for statement in statements:
        if statement not in views.values():
            warehouse.execute(statement)
    for table, view in BACKFILLS.items():
        exists = warehouse.query(
            f"SELECT count() AS n FROM system.tables WHERE database = '{db}' AND name = '{view}'"
        )
        if int(exists[0]["n"]):
            continue
        empty = warehouse.query(f"SELECT count() AS n FROM {db}.{table}")
        if not int(empty[0]["n"]):
            select = views[view].split(" AS\n", 1)[1]
            warehouse.execute(f"INSERT INTO {db}.{table} {select}")
        warehouse.execute(views[view])


# -- version 5: dispatch events stamped, KPIs per station and hour pre-aggregated ---------------

_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS \w+\.(\w+) ")
_CREATE_VIEW = re.compile(r"CREATE VIEW IF NOT EXISTS \w+\.(\w+) ")


def _kpi_states(warehouse: Warehouse, _: PhoneProtector) -> None:
    """Rebuild dispatch_events stamped (unless an earlier run did), then fill the pre-aggregated
    tables from scratch and create the views that keep them current. Each step can run again
    after a crash: the tables are emptied before they are filled, and the loader is not
    running."""
    db = warehouse.database
    statements = sql_statements("v0005_kpi_states.sql", db)
    alters = [s for s in statements if s.startswith("ALTER TABLE")]
    next_table, copy, *rest = statements[len(alters) :]
    for alter in alters:
        warehouse.execute(alter)
    lifecycle_view = next(s for s in sql_statements("v0003_kpis.sql", db) if _FEEDING_VIEW.match(s))
    if "first_of_kind" not in _columns(warehouse, "dispatch_events"):
        warehouse.execute(f"DROP TABLE IF EXISTS {db}.dispatch_events{NEXT}")
        warehouse.execute(next_table)
        warehouse.execute(copy)
        warehouse.execute(f"DROP VIEW IF EXISTS {db}.alert_lifecycle_mv")
        warehouse.execute(f"EXCHANGE TABLES {db}.dispatch_events AND {db}.dispatch_events{NEXT}")
        warehouse.execute(f"DROP TABLE {db}.dispatch_events{NEXT}")
        log.info("migration=5 table=dispatch_events rebuilt with its alerts' stations and times")
    warehouse.execute(lifecycle_view)
    feeding = [s for s in rest if _FEEDING_VIEW.match(s)]
    for view in feeding:
        warehouse.execute(f"DROP VIEW IF EXISTS {db}.{_name(_FEEDING_VIEW, view)}")
    for table in (s for s in rest if _CREATE_TABLE.match(s)):
        warehouse.execute(table)
        warehouse.execute(f"TRUNCATE TABLE {db}.{_name(_CREATE_TABLE, table)}")
    for view in feeding:
        target = view.split(" TO ", 1)[1].split()[0]
        select = view.split(" AS\n", 1)[1]
        names = ", ".join(r["name"] for r in warehouse.query(f"DESCRIBE ({select})"))
        warehouse.execute(f"INSERT INTO {target} ({names}) {select}")
        warehouse.execute(view)
    for view in (s for s in rest if _CREATE_VIEW.match(s)):
        warehouse.execute(f"DROP VIEW IF EXISTS {db}.{_name(_CREATE_VIEW, view)}")
        warehouse.execute(view)


def _name(pattern: re.Pattern[str], statement: str) -> str:
    match = pattern.match(statement)
    assert match is not None
    return match.group(1)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: pings, alerts, assignments, dispatch events, dead letters", _baseline),
    Migration(
        2,
        "day partitions, Kafka offsets, callers' numbers masked and hashed, status changes, "
        "cameras, backup requests, loader metrics",
        _layout,
    ),
    Migration(3, "KPIs: alert lifecycle and H3 load per minute fed on insert", _kpis),
    Migration(4, "dispatch events name their assignment", _sql("v0004_event_assignment_id.sql")),
    Migration(
        5,
        "dispatch events stamped with their alert's station and time; KPIs per station and "
        "hour kept as quantile states",
        _kpi_states,
    ),
)
CODE_VERSION = MIGRATIONS[-1].version


# -- running them -------------------------------------------------------------------------------


def current_version(warehouse: Warehouse) -> int:
    db = warehouse.database
    exists = warehouse.query(
        f"SELECT count() AS n FROM system.tables WHERE database = '{db}' "
        f"AND name = '{VERSION_TABLE}'"
    )
    if not int(exists[0]["n"]):
        return 0
    rows = warehouse.query(f"SELECT max(version) AS v FROM {db}.{VERSION_TABLE}")
    return int(rows[0]["v"] or 0)


def check_version(warehouse: Warehouse) -> int:
    """The warehouse's version; refuses a warehouse newer than this code."""
    version = current_version(warehouse)
    if version > CODE_VERSION:
        raise WarehouseTooNew(
            f"warehouse {warehouse.database} is at version {version}, newer than this "
            f"smart-station (knows up to {CODE_VERSION}); upgrade smart-station"
        )
    return version


def migrate(warehouse: Warehouse, protector: PhoneProtector) -> MigrationResult:
    """Apply every migration newer than the warehouse, recording each version when done."""
    before = check_version(warehouse)
    db = warehouse.database
    warehouse.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {db}.{VERSION_TABLE} (version UInt32, description String, "
        "applied_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY version"
    )
    for migration in MIGRATIONS:
        if migration.version <= before:
            continue
        started = time.monotonic()
        migration.apply(warehouse, protector)
        row = {
            "version": migration.version,
            "description": migration.description,
            "applied_at": int(time.time() * 1000) / 1000,
        }
        warehouse.insert_rows(VERSION_TABLE, orjson.dumps(row))
        log.info(
            "migration=%d applied in %.1fs: %s",
            migration.version,
            time.monotonic() - started,
            migration.description,
        )
    return MigrationResult(before, CODE_VERSION)


# -- what settings decide, re-applied on every migrate -------------------------------------------


def apply_ttls(warehouse: Warehouse, days_by_table: Mapping[str, int]) -> None:
    """Rows older than N days of loading are dropped (whole day partitions); 0 keeps them."""
    db = warehouse.database
    for table, days in days_by_table.items():
        [row] = warehouse.query(
            f"SELECT engine_full FROM system.tables WHERE database = '{db}' AND name = '{table}'"
        )
        engine = str(row["engine_full"])
        column = "loaded_at" if "loaded_at" in _columns(warehouse, table) else "ts"
        wanted = f"TTL toDateTime({column}) + toIntervalDay({days})" if days else ""
        has_ttl = " TTL " in engine
        if (wanted and wanted in engine) or (not wanted and not has_ttl):
            continue
        if wanted:
            warehouse.execute(
                f"ALTER TABLE {db}.{table} MODIFY TTL toDateTime({column}) + INTERVAL {days} DAY "
                "SETTINGS materialize_ttl_after_modify = 0"
            )
        else:
            warehouse.execute(f"ALTER TABLE {db}.{table} REMOVE TTL")
        log.info("table=%s ttl_days=%d", table, days)


def ensure_grafana_reader(warehouse: Warehouse, password: str) -> None:
    """A read-only ClickHouse user for the Grafana datasource (server backend only: chDB has no
    users). The password comes from settings and is set again on every migrate."""
    db = warehouse.database
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    warehouse.execute(
        f"CREATE USER IF NOT EXISTS {GRAFANA_READER} IDENTIFIED BY '{quoted}' SETTINGS readonly = 1"
    )
    warehouse.execute(f"ALTER USER {GRAFANA_READER} IDENTIFIED BY '{quoted}'")
    warehouse.execute(f"GRANT SELECT ON {db}.* TO {GRAFANA_READER}")
