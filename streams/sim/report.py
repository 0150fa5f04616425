"""The night report, computed by SQL on the warehouse, and its check against what the simulator
sent: every alert accounted for (assigned, still waiting with a reason, or dead-lettered with a
reason), and as many dead letters as malformed events.

Two clocks meet here. The dispatcher stamps its own decisions (assigned, waiting, ack timeout)
with the wall clock, and the officers' answers (acknowledged, arrived, cleared) with the time
the app gave them, which is night time: the simulator runs the night `speedup` times faster.
Decisions are put into night time by the mapping the runner paced the night with
(night = night start + (wall - wall start) x speedup); at a speed-up of 1 both are the same."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sinks.warehouse import Warehouse

NAN = float("nan")
ON_SCENE_WITHIN_S = 180  # the seed's measure: officers on scene within 3 minutes


@dataclass(slots=True)
class Sent:
    """What the simulator actually put on the broker (a stopped night sends less than its
    ledger planned): alert ids, malformed events, records per topic."""

    alerts: set[str] = field(default_factory=set)
    malformed: int = 0
    records: Counter[str] = field(default_factory=Counter)

    def add(self, topic: str, key: str | None, message: object) -> None:
        self.records[topic] += 1
        if key is None:  # the simulator sends only its malformed events without a key
            self.malformed += 1
        elif topic == "alerts.calls" and isinstance(message, dict):
            self.alerts.add(str(message["alert_id"]))


@dataclass(frozen=True, slots=True)
class Clock:
    """How wall time maps to night time in this run."""

    night_start_ms: int
    wall_start_ms: int
    speedup: float

    def night_sql(self, column: str) -> str:
        return f"({self.night_start_ms} + ({column} - {self.wall_start_ms}) * {self.speedup})"


@dataclass(slots=True)
class NightReport:
    alerts: int = 0
    assigned: int = 0
    assign_s: tuple[float, ...] = (NAN, NAN, NAN)  # night seconds p50/p90/p99
    arrive_s: tuple[float, ...] = (NAN, NAN, NAN)
    arrived: int = 0
    on_scene_3min_share: float = 0.0
    dispatch_ms: tuple[float, ...] = (NAN, NAN)  # wall ms ingested -> assigned, p50/p99
    waited: int = 0
    still_waiting: dict[str, str] = field(default_factory=dict)  # alert -> reason
    reassignments: int = 0
    withdrawals: int = 0
    ack_timeouts: int = 0
    backups_requested: int = 0
    backup_assignments: int = 0
    dead_letters: dict[tuple[str, str], int] = field(default_factory=dict)  # (reason, station)
    dead_lettered_alerts: dict[str, str] = field(default_factory=dict)  # alert -> reason
    time_formats: dict[str, int] = field(default_factory=dict)
    warehouse_alert_ids: set[str] = field(default_factory=set)
    silent: list[str] = field(default_factory=list)  # loaded, neither assigned nor waiting
    unaccounted: list[str] = field(default_factory=list)  # the check's mismatches

    def lines(self) -> list[str]:
        a = "/".join(_figure(v, 1) for v in self.assign_s)
        r = "/".join(_figure(v) for v in self.arrive_s)
        d = self.dispatch_ms
        dead = sum(self.dead_letters.values())
        by_reason: Counter[str] = Counter()
        for (reason, _), count in self.dead_letters.items():
            by_reason[reason] += count
        stations = Counter(station for (_, station) in self.dead_letters)
        out = [
            f"alerts {self.alerts}: {self.assigned} assigned, {len(self.still_waiting)} "
            f"still waiting, {len(self.dead_lettered_alerts)} dead-lettered",
            f"time to assign p50/p90/p99 {a} s (night time)",
            f"time to arrive p50/p90/p99 {r} s ({self.arrived} arrived)",
            f"on scene within 3 min: {self.on_scene_3min_share:.0%} of alerts",
            f"dispatch (alert ingested -> assigned, no wait) p50 {_figure(d[0])} ms, "
            f"p99 {_figure(d[1])} ms (wall)",
            f"waits {self.waited}; reassignments {self.reassignments} (withdrawn "
            f"{self.withdrawals}, ack timeouts {self.ack_timeouts}); backups requested "
            f"{self.backups_requested}, sent {self.backup_assignments}",
            f"dead letters {dead}: "
            + (", ".join(f"{k} {n}" for k, n in by_reason.most_common()) or "none")
            + (f" (from {len(stations)} stations)" if stations else ""),
            "time formats seen: "
            + ", ".join(f"{k} {n}" for k, n in sorted(self.time_formats.items())),
        ]
        for alert, reason in sorted(self.still_waiting.items()):
            out.append(f"  waiting: {alert} ({reason})")
        return out


def _quantiles(row: dict[str, Any], name: str, n: int) -> tuple[float, ...]:
    """ClickHouse's quantiles of no rows are NaN, which JSON carries as null."""
    values = row.get(name) or [None] * n
    return tuple(NAN if v is None else float(v) for v in values)


