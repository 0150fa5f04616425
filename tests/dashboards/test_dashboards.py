"""The dashboards as code: the checked-in JSON is the builder's output and valid, validation
catches broken dashboards, macros expand like the ClickHouse plugin's, pushing sends the right
payload to Grafana's API, and every panel query returns rows from a real pipeline run."""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from base.errors import MacroError
from base.settings import Settings
from base.topics import TopicNames
from dashboards.build import DASHBOARD_DIR, build_dashboards, check_dashboards, write_dashboards
from dashboards.macros import TimeRange, expand
from dashboards.model import Dashboard, stat
from dashboards.publish import dashboard_payload, push_dashboards
from dashboards.validate import dashboard_errors, file_errors
from dashboards.variables import DATASOURCE
from streams.pipeline.apps import positions_changelog
from streams.pipeline.worker import WorkerProcess
from streams.sim.formats import MALFORMED_KINDS, malformed
from streams.sim.night import Night, NightConfig, SimOfficer
from tests.support.clients import LoaderThread, consume, now_iso, send_json, wait_for

RANGE = TimeRange(
    datetime(2022, 10, 15, 7, 0, tzinfo=UTC), datetime(2022, 10, 15, 8, 0, tzinfo=UTC), 60_000
)
FROM_S, TO_S = 1665817200, 1665820800


def command_map() -> dict[str, Any]:
    return copy.deepcopy(build_dashboards()[0])


# -- the checked-in files ------------------------------------------------------------------------


def test_checked_in_dashboards_are_the_builder_output_and_valid() -> None:
    assert check_dashboards() == []
    files = sorted(DASHBOARD_DIR.glob("*.json"))
    assert [p.name for p in files] == [
        "smart-station-command-map.json",
        "smart-station-data-quality.json",
        "smart-station-dispatch.json",
        "smart-station-pipeline-health.json",
    ]
    for path in files:
        assert file_errors(path) == []


def test_stale_or_missing_file_is_reported(tmp_path: Path) -> None:
    write_dashboards(directory=tmp_path)
    assert check_dashboards(directory=tmp_path) == []
    (tmp_path / "smart-station-dispatch.json").write_text("{}")
    (tmp_path / "smart-station-data-quality.json").unlink()
    assert check_dashboards(directory=tmp_path) == [
        "smart-station-dispatch.json: out of date; run `smart-station dashboards build`",
        "smart-station-data-quality.json: missing; run `smart-station dashboards build`",
    ]


def test_queries_read_the_given_database() -> None:
    for dashboard in build_dashboards("t_other"):
        sql = [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]
        sql += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
        assert all("t_other." in s and "smart_station" not in s and "{db}" not in s for s in sql)


def test_dashboards_have_the_datasource_and_station_variables() -> None:
    for dashboard in build_dashboards():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "grafana-clickhouse-datasource"
        if dashboard["uid"] == "smart-station-pipeline-health":
            assert "station" not in variables  # the loader's metrics have no station
            continue
        assert variables["station"]["query"] == (
            "SELECT DISTINCT station_id FROM smart_station.gps_pings ORDER BY station_id"
        )


def test_builder_refuses_a_row_wider_than_the_grid() -> None:
    wide = Dashboard("x", "x", "", [[stat("a", "SELECT 1", width=16)] * 2], [DATASOURCE])
    with pytest.raises(ValueError, match="32 columns wide"):
        wide.to_json("db")


# -- validation ----------------------------------------------------------------------------------


def test_validation_catches_a_duplicate_panel_id() -> None:
    dashboard = command_map()
    dashboard["panels"][1]["id"] = dashboard["panels"][0]["id"]
    assert "panel id 1 is used twice" in dashboard_errors(dashboard)


def test_validation_catches_a_target_without_raw_sql() -> None:
    dashboard = command_map()
    del dashboard["panels"][2]["targets"][0]["rawSql"]
    assert dashboard_errors(dashboard) == ["panels/2/targets/0: 'rawSql' is a required property"]


