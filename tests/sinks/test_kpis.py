"""The KPI tables fed on insert: dispatch events stamped with their alerts' stations and times
(as the loader does), the quantile states per station and hour, and the H3 load per minute."""

from __future__ import annotations

from typing import Any

import orjson

from sinks.alert_stamps import AlertStamps
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


def event(kind: str, alert_id: str, at_ms: int, partition: int = 0) -> dict[str, Any]:
    return {
        "kind": kind,
        "alert_id": alert_id,
        "at_utc_ms": at_ms,
        "loaded_at": at_ms // 1000,
        "kafka_partition": partition,
        "kafka_offset": at_ms - T0,
    }


def insert(warehouse: Warehouse, table: str, rows: list[dict[str, Any]]) -> None:
    warehouse.insert_rows(table, b"\n".join(map(orjson.dumps, rows)))


def stamped(warehouse: Warehouse, stamps: AlertStamps, rows: list[dict[str, Any]]) -> list[Any]:
    """The loader's path: stamp what is known now, resolve the rest from the warehouse."""
    now = [row for row in rows if stamps.stamp(row)]
    resolved = stamps.resolve(warehouse, warehouse.database)
    assert not resolved.deferred
    return now + resolved.stamped


def kpis(warehouse: Warehouse, station: str) -> dict[str, Any]:
    [row] = warehouse.query(
        "SELECT alerts, assign_s, acknowledge_s, arrive_s, on_scene_within_3min, ack_timeouts, "
        f"backups, never_assigned FROM {{db}}.kpi_station_hour WHERE station_id = '{station}'"
    )
    return row


def test_station_hour_kpis_follow_each_alerts_first_steps(warehouse: Warehouse) -> None:
    alerts = [alert_row(f"A{i}", "ST-01", T0 + i) for i in range(4)]
    insert(warehouse, "alerts", alerts)
    events = []
    for i in range(4):  # assigned after 10·(i+1) s, acknowledged 30 s later, arrived at 60·(i+1)
        base = T0 + i
        events += [
            event("assigned", f"A{i}", base + 10_000 * (i + 1)),
            event("acknowledged", f"A{i}", base + 10_000 * (i + 1) + 30_000),
            event("arrived", f"A{i}", base + 60_000 * (i + 1)),
        ]
    events += [event("ack_timeout", "A3", T0 + 5_000), event("backup_requested", "A0", T0 + 1)]
    # A second unit for A0, much later: not A0's time to assign, acknowledge or arrive.
    events += [
        event(kind, "A0", T0 + 3_000_000 + n) for n, kind in enumerate(("assigned", "arrived"))
    ]
    stamps = AlertStamps()  # the first half knows its alerts, the second reads them back
    for alert in alerts:
        stamps.note_alert(alert)
    half = len(events) // 2
    insert(warehouse, "dispatch_events", stamped(warehouse, stamps, events[:half]))
    insert(warehouse, "dispatch_events", stamped(warehouse, AlertStamps(), events[half:]))
    row = kpis(warehouse, "ST-01")
    assert row["alerts"] == 4
    assert [round(x) for x in row["assign_s"]] == [25, 37, 40]  # of 10, 20, 30, 40 s
    assert [round(x) for x in row["acknowledge_s"]] == [55, 67, 70]
    assert row["arrive_s"][0] == 150.0
    assert row["on_scene_within_3min"] == 0.75  # 60, 120, 180 s; not 240 s
    assert (row["ack_timeouts"], row["backups"], row["never_assigned"]) == (1, 1, 0)


def test_an_event_of_an_alert_not_stored_yet_defers_its_partition_until_the_alert_comes(
    warehouse: Warehouse,
) -> None:
    stamps = AlertStamps()
    early = [event("assigned", "A5", T0 + 1_000), event("arrived", "A4", T0 + 2_000)]
    other = event("assigned", "A4", T0 + 500, partition=1)
    stamps.note_alert(alert_row("A4", "ST-01", T0))
    assert [stamps.stamp(row) for row in (*early, other)] == [False, False, False]
    resolved = stamps.resolve(warehouse, warehouse.database)
    assert resolved.deferred == {0: 1_000}  # A5's event and what follows it on partition 0
    assert [r["kafka_partition"] for r in resolved.stamped] == [1]
    insert(warehouse, "alerts", [alert_row("A5", "ST-01", T0)])
    for row in early:  # read again
        stamps.stamp(row)
    again = stamps.resolve(warehouse, warehouse.database)
    assert not again.deferred and stamps.unstamped == 0
    assert [(r["alert_id"], r["station_id"]) for r in again.stamped] == [
        ("A5", "ST-01"),
        ("A4", "ST-01"),
    ]


def test_an_alert_that_never_comes_stops_holding_its_partition_after_the_wait(
    warehouse: Warehouse,
) -> None:
    now = [0.0]
    stamps = AlertStamps(wait_s=30, clock=lambda: now[0])
    orphan = event("backup_requested", "NOWHERE", T0)
    stamps.stamp(orphan)
    assert stamps.resolve(warehouse, warehouse.database).deferred == {0: 0}
    now[0] = 31.0
    stamps.stamp(orphan)
    [row] = stamps.resolve(warehouse, warehouse.database).stamped
    assert (row["station_id"], row["alert_utc_ms"], row["first_of_kind"]) == ("", 0, 1)
    assert stamps.unstamped == 1
    insert(warehouse, "dispatch_events", [row])
    assert warehouse.query("SELECT count() AS n FROM {db}.kpi_station_hour_states") == [{"n": 0}]


def test_events_wait_behind_one_being_resolved_so_first_stays_first(warehouse: Warehouse) -> None:
    stamps = AlertStamps()
    first = event("assigned", "A9", T0 + 1_000)  # kinds stored for A9 not known yet: waits
    stamps.note_alert(alert_row("A9", "ST-02", T0))
    second = event("assigned", "A9", T0 + 2_000)  # must not overtake it
    assert not stamps.stamp(first) and not stamps.stamp(second)
    insert(warehouse, "alerts", [alert_row("A9", "ST-02", T0)])
    resolved = stamps.resolve(warehouse, warehouse.database).stamped
    assert [(r["at_utc_ms"], r["first_of_kind"]) for r in resolved] == [
        (T0 + 1_000, 1),
        (T0 + 2_000, 0),
    ]
    assert {(r["station_id"], r["category"], r["priority"]) for r in resolved} == {
        ("ST-02", "theft", 3)
    }


def test_a_dropped_batch_is_not_remembered_as_written(warehouse: Warehouse) -> None:
    stamps = AlertStamps()
    stamps.note_alert(alert_row("A7", "ST-03", T0))
    [dropped] = stamped(warehouse, stamps, [event("assigned", "A7", T0 + 5_000)])
    assert dropped["first_of_kind"] == 1
    stamps.forget()  # a rebalance dropped the batch: it is read again
    [again] = stamped(warehouse, stamps, [event("assigned", "A7", T0 + 5_000)])
    assert again["first_of_kind"] == 1


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
