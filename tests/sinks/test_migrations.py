"""Warehouse migrations on chDB: a fresh warehouse reaches the code's version, a version-1
warehouse with data is rebuilt with its callers' numbers rewritten, a re-run changes nothing, a
warehouse newer than the code refuses with one line, and TTLs follow the settings."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from base.settings import Settings
from sinks.callers import PhoneProtector
from sinks.migrations import (
    CODE_VERSION,
    VERSION_TABLE,
    WarehouseTooNew,
    check_version,
    current_version,
    migrate,
    sql_statements,
)
from sinks.warehouse import TABLES, ChdbWarehouse, Warehouse
from streams.pipeline.stack import migrate_warehouse
from tests.support.clients import TEST_PROTECTOR, env_without_settings

PHONE = "13800138000"


@pytest.fixture
def empty(warehouse_path: Path, test_id: str) -> Warehouse:
    return ChdbWarehouse(warehouse_path, f"m_{test_id}")


def version_1_with_rows(warehouse: Warehouse) -> None:
    warehouse.execute(f"CREATE DATABASE IF NOT EXISTS {warehouse.database}")
    for statement in sql_statements("v0001_baseline.sql", warehouse.database):
        warehouse.execute(statement)
    alert = {
        "alert_id": "A1",
        "station_id": "ST-01",
        "category": "theft",
        "priority": 3,
        "lat": 29.5,
        "lon": 106.5,
        "h3_cell": "x",
        "address": "a",
        "description": "d",
        "caller_phone": PHONE,
        "event_time": "t",
        "event_utc_ms": 1_700_000_000_000,
        "ingest_utc_ms": 1_700_000_000_500,
        "time_format": "iso8601",
        "time_inferred": 0,
        "text_repaired": 0,
        "text_lossy": 0,
    }
    payload = {"assignment_id": "A1:O1", "caller_phone": PHONE, "reason": "dispatch"}
    assignment = {
        "assignment_id": "A1:O1",
        "alert_id": "A1",
        "officer_id": "O1",
        "station_id": "ST-01",
        "category": "theft",
        "priority": 3,
        "alert_lat": 29.5,
        "alert_lon": 106.5,
        "officer_lat": 29.5,
        "officer_lon": 106.5,
        "distance_m": 1.0,
        "eta_s": 1.0,
        "alert_utc_ms": 1_700_000_000_000,
        "assigned_utc_ms": 1_700_000_001_000,
        "assigned_time": "t",
        "payload": orjson.dumps(payload).decode(),
    }
    raw = b'{"alert_id": "A2", "tel": "%s", "time": "??"}\xff' % PHONE.encode()
    dead = {
        "source_topic": "alerts.calls",
        "source_partition": 0,
        "source_offset": 7,
        "reason": "invalid_time",
        "message": "m",
        "station_id": "ST-01",
        "original_b64": base64.b64encode(raw).decode(),
        "dead_utc_ms": 1_700_000_002_000,
    }
    ping = {
        "event_id": "p1",
        "officer_id": "O1",
        "station_id": "ST-01",
        "lat": 29.5,
        "lon": 106.5,
        "h3_cell": "x",
        "event_time": "t",
        "event_utc_ms": 1_700_000_000_000,
        "ingest_utc_ms": 1_700_000_000_100,
        "accuracy_m": None,
        "time_format": "iso8601",
        "time_inferred": 0,
    }
    event = {"kind": "assigned", "alert_id": "A1", "officer_id": "O1", "detail": "", "at_utc_ms": 1}
    for table, row in [
        ("alerts", alert),
        ("assignments", assignment),
        ("dead_letters", dead),
        ("gps_pings", ping),
        ("dispatch_events", event),
    ]:
        warehouse.insert_rows(table, orjson.dumps(row))
    warehouse.execute(
        f"CREATE TABLE {warehouse.database}.{VERSION_TABLE} (version UInt32, description String, "
        "applied_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY version"
    )
    warehouse.insert_rows(VERSION_TABLE, b'{"version": 1, "description": "baseline"}')


def dump(warehouse: Warehouse, table: str) -> bytes:
    rows = warehouse.query_text(f"SELECT * FROM {warehouse.database}.{table}", "TSV")
    return b"".join(sorted(rows.splitlines(keepends=True)))  # parts come back in any order


def test_fresh_warehouse_reaches_the_code_version_with_every_table(empty: Warehouse) -> None:
    assert current_version(empty) == 0
    result = migrate(empty, TEST_PROTECTOR)
    assert (result.before, result.after) == (0, CODE_VERSION)
    assert current_version(empty) == CODE_VERSION
    for table in TABLES:
        assert empty.query(f"SELECT count() AS n FROM {{db}}.{table}") == [{"n": 0}]


def test_version_1_rows_are_kept_and_callers_numbers_rewritten(empty: Warehouse) -> None:
    version_1_with_rows(empty)
    assert PHONE.encode() in dump(empty, "alerts")
    result = migrate(empty, TEST_PROTECTOR)
    assert (result.before, result.after) == (1, CODE_VERSION)
    hashed = TEST_PROTECTOR.protect(PHONE).hmac
    for table in ("alerts", "assignments", "dead_letters"):
        stored = dump(empty, table)
        assert PHONE.encode() not in stored and b"0138000" not in stored, table
        assert hashed.encode() in stored, table
    for table in ("gps_pings", "alerts", "assignments", "dead_letters", "dispatch_events"):
        assert empty.query(f"SELECT count() AS n FROM {{db}}.{table}") == [{"n": 1}], table
    [dead] = empty.query("SELECT original_b64, kafka_offset FROM {db}.dead_letters")
    assert base64.b64decode(dead["original_b64"]).endswith(b'"*******8000", "time": "??"}\xff')
    assert dead["kafka_offset"] == -1  # never mistaken for a loaded Kafka offset


def test_stored_dispatch_events_are_stamped_and_the_kpi_states_filled(empty: Warehouse) -> None:
    version_1_with_rows(empty)
    second = {
        "kind": "assigned",
        "alert_id": "A1",
        "officer_id": "O2",
        "detail": "",
        "at_utc_ms": 2,
    }
    arrived = {
        "kind": "arrived",
        "alert_id": "A1",
        "officer_id": "O1",
        "at_utc_ms": 1_700_000_090_000,
    }
    orphan = {"kind": "assigned", "alert_id": "GONE", "officer_id": "O1", "at_utc_ms": 3}
    empty.insert_rows("dispatch_events", b"\n".join(map(orjson.dumps, [second, arrived, orphan])))
    migrate(empty, TEST_PROTECTOR)
    rows = empty.query(
        "SELECT alert_id, officer_id, kind, station_id, alert_utc_ms, category, first_of_kind "
        "FROM {db}.dispatch_events ORDER BY alert_id, at_utc_ms"
    )
    assert [tuple(r.values()) for r in rows] == [
        ("A1", "O1", "assigned", "ST-01", 1_700_000_000_000, "theft", 1),
        ("A1", "O2", "assigned", "ST-01", 1_700_000_000_000, "theft", 0),
        ("A1", "O1", "arrived", "ST-01", 1_700_000_000_000, "theft", 1),
        ("GONE", "O1", "assigned", "", 0, "", 1),
    ]
    [kpi] = empty.query(
        "SELECT station_id, alerts, arrive_s, on_scene_within_3min FROM {db}.kpi_station_hour"
    )
    assert (kpi["station_id"], kpi["alerts"], kpi["arrive_s"][0]) == ("ST-01", 1, 90.0)
    assert kpi["on_scene_within_3min"] == 1.0
    [quality] = empty.query("SELECT sum(events) AS n FROM {db}.events_quality_minute")
    assert quality["n"] == 2  # the ping and the alert


def test_a_second_migrate_changes_nothing(empty: Warehouse) -> None:
    version_1_with_rows(empty)
    migrate(empty, TEST_PROTECTOR)
    kept = (*TABLES, "kpi_station_hour", "events_quality_minute")
    before = {t: dump(empty, t) for t in kept}
    result = migrate(empty, TEST_PROTECTOR)
    assert (result.before, result.after) == (CODE_VERSION, CODE_VERSION)
    assert {t: dump(empty, t) for t in kept} == before


def test_version_5_run_again_after_a_crash_counts_nothing_twice(empty: Warehouse) -> None:
    version_1_with_rows(empty)
    migrate(empty, TEST_PROTECTOR)
    before = {t: dump(empty, t) for t in ("kpi_station_hour", "events_quality_minute")}
    # As if version 5 had crashed after filling the states, before it was recorded.
    empty.execute(f"DELETE FROM {empty.database}.{VERSION_TABLE} WHERE version = 5")
    migrate(empty, TEST_PROTECTOR)
    assert {t: dump(empty, t) for t in before} == before


def test_an_interrupted_rebuild_is_finished_by_the_next_run(empty: Warehouse) -> None:
    version_1_with_rows(empty)
    db = empty.database
    # As if a crash came after the alerts table was rebuilt and swapped, before the others.
    for statement in sql_statements("v0002_layout.sql", db):
        if "alerts__next" in statement:
            empty.execute(statement)
    empty.execute(f"EXCHANGE TABLES {db}.alerts AND {db}.alerts__next")
    migrate(empty, TEST_PROTECTOR)
    assert current_version(empty) == CODE_VERSION
    assert PHONE.encode() not in dump(empty, "assignments")


def test_a_warehouse_newer_than_the_code_refuses(empty: Warehouse) -> None:
    migrate(empty, TEST_PROTECTOR)
    newer = CODE_VERSION + 1
    empty.insert_rows(VERSION_TABLE, orjson.dumps({"version": newer, "description": "future"}))
    with pytest.raises(WarehouseTooNew, match=f"at version {newer}, newer than this"):
        check_version(empty)
    with pytest.raises(WarehouseTooNew):
        migrate(empty, TEST_PROTECTOR)


def test_ttls_follow_the_settings(empty: Warehouse, tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        warehouse_database=empty.database,
        warehouse_pings_ttl_days=7,
        warehouse_ttl_days=0,
        phone_hmac_key="k" * 16,
    )
    migrate_warehouse(empty, settings)

    def engine(table: str) -> str:
        rows = empty.query(
            f"SELECT engine_full FROM system.tables WHERE database = '{empty.database}' "
            f"AND name = '{table}'"
        )
        return str(rows[0]["engine_full"])

    assert "TTL toDateTime(loaded_at) + toIntervalDay(7)" in engine("gps_pings")
    assert " TTL " not in engine("alerts")
    assert "toIntervalDay(14)" in engine("loader_batches")
    migrate_warehouse(empty, settings.model_copy(update={"warehouse_pings_ttl_days": 0}))
    assert " TTL " not in engine("gps_pings")


def test_cli_migrate_reports_versions_and_a_newer_warehouse_is_one_line(tmp_path: Path) -> None:
    env = {
        **env_without_settings(),
        "SMART_STATION_STATE_DIR": str(tmp_path),
        "SMART_STATION_PHONE_HMAC_KEY": "k" * 16,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = cli("warehouse", "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"warehouse smart_station: version 0 -> {CODE_VERSION}\n"
    assert (
        cli("warehouse", "migrate").stdout
        == f"warehouse smart_station is at version {CODE_VERSION}\n"
    )
    future = f"INSERT INTO smart_station.{VERSION_TABLE} (version, description) VALUES (99, 'x')"
    folder = str(tmp_path / "warehouse")
    code = f"from chdb import session; session.Session({folder!r}).query({future!r})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    refused = cli("warehouse", "migrate")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: warehouse smart_station is at version 99, newer than this smart-station "
        f"(knows up to {CODE_VERSION}); upgrade smart-station"
    ]


def test_protector_with_another_key_hashes_differently() -> None:
    other = PhoneProtector(b"another-key-of-16-bytes")
    assert other.protect(PHONE).hmac != TEST_PROTECTOR.protect(PHONE).hmac
    assert other.protect(PHONE).masked == TEST_PROTECTOR.protect(PHONE).masked == "*******8000"
