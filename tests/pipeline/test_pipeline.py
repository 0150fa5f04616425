"""The foundation slice through the real broker: raw pings and alerts -> normalised events ->
officer table -> nearest assignment on dispatch.assignments -> warehouse rows."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from base.settings import Settings
from base.topics import TopicNames
from schemas.events import Assignment
from streams.dispatch.nearest import nearest_brute_force
from streams.pipeline.apps import positions_changelog
from streams.pipeline.worker import WorkerProcess
from tests.support.clients import LoaderThread, consume, now_iso, send_json, wait_for

pytestmark = pytest.mark.broker


OFFICERS = {
    "OFF-A": (29.5630, 106.5516),  # at the incident's doorstep
    "OFF-B": (29.5700, 106.5600),
    "OFF-C": (29.5400, 106.5300),
}
INCIDENT = (29.5633, 106.5519)


def start_worker(settings: Settings, tmp_path: Path, name: str = "worker") -> WorkerProcess:
    return WorkerProcess(settings, tmp_path / f"{name}.log").start()


def send_pings(
    producer: KafkaProducer,
    topics: TopicNames,
    officers: dict[str, tuple[float, float]],
    *,
    keyed: bool = False,
) -> None:
    """Pings keyed by officer id take the one-hop path (applied where normalised); unkeyed ones
    are re-keyed through `gps.pings.by-officer` first."""
    for officer_id, (lat, lon) in officers.items():
        send_json(
            producer,
            topics.gps_raw,
            {
                "officer_id": officer_id,
                "station_id": "ST-01",
                "lat": lat,
                "lon": lon,
                "ts": now_iso(),
            },
            key=officer_id if keyed else None,
        )
    producer.flush()


def await_officers_indexed(
    settings: Settings, kafka_bootstrap: str, count: int, worker: WorkerProcess
) -> None:
    records = consume(
        kafka_bootstrap,
        positions_changelog(settings),
        until=lambda r: len(r) >= count or not worker.alive(),
        timeout_s=90,
    )
    assert worker.alive(), f"worker died; see {worker.log_path}"
    assert len(records) >= count, f"only {len(records)} officer positions written"


def send_alert(
    producer: KafkaProducer,
    topics: TopicNames,
    alert_id: str,
    category: str = "theft",
    *,
    keyed: bool = True,
) -> None:
    """Alerts keyed by alert id are dispatched where they are normalised (one hop); unkeyed
    ones through `alerts.normalised` first."""
    send_json(
        producer,
        topics.alerts_raw,
        {
            "alert_id": alert_id,
            "category": category,
            "lat": INCIDENT[0],
            "lon": INCIDENT[1],
            "address": "解放碑步行街 8 号",
            "caller_phone": "13800000000",
            "time": now_iso(),
        },
        key=alert_id if keyed else None,
    )
    producer.flush()


def assignments_for(
    kafka_bootstrap: str, topics: TopicNames, alert_id: str, n: int = 1
) -> list[Assignment]:
    found = consume(
        kafka_bootstrap,
        topics.assignments,
        until=lambda r: sum(1 for a in r if a["alert"]["alert_id"] == alert_id) >= n,
        timeout_s=90,
    )
    return [Assignment.model_validate(a) for a in found if a["alert"]["alert_id"] == alert_id]


def test_alert_is_assigned_to_nearest_officer_and_lands_in_warehouse(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    warehouse,
    tmp_path: Path,
) -> None:
    worker = start_worker(settings, tmp_path)
    try:
        send_pings(producer, topics, OFFICERS)
        producer.send(topics.gps_raw, value=b"{broken json")
        producer.flush()
        await_officers_indexed(settings, kafka_bootstrap, len(OFFICERS), worker)
        send_alert(producer, topics, "AL-1", keyed=False)  # both hops (pings: unkeyed too)
        [assignment] = assignments_for(kafka_bootstrap, topics, "AL-1")
    finally:
        worker.stop()
    [expected] = nearest_brute_force(OFFICERS, *INCIDENT, k=1, radius_m=5000)
    assert assignment.officer.officer_id == expected.officer_id == "OFF-A"
    assert assignment.distance_m == pytest.approx(expected.distance_m, abs=0.2)
    assert assignment.alert.event_time[-6:] == "+08:00"
    assert abs(assignment.alert.event_utc_ms - time.time() * 1000) < 600_000
    with LoaderThread(
        bootstrap=kafka_bootstrap,
        names=topics,
        group_id=f"{settings.app_id}-warehouse",
        warehouse=warehouse,
        batch_size=100,
        flush_interval_s=0.3,
    ):
        wait_for(
            lambda: (
                warehouse.count("gps_pings") == 3
                and warehouse.count("assignments") == 1
                and warehouse.count("dead_letters") == 1
            ),
            what="warehouse rows",
        )
    [row] = warehouse.query("SELECT officer_id, alert_id, distance_m FROM {db}.assignments")
    assert row["officer_id"] == "OFF-A" and row["alert_id"] == "AL-1"
    assert warehouse.count("alerts") == 1
    [event] = warehouse.query("SELECT kind, alert_id, officer_id FROM {db}.dispatch_events")
    assert event == {"kind": "assigned", "alert_id": "AL-1", "officer_id": "OFF-A"}
    [dead] = warehouse.query("SELECT reason, source_topic FROM {db}.dead_letters")
    assert dead == {"reason": "invalid_json", "source_topic": topics.gps_raw}


def test_busy_officer_is_not_assigned_twice(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    tmp_path: Path,
) -> None:
    worker = start_worker(settings, tmp_path)
    try:
        send_pings(producer, topics, OFFICERS)
        await_officers_indexed(settings, kafka_bootstrap, len(OFFICERS), worker)
        send_alert(producer, topics, "AL-1")
        send_alert(producer, topics, "AL-2")
        first = assignments_for(kafka_bootstrap, topics, "AL-1")
        second = assignments_for(kafka_bootstrap, topics, "AL-2")
    finally:
        worker.stop()
    officers = {first[0].officer.officer_id, second[0].officer.officer_id}
    assert officers == {"OFF-A", "OFF-B"}  # the two nearest, one each


def test_officer_positions_survive_kill_9_and_next_alert_is_assigned(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    tmp_path: Path,
) -> None:
    worker = start_worker(settings, tmp_path, "before-crash")
    try:
        send_pings(producer, topics, OFFICERS, keyed=True)
        await_officers_indexed(settings, kafka_bootstrap, len(OFFICERS), worker)
    finally:
        worker.kill()
    # Only the changelog knows the positions now: nothing will ping again.
    restarted = start_worker(settings, tmp_path, "after-crash")
    try:
        send_alert(producer, topics, "AL-9")
        [assignment] = assignments_for(kafka_bootstrap, topics, "AL-9")
    finally:
        restarted.stop()
    assert assignment.officer.officer_id == "OFF-A"
    assert (assignment.officer.lat, assignment.officer.lon) == OFFICERS["OFF-A"]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat (Debian package) not installed")
def test_kcat_client_produces_alert_and_reads_assignment_contract(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    tmp_path: Path,
) -> None:
    worker = start_worker(settings, tmp_path)
    try:
        send_pings(producer, topics, OFFICERS)
        await_officers_indexed(settings, kafka_bootstrap, len(OFFICERS), worker)
        alert = {
            "alert_id": "AL-K",
            "category": "dispute",
            "lat": INCIDENT[0],
            "lon": INCIDENT[1],
            "time": now_iso(),
            "address": "测试路 1 号",
        }
        subprocess.run(
            ["kcat", "-b", kafka_bootstrap, "-P", "-t", topics.alerts_raw, "-k", "AL-K"],
            input=orjson.dumps(alert),
            check=True,
            timeout=30,
        )
        deadline = time.monotonic() + 90
        lines: list[bytes] = []
        while time.monotonic() < deadline and not lines:
            out = subprocess.run(
                [
                    "kcat",
                    "-b",
                    kafka_bootstrap,
                    "-C",
                    "-t",
                    topics.assignments,
                    "-e",
                    "-q",
                    "-f",
                    "%k\t%s\n",
                ],
                capture_output=True,
                check=True,
                timeout=30,
            ).stdout
            lines = [line for line in out.splitlines() if line.strip()]
            time.sleep(0.5)
    finally:
        worker.stop()
    assert len(lines) == 1
    key, value = lines[0].split(b"\t", 1)
    message = orjson.loads(value)
    assert key.decode() == message["officer"]["officer_id"] == "OFF-A"
    for field in (
        "schema_version",
        "assignment_id",
        "alert",
        "caller_phone",
        "officer",
        "distance_m",
        "eta_s",
        "assigned_time",
        "assigned_utc_ms",
    ):
        assert field in message
    assert message["alert"]["alert_id"] == "AL-K" and message["alert"]["address"] == "测试路 1 号"
