"""The in-memory read model of every officer, on every worker: latest state per officer plus an
H3 index of positions, fed by local writes and by the `officers` table's changelog."""

from __future__ import annotations

from schemas.events import OfficerState
from streams.dispatch import DispatchPolicy, is_candidate
from streams.nearest import Candidate, OfficerIndex


class OfficerView:
    def __init__(self, resolution: int) -> None:
        self.index = OfficerIndex(resolution)
        self.states: dict[str, OfficerState] = {}
        # Officers booked and not yet acknowledged: all the ack timer has to look at each tick.
        self.awaiting_ack: set[str] = set()

    def __len__(self) -> int:
        return len(self.states)

    def get(self, officer_id: str) -> OfficerState | None:
        return self.states.get(officer_id)

    def apply(self, officer_id: str, state: OfficerState | None) -> None:
        if state is None or state.dispatched_utc_ms is None:
            self.awaiting_ack.discard(officer_id)
        else:
            self.awaiting_ack.add(officer_id)
        if state is None:
            self.states.pop(officer_id, None)
            if officer_id in self.index:
                self.index.remove(officer_id)
            return
        self.states[officer_id] = state
        if state.lat is not None and state.lon is not None:
            self.index.upsert(officer_id, state.lat, state.lon)

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
