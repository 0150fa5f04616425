"""The simulated district's geography: its extent, its stations and where its people are.

By default Jiangbei district of Chongqing: 18 stations at the places of its sub-districts and
towns (positions read by hand off public maps, to ~200 m; not survey data), the dense urban west
(Guanyinqiao, Jiangbeizui) weighted above the towns along the Yangtze in the east. Any other
station count or area spreads stations over the area on a jittered grid."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pyproj import Geod

GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True, slots=True)
class Area:
    """A lat/lon box: south, west, north, east."""

    south: float
    west: float
    north: float
    east: float

    @classmethod
    def parse(cls, text: str) -> Area:
        """`south,west,north,east` in degrees; ValueError with a one-line message if not."""
        try:
            south, west, north, east = (float(part) for part in text.split(","))
        except ValueError as exc:
            raise ValueError(
                f"area must be south,west,north,east in degrees, got {text!r}"
            ) from exc
        if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
            raise ValueError(f"area {text!r} is not a box (south < north, west < east)")
        return cls(south, west, north, east)

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east

    def clamp(self, lat: float, lon: float) -> tuple[float, float]:
        return min(max(lat, self.south), self.north), min(max(lon, self.west), self.east)


JIANGBEI = Area(south=29.545, west=106.480, north=29.730, east=106.840)

# (name, lat, lon, weight): weight is the share of the district's people (and calls) nearby.
JIANGBEI_STATIONS: tuple[tuple[str, float, float, float], ...] = (
    ("观音桥", 29.5752, 106.5313, 3.0),
    ("建新", 29.5718, 106.5383, 3.0),
    ("华新街", 29.5660, 106.5430, 2.5),
    ("北滨路", 29.5700, 106.5550, 2.0),
    ("江北城", 29.5690, 106.5730, 1.5),
    ("大庆村", 29.5830, 106.5480, 2.5),
    ("鲤鱼池", 29.5800, 106.5250, 2.5),
    ("大石坝", 29.5900, 106.5100, 2.0),
    ("石马河", 29.6000, 106.5170, 2.0),
    ("五里店", 29.5850, 106.5710, 2.0),
    ("溉澜溪", 29.5830, 106.5900, 1.5),
    ("寸滩", 29.6120, 106.6000, 1.2),
    ("港城", 29.6170, 106.6280, 1.0),
    ("唐家沱", 29.6080, 106.6400, 0.8),
    ("郭家沱", 29.5970, 106.6600, 0.8),
    ("铁山坪", 29.6100, 106.6900, 0.4),
    ("复盛", 29.6800, 106.7400, 0.5),
    ("鱼嘴", 29.6400, 106.7600, 0.8),
)


@dataclass(frozen=True, slots=True)
class Station:
    station_id: str
    name: str
    lat: float
    lon: float
    weight: float  # share of the people (and so of the calls)
    radius_m: float  # the area its officers patrol and its calls come from


@dataclass(frozen=True, slots=True)
class District:
    area: Area
    stations: tuple[Station, ...]

    def weights(self) -> np.ndarray:
        raw = np.array([s.weight for s in self.stations])
        return raw / raw.sum()


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def move_towards(
    lat: float, lon: float, lat2: float, lon2: float, step_m: float
) -> tuple[float, float, bool]:
    """Step `step_m` along the geodesic towards the target; True when it is reached."""
    azimuth, _, remaining = GEOD.inv(lon, lat, lon2, lat2)
    if remaining <= step_m:
        return lat2, lon2, True
    lon_next, lat_next, _ = GEOD.fwd(lon, lat, azimuth, step_m)
    return float(lat_next), float(lon_next), False


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point `east_m`, `north_m` metres away (a geodesic from the point)."""
    azimuth = math.degrees(math.atan2(east_m, north_m))
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, math.hypot(east_m, north_m))
    return float(lat2), float(lon2)


def jiangbei() -> District:
    return _with_radii(
        JIANGBEI,
        [(name, lat, lon, weight) for name, lat, lon, weight in JIANGBEI_STATIONS],
    )


def district_for(stations: int, area: Area | None, rng: np.random.Generator) -> District:
    """Jiangbei for the defaults; otherwise `stations` spread over `area` (a jittered grid, so
    they cover it evenly without lining up), weighted at random."""
    if stations < 1:
        raise ValueError(f"stations must be at least 1, got {stations}")
    if (area is None or area == JIANGBEI) and stations == len(JIANGBEI_STATIONS):
        return jiangbei()
    box = area or JIANGBEI
    columns = math.ceil(math.sqrt(stations * (box.east - box.west) / (box.north - box.south)))
    rows = math.ceil(stations / columns)
    cells = rng.permutation(rows * columns)[:stations]
    places: list[tuple[str, float, float, float]] = []
    for cell in sorted(int(c) for c in cells):
        row, column = divmod(cell, columns)
        lat = box.south + (row + rng.uniform(0.2, 0.8)) * (box.north - box.south) / rows
        lon = box.west + (column + rng.uniform(0.2, 0.8)) * (box.east - box.west) / columns
        places.append((f"站{len(places) + 1}", lat, lon, float(rng.uniform(0.5, 3.0))))
    return _with_radii(box, places)


def _with_radii(area: Area, places: list[tuple[str, float, float, float]]) -> District:
    """Each station patrols about half the way to its nearest neighbour (0.6..4 km)."""
    stations = []
    for i, (name, lat, lon, weight) in enumerate(places):
        nearest = min(
            (distance_m(lat, lon, other[1], other[2]) for j, other in enumerate(places) if j != i),
            default=8000.0,
        )
        radius = min(max(nearest / 2, 600.0), 4000.0)
        stations.append(Station(f"JB-{i + 1:03d}", name, lat, lon, weight, radius))
    return District(area, tuple(stations))