def _figure(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def night_report(warehouse: Warehouse, clock: Clock, sent: Sent) -> NightReport:
    """The report of the night in `warehouse` (its own database), checked against `sent`."""
    db = warehouse.database
    report = NightReport()
    per_alert = f"""
        SELECT a.alert_id AS alert_id, a.event_utc_ms AS called_ms, a.ingest_utc_ms AS ingest_ms,
               e.assigned_ms AS assigned_ms, e.arrived_ms AS arrived_ms, e.waits AS waits,
               e.reason AS reason
        FROM (SELECT alert_id, event_utc_ms, ingest_utc_ms FROM {db}.alerts FINAL) AS a
        LEFT JOIN (
            SELECT alert_id,
                   minIfOrNull(at_utc_ms, kind = 'assigned') AS assigned_ms,
                   minIfOrNull(at_utc_ms, kind = 'arrived') AS arrived_ms,
                   countIf(kind = 'unassigned') AS waits,
                   argMaxIf(detail, at_utc_ms, kind = 'unassigned') AS reason
            FROM {db}.dispatch_events FINAL GROUP BY alert_id
        ) AS e ON e.alert_id = a.alert_id"""
    assigned_night = clock.night_sql("assigned_ms")
    (row,) = warehouse.query(f"""
        SELECT count() AS alerts,
               countIf(assigned_ms IS NOT NULL) AS assigned,
               countIf(arrived_ms IS NOT NULL) AS arrived,
               quantilesIf(0.5, 0.9, 0.99)(({assigned_night} - called_ms) / 1000,
                   assigned_ms IS NOT NULL) AS assign_s,
               quantilesIf(0.5, 0.9, 0.99)((arrived_ms - called_ms) / 1000,
                   arrived_ms IS NOT NULL) AS arrive_s,
               countIf(arrived_ms IS NOT NULL
                   AND arrived_ms - called_ms <= {ON_SCENE_WITHIN_S * 1000}) AS within,
               quantilesIf(0.5, 0.99)(assigned_ms - ingest_ms,
                   assigned_ms IS NOT NULL AND waits = 0) AS dispatch_ms,
               countIf(waits > 0) AS waited
        FROM ({per_alert})""")
    report.alerts, report.assigned = int(row["alerts"]), int(row["assigned"])
    report.arrived, report.waited = int(row["arrived"]), int(row["waited"])
    report.assign_s = _quantiles(row, "assign_s", 3)
    report.arrive_s = _quantiles(row, "arrive_s", 3)
    report.on_scene_3min_share = int(row["within"]) / report.alerts if report.alerts else 0.0
    report.dispatch_ms = _quantiles(row, "dispatch_ms", 2)
    for waiting in warehouse.query(
        f"SELECT alert_id, reason, waits FROM ({per_alert}) WHERE assigned_ms IS NULL"
    ):
        if int(waiting["waits"] or 0) > 0:
            report.still_waiting[str(waiting["alert_id"])] = str(waiting["reason"])
        else:
            report.silent.append(str(waiting["alert_id"]))
    report.warehouse_alert_ids = {
        str(r["alert_id"]) for r in warehouse.query(f"SELECT alert_id FROM {db}.alerts FINAL")
    }
    (moves,) = warehouse.query(f"""
        SELECT countIf(reason = 'reassignment') AS reassignments,
               countIf(reason = 'backup') AS backups
        FROM {db}.assignments FINAL""")
    report.reassignments, report.backup_assignments = (
        int(moves["reassignments"]),
        int(moves["backups"]),
    )
    (events,) = warehouse.query(f"""
        SELECT countIf(kind = 'withdrawn') AS withdrawn, countIf(kind = 'ack_timeout') AS timeouts,
               countIf(kind = 'backup_requested') AS backups
        FROM {db}.dispatch_events FINAL""")
    report.withdrawals, report.ack_timeouts = int(events["withdrawn"]), int(events["timeouts"])
    report.backups_requested = int(events["backups"])
    for dead in warehouse.query(
        f"SELECT reason, station_id, count() AS n FROM {db}.dead_letters FINAL "
        "GROUP BY reason, station_id"
    ):
        report.dead_letters[(str(dead["reason"]), str(dead["station_id"]))] = int(dead["n"])
    for form in warehouse.query(f"""
        SELECT time_format, count() AS n FROM (
            SELECT time_format FROM {db}.gps_pings FINAL
            UNION ALL SELECT time_format FROM {db}.alerts FINAL
            UNION ALL SELECT time_format FROM {db}.officer_status_changes FINAL)
        GROUP BY time_format"""):
        report.time_formats[str(form["time_format"])] = int(form["n"])
    _dead_lettered_alerts(warehouse, report, sent.alerts - report.warehouse_alert_ids)
    report.unaccounted = check(report, sent)
    return report


def _dead_lettered_alerts(warehouse: Warehouse, report: NightReport, missing: set[str]) -> None:
    """Sent alerts the warehouse lacks, found in a dead letter's original bytes."""
    db = warehouse.database
    for alert_id in sorted(missing):
        safe = alert_id.replace("\\", "\\\\").replace("'", "\\'")
        found = warehouse.query(
            f"SELECT reason FROM {db}.dead_letters FINAL "
            f"WHERE position(base64Decode(original_b64), '\"{safe}\"') > 0 LIMIT 1"
        )
        if found:
            report.dead_lettered_alerts[alert_id] = str(found[0]["reason"])


def check(report: NightReport, sent: Sent) -> list[str]:
    """Every sent alert accounted for, nothing in the warehouse that was not sent, and one dead
    letter per malformed event: one line per mismatch."""
    problems = []
    for alert_id in sorted(sent.alerts - report.warehouse_alert_ids):
        if alert_id not in report.dead_lettered_alerts:
            problems.append(f"alert {alert_id} was sent but is neither loaded nor dead-lettered")
    for alert_id in sorted(report.warehouse_alert_ids - sent.alerts):
        problems.append(f"alert {alert_id} is in the warehouse but was not sent in this night")
    for alert_id in report.silent:
        problems.append(f"alert {alert_id} is loaded but neither assigned nor waiting")
    dead = sum(report.dead_letters.values())
    if dead != sent.malformed + len(report.dead_lettered_alerts):
        problems.append(f"{dead} dead letters for {sent.malformed} malformed events sent")
    return problems