def test_validation_catches_a_target_without_the_datasource_variable() -> None:
    dashboard = command_map()
    dashboard["panels"][0]["targets"][0]["datasource"] = {"type": "mysql", "uid": "abc"}
    errors = dashboard_errors(dashboard)
    assert any(e.startswith("panels/0/targets/0/datasource/type") for e in errors)
    assert any(e.startswith("panels/0/targets/0/datasource/uid") for e in errors)


def test_validation_catches_overlapping_panels() -> None:
    dashboard = command_map()
    dashboard["panels"][1]["gridPos"]["x"] = 3  # into the first stat (x 0..5)
    assert dashboard_errors(dashboard) == ["panels 1 and 2 overlap"]


def test_validation_catches_a_panel_beyond_the_grid() -> None:
    dashboard = command_map()
    dashboard["panels"][3]["gridPos"]["x"] = 20
    assert "panel 4 ends at column 26 (max 24)" in dashboard_errors(dashboard)


def test_validation_catches_unknown_panel_types_and_missing_keys() -> None:
    dashboard = command_map()
    dashboard["panels"][0]["type"] = "worldmap-panel"
    del dashboard["time"]
    errors = dashboard_errors(dashboard)
    assert "(top): 'time' is a required property" in errors
    assert any(e.startswith("panels/0/type: 'worldmap-panel' is not one of") for e in errors)


def test_validation_catches_undefined_variables_and_unknown_macros() -> None:
    dashboard = command_map()
    target = dashboard["panels"][0]["targets"][0]
    target["rawSql"] += " AND unit IN (${unit:singlequote}) AND $__timeFiltr(ts)"
    assert dashboard_errors(dashboard) == [
        "panel 1 (Officers reporting)/A: undefined variable $unit",
        "panel 1 (Officers reporting)/A: unknown macro $__timeFiltr",
    ]


def test_validation_catches_a_format_that_does_not_fit_the_panel() -> None:
    dashboard = build_dashboards()[1]
    series = next(p for p in dashboard["panels"] if p["type"] == "timeseries")
    series["targets"][0]["format"] = 1
    assert dashboard_errors(dashboard) == [
        f"panel {series['id']} ({series['title']})/A: format 1, want 0"
    ]


def test_validation_catches_a_map_layer_bound_to_no_query() -> None:
    dashboard = command_map()
    geomap = next(p for p in dashboard["panels"] if p["type"] == "geomap")
    geomap["options"]["layers"][0]["filterData"]["options"] = "gone"
    assert dashboard_errors(dashboard) == [
        f"panel {geomap['id']} (District map): map layer 'Officers' shows no query's data"
    ]


# -- macros --------------------------------------------------------------------------------------


def test_time_filter_and_interval_expand_like_the_plugin() -> None:
    sql = "SELECT $__timeInterval(ts) AS time FROM t WHERE $__timeFilter(ts)"
    assert expand(sql, RANGE) == (
        "SELECT toStartOfInterval(toDateTime(ts), INTERVAL 60 second) AS time FROM t "
        f"WHERE ts >= toDateTime({FROM_S}) AND ts <= toDateTime({TO_S})"
    )


def test_millisecond_and_bound_macros_expand_like_the_plugin() -> None:
    sql = "$__timeFilter_ms(ts) $__fromTime $__toTime $__fromTime_ms $__interval_s"
    assert expand(sql, RANGE) == (
        f"ts >= fromUnixTimestamp64Milli({FROM_S}000) AND ts <= fromUnixTimestamp64Milli("
        f"{TO_S}000) toDateTime({FROM_S}) toDateTime({TO_S}) fromUnixTimestamp64Milli("
        f"{FROM_S}000) 60"
    )


def test_date_macros_and_nested_arguments() -> None:
    assert expand("$__dateTimeFilter(d, toDateTime(t))", RANGE) == (
        "(d >= toDate('2022-10-15') AND d <= toDate('2022-10-15')) AND "
        f"(toDateTime(t) >= toDateTime({FROM_S}) AND toDateTime(t) <= toDateTime({TO_S}))"
    )


