"""The waiting board's place index against a brute-force scan of every waiting alert: whatever
was written, offered, withdrawn or given back, an officer is offered the same alert."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import OfficerState, WaitingAlert
from streams.dispatch.nearest import geodesic_m
from streams.dispatch.rules import urgency
from streams.dispatch.waiting import WaitingBoard

NOW = 1_700_000_000_000
LAT, LON = 29.56, 106.55  # a ~40 km square around it


@dataclass
class Model:
    """The board's contract, kept the slow way."""

    alerts: dict[str, WaitingAlert] = field(default_factory=dict)
    offered: dict[str, int] = field(default_factory=dict)
    withdrawn: dict[str, dict[str, int]] = field(default_factory=dict)
    returned: dict[tuple[str, str], int] = field(default_factory=dict)  # (officer, alert)

    def write(self, alert: WaitingAlert) -> None:
        known = self.alerts.get(alert.alert_id)
        if known is not None and known.version >= alert.version:
            return
        self.alerts[alert.alert_id] = alert
        self.offered[alert.alert_id], self.withdrawn[alert.alert_id] = 0, {}

    def best_for(self, officer: OfficerState) -> str | None:
        assert officer.lat is not None and officer.lon is not None
        fits = []
        for aid, alert in self.alerts.items():
            gone = self.withdrawn[aid]
            if alert.units_open + len(gone) - self.offered[aid] <= 0:
                continue
            until = max(alert.refused.get(officer.officer_id, 0), gone.get(officer.officer_id, 0))
            if until > NOW or self.returned.get((officer.officer_id, aid)) == alert.version:
                continue
            if geodesic_m(officer.lat, officer.lon, alert.lat, alert.lon) <= alert.radius_m:
                fits.append(alert)
        best = min(
            fits, key=lambda a: urgency(a.priority, a.event_utc_ms, a.alert_id), default=None
        )
        return None if best is None else best.alert_id


OFFICERS = [f"OFF-{i}" for i in range(4)]
places = st.tuples(st.floats(-0.18, 0.18), st.floats(-0.2, 0.2))
alerts = st.builds(
    lambda i, place, radius, priority, age, units, refused, version: WaitingAlert(
        alert_id=f"AL-{i}",
        priority=priority,
        event_utc_ms=NOW - age,
        lat=LAT + place[0],
        lon=LON + place[1],
        radius_m=radius,
        units_open=units,
        refused=refused,
        version=version,
    ),
    st.integers(0, 24),
    places,
    st.sampled_from([2000.0, 5000.0, 10_000.0, 20_000.0]),
    st.integers(1, 5),
    st.integers(0, 5),  # ties in time too: the id decides
    st.integers(0, 2),
    st.dictionaries(
        st.sampled_from(OFFICERS), st.sampled_from([NOW - 1, NOW + 60_000]), max_size=2
    ),
    st.integers(1, 4),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("write"), alerts),
        st.tuples(st.just("forget"), st.integers(0, 24)),
        st.tuples(st.just("offer"), st.integers(0, 24)),
        st.tuples(st.just("withdraw"), st.integers(0, 24), st.sampled_from(OFFICERS)),
        st.tuples(st.just("return"), st.integers(0, 24), st.sampled_from(OFFICERS)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps, st.lists(st.tuples(st.sampled_from(OFFICERS), places), min_size=1, max_size=6))
def test_an_officer_is_offered_what_a_scan_of_the_whole_board_offers(
    ops: list[tuple], asks: list[tuple[str, tuple[float, float]]]
) -> None:
    board, model = WaitingBoard(lambda key: 0), Model()
    for op in ops:
        if op[0] == "write":
            board.apply(op[1].alert_id, op[1])
            model.write(op[1])
            continue
        aid = f"AL-{op[1]}"
        if op[0] == "forget":
            board.apply(aid, None)
            model.alerts.pop(aid, None)
        elif aid not in model.alerts:
            continue
        elif op[0] == "offer":
            board.note_offer(aid)
            model.offered[aid] += 1
        elif op[0] == "withdraw":
            board.note_withdrawn(aid, op[2], NOW + 60_000)
            model.withdrawn[aid][op[2]] = NOW + 60_000
        else:
            board.note_returned(op[2], aid)
            model.offered[aid], model.withdrawn[aid] = 0, {}
            model.returned[(op[2], aid)] = model.alerts[aid].version
    for officer_id, place in asks:
        officer = OfficerState(officer_id=officer_id, lat=LAT + place[0], lon=LON + place[1])
        got = board.best_for(officer, NOW)
        assert (None if got is None else got.alert_id) == model.best_for(officer)
    open_units = {
        aid: alert.units_open + len(model.withdrawn[aid]) - model.offered[aid]
        for aid, alert in model.alerts.items()
    }
    assert len(board) == sum(1 for units in open_units.values() if units > 0)
