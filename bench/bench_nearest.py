"""Benchmark of nearest-officer search: the H3 PointIndex against the brute-force oracle and a
scipy cKDTree peer (unit-sphere ECEF, geodesic re-rank), on static and on moving officers.

    .venv/bin/python bench/bench_nearest.py [--sizes 1000,10000,100000] [--queries 2000]

All methods answer the same queries; the results are checked identical before timings print.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import h3
import numpy as np
import pyproj
import scipy
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.dispatch.nearest import (
    R_MIN_M,
    Candidate,
    PointIndex,
    geodesic_m,
    nearest_brute_force,
)

CENTRE = (29.56, 106.55)  # Chongqing
HALF_LAT = 20_000 / 111_320  # a 40 km x 40 km city
HALF_LON = HALF_LAT / math.cos(math.radians(CENTRE[0]))
RADIUS_M = 5_000.0
MOVE_M = 50.0  # one ping's displacement, at most
AVAILABLE = 0.8  # share of officers the accept filter admits

Point = tuple[float, float]
Accept = Callable[[str], bool]


def random_point(rng: random.Random) -> Point:
    return (
        CENTRE[0] + rng.uniform(-HALF_LAT, HALF_LAT),
        CENTRE[1] + rng.uniform(-HALF_LON, HALF_LON),
    )


def nudged(rng: random.Random, point: Point) -> Point:
    step = MOVE_M / 111_320
    lat = min(CENTRE[0] + HALF_LAT, max(CENTRE[0] - HALF_LAT, point[0] + rng.uniform(-step, step)))
    lon = min(CENTRE[1] + HALF_LON, max(CENTRE[1] - HALF_LON, point[1] + rng.uniform(-step, step)))
    return lat, lon


def unit_vectors(lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lats), np.radians(lons)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


class KdTreePeer:
    """cKDTree over lat/lon as unit-sphere vectors (chord order = angle order), exact by re-ranking
    candidates with the same geodesic and widening until the angle bound R_MIN·θ rules out the
    rest. Moves update the coordinates; the tree must be rebuilt before the next query."""

    def __init__(self, ids: Sequence[str], positions: Sequence[Point]) -> None:
        self.ids = list(ids)
        self.lats = np.array([p[0] for p in positions])
        self.lons = np.array([p[1] for p in positions])
        self.xyz = unit_vectors(self.lats, self.lons)
        self.rebuild()

    def rebuild(self) -> None:
        self.tree = cKDTree(self.xyz, balanced_tree=False, compact_nodes=False)

    def move(self, rows: np.ndarray, lats: np.ndarray, lons: np.ndarray) -> None:
        self.lats[rows], self.lons[rows] = lats, lons
        self.xyz[rows] = unit_vectors(lats, lons)

    def nearest(
        self, lat: float, lon: float, *, k: int, radius_m: float, accept: Accept
    ) -> list[Candidate]:
        query = unit_vectors(np.array([lat]), np.array([lon]))[0]
        max_chord = 2 * math.sin(min(math.pi, (radius_m + 1.0) / R_MIN_M) / 2)
        n, m = len(self.ids), max(8, 4 * k)
        while True:
            chords, rows = self.tree.query(query, k=min(m, n), distance_upper_bound=max_chord)
            found = []
            for row in np.atleast_1d(rows):
                if row == n or not accept(self.ids[row]):
                    continue
                distance = geodesic_m(lat, lon, float(self.lats[row]), float(self.lons[row]))
                if distance <= radius_m:
                    found.append((distance, self.ids[row]))
            found.sort()
            best = found[:k]
            last = float(np.atleast_1d(chords)[-1])
            if m >= n or math.isinf(last):
                break
            if len(best) == k and R_MIN_M * 2 * math.asin(last / 2) - 1.0 > best[-1][0]:
                break
            m *= 2
        return [Candidate(d, officer_id) for d, officer_id in best]


@dataclass(frozen=True, slots=True)
class Timing:
    label: str
    samples_us: list[float]

    def row(self) -> str:
        s = sorted(self.samples_us)
        p50 = s[len(s) // 2]
        p99 = s[min(len(s) - 1, math.ceil(len(s) * 0.99) - 1)]
        mean = statistics.fmean(s)
        return f"  {self.label:<30} {p50:>10.1f} {p99:>10.1f} {mean:>10.1f} {len(s):>7}"


def timed(call: Callable[[], list[Candidate]]) -> tuple[float, list[Candidate]]:
    start = time.perf_counter_ns()
    result = call()
    return (time.perf_counter_ns() - start) / 1000, result


def static_run(
    n: int, queries: list[Point], brute_queries: int, resolutions: list[int], seed: int
) -> list[Timing]:
    rng = random.Random(seed)
    officers = {f"officer-{i:06d}": random_point(rng) for i in range(n)}
    available = set(rng.sample(sorted(officers), int(n * AVAILABLE)))
    accept = available.__contains__

    kd = KdTreePeer(list(officers), list(officers.values()))
    kd_times, kd_results = [], []
    for q in queries:
        us, found = timed(partial(kd.nearest, *q, k=1, radius_m=RADIUS_M, accept=accept))
        kd_times.append(us)
        kd_results.append(found)
    timings = [Timing("cKDTree + geodesic re-rank", kd_times)]

    for resolution in resolutions:
        index = PointIndex(resolution)
        for officer_id, (lat, lon) in officers.items():
            index.upsert(officer_id, lat, lon)
        # The first pass fills the per-cell caches a long-running worker has; the second is timed
        # as the steady state. Both are checked.
        for label in (f"h3 r{resolution} (1st pass, cold)", f"h3 r{resolution}"):
            times = []
            for q, expected in zip(queries, kd_results, strict=True):
                us, found = timed(partial(index.nearest, *q, k=1, radius_m=RADIUS_M, accept=accept))
                times.append(us)
                if found != expected:
                    raise AssertionError(f"h3 r{resolution} != kd-tree at query {q}")
            timings.append(Timing(label, times))

    brute_times = []
    for i, q in enumerate(queries[:brute_queries]):
        oracle = partial(nearest_brute_force, officers, *q, k=1, radius_m=RADIUS_M, accept=accept)
        us, found = timed(oracle)
        brute_times.append(us)
        if found != kd_results[i]:
            raise AssertionError(f"brute force != kd-tree at query {q}")
    timings.append(Timing("brute force (oracle)", brute_times))
    return timings


def moving_run(
    n: int, queries: list[Point], moves_per_query: int, resolution: int, seed: int
) -> list[Timing]:
    rng = random.Random(seed + 1)
    ids = [f"officer-{i:06d}" for i in range(n)]
    positions = [random_point(rng) for _ in range(n)]
    index = PointIndex(resolution)
    for officer_id, (lat, lon) in zip(ids, positions, strict=True):
        index.upsert(officer_id, lat, lon)
    for q in queries:  # warm the cell caches, as a long-running worker has them
        index.nearest(*q, k=1, radius_m=RADIUS_M)
    kd = KdTreePeer(ids, positions)
    accept: Accept = lambda _officer_id: True  # noqa: E731

    h3_times, kd_times, rebuild_times = [], [], []
    for q in queries:
        rows = [rng.randrange(n) for _ in range(moves_per_query)]
        for row in rows:
            positions[row] = nudged(rng, positions[row])
        moved = [positions[row] for row in rows]

        start = time.perf_counter_ns()
        for row, (lat, lon) in zip(rows, moved, strict=True):
            index.upsert(ids[row], lat, lon)
        h3_found = index.nearest(*q, k=1, radius_m=RADIUS_M)
        h3_times.append((time.perf_counter_ns() - start) / 1000)

        start = time.perf_counter_ns()
        kd.move(np.array(rows), np.array([p[0] for p in moved]), np.array([p[1] for p in moved]))
        rebuild_start = time.perf_counter_ns()
        kd.rebuild()
        rebuild_times.append((time.perf_counter_ns() - rebuild_start) / 1000)
        kd_found = kd.nearest(*q, k=1, radius_m=RADIUS_M, accept=accept)
        kd_times.append((time.perf_counter_ns() - start) / 1000)
        if h3_found != kd_found:
            raise AssertionError(f"moving: h3 != kd-tree at query {q}")
    return [
        Timing(f"h3 r{resolution}: upserts + query", h3_times),
        Timing("cKDTree: moves + rebuild + query", kd_times),
        Timing("  of which rebuild", rebuild_times),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="officer counts")
    parser.add_argument("--queries", type=int, default=2000, help="k=1 queries per size")
    parser.add_argument("--resolutions", default="8", help="H3 resolutions to time, e.g. 7,8,9")
    parser.add_argument("--moves", type=int, default=100, help="officer moves before each query")
    parser.add_argument("--moving-queries", type=int, default=300)
    parser.add_argument("--brute-budget", type=int, default=2_000_000, help="officer-distances")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    resolutions = [int(r) for r in args.resolutions.split(",")]

    print(
        f"machine: nproc={os.cpu_count()} {platform.machine()} "
        f"python={platform.python_version()} ({platform.python_implementation()}) "
        f"h3={h3.__version__} pyproj={pyproj.__version__} scipy={scipy.__version__} "
        f"numpy={np.__version__}"
    )
    print(
        f"city: 40 km x 40 km around {CENTRE}; k=1, radius {RADIUS_M:.0f} m, "
        f"accept admits {AVAILABLE:.0%} of officers (static runs); seed {args.seed}"
    )
    started = time.perf_counter()
    for n in sizes:
        rng = random.Random(args.seed * 1_000_003 + n)
        queries = [random_point(rng) for _ in range(args.queries)]
        brute_queries = max(10, min(args.queries, args.brute_budget // n))
        static = static_run(n, queries, brute_queries, resolutions, args.seed)
        moving = moving_run(
            n, queries[: args.moving_queries], args.moves, resolutions[0], args.seed
        )
        print(
            f"\n{n} officers - static; answers identical: h3 = kd-tree on all {len(queries)} "
            f"queries, = brute force on the first {brute_queries}"
        )
        print(f"  {'method':<30} {'p50 us':>10} {'p99 us':>10} {'mean us':>10} {'queries':>7}")
        for timing in static:
            print(timing.row())
        print(
            f"{n} officers - moving: {args.moves} moves before each query "
            f"(h3 = kd-tree on all {len(moving[0].samples_us)} queries)"
        )
        for timing in moving:
            print(timing.row())
        h3_mean = statistics.fmean(moving[0].samples_us)
        kd_mean = statistics.fmean(moving[1].samples_us)
        print(f"  kd-tree / h3 per-query cost incl. updates: {kd_mean / h3_mean:.1f}x")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
