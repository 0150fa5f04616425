"""The warehouse loader through the real broker: every table holds each event once even when a
batch is read again, the loader outlives broker and warehouse outages, and SIGINT/SIGTERM flush
and commit before it exits (also SIGINT when started in the background)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.topics import ensure_topics
from sinks import rows
from sinks.loader import Loader, LoaderStats, table_router
from sinks.migrations import CODE_VERSION
from sinks.warehouse import TABLES, Warehouse
from tests.support.clients import TEST_PHONE_KEY, TEST_PROTECTOR, env_without_settings, wait_for

pytestmark = pytest.mark.broker

NOW_MS = int(time.time() * 1000)
QUALITY = {"source_format": "iso8601", "inferred": False}
PHONE = "13912345678"
COUNT_PINGS = "SELECT count() AS n FROM {db}.gps_pings"


def ping(i: int) -> dict[str, Any]:
    return {
        "event_id": f"p{i}",
        "officer_id": f"OFF-{i % 7}",
        "station_id": "ST-01",
        "lat": 29.56,
        "lon": 106.55,
        "h3_cell": "8840c8a4b7fffff",
        "event_time": "2026-11-27T10:00:00+08:00",
        "event_utc_ms": NOW_MS + i,
        "ingest_utc_ms": NOW_MS + i,
        "time_quality": QUALITY,
    }


def alert(i: int) -> dict[str, Any]:
    return {
        "alert_id": f"A{i}",
        "station_id": "ST-01",
        "category": "theft",
        "priority": 3,
        "lat": 29.56,
        "lon": 106.55,
        "h3_cell": "8840c8a4b7fffff",
        "address": "解放碑",
        "description": "",
        "caller_phone": PHONE,
        "event_time": "2026-11-27T10:00:00+08:00",
        "event_utc_ms": NOW_MS + i,
        "ingest_utc_ms": NOW_MS + i,
        "time_quality": QUALITY,
    }


def assignment(i: int) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "assignment_id": f"A{i}:OFF-1",
        "alert": {
            "alert_id": f"A{i}",
            "category": "theft",
            "priority": 3,
            "lat": 29.56,
            "lon": 106.55,
            "address": "解放碑",
            "description": "",
            "event_time": "2026-11-27T10:00:00+08:00",
            "event_utc_ms": NOW_MS,
        },
        "caller_phone": PHONE,
        "officer": {
            "officer_id": "OFF-1",
            "station_id": "ST-01",
            "lat": 29.561,
            "lon": 106.551,
            "position_utc_ms": NOW_MS,
        },
        "distance_m": 120.0,
        "eta_s": 18.0,
        "assigned_time": "2026-11-27T10:00:01+08:00",
        "assigned_utc_ms": NOW_MS + 1000 + i,
    }


def messages(names: TopicNames, n: int) -> dict[str, list[tuple[bytes, list[Any]]]]:
    """n valid messages for every topic the loader reads, as (value, headers)."""
    dead_headers = [
        ("reason", b"invalid_time"),
        ("source_topic", b"alerts.calls"),
        ("station_id", b"ST-01"),
        ("dead_utc_ms", str(NOW_MS).encode()),
    ]
    plain: dict[str, Any] = {
        names.gps: ping,
        names.alerts: alert,
        names.assignments: assignment,
        names.events: lambda i: {
            "kind": "assigned",
            "alert_id": f"A{i}",
            "officer_id": "OFF-1",
            "assignment_id": f"A{i}:OFF-1:1",
            "at_utc_ms": NOW_MS + i,
            "radius_m": 10000.0,
            "waited_ms": 120000,
        },
        names.status: lambda i: {
            "officer_id": f"OFF-{i}",
            "status": "en_route",
            "alert_id": f"A{i}",
            "event_time": "2026-11-27T10:00:00+08:00",
            "event_utc_ms": NOW_MS + i,
            "time_quality": QUALITY,
        },
        names.cameras: lambda i: {
            "camera_id": f"CAM-{i}",
            "kind": "fixed",
            "lat": 29.56,
            "lon": 106.55,
            "event_time": "2026-11-27T10:00:00+08:00",
            "event_utc_ms": NOW_MS + i,
        },
        names.backup: lambda i: {"alert_id": f"A{i}", "officer_id": "OFF-1", "units": 1},
    }
    out = {topic: [(orjson.dumps(make(i)), []) for i in range(n)] for topic, make in plain.items()}
    out[names.deadletter] = [
        (
            b'{"alert_id": "D%d", "caller_phone": "%s", "time": "32/13/2022"}'
            % (i, PHONE.encode()),
            [*dead_headers, ("source_offset", str(i).encode())],
        )
        for i in range(n)
    ]
    return out


def produce_all(bootstrap: str, batches: dict[str, list[tuple[bytes, list[Any]]]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    for topic, records in batches.items():
        for i, (value, headers) in enumerate(records):
            producer.send(topic, key=str(i).encode(), value=value, headers=headers)
    producer.flush()
    producer.close()


def raw_counts(warehouse: Warehouse) -> dict[str, int]:
    """Rows as stored, without FINAL: a duplicate counts."""
    return {t: int(warehouse.query(f"SELECT count() AS n FROM {{db}}.{t}")[0]["n"]) for t in TABLES}


class RunningLoader:
    def __init__(self, **kwargs: Any) -> None:
        self.stop = threading.Event()
        self.loader = Loader(protector=TEST_PROTECTOR, stop=self.stop, **kwargs)
        self.result: LoaderStats | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.loader.run()
        except BaseException as exc:
            self.error = exc
            raise

    def __enter__(self) -> RunningLoader:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()


def loader_args(bootstrap: str, topics: TopicNames, settings: Settings, warehouse: Warehouse):
    return {
        "bootstrap": bootstrap,
        "names": topics,
        "group_id": f"{settings.app_id}-warehouse",
        "warehouse": warehouse,
        "batch_size": 500,
        "flush_interval_s": 0.3,
        "retry_max_s": 2.0,
        "metrics_interval_s": 1.0,
    }


def test_a_batch_read_again_after_a_lost_commit_adds_no_row_to_any_table(
    kafka_bootstrap: str, topics: TopicNames, settings: Settings, warehouse: Warehouse
) -> None:
    n = 20
    for table in TABLES:  # a merge would hide duplicates that a query without FINAL sees
        warehouse.execute(f"SYSTEM STOP MERGES {warehouse.database}.{table}")
    produce_all(kafka_bootstrap, messages(topics, n))
    args = loader_args(kafka_bootstrap, topics, settings, warehouse)
    with RunningLoader(**args):
        wait_for(lambda: all(c == n for c in raw_counts(warehouse).values()), 60, "all tables")
    # The commit is lost: the group's offsets go back to the start, as after a commit that
    # failed once the batch was written.
    rewind = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=args["group_id"])
    partitions = [
        TopicPartition(t, p) for t in table_router(topics) for p in range(settings.topic_partitions)
    ]
    rewind.commit({tp: OffsetAndMetadata(0, "", -1) for tp in partitions})
    rewind.close()
    with RunningLoader(**args) as again:
        wait_for(lambda: again.loader.stats.replayed_skipped >= n * len(TABLES), 60, "re-read")
        time.sleep(1.0)
    assert raw_counts(warehouse) == dict.fromkeys(TABLES, n)
    assert again.loader.stats.rows_by_table == {}


def test_callers_numbers_are_masked_and_hashed_in_every_table(
    kafka_bootstrap: str, topics: TopicNames, settings: Settings, warehouse: Warehouse
) -> None:
    produce_all(kafka_bootstrap, messages(topics, 3))
    with RunningLoader(**loader_args(kafka_bootstrap, topics, settings, warehouse)):
        wait_for(lambda: all(c == 3 for c in raw_counts(warehouse).values()), 60, "all tables")
    expected = TEST_PROTECTOR.protect(PHONE)
    for table in ("alerts", "assignments", "dead_letters"):
        dump = warehouse.query_text(f"SELECT * FROM {warehouse.database}.{table}", "TSV")
        assert PHONE.encode() not in dump and b"12345678" not in dump, table
        assert expected.hmac.encode() in dump, table
    [row] = warehouse.query("SELECT caller_phone_masked AS m FROM {db}.alerts LIMIT 1")
    assert row["m"] == "*******5678"
    events = warehouse.query("SELECT assignment_id FROM {db}.dispatch_events ORDER BY alert_id")
    assert [e["assignment_id"] for e in events] == [f"A{i}:OFF-1:1" for i in range(3)]
    [payload] = warehouse.query("SELECT payload FROM {db}.assignments LIMIT 1")
    assert orjson.loads(payload["payload"])["caller_phone"] == "*******5678"


def test_dispatch_events_are_stamped_with_their_alerts_station_and_time(
    kafka_bootstrap: str, topics: TopicNames, settings: Settings, warehouse: Warehouse
) -> None:
    batches = messages(topics, 3)
    produce_all(kafka_bootstrap, {topics.alerts: batches[topics.alerts]})
    again = {  # A0 gets a second unit: not its first assignment
        "kind": "assigned",
        "alert_id": "A0",
        "officer_id": "OFF-2",
        "at_utc_ms": NOW_MS + 60_000,
    }
    with RunningLoader(**loader_args(kafka_bootstrap, topics, settings, warehouse)) as running:
        wait_for(lambda: raw_counts(warehouse)["alerts"] == 3, 60, "the alerts")
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        for value, _ in [*batches[topics.events], (orjson.dumps(again), [])]:
            key = orjson.loads(value)["alert_id"].encode()  # as the dispatcher keys them
            producer.send(topics.events, key=key, value=value)
        producer.flush()
        producer.close()
        wait_for(lambda: raw_counts(warehouse)["dispatch_events"] == 4, 60, "the events")
    rows = warehouse.query(
        "SELECT alert_id, officer_id, station_id, alert_utc_ms, first_of_kind "
        "FROM {db}.dispatch_events ORDER BY alert_id, at_utc_ms"
    )
    assert [tuple(r.values()) for r in rows] == [
        ("A0", "OFF-1", "ST-01", NOW_MS, 1),
        ("A0", "OFF-2", "ST-01", NOW_MS, 0),
        ("A1", "OFF-1", "ST-01", NOW_MS + 1, 1),
        ("A2", "OFF-1", "ST-01", NOW_MS + 2, 1),
    ]
    [kpi] = warehouse.query("SELECT alerts, never_assigned FROM {db}.kpi_station_hour")
    assert (kpi["alerts"], kpi["never_assigned"]) == (3, 0)
    assert running.loader.stats.unstamped_events == 0


def test_a_reading_that_is_not_a_valid_message_is_skipped_not_fatal(
    kafka_bootstrap: str, topics: TopicNames, settings: Settings, warehouse: Warehouse
) -> None:
    produce_all(kafka_bootstrap, {topics.gps: [(b"{}", []), (orjson.dumps(ping(1)), [])]})
    with RunningLoader(**loader_args(kafka_bootstrap, topics, settings, warehouse)) as running:
        wait_for(lambda: raw_counts(warehouse)["gps_pings"] == 1, 60, "the valid ping")
    assert running.loader.stats.unreadable == 1 and running.error is None


def test_loader_waits_out_a_warehouse_outage_and_writes_each_row_once(
    kafka_bootstrap: str,
    topics: TopicNames,
    settings: Settings,
    warehouse: Warehouse,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sinks.loader")
    db = warehouse.database
    with RunningLoader(**loader_args(kafka_bootstrap, topics, settings, warehouse)) as running:
        produce_all(kafka_bootstrap, {topics.gps: [(orjson.dumps(ping(i)), []) for i in range(5)]})
        wait_for(lambda: raw_counts(warehouse)["gps_pings"] == 5, 60, "first pings")
        warehouse.execute(f"RENAME TABLE {db}.gps_pings TO {db}.gps_pings_away")
        produce_all(
            kafka_bootstrap, {topics.gps: [(orjson.dumps(ping(i)), []) for i in range(5, 9)]}
        )
        wait_for(lambda: running.loader.store.down, 30, "the loader to see the outage")
        time.sleep(4.0)  # several retries
        assert running.thread.is_alive()
        warehouse.execute(f"RENAME TABLE {db}.gps_pings_away TO {db}.gps_pings")
        wait_for(lambda: raw_counts(warehouse)["gps_pings"] == 9, 60, "rows after the outage")
    assert running.error is None
    lines = [r.getMessage() for r in caplog.records]
    assert sum("warehouse=unavailable" in line for line in lines) == 1
    assert sum("warehouse=available" in line for line in lines) == 1
    assert raw_counts(warehouse)["gps_pings"] == 9


def test_loader_outlives_a_broker_restart_and_loses_nothing(
    tmp_path: Path, settings: Settings, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sinks.loader")
    broker = EmbeddedBroker(tmp_path / "own-kafka", heap="384m")
    bootstrap = broker.start()
    try:
        names = TopicNames.with_prefix(settings.topic_prefix)
        ensure_topics(bootstrap, names.all(), 1)
        args = loader_args(bootstrap, names, settings, warehouse)
        with RunningLoader(**args) as running:
            produce_all(bootstrap, {names.gps: [(orjson.dumps(ping(i)), []) for i in range(5)]})
            wait_for(lambda: raw_counts(warehouse)["gps_pings"] == 5, 60, "first pings")
            broker.stop()
            wait_for(lambda: running.loader.broker.down, 60, "the loader to see the broker gone")
            time.sleep(3.0)
            assert running.thread.is_alive(), running.error
            broker.start()
            produce_all(bootstrap, {names.gps: [(orjson.dumps(ping(i)), []) for i in range(5, 12)]})
            wait_for(lambda: raw_counts(warehouse)["gps_pings"] == 12, 120, "pings after restart")
        assert running.error is None
        lines = [r.getMessage() for r in caplog.records]
        assert sum("broker=unavailable" in line for line in lines) == 1
        assert sum("broker=available" in line for line in lines) == 1
    finally:
        broker.stop()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sink_flushes_and_commits_on_signal_even_started_in_the_background(
    signum: int, kafka_bootstrap: str, topics: TopicNames, settings: Settings, tmp_path: Path
) -> None:
    state = tmp_path / "sink-state"
    env = {
        **env_without_settings(),
        "SMART_STATION_STATE_DIR": str(state),
        "SMART_STATION_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SMART_STATION_TOPIC_PREFIX": settings.topic_prefix,
        "SMART_STATION_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "SMART_STATION_APP_ID": settings.app_id,
        "SMART_STATION_PHONE_HMAC_KEY": TEST_PHONE_KEY,
        "SMART_STATION_SINK_FLUSH_INTERVAL_S": "600",  # only the signal can flush
    }
    produce_all(kafka_bootstrap, {topics.gps: [(orjson.dumps(ping(i)), []) for i in range(6)]})
    sink = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "sink"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As `smart-station sink &` in a script: SIGINT arrives ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:

        def rows_read() -> int:
            loader = state / "loader.json"
            if not loader.exists():
                return -1
            port = json.loads(loader.read_text())["port"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as r:
                return int(json.loads(r.read())["rows_by_table"].get("gps_pings", 0))

        try:
            wait_for(lambda: rows_read() == 6, 120, "the sink to read the pings")
        except AssertionError:
            sink.kill()
            raise AssertionError(f"sink: {sink.communicate()[1][-2000:]}") from None
        # While it runs, the loader answers queries on the warehouse it holds: nothing is
        # written yet (only the signal flushes), and status names it.
        during = cli(
            "sql", "--format", "TabSeparatedWithNames", "SELECT count() AS n FROM {db}.gps_pings"
        )
        assert during.stdout.splitlines() == ["n", "0"], during.stderr
        status = cli("status")
        assert (
            "loader process: pid" in status.stdout and f"version {CODE_VERSION}" in status.stdout
        ), status
        os.kill(sink.pid, signum)
        _, err = sink.communicate(timeout=60)
        assert sink.returncode == 0, err
        assert "loader stopped after 1 batches: gps_pings=6" in err
    finally:
        if sink.poll() is None:
            sink.kill()
    counted = cli(
        "sql", "--format", "TabSeparatedWithNames", "SELECT count() AS n FROM {db}.gps_pings"
    )
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.splitlines() == ["n", "6"]
    committed = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=f"{settings.app_id}-warehouse"
    )
    ends = committed.end_offsets([TopicPartition(topics.gps, p) for p in range(2)])
    for tp, end in ends.items():
        assert (committed.committed(tp) or 0) == end
    committed.close()


def test_the_same_batch_flushed_twice_is_stored_once(warehouse: Warehouse) -> None:
    # As when an insert reached the warehouse but its acknowledgement was lost and it is retried.
    for _ in range(2):
        for i in range(3):
            warehouse.add("gps_pings", {**rows_gps(i), "kafka_partition": 0, "kafka_offset": i})
        warehouse.flush()
    assert raw_counts(warehouse)["gps_pings"] == 3


def test_a_batch_flushed_twice_is_counted_once_in_the_tables_fed_on_insert(
    warehouse: Warehouse,
) -> None:
    # The tables materialized views fill see every insert, also one its source table drops as a
    # repeat: they need a deduplication window of their own.
    def sums() -> dict[str, Any]:
        return {
            "lifecycle": warehouse.query("SELECT sum(assignments) AS n FROM {db}.alert_lifecycle")[
                0
            ]["n"],
            "load": warehouse.query("SELECT sum(alerts) AS n FROM {db}.load_h3_minute")[0]["n"],
            "kpi": warehouse.query("SELECT alerts, never_assigned FROM {db}.kpi_station_hour"),
            "quality": warehouse.query("SELECT sum(events) AS n FROM {db}.events_quality_minute")[
                0
            ]["n"],
        }

    for attempt in range(2):
        for i in range(3):
            placed = {"kafka_partition": 0, "kafka_offset": i, "loaded_at": NOW_MS // 1000}
            warehouse.add("gps_pings", {**rows_gps(i), **placed})
            warehouse.add("alerts", {**rows.alert_row(alert(i), TEST_PROTECTOR), **placed})
            event = {"kind": "assigned", "alert_id": f"A{i}", "at_utc_ms": NOW_MS + 5_000}
            stamped = {"station_id": "ST-01", "alert_utc_ms": NOW_MS + i, "first_of_kind": 1}
            warehouse.add("dispatch_events", {**event, **stamped, **placed})
        warehouse.flush()
        if attempt == 0:
            once = sums()
    assert once["lifecycle"] == once["load"] == 3 and once["quality"] == 6, once
    assert sums() == once


def test_a_batch_whose_list_and_nullable_columns_are_all_empty_is_written(
    warehouse: Warehouse,
) -> None:
    # Dead letters without a phone number: phone_hmacs is [] in every row (Arrow types it as a
    # list of nulls, which chDB refused), and pings without an accuracy: None in every row.
    headers = [("reason", b"invalid_json"), ("source_topic", b"gps.pings.raw")]
    placed = {"kafka_partition": 0, "loaded_at": NOW_MS // 1000}
    for i in range(3):
        dead = rows.dead_letter_row(
            b"{not json", [*headers, ("source_offset", b"%d" % i)], TEST_PROTECTOR
        )
        assert dead["phone_hmacs"] == []
        warehouse.add("dead_letters", {**dead, **placed, "kafka_offset": i})
        ping_row = {**rows_gps(i), "accuracy_m": None, **placed, "kafka_offset": i}
        warehouse.add("gps_pings", ping_row)
    assert warehouse.flush() == 6
    stored = warehouse.query("SELECT phone_hmacs FROM {db}.dead_letters")
    assert stored == [{"phone_hmacs": []}] * 3
    assert warehouse.query("SELECT countIf(accuracy_m IS NULL) AS n FROM {db}.gps_pings") == [
        {"n": 3}
    ]


def rows_gps(i: int) -> dict[str, Any]:
    from sinks.rows import gps_row

    return {**gps_row(ping(i)), "loaded_at": NOW_MS // 1000}
