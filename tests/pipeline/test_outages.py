"""Outages through the whole stack (stations sending, worker, loader, warehouse), each while
stations keep sending: the broker stopped and restarted (same port, same state), and the
warehouse unwritable for a while. The producers, the workers and the loader carry on by
themselves; every acknowledged ping reaches the warehouse once; dispatch goes on. The broker
restart uses a broker of the test's own, not the session broker."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.topics import ensure_topics
from sinks.warehouse import Warehouse
from streams.pipeline.worker import WorkerProcess
from tests.pipeline.test_pipeline import (
    OFFICERS,
    assignments_for,
    await_officers_indexed,
    send_alert,
    send_pings,
)
from tests.sinks.test_loader import RunningLoader
from tests.support.clients import LoaderThread, now_iso, wait_for
from tests.support.dispatch_night import end_offsets

pytestmark = pytest.mark.broker

PINGS_PER_S = 25
LOAD_BEFORE_S = 8.0
OUTAGE_S = 15.0
LOAD_AFTER_S = 8.0


class Station(threading.Thread):
    """Sends pings, each of its own officer (so each is one warehouse row), counting acks."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True, name="station")
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        self.topic = topic
        self.stop = threading.Event()
        self.sent = self.acked = self.failed = 0
        self.lock = threading.Lock()

    def _ack(self, _: object) -> None:
        with self.lock:
            self.acked += 1

    def _fail(self, exc: BaseException) -> None:
        with self.lock:
            self.failed += 1

    def run(self) -> None:
        while not self.stop.is_set():
            officer = f"LOAD-{self.sent:06d}"
            ping = {"officer_id": officer, "station_id": "ST-01", "lat": 29.55, "lon": 106.55}
            future = self.producer.send(
                self.topic, orjson.dumps({**ping, "ts": now_iso()}), key=officer.encode()
            )
            future.add_callback(self._ack).add_errback(self._fail)
            self.sent += 1
            self.stop.wait(1 / PINGS_PER_S)
        self.producer.flush(timeout=120)
        self.producer.close()


def test_a_broker_restart_under_load_loses_nothing_and_dispatch_goes_on(
    tmp_path: Path, settings: Settings, warehouse: Warehouse
) -> None:
    broker = EmbeddedBroker(tmp_path / "own-kafka", heap="384m")
    bootstrap = broker.start()
    port = bootstrap.rsplit(":", 1)[1]
    conf = settings.model_copy(update={"kafka_bootstrap": bootstrap})
    names = TopicNames.with_prefix(conf.topic_prefix)
    ensure_topics(bootstrap, names.all(), conf.topic_partitions)
    worker = WorkerProcess(conf, tmp_path / "worker.log").start()
    loader = LoaderThread(
        bootstrap=bootstrap,
        names=names,
        group_id=f"{conf.app_id}-warehouse",
        warehouse=warehouse,
        batch_size=500,
        flush_interval_s=0.5,
        retry_max_s=2.0,
    )
    station = Station(bootstrap, names.gps_raw)
    try:
        # the worker up and consuming first (one starting while the broker is down exits with
        # one line: "Kafka is unreachable")
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
        send_pings(producer, names, OFFICERS)
        await_officers_indexed(conf, bootstrap, len(OFFICERS), worker)
        with loader:
            station.start()
            time.sleep(LOAD_BEFORE_S)
            broker.stop()
            time.sleep(OUTAGE_S)
            assert broker.start() == bootstrap, f"restarted off port {port}"
            time.sleep(LOAD_AFTER_S)
            station.stop.set()
            station.join(timeout=150)
            assert station.failed == 0 and station.acked == station.sent, (
                f"sent {station.sent}, acked {station.acked}, failed {station.failed}"
            )

            def loaded() -> int:
                return warehouse.count("gps_pings")

            try:
                wait_for(lambda: loaded() >= station.acked, 180, "every acknowledged ping loaded")
            except AssertionError as exc:
                raise AssertionError(
                    f"{exc}: acked {station.acked}, "
                    f"raw {sum(end_offsets(bootstrap, names.gps_raw).values())}, "
                    f"normalised {sum(end_offsets(bootstrap, names.gps).values())}, "
                    f"loaded {loaded()}, worker alive {worker.alive()}, loader alive "
                    f"{loader.thread.is_alive()}"
                ) from exc
            stored = warehouse.query(
                "SELECT count() AS n, uniqExact(officer_id) AS officers FROM {db}.gps_pings FINAL "
                "WHERE startsWith(officer_id, 'LOAD-')"
            )[0]
            assert int(stored["officers"]) == station.acked  # none lost
            assert int(stored["n"]) == station.acked  # none twice (after collapse: FINAL)
            assert worker.alive(), f"the worker died; see {worker.log_path}"
            send_pings(producer, names, OFFICERS)
            time.sleep(3.0)
            send_alert(producer, names, "AL-AFTER-RESTART")
            producer.close()
            [assignment] = assignments_for(bootstrap, names, "AL-AFTER-RESTART")
            assert assignment.officer.officer_id == "OFF-A"
            assert loader.thread.is_alive()
    finally:
        station.stop.set()
        worker.stop()
        broker.stop()
    assert station.sent > PINGS_PER_S * (LOAD_BEFORE_S + LOAD_AFTER_S) * 0.5


