"""The README's first command: a simulated night in a district through the whole embedded stack
(broker, workers, warehouse loader), watched live, ending with the night report by SQL on the
warehouse checked against what the simulator sent, and the picture of the night.

Each run is its own night: its own topics (prefix `demo-<run>.`), consumer groups and warehouse
database (`<database>_demo_<run>`), so every figure is of this run."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from rich.console import Console
from rich.live import Live

from base.errors import ConfigError, StackError
from base.settings import Settings
from base.topics import TopicNames
from sinks.loader import run_loader
from sinks.warehouse import Warehouse
from streams.pipeline.stack import (
    bootstrap_for,
    embedded_broker,
    prepare_topics,
    protector_for,
    warehouse_for,
)
from streams.pipeline.worker import WorkerProcess
from streams.sim.formats import ZONE
from streams.sim.live import Board, progress_line, render
from streams.sim.night import Night, NightConfig, Record
from streams.sim.picture import scene_of, write_picture
from streams.sim.report import Clock, NightReport, Sent, night_report
from streams.sim.runner import RunResult, run_to_kafka

log = logging.getLogger(__name__)
RATE_TOPICS = ("gps_raw", "alerts_raw", "status_raw", "gps", "assignments", "events", "deadletter")
PLAIN_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    minutes: float = 3.0  # of wall time; the night lasts minutes x speedup
    speedup: float = 10.0
    stations: int = 18
    officers_per_station: int = 30
    calls_per_station_hour: float = 6.0
    malformed_share: float = 0.002
    seed: int | None = None  # None: a new night each run
    picture: Path | None = None  # None: <state>/nights/<run>.html
    drain_s: float = 90.0  # after the night, for the last outcomes to reach the warehouse
    live: bool = True  # rich live view; False: a progress line every 10 s

    def night_ahead_s(self) -> float:
        """How far the night's event time runs ahead of the wall clock at its end."""
        return self.minutes * 60 * (self.speedup - 1)


@dataclass(slots=True)
class DemoOutcome:
    run_id: str
    database: str
    seed: int
    report: NightReport | None = None
    board: Board = field(default_factory=Board)
    sent: Sent = field(default_factory=Sent)
    picture: tuple[Path, Path] | None = None
    stopped: bool = False  # Ctrl-C: no report
    broker_ready_s: float = 0.0
    wall_s: float = 0.0


def night_settings(settings: Settings, run_id: str) -> Settings:
    return settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}demo-{run_id}.",
            "app_id": f"{settings.app_id}-demo-{run_id}",
            "warehouse_database": f"{settings.warehouse_database}_demo_{run_id}",
        }
    )


