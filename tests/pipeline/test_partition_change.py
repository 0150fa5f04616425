"""A worker restarted after topics grew: a station input that grew is re-keyed where it arrives
and alerts are still assigned right; a co-partitioned topic that grew makes the worker refuse to
start, with one line (its events would reach a worker that does not own their tables)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewPartitions

from base.settings import Settings, settings_env
from base.topics import TopicNames
from streams.pipeline.worker import WorkerProcess
from tests.pipeline.test_pipeline import (
    OFFICERS,
    assignments_for,
    await_officers_indexed,
    send_alert,
    send_pings,
)
from tests.support.clients import consume, env_without_settings

pytestmark = pytest.mark.broker


# On 3 raw partitions Kafka's default partitioner puts these on 2, 0 and 1.
GROWN_ALERTS = ("AL-GROWN-0", "AL-GROWN-1", "AL-GROWN-2")


def grow(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_partitions({topic: NewPartitions(total_count=partitions)})
    finally:
        admin.close()


def where_is(bootstrap: str, topics: TopicNames, alert_id: str) -> str:
    """Where an alert got to, for a failure's message."""
    seen = []
    for topic in (topics.alerts_raw, topics.alerts, topics.unassigned, topics.deadletter):
        records = consume(bootstrap, topic, until=lambda r: False, timeout_s=5, raw=True)
        hits = [(r.partition, r.offset) for r in records if alert_id.encode() in (r.value or b"")]
        seen.append(f"{topic}: {hits}")
    return f"{alert_id} not assigned; " + "; ".join(seen)


def test_alerts_are_assigned_after_a_restart_on_a_grown_station_input(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    tmp_path: Path,
) -> None:
    worker = WorkerProcess(settings, tmp_path / "first.log").start()
    try:
        send_pings(producer, topics, OFFICERS, keyed=True)
        await_officers_indexed(settings, kafka_bootstrap, len(OFFICERS), worker)
    finally:
        worker.stop()
    grow(kafka_bootstrap, topics.alerts_raw, settings.topic_partitions + 1)
    worker = WorkerProcess(settings, tmp_path / "second.log").start()
    try:
        time.sleep(2.0)
        send_pings(producer, topics, OFFICERS, keyed=True)  # fresh positions
        # keyed: the raw partitions (0, 1 and the new 2) no longer match the alert partitions;
        # one alert per officer
        for alert_id in GROWN_ALERTS:
            send_alert(producer, topics, alert_id)
        officers = set()
        for alert_id in GROWN_ALERTS:
            found = assignments_for(kafka_bootstrap, topics, alert_id)
            assert len(found) == 1, where_is(kafka_bootstrap, topics, alert_id)
            officers.add(found[0].officer.officer_id)
        assert officers == set(OFFICERS)
        assert worker.alive(), f"worker died; see {worker.log_path}"
    finally:
        worker.stop()
    log = (tmp_path / "second.log").read_text()
    assert "Traceback" not in log and "PartitionsMismatch" not in log


def test_a_worker_refuses_to_start_when_a_copartitioned_topic_grew(
    settings: Settings, topics: TopicNames, kafka_bootstrap: str
) -> None:
    grow(kafka_bootstrap, topics.claims, settings.topic_partitions + 1)
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker", "--role", "dispatch"],
        env={**env_without_settings(), **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = (done.stdout + done.stderr).strip()
    assert done.returncode != 0
    assert said.count("\n") == 0, said
    assert said.startswith("error: partition counts differ:")
    assert f"{topics.claims} has {settings.topic_partitions + 1}" in said
