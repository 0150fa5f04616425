"""Camera coverage: range, facing, wrap-around at north, offline cameras, and the H3 index."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from streams.dispatch.cameras import Camera, CameraIndex, angle_between, cameras_covering
from streams.dispatch.nearest import geodesic_m

INCIDENT = (29.5600, 106.5500)
# About 111 m south of the incident: the incident bears 0° (north) from here.
SOUTH = (29.5590, 106.5500)


def placed_so_incident_bears(bearing_deg: float, distance_m: float = 100.0) -> tuple[float, float]:
    """A camera position from which the incident lies at `bearing_deg`."""
    lon, lat, _ = Geod(ellps="WGS84").fwd(INCIDENT[1], INCIDENT[0], bearing_deg + 180.0, distance_m)
    return lat, lon


def camera(
    camera_id: str = "cam",
    *,
    at: tuple[float, float] = SOUTH,
    heading_deg: float = 0.0,
    fov_deg: float = 60.0,
    range_m: float = 300.0,
    online: bool = True,
) -> Camera:
    return Camera(camera_id, at[0], at[1], heading_deg, fov_deg, range_m, online)


def test_camera_facing_the_incident_sees_it() -> None:
    [view] = cameras_covering([camera()], *INCIDENT, radius_m=1_000)

    assert view.camera_id == "cam"
    assert view.distance_m == pytest.approx(110.8, abs=0.5)
    assert view.bearing_deg == pytest.approx(0.0, abs=0.01) or view.bearing_deg > 359.99


def test_camera_facing_away_does_not_see_it() -> None:
    assert cameras_covering([camera(heading_deg=180.0)], *INCIDENT, radius_m=1_000) == []


def test_heading_350_with_fov_40_sees_bearing_5() -> None:
    at = placed_so_incident_bears(5.0)
    [view] = cameras_covering(
        [camera(at=at, heading_deg=350.0, fov_deg=40.0)], *INCIDENT, radius_m=1_000
    )

    assert view.bearing_deg == pytest.approx(5.0, abs=0.01)


def test_heading_350_with_fov_20_misses_bearing_5() -> None:
    at = placed_so_incident_bears(5.0)
    assert (
        cameras_covering(
            [camera(at=at, heading_deg=350.0, fov_deg=20.0)], *INCIDENT, radius_m=1_000
        )
        == []
    )


def test_omnidirectional_camera_sees_every_direction() -> None:
    assert cameras_covering([camera(heading_deg=180.0, fov_deg=360.0)], *INCIDENT, radius_m=1_000)


def test_offline_camera_is_excluded() -> None:
    assert cameras_covering([camera(online=False)], *INCIDENT, radius_m=1_000) == []


def test_camera_beyond_its_range_or_the_search_radius_is_excluded() -> None:
    assert cameras_covering([camera(range_m=100.0)], *INCIDENT, radius_m=1_000) == []
    assert cameras_covering([camera(range_m=300.0)], *INCIDENT, radius_m=100.0) == []


def test_camera_on_the_incident_spot_sees_it_whatever_its_heading() -> None:
    assert cameras_covering([camera(at=INCIDENT, heading_deg=90.0)], *INCIDENT, radius_m=10)


def test_views_are_sorted_by_distance_then_camera_id() -> None:
    cameras = [camera("b"), camera("a"), camera("near", at=(29.5595, 106.5500))]

    views = cameras_covering(cameras, *INCIDENT, radius_m=1_000)

    assert [v.camera_id for v in views] == ["near", "a", "b"]


def test_angle_between_wraps_around_north() -> None:
    assert angle_between(355.0, 5.0) == pytest.approx(10.0)
    assert angle_between(5.0, 355.0) == pytest.approx(10.0)
    assert angle_between(0.0, 180.0) == pytest.approx(180.0)


def test_camera_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        camera(fov_deg=0.0)
    with pytest.raises(ValueError):
        camera(range_m=-1.0)


cameras_near = st.builds(
    Camera,
    camera_id=st.text("abcdef", min_size=1, max_size=3),
    lat=st.floats(29.54, 29.58),
    lon=st.floats(106.53, 106.57),
    heading_deg=st.floats(0.0, 360.0),
    fov_deg=st.floats(1.0, 400.0),
    range_m=st.floats(0.0, 3_000.0),
    online=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(
    cameras=st.lists(cameras_near, max_size=30, unique_by=lambda c: c.camera_id),
    point=st.tuples(st.floats(29.54, 29.58), st.floats(106.53, 106.57)),
    radius_m=st.floats(0.0, 4_000.0),
)
def test_camera_index_gives_the_same_views_as_a_scan(
    cameras: list[Camera], point: tuple[float, float], radius_m: float
) -> None:
    index = CameraIndex(cameras, resolution=9)

    assert index.covering(*point, radius_m=radius_m) == cameras_covering(
        cameras, *point, radius_m=radius_m
    )


def test_camera_index_forgets_removed_cameras() -> None:
    index = CameraIndex([camera("a"), camera("b", range_m=5_000.0)])
    index.remove("b")

    assert len(index) == 1
    assert [v.camera_id for v in index.covering(*INCIDENT, radius_m=10_000)] == ["a"]


def test_view_distance_is_the_geodesic_from_the_camera() -> None:
    [view] = cameras_covering([camera()], *INCIDENT, radius_m=1_000)
    assert view.distance_m == geodesic_m(*SOUTH, *INCIDENT)
