"""Nearest officers to a point: an in-memory index of officer positions keyed by H3 cell, searched
best-first over H3 rings, exact by WGS84 geodesic distance (identical to `nearest_brute_force`).

Default resolution 8: mean edge ~531 m, cell ~0.74 km², neighbouring centres ~0.9 km apart. A
query costs roughly (cells visited) x per-cell overhead + (officers in them) x a haversine test, so
the best resolution puts a few officers in a cell: for thousands of officers over a ~1600 km² city
that is res 8 (1k-10k officers -> ~0.5-5 per cell), and a 5 km radius is ~6 rings. Warm k=1 p50 from
bench/bench_nearest.py --resolutions 7,8,9 (2 cores): 1k officers r7 18 µs, r8 24, r9 49; 10k r7
33, r8 21, r9 25; 100k r8 69, r9 35. Res 9 suits ~100k officers or very dense districts; res 7
only small fleets. The resolution is a setting (`h3_resolution`), this is its default.
"""

from __future__ import annotations

import heapq
import math
from bisect import insort
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import h3
from h3.api import basic_int as h3_int
from pyproj import Geod

DEFAULT_RESOLUTION = 8

_GEOD = Geod(ellps="WGS84")

# Bounds between WGS84 geodesic length and the angle on a unit sphere with the same lat/lon numbers.
# The ellipsoid metric is ds² = M(φ)² dφ² + N(φ)² cos²φ dλ²; the unit sphere's is dφ² + cos²φ dλ².
# The radii of curvature M (meridian) and N (prime vertical) both lie in [a(1-e²), a/√(1-e²)]
# (M at the equator is the least, M = N at the poles the greatest), so every curve is between
# R_MIN and R_MAX times as long on the ellipsoid as its image on the sphere. Hence for any points
# P, Q with spherical angle θ: R_MIN·θ <= geodesic(P, Q) <= R_MAX·θ (about 1% apart).
R_MIN_M = _GEOD.a * (1.0 - _GEOD.es)
R_MAX_M = _GEOD.a / math.sqrt(1.0 - _GEOD.es)

# Absorbs floating-point error in H3's point-in-cell assignment and vertices, in the haversine and
# in pyproj (double rounding at Earth scale: nanometres to micrometres): a bound loose by a metre
# costs nothing measurable, one too tight by a micrometre would break exactness.
_SLACK_M = 1.0

# Cell shapes are cached; a city has a few thousand cells per resolution, this bounds a roaming one.
_MAX_CACHED_CELLS = 1 << 16


@dataclass(frozen=True, slots=True, order=True)
class Candidate:
    """One search result; ordered by distance, ties broken by id."""

    distance_m: float
    point_id: str


def geodesic_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance in metres on the WGS84 ellipsoid (Karney's algorithm via pyproj)."""
    return float(_GEOD.inv(lon1, lat1, lon2, lat2)[2])


def nearest_brute_force(
    points: Mapping[str, tuple[float, float]],
    lat: float,
    lon: float,
    *,
    k: int = 1,
    radius_m: float,
    accept: Callable[[str], bool] | None = None,
) -> list[Candidate]:
    """The oracle: a linear scan with the same distance function and tie-break as `nearest`."""
    _check_query(lat, lon, k, radius_m)
    found = []
    for point_id, (plat, plon) in points.items():
        distance = geodesic_m(lat, lon, plat, plon)
        if distance <= radius_m and (accept is None or accept(point_id)):
            found.append((distance, point_id))
    return [Candidate(d, point_id) for d, point_id in heapq.nsmallest(k, found)]


# A point or cell centre on the unit sphere: (lat rad, lon rad, cos lat).
_Point = tuple[float, float, float]


def _point(lat_deg: float, lon_deg: float) -> _Point:
    lat = math.radians(lat_deg)
    return lat, math.radians(lon_deg), math.cos(lat)


def _angle(p: _Point, q: _Point) -> float:
    """Central angle between points on the unit sphere (haversine: well-conditioned when small)."""
    h = math.sin((q[0] - p[0]) * 0.5) ** 2 + p[2] * q[2] * math.sin((q[1] - p[1]) * 0.5) ** 2
    return 2.0 * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True, slots=True)
class _Cell:
    """A cell's centre and `reach_m`, an upper bound on the geodesic from the centre to any point
    of the cell, so `R_MIN_M * angle(q, centre) - reach_m` bounds the geodesic from q to the cell
    from below (triangle inequality)."""

    cell: int
    centre: _Point
    reach_m: float

    @classmethod
    def of(cls, cell: int) -> _Cell:
        # H3 cell edges are great-circle arcs (straight lines in each icosahedron face's gnomonic
        # plane; cells crossing a face edge get extra vertices there). Along a great-circle arc
        # the angle from a nearby fixed point has no interior maximum, so the farthest point of a
        # small cell from its centre is a vertex.
        centre = _point(*h3_int.cell_to_latlng(cell))
        rho = max(_angle(centre, _point(*vertex)) for vertex in h3_int.cell_to_boundary(cell))
        return cls(cell, centre, R_MAX_M * rho + _SLACK_M)

    def bound_m(self, query: _Point) -> float:
        return R_MIN_M * _angle(query, self.centre) - self.reach_m


