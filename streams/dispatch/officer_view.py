"""The in-memory read model of every officer, on every dispatch worker: latest state per officer
(status from the `officers` table, position from the positions table, whichever position is
newer) plus an H3 index of positions, fed by local writes and by both tables' changelogs."""

from __future__ import annotations

from collections.abc import Callable

from schemas.events import OfficerPosition, OfficerState, OfficerStatusValue
from streams.dispatch.nearest import Candidate, PointIndex
from streams.dispatch.rules import DispatchPolicy, is_candidate


class OfficerView:
    def __init__(self, resolution: int, partition_of: Callable[[str], int] = lambda _: 0) -> None:
        self.index = PointIndex(resolution)
        self.states: dict[str, OfficerState] = {}
        self.positions: dict[str, OfficerPosition] = {}
        # Officers booked and not yet acknowledged: all the ack timer has to look at each tick.
        self.awaiting_ack: set[str] = set()
        # Officers who moved or became available since their partition's last tick, by
        # partition: all the waiting queue has to look at (they may now reach a waiting alert).
        self._moved: dict[int, set[str]] = {}
        self._partition_of = partition_of

    def __len__(self) -> int:
        return len(self.states)

    def get(self, officer_id: str) -> OfficerState | None:
        return self.states.get(officer_id)

    def merged(self, officer_id: str, state: OfficerState | None) -> OfficerState | None:
        """`state` (e.g. from the `officers` table) with the newest position known here; an
        officer known only by position is available by default, as before any status."""
        position = self.positions.get(officer_id)
        if position is None:
            return state
        if state is None:
            return OfficerState(officer_id=officer_id).model_copy(update=_position_fields(position))
        if state.position_utc_ms is not None and state.position_utc_ms >= position.position_utc_ms:
            return state
        return state.model_copy(update=_position_fields(position, state.station_id))

    def take_moved(self, partition: int) -> set[str]:
        return self._moved.pop(partition, set())

    def _mark_moved(self, officer_id: str) -> None:
        self._moved.setdefault(self._partition_of(officer_id), set()).add(officer_id)

    def apply(self, officer_id: str, state: OfficerState | None) -> None:
        """A status change (or a deletion: None)."""
        if state is not None and state.status is OfficerStatusValue.AVAILABLE:
            self._mark_moved(officer_id)
        if state is None or state.dispatched_utc_ms is None:
            self.awaiting_ack.discard(officer_id)
        else:
            self.awaiting_ack.add(officer_id)
        if state is None:
            self.states.pop(officer_id, None)
            self.positions.pop(officer_id, None)
            if officer_id in self.index:
                self.index.remove(officer_id)
            return
        self._store(self.merged(officer_id, state))

    def apply_position(self, position: OfficerPosition) -> None:
        """A replicated position; an older one than known here changes nothing."""
        officer_id = position.officer_id
        known = self.positions.get(officer_id)
        if known is not None and known.position_utc_ms >= position.position_utc_ms:
            return
        self.positions[officer_id] = position
        self._mark_moved(officer_id)
        self._store(self.merged(officer_id, self.states.get(officer_id)))

    def _store(self, state: OfficerState | None) -> None:
        if state is None:
            return
        self.states[state.officer_id] = state
        if state.lat is not None and state.lon is not None:
            self.index.upsert(state.officer_id, state.lat, state.lon)

    def nearest_candidates(
        self,
        lat: float,
        lon: float,
        *,
        k: int,
        at_ms: int,
        radius_m: float,
        policy: DispatchPolicy,
        exclude: frozenset[str] = frozenset(),
        skip: Callable[[str], bool] | None = None,
    ) -> list[Candidate]:
        def accept(officer_id: str) -> bool:
            if officer_id in exclude:
                return False
            if not is_candidate(self.states.get(officer_id), at_ms, policy):
                return False
            return skip is None or not skip(officer_id)

        return self.index.nearest(lat, lon, k=k, radius_m=radius_m, accept=accept)


def _position_fields(position: OfficerPosition, station_id: str = "") -> dict[str, object]:
    return {
        "station_id": position.station_id or station_id,
        "lat": position.lat,
        "lon": position.lon,
        "h3_cell": position.h3_cell,
        "position_utc_ms": position.position_utc_ms,
    }
