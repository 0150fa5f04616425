"""The KPI tables fed on insert: an alert's lifecycle from its dispatch events, the roll-up per
station and hour, and the H3 load per minute."""

from __future__ import annotations

import orjson

from sinks.warehouse import Warehouse

T0 = 1_764_230_400_000  # 2025-11-27 08:00 UTC, the start of an hour


def alert_row(alert_id: str, station: str, at_ms: int) -> dict[str, object]:
    return {
        "alert_id": alert_id,
        "station_id": station,
        "category": "theft",
        "priority": 3,
        "lat": 29.5,
        "lon": 106.5,
        "h3_cell": "8840c8a4b7fffff",
        "event_time": "t",
        "event_utc_ms": at_ms,
        "ingest_utc_ms": at_ms,
        "time_format": "iso8601",
        "kafka_partition": 0,
        "kafka_offset": 0,
        "loaded_at": at_ms // 1000,
    }


def event(kind: str, alert_id: str, at_ms: int) -> dict[str, object]:
    return {"kind": kind, "alert_id": alert_id, "at_utc_ms": at_ms, "loaded_at": at_ms // 1000}


def insert(warehouse: Warehouse, table: str, rows: list[dict[str, object]]) -> None:
    warehouse.insert_rows(table, b"\n".join(map(orjson.dumps, rows)))


def test_station_hour_kpis_follow_each_alerts_first_steps(warehouse: Warehouse) -> None:
    insert(warehouse, "alerts", [alert_row(f"A{i}", "ST-01", T0 + i) for i in range(4)])
    events = []
    for i in range(4):  # assigned after 10·(i+1) s, acknowledged 30 s later, arrived at 60·(i+1)
        base = T0 + i
        events += [
            event("assigned", f"A{i}", base + 10_000 * (i + 1)),
            event("acknowledged", f"A{i}", base + 10_000 * (i + 1) + 30_000),
            event("arrived", f"A{i}", base + 60_000 * (i + 1)),
        ]
    events += [event("ack_timeout", "A3", T0 + 5_000), event("backup_requested", "A0", T0 + 1)]
    insert(warehouse, "dispatch_events", events[: len(events) // 2])
    insert(warehouse, "dispatch_events", events[len(events) // 2 :])  # two parts, one answer
    [row] = warehouse.query(
        "SELECT alerts, assign_s, arrive_s, on_scene_within_3min, ack_timeouts, backups, "
        "never_assigned FROM {db}.kpi_station_hour WHERE station_id = 'ST-01'"
    )
    assert row["alerts"] == 4
    assert [round(x) for x in row["assign_s"]] == [25, 37, 40]  # of 10, 20, 30, 40 s
    assert row["arrive_s"][0] == 150.0
    assert row["on_scene_within_3min"] == 0.75  # 60, 120, 180 s; not 240 s
    assert (row["ack_timeouts"], row["backups"], row["never_assigned"]) == (1, 1, 0)


def test_load_per_h3_cell_and_minute(warehouse: Warehouse) -> None:
    insert(
        warehouse,
        "alerts",
        [alert_row(f"A{i}", "ST-01", T0 + ms) for i, ms in enumerate((0, 30_000, 61_000))],
    )
    rows = warehouse.query(
        "SELECT toUnixTimestamp(minute) AS m, sum(alerts) AS n FROM {db}.load_h3_minute "
        "GROUP BY m ORDER BY m"
    )
    assert rows == [{"m": T0 // 1000, "n": 2}, {"m": T0 // 1000 + 60, "n": 1}]