@dataclass(frozen=True, slots=True)
class _Ring:
    """The cells at one grid distance from an origin cell, and `bound_m`, the least of their
    bounds as seen from the origin's centre."""

    cells: tuple[_Cell, ...]
    bound_m: float


def _ring_cells(origin: int, distance: int) -> list[int]:
    """Cells at exactly `distance` grid steps from `origin`, pentagons included."""
    try:
        return list(h3_int.grid_ring(origin, distance))
    except h3.H3BaseException:
        inner = set(h3_int.grid_disk(origin, distance - 1))
        return [cell for cell in h3_int.grid_disk(origin, distance) if cell not in inner]


def _check_point(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"position out of range: lat={lat} lon={lon}")


def _check_query(lat: float, lon: float, k: int, radius_m: float) -> None:
    _check_point(lat, lon)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not radius_m >= 0.0:
        raise ValueError(f"radius_m must be non-negative, got {radius_m}")


def _haversine_limit(limit_m: float) -> float:
    """The haversine term h = sin²(angle/2) beyond which R_MIN_M * angle - slack > limit_m."""
    angle = (limit_m + _SLACK_M) / R_MIN_M
    return math.sin(angle * 0.5) ** 2 if angle < math.pi else math.inf


@dataclass(frozen=True, slots=True)
class _Query:
    lat: float
    lon: float
    point: _Point
    k: int
    radius_m: float
    accept: Callable[[str], bool] | None


# Heap entries are (lower bound in metres, ring, cell): ring 0 means "scan `cell`", ring j >= 1
# means "queue the cells at grid distance j from the query's cell" (cell is then 0).
_Entry = tuple[float, int, int]


