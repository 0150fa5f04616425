"""The README's first command: simulated officers and alerts through the whole embedded stack
(broker, worker, warehouse loader), ending with a short summary of what was produced."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from tqdm import tqdm

from base.errors import StackError
from base.settings import Settings
from infra.kafka_security import KafkaSecurity
from sinks.loader import run_loader
from sinks.warehouse import TABLES, Warehouse
from streams.pipeline.stack import (
    bootstrap_for,
    embedded_broker,
    kafka_security,
    prepare_topics,
    protector_for,
    warehouse_for,
)
from streams.pipeline.worker import WorkerProcess
from streams.sim import simulator as simulate


@dataclass(slots=True)
class DemoSummary:
    broker_start_s: float = 0.0
    pings_sent: int = 0
    alerts_sent: int = 0
    malformed_sent: int = 0
    assignments: list[dict[str, object]] = field(default_factory=list)
    unassigned: set[str] = field(default_factory=set)
    warehouse_rows: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def lines(self) -> list[str]:
        distances = [float(a["distance_m"]) for a in self.assignments]  # type: ignore[arg-type]
        etas = [float(a["eta_s"]) for a in self.assignments]  # type: ignore[arg-type]
        alerts = {a["alert"]["alert_id"] for a in self.assignments}  # type: ignore[index]
        out = [
            f"broker ready in {self.broker_start_s:.1f}s; demo took {self.elapsed_s:.1f}s",
            f"produced: {self.pings_sent} GPS pings, {self.alerts_sent} alerts, "
            f"{self.malformed_sent} malformed events",
            f"dispatch: {len(self.assignments)} assignments covering {len(alerts)} alerts; "
            f"{len(self.unassigned)} waiting for a free officer",
        ]
        if distances:
            out.append(
                f"  distance median {statistics.median(distances):.0f} m, "
                f"max {max(distances):.0f} m;"
                f" ETA median {statistics.median(etas):.0f} s"
            )
        rows = ", ".join(f"{t}={n}" for t, n in sorted(self.warehouse_rows.items()))
        out.append(f"warehouse rows: {rows}")
        return out


def run_demo(
    settings: Settings,
    *,
    officers: int = 60,
    alerts: int = 20,
    rounds: int = 3,
    seed: int = 7,
    timeout_s: float = 120.0,
    echo: Callable[[str], None] = print,
) -> DemoSummary:
    summary = DemoSummary()
    # The warehouse first: held by another process, the demo stops before starting a broker.
    warehouse = warehouse_for(settings)
    started = time.monotonic()
    broker = embedded_broker(settings)
    we_started_broker = not settings.kafka_bootstrap and not broker.running()
    bootstrap = bootstrap_for(settings, start=True)
    summary.broker_start_s = time.monotonic() - started
    echo(f"kafka: {bootstrap} (ready after {summary.broker_start_s:.1f}s)")
    security = kafka_security(settings)
    names = prepare_topics(settings, bootstrap, security)
    worker = WorkerProcess(settings, settings.state_dir / "logs" / "demo-worker.log").start()
    stop_loader = threading.Event()
    loader = threading.Thread(
        target=run_loader,
        kwargs={
            "bootstrap": bootstrap,
            "names": names,
            "group_id": f"{settings.app_id}-warehouse",
            "warehouse": warehouse,
            "protector": protector_for(settings),
            "batch_size": settings.sink_batch_size,
            "flush_interval_s": settings.sink_flush_interval_s,
            "stop": stop_loader,
            "security": kafka_security(settings, "loader"),
        },
        daemon=True,
    )
    loader.start()
    rng = random.Random(seed)
    normalised_tail = _tail(bootstrap, names.gps, security)
    assignments_tail = _tail(bootstrap, names.assignments, security)
    unassigned_tail = _tail(bootstrap, names.unassigned, security)
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=5, **security.kafka_python()
        )
        centres = simulate.station_centres(max(1, officers // 20), rng)
        fleet = simulate.officers(officers, centres, rng)
        now = int(time.time() * 1000)
        step = 10_000
        for raw in simulate.ping_rounds(fleet, rounds, now - rounds * step, step, rng):
            producer.send(
                names.gps_raw, key=str(raw.get("officer_id", "")).encode(), value=orjson.dumps(raw)
            )
            summary.pings_sent += 1
        for bad in simulate.MALFORMED:
            producer.send(names.gps_raw, value=bad)
            summary.malformed_sent += 1
        producer.flush()
        echo(f"sent {summary.pings_sent} pings; waiting for the worker to index officers")
        _await_positions(normalised_tail, summary.pings_sent, timeout_s)
        time.sleep(2.0)  # the officer partition indexes right after normalising
        for number in range(alerts):
            raw = simulate.alert(number, int(time.time() * 1000), centres, rng)
            producer.send(
                names.alerts_raw, key=str(raw["alert_id"]).encode(), value=orjson.dumps(raw)
            )
            summary.alerts_sent += 1
        producer.flush()
        producer.close()
        summary.assignments, summary.unassigned = _collect_outcomes(
            assignments_tail, unassigned_tail, alerts, timeout_s
        )
        _await_warehouse(warehouse, summary, timeout_s=30.0)
    finally:
        worker.stop()
        for consumer in (normalised_tail, assignments_tail, unassigned_tail):
            consumer.close()
        stop_loader.set()
        loader.join(timeout=30)
        if we_started_broker:
            broker.stop()
    summary.elapsed_s = time.monotonic() - started
    return summary


def _tail(bootstrap: str, topic: str, security: KafkaSecurity) -> KafkaConsumer:
    """A consumer of every partition of `topic`, positioned at its current end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        **security.kafka_python(),
    )
    partitions = [
        TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
    ]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for tp in partitions:
        consumer.position(tp)  # resolve now, before anything new is produced
    return consumer


