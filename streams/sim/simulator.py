"""A seeded simulated district: officers patrolling around their stations, GPS pings in the mixed
formats stations really send, alert calls, and a few malformed events."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

# Chongqing, Yuzhong district and surroundings.
CENTRE = (29.5630, 106.5516)
CATEGORIES = ("dispute", "theft", "traffic_accident", "noise", "weapon", "other")
CST = timezone(timedelta(hours=8))


@dataclass(slots=True)
class SimOfficer:
    officer_id: str
    station_id: str
    lat: float
    lon: float


def station_centres(stations: int, rng: random.Random) -> list[tuple[float, float]]:
    spread = 0.05  # ~5 km around the district centre
    return [
        (CENTRE[0] + rng.uniform(-spread, spread), CENTRE[1] + rng.uniform(-spread, spread))
        for _ in range(stations)
    ]


def officers(
    count: int, centres: list[tuple[float, float]], rng: random.Random
) -> list[SimOfficer]:
    stations = len(centres)
    result = []
    for i in range(count):
        s = i % stations
        lat, lon = centres[s]
        result.append(
            SimOfficer(
                f"OFF-{i:04d}", f"ST-{s:02d}", lat + rng.gauss(0, 0.01), lon + rng.gauss(0, 0.01)
            )
        )
    return result


def render_time(epoch_ms: int, style: int) -> object:
    """Stations disagree on time formats; rotate through a few of them."""
    local = datetime.fromtimestamp(epoch_ms / 1000, tz=CST)
    if style == 0:
        return local.isoformat(timespec="milliseconds")
    if style == 1:
        return epoch_ms
    if style == 2:
        return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.strftime("%Y-%m-%d %H:%M:%S")


def ping(officer: SimOfficer, epoch_ms: int, rng: random.Random) -> dict[str, object]:
    officer.lat += rng.gauss(0, 0.0005)
    officer.lon += rng.gauss(0, 0.0005)
    style = rng.randrange(4)
    if style == 1:  # one station's legacy tracker: other field names, epoch ms
        return {
            "badge": officer.officer_id,
            "station": officer.station_id,
            "latitude": round(officer.lat, 6),
            "lng": round(officer.lon, 6),
            "timestamp": render_time(epoch_ms, style),
        }
    return {
        "officer_id": officer.officer_id,
        "station_id": officer.station_id,
        "lat": round(officer.lat, 6),
        "lon": round(officer.lon, 6),
        "ts": render_time(epoch_ms, style),
        "accuracy_m": round(rng.uniform(3, 25), 1),
    }


def alert(
    number: int, epoch_ms: int, centres: list[tuple[float, float]], rng: random.Random
) -> dict[str, object]:
    """An incident in some station's area (within a couple of km of it)."""
    station = rng.randrange(len(centres))
    lat = centres[station][0] + rng.gauss(0, 0.012)
    lon = centres[station][1] + rng.gauss(0, 0.012)
    return {
        "alert_id": f"AL-{number:06d}",
        "station_id": f"ST-{station:02d}",
        "category": rng.choice(CATEGORIES),
        "lat": round(lat, 6),
        "lon": round(lon, 6),
        "address": f"渝中区解放碑步行街{rng.randint(1, 300)}号",
        "description": "群众报警称有人发生纠纷",
        "caller_phone": f"138{rng.randint(10_000_000, 99_999_999)}",
        "time": render_time(epoch_ms, rng.randrange(4)),
    }


MALFORMED: tuple[bytes, ...] = (
    b"{not json",
    b'{"officer_id": "OFF-X", "lat": 95.0, "lon": 106.5, "ts": "2022-10-15T15:05:00+08:00"}',
    b'{"officer_id": "OFF-Y", "lat": 29.5, "lon": 106.5, "ts": "2023-02-29 10:00:00"}',
    b'{"lat": 29.5, "lon": 106.5, "ts": "2022-10-15T15:05:00+08:00"}',
)


def ping_rounds(
    fleet: list[SimOfficer], rounds: int, start_ms: int, step_ms: int, rng: random.Random
) -> Iterator[dict[str, object]]:
    for r in range(rounds):
        for officer in fleet:
            yield ping(officer, start_ms + r * step_ms + rng.randrange(step_ms // 2), rng)