class PointIndex:
    """Latest positions of points keyed by id (officers; the camera registry uses one too),
    bucketed by H3 cell; moves are O(1).

    `nearest` is a best-first search over cells ordered by a lower bound on the geodesic from the
    query to any point in them (`_Cell.bound_m`); it stops once the next bound exceeds the k-th
    distance found or the radius, so the answer is exact.

    Rings around the query's cell c0 are enumerated only when needed. The entry for ring j is keyed
    by a lower bound on the distance to anything at grid distance >= j, the larger of:
    - `ring_j.bound_m - R_MIN_M * angle(query, centre of c0)`: for a cell C in ring j,
      angle(q, C) >= angle(c0, C) - angle(q, c0) on the sphere, so its bound from q is at least
      its bound from c0's centre minus the query's offset within c0 (scaled by R_MIN_M);
    - the least bound among the cells of ring j - 1: cells that share a boundary point are grid
      neighbours, so a geodesic from the query (in c0) to anything at grid distance >= j passes
      through a cell at distance j - 1 and is at least as long as its part up to there.
    Both are sound by construction, with no assumption on H3 cell sizes or distortion. When a ring
    would hold as many cells as are occupied in total, the search instead queues every occupied
    cell it has not seen, which bounds the work for sparse indexes and large radii.
    """

    def __init__(self, resolution: int = DEFAULT_RESOLUTION) -> None:
        if not 0 <= resolution <= 15:
            raise ValueError(f"H3 resolution must be in 0..15, got {resolution}")
        self.resolution = resolution
        # Cells are H3 integers inside (cheaper than hex strings); cell_of returns the string.
        self._where: dict[str, tuple[int, float, float]] = {}
        # cell -> officer -> (lat, lon) in degrees for pyproj, then as a _Point for the haversine
        self._members: dict[int, dict[str, tuple[float, float, float, float, float]]] = {}
        self._cells: dict[int, _Cell] = {}
        self._rings: dict[int, list[_Ring]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, point_id: object) -> bool:
        return point_id in self._where

    def position(self, point_id: str) -> tuple[float, float] | None:
        where = self._where.get(point_id)
        return None if where is None else (where[1], where[2])

    def cell_of(self, point_id: str) -> str | None:
        where = self._where.get(point_id)
        return None if where is None else h3_int.int_to_str(where[0])

    def upsert(self, point_id: str, lat: float, lon: float) -> None:
        """Insert a point or move it to a new position."""
        _check_point(lat, lon)
        lat, lon = float(lat), float(lon)
        cell = h3_int.latlng_to_cell(lat, lon, self.resolution)
        old = self._where.get(point_id)
        if old is not None and old[0] != cell:
            self._leave(point_id, old[0])
        lat_rad = math.radians(lat)
        members = self._members.get(cell)
        if members is None:
            members = self._members[cell] = {}
        members[point_id] = (lat, lon, lat_rad, math.radians(lon), math.cos(lat_rad))
        self._where[point_id] = (cell, lat, lon)

    def remove(self, point_id: str) -> None:
        """Forget a point; unknown ids are ignored (a replayed delete is not an error)."""
        old = self._where.pop(point_id, None)
        if old is not None:
            self._leave(point_id, old[0])

    def nearest(
        self,
        lat: float,
        lon: float,
        *,
        k: int = 1,
        radius_m: float,
        accept: Callable[[str], bool] | None = None,
    ) -> list[Candidate]:
        """The k nearest officers within `radius_m` (inclusive) that `accept` admits, nearest
        first. `accept` must be a pure predicate; it is called only for officers close enough to
        matter."""
        _check_query(lat, lon, k, radius_m)
        if not self._where:
            return []
        query = _Query(lat, lon, _point(lat, lon), k, radius_m, accept)
        origin = h3_int.latlng_to_cell(lat, lon, self.resolution)
        home = self._cell(origin)
        offset_m = R_MIN_M * _angle(query.point, home.centre)
        best: list[tuple[float, str]] = []
        seen = {origin}
        heap: list[_Entry] = [(home.bound_m(query.point), 0, origin)]
        heapq.heappush(heap, (self._ring(origin, 1).bound_m - offset_m, 1, 0))
        bound = radius_m
        while heap and heap[0][0] <= bound:
            _, ring, cell = heapq.heappop(heap)
            if ring == 0:
                self._scan(cell, query, best)
                if len(best) == k:
                    bound = best[-1][0]
            elif 6 * ring >= len(self._members):
                self._sweep(query.point, bound, seen, heap)
            else:
                least = self._queue_ring(self._ring(origin, ring), query.point, bound, seen, heap)
                next_key = max(least, self._ring(origin, ring + 1).bound_m - offset_m)
                heapq.heappush(heap, (next_key, ring + 1, 0))
        return [Candidate(d, point_id) for d, point_id in best]

    def _leave(self, point_id: str, cell: int) -> None:
        members = self._members[cell]
        del members[point_id]
        if not members:
            del self._members[cell]

    def _cell(self, cell: int) -> _Cell:
        shape = self._cells.get(cell)
        if shape is None:
            if len(self._cells) >= _MAX_CACHED_CELLS:
                self._cells.clear()
                self._rings.clear()
            shape = self._cells[cell] = _Cell.of(cell)
        return shape

    def _ring(self, origin: int, distance: int) -> _Ring:
        rings = self._rings.setdefault(origin, [])
        while len(rings) < distance:
            cells = tuple(self._cell(cell) for cell in _ring_cells(origin, len(rings) + 1))
            origin_centre = self._cell(origin).centre
            rings.append(_Ring(cells, min(cell.bound_m(origin_centre) for cell in cells)))
        return rings[distance - 1]

    def _scan(self, cell: int, query: _Query, best: list[tuple[float, str]]) -> None:
        """Merge the officers of `cell` into `best` (sorted, at most k).

        An officer is skipped without a geodesic when its haversine term h exceeds `h_limit`, the
        h of the angle at which R_MIN_M * angle - slack reaches the current limit: h grows with
        the angle, so that officer is farther than the limit."""
        lat, lon, k, accept = query.lat, query.lon, query.k, query.accept
        qlat, qlon, qcos = query.point
        limit = best[-1][0] if len(best) == k else query.radius_m
        h_limit = _haversine_limit(limit)
        members = self._members.get(cell, {})
        inv, sin = _GEOD.inv, math.sin  # inv: the same call as geodesic_m, bound for the hot loop
        for point_id, (olat, olon, plat, plon, pcos) in members.items():
            h = sin((plat - qlat) * 0.5) ** 2 + qcos * pcos * sin((plon - qlon) * 0.5) ** 2
            if h > h_limit:
                continue
            distance = inv(lon, lat, olon, olat)[2]
            if len(best) == k:
                if (distance, point_id) >= best[-1]:
                    continue
            elif distance > limit:
                continue
            if accept is not None and not accept(point_id):
                continue
            insort(best, (distance, point_id))
            if len(best) > k:
                best.pop()
            if len(best) == k and best[-1][0] < limit:
                limit = best[-1][0]
                h_limit = _haversine_limit(limit)

    def _queue_ring(
        self, ring: _Ring, query: _Point, bound: float, seen: set[int], heap: list[_Entry]
    ) -> float:
        """Queue the ring's occupied cells that may hold a result; return the least cell bound."""
        least = math.inf
        members = self._members
        for shape in ring.cells:
            cell_bound = shape.bound_m(query)
            least = min(least, cell_bound)
            seen.add(shape.cell)
            if cell_bound <= bound and shape.cell in members:
                heapq.heappush(heap, (cell_bound, 0, shape.cell))
        return least

    def _sweep(self, query: _Point, bound: float, seen: set[int], heap: list[_Entry]) -> None:
        """Queue every occupied cell not seen yet (replaces ring walking once rings grow large)."""
        for cell in self._members:
            if cell not in seen:
                cell_bound = self._cell(cell).bound_m(query)
                if cell_bound <= bound:
                    heapq.heappush(heap, (cell_bound, 0, cell))