def test_the_whole_stack_waits_out_an_unwritable_warehouse_and_loads_each_ping_once(
    tmp_path: Path,
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    warehouse: Warehouse,
) -> None:
    db = warehouse.database
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    station = Station(kafka_bootstrap, topics.gps_raw)
    batch_size = 200
    try:
        send_pings(producer, topics, OFFICERS)
        await_officers_indexed(settings, kafka_bootstrap, len(OFFICERS), worker)
        with RunningLoader(
            bootstrap=kafka_bootstrap,
            names=topics,
            group_id=f"{settings.app_id}-warehouse",
            warehouse=warehouse,
            batch_size=batch_size,
            flush_interval_s=0.5,
            retry_max_s=2.0,
        ) as running:
            station.start()
            time.sleep(LOAD_BEFORE_S)
            warehouse.execute(f"RENAME TABLE {db}.gps_pings TO {db}.gps_pings_away")
            wait_for(lambda: running.loader.store.down, 60, "the loader to see the outage")
            most_pending = 0
            outage_ends = time.monotonic() + OUTAGE_S
            while time.monotonic() < outage_ends:  # memory stays bounded: one batch
                most_pending = max(most_pending, running.loader.warehouse.pending_rows)
                time.sleep(0.2)
            warehouse.execute(f"RENAME TABLE {db}.gps_pings_away TO {db}.gps_pings")
            time.sleep(LOAD_AFTER_S)
            station.stop.set()
            station.join(timeout=150)
            assert station.failed == 0 and station.acked == station.sent
            wait_for(
                lambda: warehouse.count("gps_pings") >= station.acked + len(OFFICERS),
                180,
                "every acknowledged ping loaded",
            )
            send_alert(producer, topics, "AL-AFTER-OUTAGE")
            [assignment] = assignments_for(kafka_bootstrap, topics, "AL-AFTER-OUTAGE")
            wait_for(lambda: warehouse.count("alerts") >= 1, 60, "the alert loaded")
        assert running.error is None
    finally:
        station.stop.set()
        worker.stop()
    assert most_pending <= batch_size
    stored = warehouse.query(
        "SELECT count() AS n, uniqExact(officer_id) AS officers FROM {db}.gps_pings "
        "WHERE startsWith(officer_id, 'LOAD-')"
    )[0]
    assert int(stored["officers"]) == station.acked  # none lost
    assert int(stored["n"]) == station.acked  # none twice, even before any merge
    assert assignment.officer.officer_id == "OFF-A"
    assert warehouse.count("alerts") == 1