def run_demo(
    settings: Settings,
    options: DemoOptions,
    *,
    open_store: Callable[[Settings], Warehouse] = warehouse_for,
    echo: Callable[[str], None] = print,
    console: Console | None = None,
) -> DemoOutcome:
    """Run one night; Ctrl-C (KeyboardInterrupt) stops it and everything it started."""
    if settings.kafka_secure:  # its watchers, feeds and clean-up are plaintext clients
        raise ConfigError(
            "the demo runs on a plaintext broker: unset SMART_STATION_KAFKA_SECURE (the secure "
            "stack runs with `up --secure`, `worker`, `sink` and `simulate`)"
        )
    if options.night_ahead_s() > settings.event_max_ahead_s:
        raise ConfigError(
            f"--minutes {options.minutes:g} at --speedup {options.speedup:g} runs the night's "
            f"clock {options.night_ahead_s() / 60:.0f} min ahead of the wall clock; the pipeline "
            f"rejects events over {settings.event_max_ahead_s / 60:.0f} min ahead "
            "(SMART_STATION_EVENT_MAX_AHEAD_S): shorten the run or lower the speed-up"
        )
    run_id = datetime.now(UTC).strftime("%Y%m%d_%H%M%S_") + secrets.token_hex(2)
    conf = night_settings(settings, run_id)
    seed = options.seed if options.seed is not None else secrets.randbelow(1_000_000)
    outcome = DemoOutcome(run_id, conf.warehouse_database, seed)
    started = time.monotonic()
    warehouse = open_store(conf)  # first: a warehouse held elsewhere stops us before the broker
    broker = embedded_broker(conf)
    started_broker = not conf.kafka_bootstrap and not broker.running()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    worker: WorkerProcess | None = None
    names: TopicNames | None = None
    bootstrap = ""
    try:
        bootstrap = bootstrap_for(conf, start=True)
        outcome.broker_ready_s = time.monotonic() - started
        echo(f"kafka {bootstrap} ready after {outcome.broker_ready_s:.1f}s; night {run_id}")
        names = prepare_topics(conf, bootstrap)
        worker = WorkerProcess(conf, conf.state_dir / "logs" / f"demo-{run_id}.log").start()
        threads.append(loader_thread(conf, bootstrap, names, warehouse, stop))
        tail = OutputTail(bootstrap, names, outcome.board, stop)
        threads.append(tail)
        for thread in threads:
            thread.start()
        await_dispatcher(bootstrap, names.ticks, worker)
        echo(f"workers up after {time.monotonic() - started:.1f}s; the night starts")
        night = Night.of(
            NightConfig(
                seed=seed,
                stations=options.stations,
                officers_per_station=options.officers_per_station,
                duration_s=options.minutes * 60 * options.speedup,
                calls_per_station_hour=options.calls_per_station_hour,
                malformed_share=options.malformed_share,
                start_ms=int(time.time() * 1000),
            )
        )
        outcome.board.roster((o.officer_id, o.on_patrol) for o in night.officers.values())
        result = _watch(night, bootstrap, names, options, outcome, stop, echo, console)
        clock = Clock(night.config.start_ms, result.started_ms, options.speedup)
        _await_outcomes(warehouse, outcome, options.drain_s)
        outcome.report = night_report(warehouse, clock, outcome.sent)
        html = options.picture or conf.state_dir / "nights" / f"{run_id}.html"
        html.parent.mkdir(parents=True, exist_ok=True)
        title = f"{options.stations} stations, seed {seed}, {night.config.duration_s / 60:.0f} min"
        outcome.picture = (html, write_picture(scene_of(night), html, title))
    except KeyboardInterrupt:
        outcome.stopped = True
    finally:
        stop.set()
        if worker is not None:
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)
        if names is not None:
            _drop_topics(bootstrap, conf)
        if started_broker:
            broker.stop()
        warehouse.close()
    outcome.wall_s = time.monotonic() - started
    return outcome


def loader_thread(
    conf: Settings, bootstrap: str, names: TopicNames, warehouse: Warehouse, stop: threading.Event
) -> threading.Thread:
    kwargs = {
        "bootstrap": bootstrap,
        "names": names,
        "group_id": f"{conf.app_id}-warehouse",
        "warehouse": warehouse,
        "protector": protector_for(conf),
        "batch_size": conf.sink_batch_size,
        "flush_interval_s": conf.sink_flush_interval_s,
        "stop": stop,
    }
    return threading.Thread(target=run_loader, kwargs=kwargs, daemon=True, name="demo-loader")


def await_dispatcher(bootstrap: str, ticks: str, worker: WorkerProcess) -> None:
    """Until the dispatch worker's clock ticks: it has joined its group and runs its agents."""
    consumer = _consumer(bootstrap, [ticks], from_start=True)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            if consumer.poll(timeout_ms=500):
                return
            if not worker.alive():
                raise StackError(f"the worker exited; see {worker.log_path}")
    finally:
        consumer.close()
    raise StackError(f"the dispatch worker did not start within 180 s; see {worker.log_path}")


def _consumer(bootstrap: str, topics: list[str], *, from_start: bool) -> KafkaConsumer:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic) or [])
    ]
    consumer.assign(partitions)
    if from_start:
        consumer.seek_to_beginning(*partitions)
    return consumer


