"""The waiting board: every alert still missing units, mirrored on every dispatch worker (from the
`alerts-waiting` global table), so that the partition of an officer who frees up or moves can
hand them to the most urgent alert within reach, whichever partition owns it. Its wake-up heaps
tell each alert partition which of its alerts must look again at a tick (a widening, a refusal
running out): a tick costs nothing for alerts that have nothing due."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from schemas.events import OfficerState, WaitingAlert
from streams.dispatch.nearest import geodesic_m
from streams.dispatch.rules import urgency

MAX_RETURNED_PER_OFFICER = 64
# A degree of latitude is at least this long anywhere on the WGS84 ellipsoid (110,574 m).
METRES_PER_DEGREE_LAT_MIN = 110_500.0


@dataclass(slots=True)
class _Entry:
    """An alert as its partition last wrote it, with what this worker did since (reset by the
    next write): officers booked for it, officers withdrawn from it (refusing it)."""

    alert: WaitingAlert
    offered: int = 0
    withdrawn: dict[str, int] = field(default_factory=dict)  # officer -> refusing until

    @property
    def open_units(self) -> int:
        return self.alert.units_open + len(self.withdrawn) - self.offered

    def refuses(self, officer_id: str, now_ms: int) -> bool:
        until = max(self.alert.refused.get(officer_id, 0), self.withdrawn.get(officer_id, 0))
        return until > now_ms


class WaitingBoard:
    def __init__(self, partition_of: Callable[[str], int]) -> None:
        self._partition_of = partition_of
        self._entries: dict[str, _Entry] = {}  # every alert of the board, waiting or not
        self._ranked: list[_Entry] | None = None  # waiting ones by urgency, rebuilt on change
        self._wakes: dict[int, list[tuple[int, str, int]]] = {}  # partition -> (when, id, version)
        # officer -> {alert: version}: an alert that gave this officer back does not get them
        # again until its entry changes (its new state may not have reached this worker yet).
        self._returned: dict[str, dict[str, int]] = {}

    def __len__(self) -> int:
        return len(self._ranking())

    def is_waiting(self, alert_id: str) -> bool:
        entry = self._entries.get(alert_id)
        return entry is not None and entry.alert.units_open > 0

    def get(self, alert_id: str) -> WaitingAlert | None:
        entry = self._entries.get(alert_id)
        return None if entry is None else entry.alert

    def apply(self, alert_id: str, alert: WaitingAlert | None) -> None:
        """A write of the alert's partition (here or via the changelog); older versions than
        the one known are ignored, since a worker sees its own write before its echo."""
        if alert is None:
            if self._entries.pop(alert_id, None) is not None:
                self._ranked = None
            return
        known = self._entries.get(alert_id)
        if known is not None and known.alert.version >= alert.version:
            return
        self._entries[alert_id] = _Entry(alert)
        self._ranked = None
        if alert.wake_utc_ms is not None and alert.units_open > 0:
            wakes = self._wakes.setdefault(self._partition_of(alert_id), [])
            heapq.heappush(wakes, (alert.wake_utc_ms, alert_id, alert.version))

    def due(self, partition: int, now_ms: int) -> list[str]:
        """Alerts of `partition` whose wake-up time has come, most urgent first."""
        wakes = self._wakes.get(partition)
        found: list[WaitingAlert] = []
        while wakes and wakes[0][0] <= now_ms:
            _, alert_id, version = heapq.heappop(wakes)
            entry = self._entries.get(alert_id)
            if entry is not None and entry.alert.version == version and entry.alert.units_open:
                found.append(entry.alert)
        found.sort(key=lambda a: urgency(a.priority, a.event_utc_ms, a.alert_id))
        return [a.alert_id for a in found]

    def best_for(self, officer: OfficerState, now_ms: int) -> WaitingAlert | None:
        """The most urgent, then oldest, waiting alert this (free, fresh) officer can serve:
        within its radius, not refused by it, with a unit still open."""
        assert officer.lat is not None and officer.lon is not None
        returned = self._returned.get(officer.officer_id, {})
        for entry in self._ranking():
            alert = entry.alert
            if entry.open_units <= 0 or entry.refuses(officer.officer_id, now_ms):
                continue
            if returned.get(alert.alert_id) == alert.version:
                continue
            if abs(alert.lat - officer.lat) * METRES_PER_DEGREE_LAT_MIN > alert.radius_m:
                continue  # cheaply out of reach: no geodesic needed
            if geodesic_m(officer.lat, officer.lon, alert.lat, alert.lon) <= alert.radius_m:
                return alert
        return None

    def note_offer(self, alert_id: str) -> None:
        """This worker booked an officer for the alert: one unit fewer to offer until the alert's
        next write says how it stands."""
        entry = self._entries.get(alert_id)
        if entry is not None:
            entry.offered += 1
            self._ranked = None

    def note_withdrawn(self, alert_id: str, officer_id: str, refusing_until_ms: int) -> None:
        """This worker took an officer back from the alert (ack timeout): it needs one more unit,
        not theirs, from now on; its own write saying so follows."""
        entry = self._entries.get(alert_id)
        if entry is not None:
            entry.withdrawn[officer_id] = refusing_until_ms
            self._ranked = None

    def note_returned(self, officer_id: str, alert_id: str) -> None:
        """The alert gave back an officer (offered, or claimed and no longer needed): this
        officer is not offered to it again until its next write says it still needs someone."""
        entry = self._entries.get(alert_id)
        if entry is None:
            return
        # Its answer is newer than what this worker noted since its last write: whatever it
        # still needs, its next write says.
        entry.offered, entry.withdrawn = 0, {}
        returned = self._returned.setdefault(officer_id, {})
        returned[alert_id] = entry.alert.version
        if len(returned) > MAX_RETURNED_PER_OFFICER:
            del returned[next(iter(returned))]
        self._ranked = None

    def waiting_ids(self) -> Iterator[str]:
        return (entry.alert.alert_id for entry in self._ranking())

    def _ranking(self) -> list[_Entry]:
        if self._ranked is None:
            waiting = [e for e in self._entries.values() if e.open_units > 0]
            waiting.sort(
                key=lambda e: urgency(e.alert.priority, e.alert.event_utc_ms, e.alert.alert_id)
            )
            self._ranked = waiting
        return self._ranked
