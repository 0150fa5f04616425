"""The warehouse loader: consumes the pipeline's output topics and writes them to the warehouse
in batches, each event once.

- A batch is cut by size or time; each table gets one insert per batch (one part: all or none,
  as every row of a batch has the same `loaded_at` day), carrying each row's Kafka partition and
  offset. Offsets are committed only after the batch is written.
- Each event once: a table remembers the highest offset it holds per partition; records at or
  below it are skipped (a batch re-read after a lost commit or a restart). An insert retried in
  the same process carries the same deduplication token, so one that reached the warehouse
  before its acknowledgement was lost is not stored twice.
- It stays up: a broker or warehouse outage is retried with back-off (one log line when it
  starts, one when it ends); while the warehouse is down, consumption pauses (memory stays at
  one batch) and the group membership is kept alive.
- `stop` (SIGINT/SIGTERM in the CLI) flushes and commits before returning."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from base.errors import StackError
from base.topics import TopicNames
from infra.kafka_security import PLAINTEXT, KafkaSecurity
from sinks import rows
from sinks.alert_stamps import AlertStamps
from sinks.callers import PhoneProtector
from sinks.lag import group_lags, reachable
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.5


@dataclass(slots=True)
class LoaderStats:
    rows_by_table: dict[str, int] = field(default_factory=dict)
    flushes: int = 0
    replayed_skipped: int = 0
    unreadable: int = 0
    unstamped_events: int = 0
    deferred_events: int = 0  # times a partition of dispatch events was read again from an event
    last_flush_utc_ms: int = 0

    def add(self, table: str, count: int = 1) -> None:
        self.rows_by_table[table] = self.rows_by_table.get(table, 0) + count


def table_router(names: TopicNames) -> dict[str, str]:
    return {
        names.gps: "gps_pings",
        names.alerts: "alerts",
        names.assignments: "assignments",
        names.events: "dispatch_events",
        names.status: "officer_status_changes",
        names.cameras: "cameras",
        names.backup: "backup_requests",
        names.deadletter: "dead_letters",
    }


class Outage:
    """One dependency's health: logs once when it goes away and once when it is back, and
    paces retries with exponential back-off up to `max_s`."""

    def __init__(self, name: str, max_s: float) -> None:
        self.name, self.max_s = name, max_s
        self.since: float | None = None
        self.delay_s = FIRST_RETRY_S

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> float:
        """Record a failure; returns how long to wait before the next attempt."""
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "%s=unavailable error=%s: %s (retrying with back-off up to %.0fs)",
                self.name,
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
                self.max_s,
            )
            self.delay_s = FIRST_RETRY_S
            return self.delay_s
        self.delay_s = min(self.max_s, self.delay_s * 2)
        return self.delay_s

    def ok(self) -> None:
        if self.since is not None:
            log.warning("%s=available after_s=%.1f", self.name, time.monotonic() - self.since)
        self.since = None
        self.delay_s = FIRST_RETRY_S


@dataclass(slots=True)
class Batch:
    """What is pending in the warehouse writer: the last offset per partition, the Kafka time
    of its oldest record, and the one `loaded_at` second every row of it carries."""

    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    oldest_utc_ms: int = 0
    loaded_at: int = 0
    started: float = 0.0

    def clear(self) -> None:
        self.offsets.clear()
        self.oldest_utc_ms = self.loaded_at = 0
        self.started = 0.0


class Loader:
    """One loader process's consuming loop (see the module docstring)."""

    def __init__(
        self,
        *,
        bootstrap: str,
        names: TopicNames,
        group_id: str,
        warehouse: Warehouse,
        protector: PhoneProtector,
        batch_size: int,
        flush_interval_s: float,
        stop: threading.Event,
        retry_max_s: float = 30.0,
        metrics_interval_s: float = 10.0,
        watch_groups: Sequence[str] = (),
        loader_id: str = "loader",
        on_flush: Callable[[LoaderStats], None] | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.bootstrap, self.group_id, self.security = bootstrap, group_id, security
        self.route = table_router(names)
        self.events_topic = names.events
        self.warehouse, self.protector = warehouse, protector
        warehouse.max_pending_rows = max(warehouse.max_pending_rows, batch_size)
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.stop, self.on_flush = stop, on_flush
        self.metrics_interval_s = metrics_interval_s
        self.watch_groups = [group_id, *watch_groups]
        self.loader_id = loader_id
        self.broker = Outage("broker", retry_max_s)
        self.store = Outage("warehouse", retry_max_s)
        self.stats = LoaderStats()
        self.batch = Batch()
        self.stamps = AlertStamps()
        self.lag_total = 0
        self._loaded: dict[TopicPartition, int] = {}  # highest offset each table holds
        self._unknown_tables: set[str] = set(self.route.values())
        self._uncommitted: dict[TopicPartition, int] = {}
        self._next_metrics = time.monotonic() + metrics_interval_s  # data first

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> LoaderStats:
        while not self.stop.is_set():
            consumer = self._connect()
            if consumer is None:
                break
            try:
                self._consume(consumer)
            except KafkaError as exc:
                self._pause(self.broker.failed(exc))
            finally:
                self._close(consumer)
        return self.stats

    def _connect(self) -> KafkaConsumer | None:
        while not self.stop.is_set():
            try:
                consumer = KafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    group_id=self.group_id,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    max_poll_records=self.batch_size,
                    client_id=f"{self.group_id}-{self.loader_id}",
                    **self.security.kafka_python(),
                )
                consumer.subscribe(list(self.route), listener=_Rebalance(self))
                self.broker.ok()
                return consumer
            except KafkaError as exc:
                self._pause(self.broker.failed(exc))
        return None

    def _consume(self, consumer: KafkaConsumer) -> None:
        while not self.stop.is_set():
            room = self.batch_size - self.warehouse.pending_rows
            polled = consumer.poll(timeout_ms=200, max_records=max(1, room))
            for tp, records in polled.items():
                self._add(tp, records)
            due = self.batch.started and time.monotonic() - self.batch.started >= (
                self.flush_interval_s
            )
            if self.warehouse.pending_rows >= self.batch_size or due:
                self._write(consumer)
            if self._uncommitted and not self.broker.down:
                self._commit(consumer)
            if time.monotonic() >= self._next_metrics:
                self._record_lag(consumer)
        if self.batch.offsets:
            self._write(consumer)

    def _close(self, consumer: KafkaConsumer) -> None:
        if self._uncommitted:
            self._commit(consumer)
        with contextlib.suppress(KafkaError, OSError):
            consumer.close(autocommit=False)

    def _pause(self, seconds: float) -> None:
        self.stop.wait(seconds)

    # -- records into the batch -----------------------------------------------------------------
    def _add(self, tp: TopicPartition, records: list[Any]) -> None:
        table = self.route[tp.topic]
        if table in self._unknown_tables:
            self._load_offsets(table)
        done = self._loaded.get(tp, -1)
        for record in records:
            if not self.batch.started:
                self.batch.started = time.monotonic()
                self.batch.loaded_at = int(time.time())
                self.batch.oldest_utc_ms = record.timestamp
            self.batch.offsets[tp] = record.offset  # committed with the batch, whatever it is
            if record.offset <= done:
                self.stats.replayed_skipped += 1
                continue
            try:
                row = self._row_for(table, record)
            except (KeyError, TypeError, ValueError) as exc:
                self.stats.unreadable += 1
                log.warning(
                    "unreadable record topic=%s partition=%d offset=%d error=%s",
                    tp.topic,
                    tp.partition,
                    record.offset,
                    type(exc).__name__,
                )
                continue
            row["kafka_partition"] = tp.partition
            row["kafka_offset"] = record.offset
            row["loaded_at"] = self.batch.loaded_at
            if table == "alerts":
                self.stamps.note_alert(row)
            self.batch.oldest_utc_ms = min(self.batch.oldest_utc_ms, record.timestamp)
            if table != "dispatch_events" or self.stamps.stamp(row):
                self.warehouse.add(table, row)
                self.stats.add(table)

    def _row_for(self, table: str, record: Any) -> dict[str, Any]:
        value: bytes = record.value
        if table == "dead_letters":
            return rows.dead_letter_row(value, record.headers or [], self.protector)
        if table == "backup_requests":
            return rows.backup_row(value, record.timestamp)
        message = rows.decode(value)
        if table == "gps_pings":
            return rows.gps_row(message)
        if table == "alerts":
            return rows.alert_row(message, self.protector)
        if table == "dispatch_events":
            return rows.dispatch_event_row(message)
        if table == "officer_status_changes":
            return rows.status_change_row(message)
        if table == "cameras":
            return rows.camera_row(message)
        return rows.assignment_row(message, self.protector)

    def _load_offsets(self, table: str) -> None:
        """The highest offset `table` holds per partition of its topic (retried while the
        warehouse is down: skipping nothing could store a batch twice)."""
        topic = next(t for t, name in self.route.items() if name == table)
        sql = (
            f"SELECT kafka_partition AS p, max(kafka_offset) AS o FROM {{db}}.{table} "
            "WHERE kafka_partition >= 0 GROUP BY p"
        )
        while not self.stop.is_set():
            try:
                found = self.warehouse.query(sql)
                self.store.ok()
                break
            except Exception as exc:  # chDB and the server driver raise several types
                self._pause(self.store.failed(exc))
        else:
            raise StackError("stopped before the warehouse came back")
        for row in found:
            tp = TopicPartition(topic, int(row["p"]))
            self._loaded[tp] = max(self._loaded.get(tp, -1), int(row["o"]))
        self._unknown_tables.discard(table)

    # -- writing and committing -----------------------------------------------------------------
    def _write(self, consumer: KafkaConsumer) -> None:
        """Write the batch, retrying while the warehouse is down (consumption paused, the group
        membership kept alive by polling paused partitions)."""
        started = time.monotonic()
        paused = False
        by_table: dict[str, int] = {}
        while True:
            try:
                resolved = self.stamps.resolve(self.warehouse, self.warehouse.database)
                for row in resolved.stamped:
                    self.warehouse.add("dispatch_events", row)
                    self.stats.add("dispatch_events")
                self._defer(consumer, resolved.deferred)
                by_table = self.warehouse.pending_by_table()
                self.warehouse.flush()
                self.store.ok()
                break
            except Exception as exc:  # chDB and the server driver raise several types
                wait_s = self.store.failed(exc)
                if self.stop.is_set():
                    log.warning(
                        "exiting with %d rows unwritten; they are read again on the next start",
                        self.warehouse.pending_rows,
                    )
                    raise StackError("warehouse unavailable at shutdown") from exc
                if not paused:
                    consumer.pause(*consumer.assignment())
                    paused = True
                self._keep_alive(consumer, wait_s)
                if not self.warehouse.pending_rows and not self.stamps.waiting:  # discarded
                    break
        if paused:
            consumer.resume(*consumer.paused())
        self.stats.unstamped_events = self.stamps.unstamped
        if self.warehouse.pending_rows == 0 and self.batch.offsets:
            self._written(by_table, (time.monotonic() - started) * 1000)
        self.batch.clear()

    def _defer(self, consumer: KafkaConsumer, first_offsets: dict[int, int]) -> None:
        """Events of alerts not stored yet are read again from there (sinks/alert_stamps.py):
        the batch ends before them on their partitions."""
        for partition, offset in first_offsets.items():
            tp = TopicPartition(self.events_topic, partition)
            consumer.seek(tp, offset)
            self.batch.offsets[tp] = offset - 1
            self.stats.deferred_events += 1

    def _keep_alive(self, consumer: KafkaConsumer, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not self.stop.is_set():
            with contextlib.suppress(KafkaError):
                consumer.poll(timeout_ms=200)  # paused: returns nothing, keeps the member

    def _written(self, by_table: dict[str, int], write_ms: float) -> None:
        for tp, offset in self.batch.offsets.items():
            self._loaded[tp] = max(self._loaded.get(tp, -1), offset)
            self._uncommitted[tp] = max(self._uncommitted.get(tp, -1), offset)
        self.stats.flushes += 1
        now_ms = int(time.time() * 1000)
        self.stats.last_flush_utc_ms = now_ms
        metrics = [
            {
                "at_utc_ms": now_ms,
                "loader_id": self.loader_id,
                "table_name": table,
                "rows": count,
                "oldest_wait_ms": max(0, now_ms - self.batch.oldest_utc_ms),
                "write_ms": write_ms,
            }
            for table, count in by_table.items()
        ]
        self._record("loader_batches", metrics)
        if self.on_flush is not None:
            self.on_flush(self.stats)

    def _commit(self, consumer: KafkaConsumer) -> None:
        offsets = {tp: OffsetAndMetadata(o + 1, "", -1) for tp, o in self._uncommitted.items()}
        try:
            consumer.commit(offsets, timeout_ms=5000)
        except KafkaError as exc:
            # Written rows are safe: the tables' offsets skip them when they are read again.
            self.broker.failed(exc)
            return
        self.broker.ok()
        self._uncommitted.clear()

    def discard_batch(self) -> None:
        """Partitions were revoked: forget what is not written (it is read again, by whoever
        owns the partitions next, from the committed offsets)."""
        self.warehouse.discard_pending()
        self.stamps.forget()
        self.batch.clear()
        self._uncommitted.clear()
        self._unknown_tables = set(self.route.values())

    # -- metrics --------------------------------------------------------------------------------
    def _record_lag(self, consumer: KafkaConsumer) -> None:
        self._next_metrics = time.monotonic() + self.metrics_interval_s
        try:
            groups = group_lags(self.bootstrap, self.watch_groups, security=self.security)
        except Exception as exc:  # a measurement must never stop the loading
            # Only a broker that refuses connections is an outage; a group coordinator that is
            # not ready yet (a broker just started) is not worth a state change.
            if not reachable(self.bootstrap):
                self.broker.failed(exc)
            log.debug("lag not measured: %s", exc)
            return
        self.broker.ok()
        now_ms = int(time.time() * 1000)
        own = next(g for g in groups if g.group_id == self.group_id)
        self.lag_total = own.total
        metrics = [
            {
                "at_utc_ms": now_ms,
                "group_id": group.group_id,
                "topic": tp.topic,
                "partition": tp.partition,
                "lag": lag,
            }
            for group in groups
            for tp, lag in group.lag.items()
        ]
        self._record("consumer_lag", metrics)

    def _record(self, table: str, metrics: list[dict[str, Any]]) -> None:
        """The loader's own metrics: best effort, never blocking the data."""
        if not metrics:
            return
        try:
            self.warehouse.insert_rows(table, b"\n".join(map(orjson.dumps, metrics)))
        except Exception as exc:  # chDB and the server driver raise several types
            log.debug("metrics not recorded table=%s error=%s", table, type(exc).__name__)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def on_partitions_revoked(self, revoked: Any) -> None:
        if self.loader.warehouse.pending_rows:
            log.info(
                "partitions revoked; %d unwritten rows dropped, to be read again",
                self.loader.warehouse.pending_rows,
            )
        self.loader.discard_batch()

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.loader._unknown_tables = set(self.loader.route.values())


def run_loader(**kwargs: Any) -> LoaderStats:
    """Run a `Loader` until `stop` is set (keyword arguments as `Loader`)."""
    return Loader(**kwargs).run()
