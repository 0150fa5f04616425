"""PointIndex against the brute-force oracle, with points on H3 cell edges, ties, filters and
radii drawn by hypothesis."""

from __future__ import annotations

import math
import random

import h3
import pytest
from h3.api import basic_int as h3_int
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.dispatch.nearest import (
    R_MAX_M,
    R_MIN_M,
    Candidate,
    PointIndex,
    geodesic_m,
    nearest_brute_force,
)

CHONGQING = (29.56, 106.55)
# Places where the geometry is awkward: the antimeridian, high latitude, the equator.
ANCHORS = [CHONGQING, (-17.7, 179.995), (78.2, 15.6), (0.0005, -78.5)]
EPSILONS = [0.0, 1e-12, -1e-12, 1e-9, -1e-9, 1e-7, -1e-7]

Point = tuple[float, float]


def wrap(lat: float, lon: float) -> Point:
    return max(-90.0, min(90.0, lat)), (lon + 180.0) % 360.0 - 180.0


@st.composite
def points_near(draw: st.DrawFn, anchor: Point, spread: float, resolution: int) -> Point:
    """A point around `anchor`: anywhere, or on a vertex of its H3 cell give or take epsilon."""
    lat = anchor[0] + draw(st.floats(-spread, spread))
    lon = anchor[1] + draw(st.floats(-spread, spread))
    lat, lon = wrap(lat, lon)
    if draw(st.booleans()):
        return lat, lon
    vertices = h3.cell_to_boundary(h3.latlng_to_cell(lat, lon, resolution))
    vlat, vlon = draw(st.sampled_from(vertices))
    return wrap(vlat + draw(st.sampled_from(EPSILONS)), vlon + draw(st.sampled_from(EPSILONS)))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, dict[str, Point], Point]:
    resolution = draw(st.sampled_from([7, 8, 9]))
    pentagon = h3.cell_to_latlng(h3.get_pentagons(resolution)[0])
    anchor = draw(st.sampled_from([*ANCHORS, pentagon]))
    spread = draw(st.sampled_from([0.002, 0.01, 0.05]))
    near = points_near(anchor, spread, resolution)
    positions = draw(st.lists(near, min_size=0, max_size=40))
    # Exact ties: some officers share another's coordinates under a different id.
    positions += draw(st.lists(st.sampled_from(positions), max_size=5)) if positions else []
    officers = {f"officer-{i:03d}": p for i, p in enumerate(positions)}
    query = draw(st.one_of(near, st.sampled_from(positions))) if positions else draw(near)
    return resolution, officers, query


def build(officers: dict[str, Point], resolution: int) -> PointIndex:
    index = PointIndex(resolution)
    for officer_id, (lat, lon) in officers.items():
        index.upsert(officer_id, lat, lon)
    return index


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), k=st.integers(1, 5), data=st.data())
def test_nearest_equals_brute_force(
    scenario: tuple[int, dict[str, Point], Point], k: int, data: st.DataObject
) -> None:
    resolution, officers, (lat, lon) = scenario
    ids = sorted(officers)
    radius_choices = [st.floats(0.0, 12_000.0), st.just(1e7)]
    if ids:
        # A radius equal to some officer's exact distance: the radius is inclusive.
        radius_choices.append(
            st.sampled_from([geodesic_m(lat, lon, *officers[i]) for i in ids[:10]])
        )
    radius_m = data.draw(st.one_of(radius_choices), label="radius_m")
    accepted = data.draw(st.none() | st.frozensets(st.sampled_from(ids or ["x"])), label="accept")
    accept = None if accepted is None else accepted.__contains__
    index = build(officers, resolution)

    found = index.nearest(lat, lon, k=k, radius_m=radius_m, accept=accept)

    assert found == nearest_brute_force(officers, lat, lon, k=k, radius_m=radius_m, accept=accept)


@settings(max_examples=60, deadline=None)
@given(
    moves=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", "e"]),
            st.none() | st.tuples(st.floats(29.50, 29.62), st.floats(106.49, 106.61)),
        ),
        max_size=40,
    ),
    query=st.tuples(st.floats(29.50, 29.62), st.floats(106.49, 106.61)),
)
def test_moves_and_removals_keep_index_equal_to_latest_positions(
    moves: list[tuple[str, Point | None]], query: Point
) -> None:
    index = PointIndex(9)
    latest: dict[str, Point] = {}
    for officer_id, position in moves:
        if position is None:
            index.remove(officer_id)
            latest.pop(officer_id, None)
        else:
            index.upsert(officer_id, *position)
            latest[officer_id] = position

    assert len(index) == len(latest)
    assert {o: index.position(o) for o in latest} == latest
    assert index.nearest(*query, k=3, radius_m=20_000) == nearest_brute_force(
        latest, *query, k=3, radius_m=20_000
    )


def test_upsert_moves_officer_out_of_its_old_cell() -> None:
    index = PointIndex(8)
    index.upsert("A", *CHONGQING)
    old_cell = index.cell_of("A")
    index.upsert("A", 29.70, 106.70)

    assert index.cell_of("A") == h3.latlng_to_cell(29.70, 106.70, 8) != old_cell
    assert index.position("A") == (29.70, 106.70)
    assert len(index) == 1
    assert index.nearest(*CHONGQING, k=1, radius_m=1_000) == []
    assert [c.point_id for c in index.nearest(29.70, 106.70, k=1, radius_m=1)] == ["A"]


