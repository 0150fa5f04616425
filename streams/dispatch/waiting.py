"""The waiting board: every alert still missing units, mirrored on every dispatch worker (from the
`alerts-waiting` global table), so that the partition of an officer who frees up or moves can
hand them to the most urgent alert within reach, whichever partition owns it. Its wake-up heaps
tell each alert partition which of its alerts must look again at a tick (a widening, a refusal
running out): a tick costs nothing for alerts that have nothing due. Waiting alerts are also
indexed by place (nearest.PointIndex, H3), so asking what an officer can serve looks only at
alerts within the widest radius of them: its cost does not grow with alerts waiting elsewhere."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from schemas.events import OfficerState, WaitingAlert
from streams.dispatch.nearest import PointIndex, geodesic_m
from streams.dispatch.rules import urgency

MAX_RETURNED_PER_OFFICER = 64
# Waiting alerts are fewer than officers and searched over whole radii (5-20 km): cells of
# ~5 km² keep a lookup to a few rings (at the officers' ~0.7 km² it walked ~400 cells).
PLACE_RESOLUTION = 7


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
        self._places = PointIndex(PLACE_RESOLUTION)  # the ones with a unit open, by place
        self._radii: Counter[float] = Counter()  # their search radii (the widest bounds a lookup)
        self._wakes: dict[int, list[tuple[int, str, int]]] = {}  # partition -> (when, id, version)
        # officer -> {alert: version}: an alert that gave this officer back does not get them
        # again until its entry changes (its new state may not have reached this worker yet).
        self._returned: dict[str, dict[str, int]] = {}

    def __len__(self) -> int:
        """Alerts with a unit open (to this worker's knowledge)."""
        return len(self._places)

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
            known = self._entries.pop(alert_id, None)
            if known is not None:
                self._unlist(known)
            return
        known = self._entries.get(alert_id)
        if known is not None and known.alert.version >= alert.version:
            return
        if known is not None:
            self._unlist(known)
        entry = self._entries[alert_id] = _Entry(alert)
        self._relist(entry)
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
        within its radius, not refused by it, with a unit still open. Only alerts within the
        widest radius on the board are looked at (the place index)."""
        lat, lon = officer.lat, officer.lon
        assert lat is not None and lon is not None
        if not self._radii:
            return None
        returned = self._returned.get(officer.officer_id, {})

        def serves(alert_id: str) -> bool:
            entry = self._entries[alert_id]
            alert = entry.alert
            if entry.refuses(officer.officer_id, now_ms):
                return False
            if returned.get(alert_id) == alert.version:
                return False
            return geodesic_m(lat, lon, alert.lat, alert.lon) <= alert.radius_m

        found = self._places.nearest(
            lat, lon, k=len(self._places), radius_m=max(self._radii), accept=serves
        )
        if not found:
            return None
        best = min(
            (self._entries[c.point_id].alert for c in found),
            key=lambda a: urgency(a.priority, a.event_utc_ms, a.alert_id),
        )
        return best

    def note_offer(self, alert_id: str) -> None:
        """This worker booked an officer for the alert: one unit fewer to offer until the alert's
        next write says how it stands."""
        entry = self._entries.get(alert_id)
        if entry is not None:
            self._unlist(entry)
            entry.offered += 1
            self._relist(entry)

    def note_withdrawn(self, alert_id: str, officer_id: str, refusing_until_ms: int) -> None:
        """This worker took an officer back from the alert (ack timeout): it needs one more unit,
        not theirs, from now on; its own write saying so follows."""
        entry = self._entries.get(alert_id)
        if entry is not None:
            self._unlist(entry)
            entry.withdrawn[officer_id] = refusing_until_ms
            self._relist(entry)

    def note_returned(self, officer_id: str, alert_id: str) -> None:
        """The alert gave back an officer (offered, or claimed and no longer needed): this
        officer is not offered to it again until its next write says it still needs someone."""
        entry = self._entries.get(alert_id)
        if entry is None:
            return
        # Its answer is newer than what this worker noted since its last write: whatever it
        # still needs, its next write says.
        self._unlist(entry)
        entry.offered, entry.withdrawn = 0, {}
        self._relist(entry)
        returned = self._returned.setdefault(officer_id, {})
        returned[alert_id] = entry.alert.version
        if len(returned) > MAX_RETURNED_PER_OFFICER:
            del returned[next(iter(returned))]

    def _unlist(self, entry: _Entry) -> None:
        """Out of the place index, before the entry changes (it may stop waiting)."""
        alert = entry.alert
        if alert.alert_id in self._places:
            self._places.remove(alert.alert_id)
            self._radii[alert.radius_m] -= 1
            if not self._radii[alert.radius_m]:
                del self._radii[alert.radius_m]

    def _relist(self, entry: _Entry) -> None:
        """Into the place index when it has a unit open."""
        alert = entry.alert
        if entry.open_units > 0:
            self._places.upsert(alert.alert_id, alert.lat, alert.lon)
            self._radii[alert.radius_m] += 1
