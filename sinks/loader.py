"""The warehouse loader: consumes the pipeline's output topics and writes them to the warehouse
in batches. At-least-once: offsets are committed only after a flush; the tables' natural keys
make replays collapse."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka import KafkaConsumer

from base.errors import SinkBackpressure
from base.topics import TopicNames
from sinks import rows
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoaderStats:
    rows_by_table: dict[str, int] = field(default_factory=dict)
    flushes: int = 0

    def add(self, table: str) -> None:
        self.rows_by_table[table] = self.rows_by_table.get(table, 0) + 1


def table_router(names: TopicNames) -> dict[str, str]:
    return {
        names.gps: "gps_pings",
        names.alerts: "alerts",
        names.assignments: "assignments",
        names.events: "dispatch_events",
        names.deadletter: "dead_letters",
    }


def run_loader(
    *,
    bootstrap: str,
    names: TopicNames,
    group_id: str,
    warehouse: Warehouse,
    batch_size: int,
    flush_interval_s: float,
    stop: threading.Event,
    on_flush: Callable[[LoaderStats], None] | None = None,
) -> LoaderStats:
    route = table_router(names)
    consumer = KafkaConsumer(
        *route,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch_size,
        client_id=f"{group_id}-loader",
    )
    stats = LoaderStats()
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if warehouse.pending_rows:
            warehouse.flush()
            stats.flushes += 1
            consumer.commit()
            if on_flush is not None:
                on_flush(stats)
        last_flush = time.monotonic()

    try:
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=200, max_records=batch_size)
            for records in polled.values():
                for record in records:
                    table = route[record.topic]
                    row = _row_for(table, record.value, record.headers or [])
                    try:
                        warehouse.add(table, row)
                    except SinkBackpressure:
                        flush()
                        warehouse.add(table, row)
                    stats.add(table)
            due = time.monotonic() - last_flush >= flush_interval_s
            if warehouse.pending_rows >= batch_size or (due and warehouse.pending_rows):
                flush()
        flush()
    finally:
        consumer.close()
    return stats


def _row_for(table: str, value: bytes, headers: list[tuple[str, bytes]]) -> dict[str, object]:
    if table == "dead_letters":
        return rows.dead_letter_row(value, headers)
    message = rows.decode(value)
    if table == "gps_pings":
        return rows.gps_row(message)
    if table == "alerts":
        return rows.alert_row(message)
    if table == "dispatch_events":
        return rows.dispatch_event_row(message)
    return rows.assignment_row(message, value)
