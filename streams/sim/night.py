"""A simulated night in a district, event by event: officers on foot and in cars patrolling their
station's area and pinging (with GPS noise and the faults real feeds have), calls arriving as a
Poisson process with an evening profile, the officers' app answering assignments as people do,
cameras, and each station writing in its own legacy format.

Pure and deterministic for a seed: `Night.records()` yields what the stations send, in the order
it arrives (`Record.at_ms`, the record time); `Night.on_assignment` is how the dispatcher's
decisions come back, so the officers can answer them. Where the records go (Kafka, JSON Lines)
and who dispatches is `streams/sim/runner.py`'s business."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from streams.sim.district import (
    Area,
    District,
    Station,
    distance_m,
    district_for,
    move_towards,
    offset,
)
from streams.sim.formats import (
    MALFORMED_KINDS,
    ZONE,
    TimeFormat,
    format_of_station,
    gbk_mojibake,
    malformed,
    render_time,
)

# Relative call rate per local hour (peak 1.0 in the evening, as 110 call centres see it).
EVENING_PROFILE = (
    0.55, 0.45, 0.35, 0.28, 0.22, 0.22, 0.30, 0.45, 0.60, 0.68, 0.72, 0.78,
    0.80, 0.78, 0.76, 0.78, 0.82, 0.88, 0.95, 1.00, 1.00, 0.95, 0.85, 0.70,
)  # fmt: skip

# category: (share of calls, median minutes on scene, description)
CATEGORIES: dict[str, tuple[float, float, str]] = {
    "dispute": (0.30, 20.0, "群众报警称邻里发生纠纷，双方情绪激动"),
    "theft": (0.20, 25.0, "报警人称电动车被盗"),
    "traffic_accident": (0.17, 30.0, "两车追尾，无人员受伤，道路拥堵"),
    "noise": (0.15, 10.0, "楼上深夜噪音扰民"),
    "violence": (0.08, 40.0, "有人在街边斗殴"),
    "weapon": (0.03, 50.0, "有人持刀威胁路人"),
    "other": (0.07, 15.0, "求助：老人走失"),
}
VIOLENT = frozenset({"violence", "weapon"})
STREETS = ("建新北路", "观音桥步行街", "北城天街", "洋河路", "红石路", "港城路", "海尔路", "五简路")
PHONE_PREFIXES = ("138", "139", "158", "186", "177", "135", "199")

# Speeds in m/s: (patrol, responding).
FOOT_SPEED = (1.3, 2.2)
CAR_SPEED = (7.0, 12.0)


@dataclass(frozen=True, slots=True)
class NightConfig:
    seed: int = 7
    stations: int = 18
    officers_per_station: int = 30
    area: Area | None = None
    start_ms: int = int(datetime(2026, 11, 27, 18, 0, tzinfo=ZONE).timestamp() * 1000)
    duration_s: float = 3600.0
    patrol_share: float = 2 / 3
    car_share: float = 0.5  # of the officers on patrol
    ping_every_s: float = 5.0
    gps_noise_m: float = 8.0
    calls_per_station_hour: float = 2.0  # at the evening peak
    repeat_caller_share: float = 0.12
    malformed_share: float = 0.002  # of the records sent, an extra malformed one
    late_share: float = 0.01
    duplicate_share: float = 0.01
    out_of_order_share: float = 0.01
    gap_share: float = 0.002  # a ping that starts a silence of 1..5 minutes
    far_off_share: float = 0.0005
    ack_median_s: float = 15.0
    decline_share: float = 0.05
    no_ack_share: float = 0.03
    backup_share: float = 0.3  # of violent incidents
    cameras_per_station: int = 6
    camera_offline_share: float = 0.1
    mojibake_every: int = 5  # every n-th station's call system stores GBK read as Latin-1

    def __post_init__(self) -> None:
        if self.stations < 1 or self.officers_per_station < 1:
            raise ValueError("stations and officers per station must be at least 1")
        if self.duration_s <= 0 or self.ping_every_s <= 0:
            raise ValueError("duration and ping interval must be positive")
        for name in ("patrol_share", "car_share", "malformed_share", "decline_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")


@dataclass(frozen=True, slots=True)
class Record:
    """One record as it reaches the broker: `at_ms` is its record time (arrival), `topic` an
    input topic without prefix, `message` a JSON object or, for bytes that are not one, a str."""

    at_ms: int
    topic: str
    key: str | None
    message: Mapping[str, Any] | str


@dataclass(slots=True)
class SimOfficer:
    officer_id: str
    station: Station
    in_car: bool
    on_patrol: bool
    lat: float
    lon: float
    moved_ms: int
    target: tuple[float, float]
    alert_id: str | None = None
    responding: bool = False
    quiet_until_ms: int = 0

    def speed(self) -> float:
        pair = CAR_SPEED if self.in_car else FOOT_SPEED
        return pair[1] if self.responding else pair[0]


@dataclass(slots=True)
class Ledger:
    """What the simulator sent, to check the pipeline's figures against."""

    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> call as sent
    counts: Counter[str] = field(default_factory=Counter)  # kind of record or fault -> n
    formats: Counter[str] = field(default_factory=Counter)  # time format -> records
    answers: Counter[str] = field(default_factory=Counter)  # app answer -> n
    # officer, alert, where the officer set off from: every response the app acknowledged
    responses: list[tuple[str, str, float, float]] = field(default_factory=list)


