"""Where a simulated night goes: JSON Lines in the `dispatch replay` format, or the stations'
raw topics on Kafka. Either way the officers' app hears the assignments: from the replay
handlers run alongside (JSON Lines, so `dispatch replay` of the file decides exactly as the
officers were told), or from `dispatch.assignments` on the broker."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer

from base.errors import ConfigError
from base.topics import TopicNames
from infra.kafka_security import PLAINTEXT, KafkaSecurity
from streams.dispatch import rules as dispatch
from streams.dispatch.replay import ReplaySession
from streams.ingest.stations import StationBook
from streams.sim.night import Night, Record

log = logging.getLogger(__name__)
RAW_FIELDS = {
    "gps.pings": "gps_raw",
    "alerts.calls": "alerts_raw",
    "officer.status": "status_raw",
    "cameras.meta": "cameras_raw",
    "dispatch.backup": "backup",
}


@dataclass(slots=True)
class RunResult:
    records: int = 0
    assignments_heard: int = 0
    wall_s: float = 0.0
    started_ms: int = 0  # wall clock when the night's start was due (Kafka)


def record_line(record: Record) -> bytes:
    line = {"topic": record.topic, "timestamp_ms": record.at_ms, "message": record.message}
    return orjson.dumps(line) + b"\n"


def record_value(record: Record) -> bytes:
    message = record.message
    return message.encode() if isinstance(message, str) else orjson.dumps(message)


def run_to_jsonl(
    night: Night,
    path: Path,
    *,
    policy: dispatch.DispatchPolicy,
    stations: StationBook,
    resolution: int,
) -> RunResult:
    """Write the night to `path` (atomically); the replay handlers dispatch as it goes."""
    started = time.monotonic()
    result = RunResult()
    session = ReplaySession(policy=policy, stations=stations, resolution=resolution)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with tmp.open("wb") as handle:
            for record in night.records():
                handle.write(record_line(record))
                result.records += 1
                if session.now_ms is None:
                    session.now_ms = record.at_ms  # as `replay` starts its clock
                for out in session.feed(record.topic, record.message, record.at_ms):
                    if out["topic"] == "dispatch.assignments":
                        result.assignments_heard += 1
                        night.on_assignment(out["message"], record.at_ms)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc
    tmp.replace(path)
    result.wall_s = time.monotonic() - started
    return result


class AssignmentFeed(threading.Thread):
    """`dispatch.assignments` as it is published, for the officers' app."""

    def __init__(self, bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> None:
        super().__init__(daemon=True, name="sim-assignments")
        self.bootstrap, self.topic, self.security = bootstrap, topic, security
        self.heard: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        consumer = KafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            **self.security.kafka_python(),
        )
        try:
            while not self.stop.is_set():
                batches = consumer.poll(timeout_ms=100)
                if consumer.assignment():
                    self.ready.set()
                for records in batches.values():
                    for record in records:
                        self.heard.put(orjson.loads(record.value))
        finally:
            consumer.close()


def run_to_kafka(
    night: Night,
    bootstrap: str,
    names: TopicNames,
    *,
    speedup: float,
    stop: threading.Event | None = None,
    on_record: Callable[[Record], None] = lambda record: None,
    security: KafkaSecurity = PLAINTEXT,
    officers_security: KafkaSecurity | None = None,
) -> RunResult:
    """Send the night to the raw topics, paced at `speedup` times real time from now, while the
    officers' app answers what `dispatch.assignments` publishes. The stations send as
    `security`, the officers' app reads as `officers_security` (default: the same)."""
    if speedup <= 0:
        raise ConfigError(f"speed-up must be positive, got {speedup}")
    stop = stop or threading.Event()
    result = RunResult()
    feed = AssignmentFeed(bootstrap, names.assignments, officers_security or security)
    feed.start()
    feed.ready.wait(timeout=30)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **security.kafka_python())
    wall0, sim0 = time.time(), night.config.start_ms
    result.started_ms = int(wall0 * 1000)
    try:
        for record in night.records():
            due = wall0 + (record.at_ms - sim0) / 1000 / speedup
            while not stop.is_set() and (pause := due - time.time()) > 0:
                stop.wait(min(pause, 0.05))
            if stop.is_set():
                break
            sim_now = max(record.at_ms, sim0 + int((time.time() - wall0) * 1000 * speedup))
            while not feed.heard.empty():
                result.assignments_heard += 1
                night.on_assignment(feed.heard.get(), sim_now)
            topic = getattr(names, RAW_FIELDS[record.topic])
            key = record.key.encode() if record.key is not None else None
            producer.send(topic, key=key, value=record_value(record), timestamp_ms=record.at_ms)
            result.records += 1
            on_record(record)
        producer.flush()
    finally:
        producer.close()
        feed.stop.set()
        feed.join(timeout=5)
    result.wall_s = time.time() - wall0
    log.info("simulated records=%d assignments_heard=%d", result.records, result.assignments_heard)
    return result
