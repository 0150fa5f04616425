"""Which fixed cameras can see an incident: online, within range, and facing it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyproj import Geod

from schemas.events import BodyCamera, CameraMeta, CameraRef
from streams.dispatch.nearest import DEFAULT_RESOLUTION, PointIndex

_GEOD = Geod(ellps="WGS84")

# Closer than this the bearing from camera to incident is meaningless, so the camera counts as
# seeing it whatever its heading.
SAME_SPOT_M = 1.0


@dataclass(frozen=True, slots=True)
class Camera:
    camera_id: str
    lat: float
    lon: float
    heading_deg: float  # direction of the optical axis: 0 = north, clockwise
    fov_deg: float  # full horizontal field of view; >= 360 means omnidirectional
    range_m: float
    online: bool = True

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"camera {self.camera_id}: position out of range")
        if not self.fov_deg > 0.0:
            raise ValueError(f"camera {self.camera_id}: fov_deg must be positive")
        if not self.range_m >= 0.0:
            raise ValueError(f"camera {self.camera_id}: range_m must be non-negative")


@dataclass(frozen=True, slots=True)
class CameraView:
    camera_id: str
    distance_m: float
    bearing_deg: float  # from the camera to the incident, in [0, 360)


def angle_between(a_deg: float, b_deg: float) -> float:
    """The smaller angle between two bearings, in [0, 180]."""
    return abs((a_deg - b_deg + 180.0) % 360.0 - 180.0)


def view_of(camera: Camera, lat: float, lon: float, *, radius_m: float) -> CameraView | None:
    """How `camera` sees the point, or None when it is offline, too far, or facing elsewhere."""
    if not camera.online:
        return None
    azimuth, _, distance = _GEOD.inv(camera.lon, camera.lat, lon, lat)
    if distance > min(radius_m, camera.range_m):
        return None
    bearing = float(azimuth) % 360.0
    in_view = (
        camera.fov_deg >= 360.0
        or distance < SAME_SPOT_M
        or angle_between(bearing, camera.heading_deg) <= camera.fov_deg / 2.0
    )
    return CameraView(camera.camera_id, float(distance), bearing) if in_view else None


def cameras_covering(
    cameras: Iterable[Camera], lat: float, lon: float, *, radius_m: float
) -> list[CameraView]:
    """The cameras that see the point, nearest first (ties by camera id)."""
    views = (view_of(camera, lat, lon, radius_m=radius_m) for camera in cameras)
    return sorted((v for v in views if v is not None), key=lambda v: (v.distance_m, v.camera_id))


class CameraIndex:
    """Cameras bucketed by H3 cell, so `covering` looks only at cameras near the point; it gives
    the same answer as `cameras_covering` over all of them."""

    def __init__(
        self, cameras: Iterable[Camera] = (), resolution: int = DEFAULT_RESOLUTION
    ) -> None:
        self._cameras: dict[str, Camera] = {}
        self._positions = PointIndex(resolution)
        self._max_range_m = 0.0
        for camera in cameras:
            self.add(camera)

    def __len__(self) -> int:
        return len(self._cameras)

    def add(self, camera: Camera) -> None:
        """Add a camera or replace the one with the same id."""
        self._cameras[camera.camera_id] = camera
        self._positions.upsert(camera.camera_id, camera.lat, camera.lon)
        self._max_range_m = max(self._max_range_m, camera.range_m)

    def remove(self, camera_id: str) -> None:
        if self._cameras.pop(camera_id, None) is not None:
            self._positions.remove(camera_id)
            self._max_range_m = max((c.range_m for c in self._cameras.values()), default=0.0)

    def covering(self, lat: float, lon: float, *, radius_m: float) -> list[CameraView]:
        # The spatial search measures from the point to the camera and `view_of` from the camera
        # to the point; a metre of margin absorbs any last-bit difference, `view_of` decides.
        reach_m = min(radius_m, self._max_range_m) + SAME_SPOT_M
        if not self._cameras:
            return []
        near = self._positions.nearest(
            lat,
            lon,
            k=len(self._cameras),
            radius_m=reach_m,
            accept=lambda camera_id: self._cameras[camera_id].online,
        )
        return cameras_covering(
            (self._cameras[c.point_id] for c in near), lat, lon, radius_m=radius_m
        )


class CameraRegistry:
    """Every camera's latest metadata: fixed ones in a spatial index, body-worn ones by officer.
    Fed from the `cameras` table's changelog on every worker, like the officer view."""

    def __init__(self, resolution: int = DEFAULT_RESOLUTION) -> None:
        self.fixed = CameraIndex(resolution=resolution)
        self.meta: dict[str, CameraMeta] = {}
        self.body_by_officer: dict[str, dict[str, CameraMeta]] = {}

    def apply(self, camera_id: str, meta: CameraMeta | None) -> None:
        old = self.meta.pop(camera_id, None)
        if old is not None and old.kind == "body" and old.officer_id:
            self.body_by_officer.get(old.officer_id, {}).pop(camera_id, None)
        self.fixed.remove(camera_id)
        if meta is None:
            return
        self.meta[camera_id] = meta
        if meta.kind == "body" and meta.officer_id:
            self.body_by_officer.setdefault(meta.officer_id, {})[camera_id] = meta
        elif meta.kind == "fixed" and meta.lat is not None and meta.lon is not None:
            self.fixed.add(
                Camera(
                    camera_id,
                    meta.lat,
                    meta.lon,
                    meta.heading_deg,
                    meta.fov_deg,
                    meta.range_m,
                    meta.online,
                )
            )

    def covering(self, lat: float, lon: float, *, radius_m: float) -> list[CameraRef]:
        refs = []
        for view in self.fixed.covering(lat, lon, radius_m=radius_m):
            meta = self.meta[view.camera_id]
            assert meta.lat is not None and meta.lon is not None
            refs.append(
                CameraRef(
                    camera_id=view.camera_id,
                    lat=meta.lat,
                    lon=meta.lon,
                    distance_m=round(view.distance_m, 1),
                    bearing_deg=round(view.bearing_deg, 1),
                )
            )
        return refs

    def body_cameras(self, officer_ids: Iterable[str]) -> list[BodyCamera]:
        return [
            BodyCamera(camera_id=meta.camera_id, officer_id=oid, online=meta.online)
            for oid in officer_ids
            for meta in sorted(self.body_by_officer.get(oid, {}).values(), key=_camera_id)
        ]


def _camera_id(meta: CameraMeta) -> str:
    return meta.camera_id