class Night:
    def __init__(self, config: NightConfig, district: District) -> None:
        self.config = config
        self.district = district
        self.rng = np.random.default_rng(config.seed)
        self.end_ms = config.start_ms + int(config.duration_s * 1000)
        self.ledger = Ledger()
        self.officers: dict[str, SimOfficer] = {}
        self._queue: list[tuple[int, int, str, Any]] = []
        self._sequence = itertools.count()
        self._callers: list[tuple[str, str, float, float, Station]] = []
        self._station_index = {s.station_id: i for i, s in enumerate(district.stations)}
        self._alert_count = 0
        self._answered: set[tuple[str, str]] = set()
        self._cast()

    @classmethod
    def of(cls, config: NightConfig) -> Night:
        """The night of `config`, in the district its station count and area give."""
        places = np.random.default_rng([config.seed, 1])
        return cls(config, district_for(config.stations, config.area, places))

    # --- the schedule -----------------------------------------------------------------------

    def _at(self, at_ms: int, kind: str, payload: Any = None) -> None:
        heapq.heappush(self._queue, (at_ms, next(self._sequence), kind, payload))

    def _send(self, at_ms: int, topic: str, key: str | None, message: Any) -> None:
        self._at(at_ms, "deliver", Record(at_ms, topic, key, message))
        self.ledger.counts[topic] += 1
        if self.rng.random() < self.config.malformed_share:
            kind = MALFORMED_KINDS[int(self.rng.integers(len(MALFORMED_KINDS)))]
            station = self.district.stations[0].station_id
            bad = malformed(kind, station, at_ms)
            self._at(at_ms, "deliver", Record(at_ms, topic, None, bad))
            self.ledger.counts[f"malformed:{kind}"] += 1

    def records(self) -> Iterator[Record]:
        """Every record of the night in arrival order (ties in the order they were made)."""
        while self._queue:
            at_ms, _, kind, payload = heapq.heappop(self._queue)
            if kind == "deliver":
                yield payload
                continue
            if at_ms > self.end_ms:
                continue  # the night is over; what was still to happen does not
            getattr(self, f"_on_{kind}")(at_ms, payload)

    # --- the cast ---------------------------------------------------------------------------

    def _cast(self) -> None:
        c, start = self.config, self.config.start_ms
        for s_index, station in enumerate(self.district.stations):
            for n in range(c.officers_per_station):
                officer_id = f"{station.station_id}-P{n + 1:03d}"
                on_patrol = n < round(c.officers_per_station * c.patrol_share)
                lat, lon = self._point_near(station, station.radius_m * 0.6)
                officer = SimOfficer(
                    officer_id,
                    station,
                    self.rng.random() < c.car_share,
                    on_patrol,
                    lat,
                    lon,
                    start,
                    self._point_near(station, station.radius_m),
                )
                self.officers[officer_id] = officer
                status = "available" if on_patrol else "busy"  # desk duty: not dispatchable
                self._status(start, officer, status, None)
                if on_patrol:
                    self._at(
                        start + int(self.rng.uniform(0, c.ping_every_s * 1000)), "ping", officer_id
                    )
                    self._camera_body(start, officer)
            for n in range(c.cameras_per_station):
                self._camera_fixed(start, station, s_index, n)
        if c.calls_per_station_hour > 0:
            self._at(start + self._next_call_gap_ms(), "call")

    def _point_near(self, station: Station, radius_m: float) -> tuple[float, float]:
        east, north = self.rng.normal(0.0, radius_m / 2, size=2)
        scale = min(1.0, radius_m / max(math.hypot(east, north), 1e-9))
        lat, lon = offset(station.lat, station.lon, east * scale, north * scale)
        return self.district.area.clamp(lat, lon)

    # --- movement and pings -------------------------------------------------------------------

    def _move(self, officer: SimOfficer, now_ms: int) -> None:
        step = officer.speed() * (now_ms - officer.moved_ms) / 1000
        officer.moved_ms = now_ms
        while step > 0:
            before = (officer.lat, officer.lon)
            officer.lat, officer.lon, reached = move_towards(*before, *officer.target, step)
            if not reached:
                return
            if officer.responding or officer.alert_id is not None:
                return  # at the incident: stays there
            step -= distance_m(*before, officer.lat, officer.lon)
            officer.target = self._point_near(officer.station, officer.station.radius_m)

    def _on_ping(self, now_ms: int, officer_id: str) -> None:
        c, officer = self.config, self.officers[officer_id]
        jitter = self.rng.uniform(0.8, 1.2)
        self._at(now_ms + int(c.ping_every_s * 1000 * jitter), "ping", officer_id)
        self._move(officer, now_ms)
        if now_ms < officer.quiet_until_ms:
            return
        if self.rng.random() < c.gap_share:
            officer.quiet_until_ms = now_ms + int(self.rng.uniform(60, 300) * 1000)
            self.ledger.counts["fault:gap"] += 1
            return
        east, north = self.rng.normal(0.0, c.gps_noise_m, size=2)
        fault = self.rng.random()
        if fault < c.far_off_share:
            east += self.rng.choice((-1, 1)) * self.rng.uniform(20_000, 60_000)
            self.ledger.counts["fault:far_off"] += 1
        lat, lon = offset(officer.lat, officer.lon, east, north)
        message = self._stamped(
            officer.station,
            now_ms,
            {
                "officer_id": officer_id,
                "station_id": officer.station.station_id,
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "accuracy_m": round(abs(float(self.rng.normal(c.gps_noise_m, 2.0))) + 1.0, 1),
            },
        )
        arrival = now_ms + int(self.rng.uniform(50, 600))
        fault = self.rng.random()
        if fault < c.late_share:
            arrival = now_ms + int(self.rng.uniform(20, 90) * 1000)
            self.ledger.counts["fault:late"] += 1
        elif fault < c.late_share + c.out_of_order_share:
            arrival = now_ms + int(c.ping_every_s * 1000 * 1.6)  # after the next one
            self.ledger.counts["fault:out_of_order"] += 1
        elif fault < c.late_share + c.out_of_order_share + c.duplicate_share:
            self._send(arrival + int(self.rng.uniform(100, 2000)), "gps.pings", officer_id, message)
            self.ledger.counts["fault:duplicate"] += 1
        self._send(arrival, "gps.pings", officer_id, message)

    def _stamped(self, station: Station, event_ms: int, message: dict[str, Any]) -> dict[str, Any]:
        form = format_of_station(self._station_index[station.station_id])
        self.ledger.formats[form.value] += 1
        key = "时间" if form is TimeFormat.ZH_WORDS else "ts"
        return {**message, key: render_time(event_ms, form)}

    # --- calls --------------------------------------------------------------------------------

    def _rate_per_ms(self, now_ms: int) -> float:
        hour = datetime.fromtimestamp(now_ms / 1000, tz=ZONE).hour
        peak = self.config.calls_per_station_hour * len(self.district.stations)
        return peak * EVENING_PROFILE[hour] / 3_600_000

    def _next_call_gap_ms(self) -> int:
        """A homogeneous process at the peak rate, thinned by the profile in `_on_call`."""
        peak = self.config.calls_per_station_hour * len(self.district.stations) / 3_600_000
        return max(1, int(self.rng.exponential(1 / peak)))

    def _on_call(self, now_ms: int, _: Any) -> None:
        self._at(now_ms + self._next_call_gap_ms(), "call")
        peak = self.config.calls_per_station_hour * len(self.district.stations) / 3_600_000
        if self.rng.random() >= self._rate_per_ms(now_ms) / peak:
            return
        categories = list(CATEGORIES)
        shares = np.array([CATEGORIES[k][0] for k in categories])
        category = categories[int(self.rng.choice(len(categories), p=shares / shares.sum()))]
        if self._callers and self.rng.random() < self.config.repeat_caller_share:
            phone, address, lat, lon, station = self._callers[
                int(self.rng.integers(len(self._callers)))
            ]
            self.ledger.counts["repeat_caller"] += 1
        else:
            station = self.district.stations[
                int(self.rng.choice(len(self.district.stations), p=self.district.weights()))
            ]
            lat, lon = self._point_near(station, station.radius_m * 0.8)
            street = STREETS[int(self.rng.integers(len(STREETS)))]
            address = f"重庆市江北区{station.name}{street}{int(self.rng.integers(1, 300))}号"
            prefix = PHONE_PREFIXES[int(self.rng.integers(len(PHONE_PREFIXES)))]
            phone = f"{prefix}{int(self.rng.integers(10_000_000, 100_000_000))}"
            self._callers.append((phone, address, lat, lon, station))
        self._alert_count += 1
        alert_id = f"JB{self.config.seed}-{self._alert_count:06d}"
        description = CATEGORIES[category][2]
        index = self._station_index[station.station_id]
        if self.config.mojibake_every and index % self.config.mojibake_every == 1:
            address, description = gbk_mojibake(address), gbk_mojibake(description)
            self.ledger.counts["mojibake_alert"] += 1
        call = self._stamped(
            station,
            now_ms,
            {
                "alert_id": alert_id,
                "station_id": station.station_id,
                "category": category,
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "address": address,
                "description": description,
                "caller_phone": phone,
            },
        )
        self.ledger.alerts[alert_id] = call
        self._send(now_ms + int(self.rng.uniform(200, 2000)), "alerts.calls", alert_id, call)

    # --- the officers' app --------------------------------------------------------------------

    def on_assignment(self, assignment: Mapping[str, Any], now_ms: int) -> None:
        """An assignment the dispatcher published; the officer's app answers it (once)."""
        officer = self.officers.get(assignment["officer"]["officer_id"])
        alert = assignment["alert"]
        key = (assignment["officer"]["officer_id"], alert["alert_id"])
        if officer is None or key in self._answered or now_ms > self.end_ms:
            return
        self._answered.add(key)
        c, draw = self.config, self.rng.random()
        if draw < c.no_ack_share:
            self.ledger.answers["never_acknowledged"] += 1
            return  # the phone is in a pocket: the dispatcher's ack timeout releases them
        delay = int(min(self.rng.lognormal(math.log(c.ack_median_s), 0.5), 45.0) * 1000)
        busy = officer.alert_id is not None and officer.alert_id != alert["alert_id"]
        if busy or draw < c.no_ack_share + c.decline_share:
            self.ledger.answers["declined"] += 1
            self._at(now_ms + delay, "answer", (officer.officer_id, alert["alert_id"], "declined"))
            return
        officer.alert_id = alert["alert_id"]
        self._at(now_ms + delay, "respond", (officer.officer_id, alert))

    def _on_answer(self, now_ms: int, answer: tuple[str, str, str]) -> None:
        officer_id, alert_id, status = answer
        self._status(now_ms, self.officers[officer_id], status, alert_id)

    def _on_respond(self, now_ms: int, job: tuple[str, Mapping[str, Any]]) -> None:
        officer = self.officers[job[0]]
        alert = job[1]
        self._move(officer, now_ms)
        officer.responding, officer.target = True, (alert["lat"], alert["lon"])
        self.ledger.responses.append(
            (officer.officer_id, alert["alert_id"], officer.lat, officer.lon)
        )
        self.ledger.answers["en_route"] += 1
        self._status(now_ms, officer, "en_route", alert["alert_id"])
        travel_s = distance_m(officer.lat, officer.lon, *officer.target) / officer.speed()
        self._at(now_ms + int(travel_s * 1000) + 1, "arrive", job)

    def _on_arrive(self, now_ms: int, job: tuple[str, Mapping[str, Any]]) -> None:
        officer, alert = self.officers[job[0]], job[1]
        self._move(officer, now_ms)
        officer.responding = False
        self.ledger.answers["on_scene"] += 1
        self._status(now_ms, officer, "on_scene", alert["alert_id"])
        if alert["category"] in VIOLENT and self.rng.random() < self.config.backup_share:
            request = {
                "alert_id": alert["alert_id"],
                "officer_id": officer.officer_id,
                "units": 1,
                "reason": "violent scene",
            }
            self.ledger.answers["backup_requested"] += 1
            self._send(now_ms + 30_000, "dispatch.backup", alert["alert_id"], request)
        median_s = CATEGORIES.get(alert["category"], CATEGORIES["other"])[1] * 60
        service = int(self.rng.lognormal(math.log(median_s), 0.4) * 1000)
        self._at(now_ms + service, "clear", job)

    def _on_clear(self, now_ms: int, job: tuple[str, Mapping[str, Any]]) -> None:
        officer = self.officers[job[0]]
        self._move(officer, now_ms)
        officer.alert_id = None
        officer.target = self._point_near(officer.station, officer.station.radius_m)
        self.ledger.answers["cleared"] += 1
        self._status(now_ms, officer, "available", job[1]["alert_id"])

    def _status(self, now_ms: int, officer: SimOfficer, status: str, alert_id: str | None) -> None:
        message = {
            "officer_id": officer.officer_id,
            "station_id": officer.station.station_id,
            "status": status,
        }
        if alert_id is not None:
            message["alert_id"] = alert_id
        stamped = self._stamped(officer.station, now_ms, message)
        self._send(
            now_ms + int(self.rng.uniform(100, 1500)), "officer.status", officer.officer_id, stamped
        )

    # --- cameras ------------------------------------------------------------------------------

    def _camera_fixed(self, now_ms: int, station: Station, s_index: int, n: int) -> None:
        lat, lon = self._point_near(station, station.radius_m * 0.7)
        camera_id = f"CAM-{station.station_id}-{n + 1:02d}"
        camera: dict[str, Any] = {
            "camera_id": camera_id,
            "kind": "fixed",
            "station_id": station.station_id,
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "heading_deg": round(float(self.rng.uniform(0, 360)), 1),
            "fov_deg": round(float(self.rng.uniform(60, 120)), 1),
            "range_m": round(float(self.rng.uniform(50, 150)), 1),
            "online": True,
        }
        self._send(now_ms, "cameras.meta", camera_id, self._stamped(station, now_ms, camera))
        if self.rng.random() < self.config.camera_offline_share:
            down = now_ms + int(self.rng.uniform(0, self.config.duration_s) * 1000)
            self._at(down, "camera_down", (station, camera))

    def _on_camera_down(self, now_ms: int, job: tuple[Station, dict[str, Any]]) -> None:
        station, camera = job
        self.ledger.counts["camera_offline"] += 1
        offline = self._stamped(station, now_ms, {**camera, "online": False})
        self._send(now_ms, "cameras.meta", str(camera["camera_id"]), offline)

    def _camera_body(self, now_ms: int, officer: SimOfficer) -> None:
        camera_id = f"BWC-{officer.officer_id}"
        camera = {
            "camera_id": camera_id,
            "kind": "body",
            "officer_id": officer.officer_id,
            "station_id": officer.station.station_id,
            "online": True,
        }
        stamped = self._stamped(officer.station, now_ms, camera)
        self._send(now_ms, "cameras.meta", camera_id, stamped)