def test_remove_forgets_officer_and_ignores_unknown_ids() -> None:
    index = PointIndex()
    index.upsert("A", *CHONGQING)
    index.remove("A")
    index.remove("never-seen")

    assert "A" not in index
    assert len(index) == 0
    assert index.position("A") is None
    assert index.cell_of("A") is None
    assert index.nearest(*CHONGQING, k=1, radius_m=10_000) == []


def test_equal_distances_are_ordered_by_officer_id() -> None:
    index = PointIndex()
    for officer_id in ["c", "a", "b"]:
        index.upsert(officer_id, 29.561, 106.551)

    found = index.nearest(*CHONGQING, k=2, radius_m=1_000)

    assert [c.point_id for c in found] == ["a", "b"]
    assert found[0].distance_m == found[1].distance_m
    assert Candidate(1.0, "b") < Candidate(1.0, "c") < Candidate(2.0, "a")


def test_far_officers_in_sparse_index_are_found_across_many_rings() -> None:
    officers = {"north": (29.95, 106.55), "east": (29.56, 106.95), "far": (31.0, 108.0)}
    index = build(officers, 9)

    found = index.nearest(*CHONGQING, k=2, radius_m=100_000)

    assert [c.point_id for c in found] == ["east", "north"]
    assert found == nearest_brute_force(officers, *CHONGQING, k=2, radius_m=100_000)


@pytest.mark.parametrize("resolution", [8, 9])
def test_queries_at_cell_corners_match_brute_force_in_a_city(resolution: int) -> None:
    # Corner queries sit as far from their cell's centre as possible, which is where a ring
    # bound that ignored the query's offset would be wrong.
    rng = random.Random(resolution)
    officers = {
        f"o{i}": (29.56 + rng.uniform(-0.05, 0.05), 106.55 + rng.uniform(-0.05, 0.05))
        for i in range(300)
    }
    index = build(officers, resolution)
    for _ in range(150):
        cell = h3.latlng_to_cell(
            29.56 + rng.uniform(-0.05, 0.05), 106.55 + rng.uniform(-0.05, 0.05), resolution
        )
        lat, lon = rng.choice(h3.cell_to_boundary(cell))
        k = rng.randint(1, 3)
        assert index.nearest(lat, lon, k=k, radius_m=5_000) == nearest_brute_force(
            officers, lat, lon, k=k, radius_m=5_000
        )


def test_search_near_pentagon_is_exact_when_grid_ring_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failures: list[int] = []

    def failing_ring(cell: int, k: int) -> list[int]:
        failures.append(cell)
        raise h3.H3PentagonError("simulated")

    monkeypatch.setattr(h3_int, "grid_ring", failing_ring)
    pentagon = h3.cell_to_latlng(h3.get_pentagons(9)[3])
    rng = random.Random(7)
    officers = {
        f"o{i}": (pentagon[0] + rng.uniform(-0.03, 0.03), pentagon[1] + rng.uniform(-0.03, 0.03))
        for i in range(150)
    }
    index = build(officers, 9)
    for _ in range(30):
        lat, lon = pentagon[0] + rng.uniform(-0.03, 0.03), pentagon[1] + rng.uniform(-0.03, 0.03)
        assert index.nearest(lat, lon, k=3, radius_m=3_000) == nearest_brute_force(
            officers, lat, lon, k=3, radius_m=3_000
        )
    assert failures


def test_accept_is_asked_only_about_nearby_officers() -> None:
    rng = random.Random(3)
    officers = {
        f"o{i}": (29.56 + rng.uniform(-0.2, 0.2), 106.55 + rng.uniform(-0.2, 0.2))
        for i in range(2_000)
    }
    index = build(officers, 8)
    asked: list[str] = []

    def accept(officer_id: str) -> bool:
        asked.append(officer_id)
        return True

    index.nearest(*CHONGQING, k=1, radius_m=50_000, accept=accept)

    assert 1 <= len(asked) < 20


@pytest.mark.parametrize(
    ("lat", "lon", "k", "radius_m"),
    [
        (91.0, 0.0, 1, 10.0),
        (0.0, 181.0, 1, 10.0),
        (math.nan, 0.0, 1, 10.0),
        (0.0, 0.0, 0, 10.0),
        (0.0, 0.0, 1, -1.0),
        (0.0, 0.0, 1, math.nan),
    ],
)
def test_nearest_rejects_invalid_queries(lat: float, lon: float, k: int, radius_m: float) -> None:
    index = PointIndex()
    index.upsert("A", 0.0, 0.0)
    with pytest.raises(ValueError):
        index.nearest(lat, lon, k=k, radius_m=radius_m)


def test_upsert_rejects_positions_off_the_globe() -> None:
    with pytest.raises(ValueError):
        PointIndex().upsert("A", 95.0, 0.0)


@settings(max_examples=200, deadline=None)
@given(
    a=st.tuples(st.floats(-89.9, 89.9), st.floats(-180, 180)),
    b=st.tuples(st.floats(-89.9, 89.9), st.floats(-180, 180)),
)
def test_sphere_angle_scaled_by_radius_bounds_brackets_geodesic(a: Point, b: Point) -> None:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    angle = 2 * math.asin(math.sqrt(min(1.0, h)))
    distance = geodesic_m(*a, *b)

    assert R_MIN_M * angle - 1e-6 <= distance <= R_MAX_M * angle + 1e-6