def test_variables_expand_in_grafana_formats() -> None:
    sql = "s IN (${station:singlequote}) AND f = $fresh AND g IN (${station:sqlstring}) $__from"
    expanded = expand(sql, RANGE, {"station": ["ST-01", "O'Hare"], "fresh": "15"})
    assert expanded == (
        "s IN ('ST-01','O\\'Hare') AND f = 15 AND g IN ('ST-01','O''Hare') 1665817200000"
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__timeFilter()", "takes 1 argument"),
        ("$__nope(ts)", "unknown macro"),
        ("$station", "no value for variable"),
        ("$__timeFilter(ts", "unclosed parenthesis"),
    ],
)
def test_bad_macros_and_variables_are_refused(sql: str, message: str) -> None:
    with pytest.raises(MacroError, match=message):
        expand(sql, RANGE)


def test_multi_value_variable_needs_a_format() -> None:
    with pytest.raises(MacroError, match="needs a format"):
        expand("IN ($station)", RANGE, {"station": ["a", "b"]})


# -- publishing ----------------------------------------------------------------------------------


def test_payload_overwrites_by_uid_in_the_folder() -> None:
    dashboard = build_dashboards()[0]
    payload = dashboard_payload(dashboard, "ops")
    assert payload["overwrite"] is True and payload["folderUid"] == "ops"
    assert payload["dashboard"]["id"] is None
    assert payload["dashboard"]["uid"] == "smart-station-command-map"
    assert "folderUid" not in dashboard_payload(dashboard)


class FakeGrafana(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, Any]]] = []  # noqa: RUF012 (one test at a time)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, self.headers["Authorization"], body))
        uid = body["dashboard"]["uid"]
        answer = json.dumps({"status": "success", "uid": uid, "url": f"/d/{uid}", "version": 1})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_grafana() -> Iterator[str]:
    FakeGrafana.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_push_posts_every_dashboard_with_the_token(fake_grafana: str) -> None:
    urls = push_dashboards(fake_grafana, "glsa_secret", folder_uid="ops", database="t_x")
    assert urls == [f"/d/{d['uid']}" for d in build_dashboards()]
    assert [r[:2] for r in FakeGrafana.received] == [
        ("/api/dashboards/db", "Bearer glsa_secret")
    ] * 4
    expected = [dashboard_payload(d, "ops") for d in build_dashboards("t_x")]
    assert [r[2] for r in FakeGrafana.received] == expected


# -- every panel query against a warehouse filled by the pipeline --------------------------------

OFFICERS = 30
STATIONS = 3
FAR_AWAY = (30.6, 104.06)  # Chengdu: no officer within the dispatch radius


CATEGORIES = ("dispute", "theft", "traffic_accident", "noise", "weapon", "other")


def send_district(
    producer: KafkaProducer, topics: TopicNames, rng: random.Random
) -> tuple[list[SimOfficer], int]:
    """The simulator's patrols for the last 20 s (feed faults off, so every ping is counted
    once), then one malformed event of each kind."""
    now = int(time.time() * 1000)
    night = Night.of(
        NightConfig(
            seed=rng.randrange(1000),
            stations=STATIONS,
            officers_per_station=OFFICERS // STATIONS,
            patrol_share=1.0,
            start_ms=now - 20_000,
            duration_s=20,
            calls_per_station_hour=0.0,
            malformed_share=0.0,
            late_share=0.0,
            duplicate_share=0.0,
            out_of_order_share=0.0,
            gap_share=0.0,
            far_off_share=0.0,
        )
    )
    pings = [r for r in night.records() if r.topic == "gps.pings"]
    for record in pings:
        send_json(producer, topics.gps_raw, dict(record.message), key=record.key)
    for kind in MALFORMED_KINDS:
        bad = malformed(kind, "JB-001", now)
        producer.send(
            topics.gps_raw, value=bad.encode() if isinstance(bad, str) else orjson.dumps(bad)
        )
    for camera in cameras(list(night.officers.values()), now):
        send_json(producer, topics.cameras_raw, camera, key=str(camera["camera_id"]))
    producer.flush()
    return list(night.officers.values()), len(pings)


