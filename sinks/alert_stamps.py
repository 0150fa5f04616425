"""What the loader stamps on a dispatch event before it is written: its alert's station, time,
category and priority, and whether it is the alert's first event of its kind. A dispatch event
carries none of these, and the per station and hour KPIs (`kpi_station_hour_states`, fed on
insert) need them: the time to assign is the first `assigned` after the alert, in the alert's
station and hour.

Alerts the loader writes are remembered (bounded, oldest forgotten first); an event of an alert
not remembered, or whose stored kinds are not known yet, is resolved from the warehouse in one
query per batch, just before the batch is written. An event whose alert is nowhere yet (the
alerts topic read behind the events topic, as when the loader catches up) is deferred with the
rest of its partition: the loader reads it again from there later. An alert still unknown after
`wait_s` (an event of an alert that never reached the warehouse) no longer holds its partition:
the event is written with an empty station and time 0, left out of the per station KPIs, and
counted in `unstamped`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_CAPACITY = 200_000
DEFAULT_WAIT_S = 30.0


class Lookup(Protocol):
    def query(self, sql: str) -> list[dict[str, Any]]: ...


@dataclass(slots=True)
class _Alert:
    station_id: str = ""
    utc_ms: int = 0
    category: str = ""
    priority: int = 0
    kinds: set[str] | None = None  # kinds already written for it; None: not known yet


@dataclass(slots=True)
class Resolved:
    """Events stamped and ready to write, and per Kafka partition the first offset deferred
    (that record and every later one of its partition are to be read again)."""

    stamped: list[MutableMapping[str, Any]] = field(default_factory=list)
    deferred: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class AlertStamps:
    capacity: int = DEFAULT_CAPACITY
    wait_s: float = DEFAULT_WAIT_S
    clock: Callable[[], float] = time.monotonic
    unstamped: int = 0
    _alerts: dict[str, _Alert] = field(default_factory=dict)
    _waiting: list[MutableMapping[str, Any]] = field(default_factory=list)
    _unknown_since: dict[str, float] = field(default_factory=dict)

    def note_alert(self, alert: Mapping[str, Any]) -> None:
        """An alert row (alert_id, station_id, event_utc_ms, category, priority)."""
        alert_id = alert["alert_id"]
        known = self._alerts.get(alert_id)
        if known is None:
            if len(self._alerts) >= self.capacity:
                del self._alerts[next(iter(self._alerts))]
            known = self._alerts[alert_id] = _Alert()
        known.station_id, known.utc_ms = alert["station_id"], int(alert["event_utc_ms"])
        known.category, known.priority = alert["category"], int(alert["priority"])

    def stamp(self, row: MutableMapping[str, Any]) -> bool:
        """Stamp the event row now if its alert is known (True); else it waits for `resolve`."""
        known = self._alerts.get(row["alert_id"])
        if known is None or known.kinds is None or not known.utc_ms or self._waiting:
            self._waiting.append(row)  # behind a waiting one: the order of kinds matters
            return False
        _stamp(row, known)
        return True

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def resolve(self, warehouse: Lookup, database: str) -> Resolved:
        """Stamp the waiting events from what the warehouse holds of their alerts, in order,
        deferring a partition from its first event of an alert not stored yet (nothing is
        stamped if a query fails: call again)."""
        if not self._waiting:
            return Resolved()
        ids = sorted({str(row["alert_id"]) for row in self._waiting})
        missing = [i for i in ids if i not in self._alerts or not self._alerts[i].utc_ms]
        unknown_kinds = [i for i in ids if i not in self._alerts or self._alerts[i].kinds is None]
        for found in _query_in(
            warehouse,
            "SELECT alert_id, any(station_id) AS station_id, min(event_utc_ms) AS event_utc_ms, "
            "any(category) AS category, any(priority) AS priority "
            f"FROM {database}.alerts WHERE alert_id IN ({{ids}}) GROUP BY alert_id",
            missing,
        ):
            self.note_alert(found)
        kinds = {
            found["alert_id"]: set(found["kinds"])
            for found in _query_in(
                warehouse,
                "SELECT alert_id, groupUniqArray(kind) AS kinds FROM "
                f"{database}.dispatch_events WHERE alert_id IN ({{ids}}) "
                "GROUP BY alert_id",
                unknown_kinds,
            )
        }
        for alert_id in unknown_kinds:
            self._alerts.setdefault(alert_id, _Alert()).kinds = kinds.get(alert_id, set())
        waiting, self._waiting = self._waiting, []
        resolved = Resolved()
        now = self.clock()
        for row in waiting:
            partition, alert_id = row["kafka_partition"], row["alert_id"]
            alert = self._alerts[alert_id]
            if partition in resolved.deferred:
                continue
            if not alert.utc_ms:
                since = self._unknown_since.setdefault(alert_id, now)
                if now - since < self.wait_s:
                    resolved.deferred[partition] = row["kafka_offset"]
                    continue
                self.unstamped += 1
            self._unknown_since.pop(alert_id, None)
            _stamp(row, alert)
            resolved.stamped.append(row)
        return resolved

    def forget(self) -> None:
        """A batch was dropped unwritten: what it marked as first is not stored, so every
        alert's written kinds are read again from the warehouse."""
        self._waiting.clear()
        for alert in self._alerts.values():
            alert.kinds = None


def _stamp(row: MutableMapping[str, Any], alert: _Alert) -> None:
    assert alert.kinds is not None
    row["station_id"] = alert.station_id
    row["alert_utc_ms"] = alert.utc_ms
    row["category"] = alert.category
    row["priority"] = alert.priority
    first = row["kind"] not in alert.kinds
    row["first_of_kind"] = int(first)
    if first:
        alert.kinds.add(row["kind"])


def _query_in(warehouse: Lookup, sql: str, ids: Iterable[str]) -> list[dict[str, Any]]:
    listed = ", ".join("'" + i.replace("\\", "\\\\").replace("'", "\\'") + "'" for i in ids)
    return warehouse.query(sql.replace("{ids}", listed)) if listed else []