def _await_positions(consumer: KafkaConsumer, expected: int, timeout_s: float) -> None:
    """Wait until the worker has normalised the pings (they appear on the normalised topic)."""
    seen = 0
    deadline = time.monotonic() + timeout_s
    with tqdm(total=expected, desc="normalised pings", unit="ping", leave=False) as bar:
        while seen < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                seen += len(records)
                bar.update(len(records))
    consumer.close()
    if seen < expected:
        raise StackError(f"worker normalised only {seen}/{expected} pings in {timeout_s:.0f}s")


def _collect_outcomes(
    assignments: KafkaConsumer, unassigned: KafkaConsumer, alerts: int, timeout_s: float
) -> tuple[list[dict[str, object]], set[str]]:
    """Assignments and unassigned notices until every alert has one or the other."""
    found: list[dict[str, object]] = []
    covered: set[str] = set()
    waiting: set[str] = set()
    deadline = time.monotonic() + timeout_s
    quiet_until = None
    with tqdm(total=alerts, desc="alerts dispatched", unit="alert", leave=False) as bar:
        while time.monotonic() < deadline:
            for records in assignments.poll(timeout_ms=200).values():
                for record in records:
                    message = orjson.loads(record.value)
                    found.append(message)
                    covered.add(message["alert"]["alert_id"])
            for records in unassigned.poll(timeout_ms=50).values():
                waiting.update(orjson.loads(r.value)["alert"]["alert_id"] for r in records)
            bar.update(len(covered | waiting) - bar.n)
            if len(covered | waiting) >= alerts:
                # Second units of multi-unit alerts may still be on their way.
                quiet_until = quiet_until or time.monotonic() + 2.0
                if time.monotonic() >= quiet_until:
                    break
    return found, waiting - covered


def _await_warehouse(warehouse: Warehouse, summary: DemoSummary, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    valid_pings = summary.pings_sent
    while time.monotonic() < deadline:
        counts = {t: warehouse.count(t) for t in TABLES}
        summary.warehouse_rows = counts
        if counts["gps_pings"] >= valid_pings and counts["assignments"] >= len(summary.assignments):
            return
        time.sleep(0.5)
