"""The in-memory read model of every officer, on every dispatch worker: latest state per officer
(status from the `officers` table, position from the positions table, whichever position is
newer) plus an H3 index of positions, fed by local writes and by both tables' changelogs."""

from __future__ import annotations

from schemas.events import OfficerPosition, OfficerState
from streams.dispatch import DispatchPolicy, is_candidate
from streams.nearest import Candidate, OfficerIndex


class OfficerView:
    def __init__(self, resolution: int) -> None:
        self.index = OfficerIndex(resolution)
        self.states: dict[str, OfficerState] = {}
        self.positions: dict[str, OfficerPosition] = {}
        # Officers booked and not yet acknowledged: all the ack timer has to look at each tick.
        self.awaiting_ack: set[str] = set()

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

    def apply(self, officer_id: str, state: OfficerState | None) -> None:
        """A status change (or a deletion: None)."""
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
        alert_utc_ms: int,
        policy: DispatchPolicy,
        exclude: frozenset[str] = frozenset(),
    ) -> list[Candidate]:
        def accept(officer_id: str) -> bool:
            if officer_id in exclude:
                return False
            return is_candidate(self.states.get(officer_id), alert_utc_ms, policy)

        return self.index.nearest(lat, lon, k=k, radius_m=policy.radius_m, accept=accept)


def _position_fields(position: OfficerPosition, station_id: str = "") -> dict[str, object]:
    return {
        "station_id": position.station_id or station_id,
        "lat": position.lat,
        "lon": position.lon,
        "h3_cell": position.h3_cell,
        "position_utc_ms": position.position_utc_ms,
    }