def call(
    number: int, lat: float, lon: float, station_id: str, rng: random.Random
) -> dict[str, Any]:
    return {
        "alert_id": f"AL-{number:06d}",
        "station_id": station_id,
        "category": rng.choice(CATEGORIES),
        "lat": round(lat, 6),
        "lon": round(lon, 6),
        "address": f"重庆市江北区建新北路{rng.randint(1, 300)}号",
        "description": "群众报警称有人发生纠纷",
        "caller_phone": f"138{rng.randint(10_000_000, 99_999_999)}",
        "time": now_iso(),
    }


def cameras(fleet: list[SimOfficer], now_ms: int) -> list[dict[str, Any]]:
    """A fixed camera by the first officer and a body camera (no position of its own) on the
    second: the map places it at the officer."""
    first, second = fleet[0], fleet[1]
    fixed = {"camera_id": "CAM-1", "kind": "fixed", "lat": first.lat, "lon": first.lon}
    body = {"camera_id": "BODY-1", "kind": "body", "officer_id": second.officer_id}
    return [
        fixed | {"station_id": first.station.station_id, "heading": 90, "ts": now_ms // 1000},
        body | {"station_id": second.station.station_id, "ts": now_ms // 1000},
    ]


def send_alerts(
    producer: KafkaProducer,
    topics: TopicNames,
    fleet: list[SimOfficer],
    rng: random.Random,
) -> list[str]:
    """Eight incidents next to officers (so they are assigned) and one far from everyone."""
    alerts = []
    for number in range(8):
        officer = fleet[number * 3]
        alerts.append(
            call(number, officer.lat + 0.001, officer.lon, officer.station.station_id, rng)
        )
    alerts.append(call(99, *FAR_AWAY, "JB-001", rng))
    for raw in alerts:
        send_json(producer, topics.alerts_raw, raw, key=str(raw["alert_id"]))
    producer.flush()
    return [str(a["alert_id"]) for a in alerts]


def officers_indexed(changelog: list[Any]) -> int:
    return len({record.key for record in changelog})


def respond(producer: KafkaProducer, topics: TopicNames, assigned: list[Any]) -> set[str]:
    """Every assigned officer acknowledges and arrives; the first alert asks for backup.
    Returns the alerts reached."""
    reached = set()
    for message in assigned:
        officer, alert_id = message["officer"]["officer_id"], message["alert"]["alert_id"]
        for status in ("en_route", "on_scene"):
            send_json(
                producer,
                topics.status_raw,
                {"officer_id": officer, "status": status, "alert_id": alert_id, "time": now_iso()},
                key=officer,
            )
        reached.add(alert_id)
    first = assigned[0]["alert"]["alert_id"]
    send_json(producer, topics.backup, {"alert_id": first, "units": 1}, key=first)
    producer.flush()
    return reached


def alert_ids(messages: list[dict[str, Any]]) -> set[str]:
    return {m["alert"]["alert_id"] for m in messages}


def check_columns(panel: dict[str, Any], rows: list[dict[str, Any]], where: str) -> None:
    columns = set(rows[0])
    if panel["type"] == "geomap":
        assert {"lat", "lon"} <= columns, where
    elif panel["type"] == "timeseries":
        assert "time" in columns, where
        datetime.fromisoformat(rows[0]["time"])
    elif panel["type"] == "stat":
        assert len(rows) == 1 and len(columns) == 1, where
        assert isinstance(next(iter(rows[0].values())), int | float), where
    elif panel["type"] == "barchart":
        assert panel["options"]["xField"] in columns, where
    elif panel["type"] == "histogram":
        assert len(columns) == 1 and isinstance(next(iter(rows[0].values())), int | float), where


@pytest.mark.broker
def test_every_panel_query_returns_rows_from_a_pipeline_run(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    warehouse,
    tmp_path: Path,
) -> None:
    rng = random.Random(5)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        fleet, pings = send_district(producer, topics, rng)
        states = consume(
            kafka_bootstrap,
            positions_changelog(settings),
            until=lambda r: officers_indexed(r) >= OFFICERS or not worker.alive(),
            timeout_s=60,
            raw=True,
        )
        assert officers_indexed(states) >= OFFICERS, f"see {worker.log_path}"
        *near, far = send_alerts(producer, topics, fleet, rng)
        assigned = consume(
            kafka_bootstrap,
            topics.assignments,
            until=lambda r: alert_ids(r) >= set(near),
            timeout_s=60,
        )
        waiting = consume(
            kafka_bootstrap, topics.unassigned, until=lambda r: far in alert_ids(r), timeout_s=30
        )
        normalised = consume(kafka_bootstrap, topics.gps, until=lambda r: len(r) >= pings)
        on_scene = respond(producer, topics, assigned)
        events = consume(
            kafka_bootstrap,
            topics.events,
            until=lambda r: (
                {e["alert_id"] for e in r if e["kind"] == "arrived"} >= on_scene
                and any(e["kind"] == "backup_requested" for e in r)
            ),
            timeout_s=60,
        )
    finally:
        worker.stop()
    assert alert_ids(assigned) >= set(near) and far in alert_ids(waiting)
    assert {e["alert_id"] for e in events if e["kind"] == "arrived"} >= on_scene
    assert len(normalised) == pings
    at_least = {
        "gps_pings": pings,
        "alerts": len(near) + 1,
        "assignments": len({m["assignment_id"] for m in assigned}),
        "dead_letters": len(MALFORMED_KINDS),
        "dispatch_events": len({(e["kind"], e["alert_id"], e["officer_id"]) for e in events}),
        "officer_status_changes": 2 * len(on_scene),
        "backup_requests": 1,
        "cameras": 2,
    }
    counts: dict[str, int] = {}

    def loaded() -> bool:
        counts.update({table: warehouse.count(table) for table in at_least})
        return all(counts[table] >= n for table, n in at_least.items())

    with LoaderThread(
        bootstrap=kafka_bootstrap,
        names=topics,
        group_id=f"{settings.app_id}-warehouse",
        warehouse=warehouse,
        batch_size=500,
        flush_interval_s=0.3,
        metrics_interval_s=0.5,
        watch_groups=[settings.app_id, f"{settings.app_id}-positions"],
    ):
        try:
            wait_for(loaded, timeout_s=60, what="warehouse rows")
            lag_rows = "SELECT count() AS n FROM {db}.consumer_lag"
            wait_for(lambda: warehouse.query(lag_rows)[0]["n"] > 0, 30, "lag measured")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: have {counts}, want at least {at_least}") from None
    assert counts["gps_pings"] == pings and counts["alerts"] == len(near) + 1, counts

    now = datetime.now(UTC)
    time_range = TimeRange(now - timedelta(hours=1), now + timedelta(minutes=1), 60_000)
    dashboards = build_dashboards(settings.warehouse_database)
    station_sql = dashboards[0]["templating"]["list"][1]["query"]
    stations = [r["station_id"] for r in warehouse.query(expand(station_sql, time_range))]
    assert stations == [f"JB-{s + 1:03d}" for s in range(STATIONS)]
    variables = {"station": stations, "fresh": "15", "target_s": "180"}
    results: dict[str, list[dict[str, Any]]] = {}
    for dashboard in dashboards:
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                where = f"{dashboard['uid']} / {panel['title']} / {target['refId']}"
                rows = warehouse.query(expand(target["rawSql"], time_range, variables))
                assert rows, f"{where} returned no rows"
                check_columns(panel, rows, where)
                results[where] = rows
    assert len(results["smart-station-command-map / District map / officers"]) == OFFICERS
    placed = results["smart-station-command-map / District map / cameras"]
    assert {r["camera_id"] for r in placed} == {"CAM-1", "BODY-1"}
    assert all(r["lat"] and r["lon"] for r in placed), placed
    waiting_rows = results["smart-station-dispatch / Alerts waiting for an officer / A"]
    assert [r["alert_id"] for r in waiting_rows] == [far]
