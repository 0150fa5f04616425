"""The demo's live view of a night: what the pipeline's outputs say (officers by status, open and
waiting alerts, the latest assignments, time to assign, events per second per topic, dead
letters by reason), kept by `Board` from plain messages and drawn with rich, or as one plain
progress line when stdout is not a terminal."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

# What a dispatch event says an officer is doing from then on.
STATUS_AFTER_EVENT = {
    "assigned": "assigned",
    "acknowledged": "en route",
    "arrived": "on scene",
    "cleared": "available",
    "withdrawn": "available",
    "ack_timeout": "available",
}
STATUS_ORDER = ("available", "assigned", "en route", "on scene", "desk duty")
LATEST = 6


@dataclass(frozen=True, slots=True)
class AssignmentLine:
    alert_id: str
    category: str
    officer_id: str
    distance_m: float
    eta_s: float
    reason: str


@dataclass(slots=True)
class Board:
    """The night as its outputs tell it. Times are wall-clock seconds (`time.time()`); every
    method takes the lock, so the producer, the tail and the view may call it from their
    threads."""

    officers: dict[str, str] = field(default_factory=dict)  # officer -> status
    sent_s: dict[str, float] = field(default_factory=dict)  # alert -> when it was produced
    assigned_s: dict[str, float] = field(default_factory=dict)  # alert -> first assignment heard
    waiting: dict[str, str] = field(default_factory=dict)  # alert -> why it waits
    waited: set[str] = field(default_factory=set)  # alerts that ever waited
    cleared: set[str] = field(default_factory=set)
    latest: deque[AssignmentLine] = field(default_factory=lambda: deque(maxlen=LATEST))
    dead: Counter[str] = field(default_factory=Counter)  # reason -> dead letters
    rates: dict[str, float] = field(default_factory=dict)  # topic -> events/s
    records_sent: int = 0
    night_ms: int = 0  # event time of the last record sent
    lock: threading.Lock = field(default_factory=threading.Lock)

    def roster(self, officers: Iterable[tuple[str, bool]]) -> None:
        """The night's officers: (id, on patrol). Patrols start available, the rest at a desk."""
        with self.lock:
            for officer_id, on_patrol in officers:
                self.officers[officer_id] = "available" if on_patrol else "desk duty"

    def sent(self, topic: str, message: Mapping[str, Any] | str, at_ms: int, now_s: float) -> None:
        with self.lock:
            self.records_sent += 1
            self.night_ms = max(self.night_ms, at_ms)
            if topic == "alerts.calls" and not isinstance(message, str) and "alert_id" in message:
                self.sent_s.setdefault(str(message["alert_id"]), now_s)

    def assignment(self, message: Mapping[str, Any], now_s: float) -> None:
        alert, officer = message["alert"], message["officer"]
        with self.lock:
            self.assigned_s.setdefault(alert["alert_id"], now_s)
            self.waiting.pop(alert["alert_id"], None)
            self.latest.appendleft(
                AssignmentLine(
                    alert["alert_id"],
                    str(alert.get("category", "")),
                    officer["officer_id"],
                    float(message["distance_m"]),
                    float(message["eta_s"]),
                    str(message.get("reason", "dispatch")),
                )
            )

    def event(self, event: Mapping[str, Any]) -> None:
        kind, alert_id, officer_id = event["kind"], event["alert_id"], event.get("officer_id")
        with self.lock:
            if kind == "unassigned" and alert_id not in self.assigned_s:
                self.waiting[alert_id] = str(event.get("detail") or "waiting")
                self.waited.add(alert_id)
            if kind == "cleared":
                self.cleared.add(alert_id)
            status = STATUS_AFTER_EVENT.get(kind)
            if status is not None and officer_id in self.officers:
                self.officers[officer_id] = status

    def dead_letter(self, reason: str) -> None:
        with self.lock:
            self.dead[reason] += 1

    def set_rates(self, rates: Mapping[str, float]) -> None:
        with self.lock:
            self.rates = dict(rates)

    def assign_ms(self) -> list[float]:
        """Alert produced -> its first assignment heard, wall ms, per assigned alert."""
        with self.lock:
            return [
                (at - self.sent_s[alert]) * 1000
                for alert, at in self.assigned_s.items()
                if alert in self.sent_s
            ]

    def accounted(self) -> set[str]:
        """Alerts with an outcome: assigned, or waiting with a reason."""
        with self.lock:
            return set(self.assigned_s) | set(self.waiting)

    def open_alerts(self) -> int:
        with self.lock:
            return len(set(self.sent_s) - self.cleared)


def percentiles(values: list[float], qs: tuple[int, ...] = (50, 90, 99)) -> tuple[float, ...]:
    if not values:
        return tuple(float("nan") for _ in qs)
    return tuple(float(v) for v in np.percentile(values, qs))


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"  # NaN: nothing yet


def progress_line(board: Board, elapsed_s: float, clock: str) -> str:
    """One line for a log or CI: where the night is and what came out of it so far."""
    p50, _, p99 = percentiles(board.assign_ms())
    with board.lock:
        statuses = Counter(board.officers.values())
        dead = sum(board.dead.values())
        sent, assigned, waiting = len(board.sent_s), len(board.assigned_s), len(board.waiting)
        records = board.records_sent
    busy = statuses["assigned"] + statuses["en route"] + statuses["on scene"]
    return (
        f"[{elapsed_s:5.0f}s] night {clock}: {records} records, {sent} alerts, "
        f"{assigned} assigned, {waiting} waiting, {busy} officers busy, "
        f"assign p50 {_ms(p50)} ms p99 {_ms(p99)} ms, {dead} dead letters"
    )


def render(board: Board, elapsed_s: float, clock: str, prefix: str) -> Group:
    """The live view: a header line and four small tables."""
    p50, p90, p99 = percentiles(board.assign_ms())
    with board.lock:
        statuses = Counter(board.officers.values())
        latest = list(board.latest)
        dead = board.dead.most_common(5)
        rates = sorted(board.rates.items())
        waiting = len(board.waiting)
        header = Text.assemble(
            ("smart-station demo ", "bold"),
            f"night {clock}, {elapsed_s:.0f}s wall, {board.records_sent:,} records sent",
        )
    alerts = len(board.sent_s) if board.sent_s else 0
    officers = Table(title="officers", box=None, show_header=False)
    for status in STATUS_ORDER:
        officers.add_row(status, str(statuses.get(status, 0)))
    calls = Table(title="alerts", box=None, show_header=False)
    calls.add_row("sent", str(alerts))
    calls.add_row("open", str(board.open_alerts()))
    calls.add_row("waiting", str(waiting))
    calls.add_row("to assign p50", f"{_ms(p50)} ms")
    calls.add_row("p90 / p99", f"{_ms(p90)} / {_ms(p99)} ms")
    flows = Table(title="events/s", box=None, show_header=False)
    for topic, rate in rates:
        flows.add_row(topic.removeprefix(prefix), f"{rate:,.0f}")
    letters = Table(title="dead letters", box=None, show_header=False)
    for reason, count in dead or [("none", 0)]:
        letters.add_row(reason, str(count))
    top = Table.grid(padding=(0, 3))
    top.add_row(officers, calls, flows, letters)
    recent = Table(title="latest assignments", box=None)
    for column in ("alert", "category", "officer", "distance", "ETA", "why"):
        recent.add_column(column)
    for line in latest:
        recent.add_row(
            line.alert_id,
            line.category,
            line.officer_id,
            f"{line.distance_m:,.0f} m",
            f"{line.eta_s / 60:.1f} min",
            line.reason,
        )
    return Group(header, top, recent)