class OutputTail(threading.Thread):
    """The night's outputs into the board (assignments, dispatch events, dead letters, from
    their start: the topics are this run's), and events/s per topic from the end offsets."""

    def __init__(self, bootstrap: str, names: TopicNames, board: Board, stop: threading.Event):
        super().__init__(daemon=True, name="demo-tail")
        self.bootstrap, self.names, self.board, self.stop = bootstrap, names, board, stop

    def run(self) -> None:
        names = self.names
        consumer = _consumer(
            self.bootstrap, [names.assignments, names.events, names.deadletter], from_start=True
        )
        counted = [getattr(names, field_name) for field_name in RATE_TOPICS]
        offsets = [
            TopicPartition(topic, p)
            for topic in counted
            for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        last: dict[str, int] = {}
        last_at = 0.0
        try:
            while not self.stop.is_set():
                for tp, records in consumer.poll(timeout_ms=200).items():
                    for record in records:
                        self._heard(tp.topic, record)
                if time.monotonic() - last_at >= 1.0:
                    last, last_at = self._rates(consumer, offsets, last, last_at)
        finally:
            consumer.close()

    def _heard(self, topic: str, record: object) -> None:
        value = getattr(record, "value", b"")
        now = time.time()
        if topic == self.names.deadletter:
            headers = dict(getattr(record, "headers", None) or [])
            self.board.dead_letter(headers.get("reason", b"unknown").decode(errors="replace"))
        elif topic == self.names.assignments:
            self.board.assignment(orjson.loads(value), now)
        else:
            self.board.event(orjson.loads(value))

    def _rates(
        self,
        consumer: KafkaConsumer,
        partitions: list[TopicPartition],
        last: dict[str, int],
        last_at: float,
    ) -> tuple[dict[str, int], float]:
        now = time.monotonic()
        totals: dict[str, int] = {}
        try:
            ends = consumer.end_offsets(partitions)
        except (KafkaError, KeyError) as exc:  # kafka-python: KeyError for a leader it lost
            log.debug("demo_rates_skipped reason=%r", exc)
            return last, last_at
        for tp, end in ends.items():
            totals[tp.topic] = totals.get(tp.topic, 0) + int(end)
        if last:
            span = now - last_at
            self.board.set_rates({t: (n - last.get(t, 0)) / span for t, n in totals.items()})
        return totals, now


def _watch(
    night: Night,
    bootstrap: str,
    names: TopicNames,
    options: DemoOptions,
    outcome: DemoOutcome,
    stop: threading.Event,
    echo: Callable[[str], None],
    console: Console | None,
) -> RunResult:
    """Send the night from a thread while the view shows it; returns when it is sent."""
    board, sent = outcome.board, outcome.sent
    result: list[RunResult] = []
    failed: list[BaseException] = []

    def on_record(record: Record) -> None:
        board.sent(record.topic, record.message, record.at_ms, time.time())
        sent.add(record.topic, record.key, record.message)

    def produce() -> None:
        try:
            result.append(
                run_to_kafka(
                    night, bootstrap, names, speedup=options.speedup, stop=stop, on_record=on_record
                )
            )
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    producer = threading.Thread(target=produce, daemon=True, name="demo-night")
    producer.start()
    started = time.monotonic()
    prefix = names.gps_raw.removesuffix("gps.pings")
    try:
        if options.live:
            with Live(console=console, refresh_per_second=2, transient=False) as live:
                while producer.is_alive():
                    producer.join(0.5)
                    live.update(render(board, time.monotonic() - started, _clock(board), prefix))
        else:
            next_line = started + PLAIN_EVERY_S
            while producer.is_alive():
                producer.join(0.5)
                if time.monotonic() >= next_line:
                    echo(progress_line(board, time.monotonic() - started, _clock(board)))
                    next_line += PLAIN_EVERY_S
    except KeyboardInterrupt:
        stop.set()
        producer.join(10)
        raise
    if failed:
        raise failed[0]
    echo(progress_line(board, time.monotonic() - started, _clock(board)))
    return result[0]


def _clock(board: Board) -> str:
    if not board.night_ms:
        return "--:--"
    return datetime.fromtimestamp(board.night_ms / 1000, tz=ZONE).strftime("%H:%M")


def _await_outcomes(warehouse: Warehouse, outcome: DemoOutcome, timeout_s: float) -> None:
    """Until every alert sent has an outcome in the warehouse, and every malformed event its
    dead letter (or the time is up: the report then says what is missing)."""
    db, sent = warehouse.database, outcome.sent
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        (row,) = warehouse.query(f"""
            SELECT (SELECT count() FROM {db}.alerts FINAL) AS alerts,
                   (SELECT uniqExactIf(alert_id, kind IN ('assigned', 'unassigned'))
                      FROM {db}.dispatch_events) AS outcomes,
                   (SELECT count() FROM {db}.dead_letters FINAL) AS dead""")
        alerts_in = min(int(row["alerts"]), int(row["outcomes"])) >= len(sent.alerts)
        if alerts_in and int(row["dead"]) >= sent.malformed:
            return
        time.sleep(1.0)
    log.warning("demo_drain_timeout seconds=%s", timeout_s)


def _drop_topics(bootstrap: str, conf: Settings) -> None:
    """This run's topics (its data is in the warehouse now), so runs do not pile up."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    except Exception as exc:  # the broker may be gone already: nothing to tidy then
        log.warning("demo_topics_kept reason=%r", exc)
        return
    try:
        ours = [
            topic
            for topic in admin.list_topics()
            if topic.startswith(conf.topic_prefix) or topic.startswith(conf.app_id)
        ]
        if ours:
            admin.delete_topics(ours)
    except Exception as exc:
        log.warning("demo_topics_kept reason=%r", exc)
    finally:
        admin.close()
