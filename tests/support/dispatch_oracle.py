"""An oracle for the dispatch core: a generator of nasty nights, a reference model of the
dispatch contract written independently of streams/dispatch*.py, and an invariant checker that
runs after every step of a broker-free `ReplaySession` (every tick and every input).

Not a test module: tests/test_dispatch_oracle.py drives it.

The model is updated from the inputs fed (positions, duty, staleness of statuses, alerts, backup
requests) and from the published `dispatch.events` read back (bookings, acknowledgements,
arrivals, clearances, withdrawals, ack timeouts, escalations), each checked against the contract
before it is applied. What it checks:

- nobody holds two alerts; an alert never holds more units than it needs;
- every booked officer was eligible at that instant: available, free, position fresh, within the
  alert's announced radius, not refusing the alert;
- a fresh alert is given the nearest eligible officers at its arrival, as many as are free (up
  to its units); a priority <= escalate_at_once_priority alert that cannot be served widens
  through the radii at once, and no further than needed;
- an officer booked from the queue goes to the waiting alert ranked first by
  (priority, event time, alert id) among those they are eligible for;
- no (waiting alert, eligible free officer) pair lasts longer than one tick;
- lifecycle events only for the officer holding the alert, and exactly those the status input
  implies (stale statuses change nothing; en_route/on_scene naming the held alert count whatever
  their time); ack timeouts neither early nor missing; assignment reasons
  (dispatch/reassignment/backup) match the unit being filled; escalations step through the radii
  in order, not early, not late, each with its dispatch.unassigned notice, at most one notice per
  radius;
- assignment messages agree with the model (position, its time, distance, units, reason, id);
- out-of-range inputs are dead-lettered and change nothing; duplicates re-fed after a restart
  change nothing;
- at the end every alert has exactly its units served and nothing waits.

Boundary cases are not asserted: within RADIUS_BAND_M of a radius, within TIME_BAND_MS of a
position expiring or a refusal running out. Events a status causes may carry the status's own
time (not before the booking) instead of the decision time.

Readings of the contract that are open to question can be switched (RELAXABLE, Oracle.relaxed,
Model.served_mode); by default the oracle holds the pipeline to the contract's letter."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyproj import Geod

TICK_MS = 1000
T0_MS = 1_700_000_000_000
CENTER = (29.56, 106.55)
HALF_BOX_M = 3000.0  # the night happens in a 6 x 6 km box around CENTER
RADIUS_BAND_M = 2.0
TIME_BAND_MS = 1500
NEAREST_TOL_M = 1.0
FAR_MS = 365 * 86_400_000  # an input dated this far from the clock is out of range
FAR_FUTURE_MS = int(datetime(2099, 6, 1, tzinfo=UTC).timestamp() * 1000)
FAR_PAST_MS = int(datetime(2000, 6, 1, tzinfo=UTC).timestamp() * 1000)
DEFAULT_UNITS = ((1, 2), (2, 1), (3, 1), (4, 1), (5, 1))
CATEGORY = {1: "robbery", 2: "dispute", 3: "theft", 4: "noise", 5: "other"}
LIFECYCLE = ("acknowledged", "arrived", "cleared", "withdrawn", "backup_requested")
KINDS = (*LIFECYCLE, "assigned", "ack_timeout", "unassigned", "escalated")
REASONS = ("dispatch", "reassignment", "backup")
RELAXABLE = (
    "notice_once_per_radius",  # at most one dispatch.unassigned per alert and radius
    "notice_each_widening",  # every escalated event comes with its dispatch.unassigned notice
    "served_excluded",  # (a model variant) an officer who cleared a unit of an alert is not
    # eligible for that alert again; the contract's eligibility does not exclude them
)

_GEOD = Geod(ellps="WGS84")
_M_PER_DEG_LAT = 110_850.0
_M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(CENTER[0]))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(_GEOD.inv(lon1, lat1, lon2, lat2)[2])


def offset(north_m: float, east_m: float) -> tuple[float, float]:
    """A point this many metres north and east of CENTER (approximately; exact distances are
    always computed geodesically)."""
    return (
        round(CENTER[0] + north_m / _M_PER_DEG_LAT, 7),
        round(CENTER[1] + east_m / _M_PER_DEG_LON, 7),
    )


def rel(t: int | None) -> str:
    return "-" if t is None else f"+{(t - T0_MS) / 1000:.1f}s"


class OracleViolation(AssertionError):
    """The pipeline broke the contract."""


class OracleUsageError(RuntimeError):
    """The driver fed something the contract leaves undefined (a bug in the oracle's driver)."""


# --- the policy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyConfig:
    radius_m: float = 5000.0
    escalation_radii_m: tuple[float, ...] = (10_000.0, 20_000.0)
    escalate_after_ms: int = 120_000
    escalate_at_once_priority: int = 1
    max_position_age_ms: int = 300_000
    ack_timeout_ms: int = 60_000
    refusal_hold_ms: int = 600_000
    units_by_priority: tuple[tuple[int, int], ...] = DEFAULT_UNITS

    @property
    def radii(self) -> tuple[float, ...]:
        return (self.radius_m, *self.escalation_radii_m)

    def units(self, priority: int) -> int:
        return dict(self.units_by_priority).get(priority, 1)

    def build(self) -> Any:
        from streams.dispatch.rules import DispatchPolicy

        return DispatchPolicy(
            radius_m=self.radius_m,
            escalation_radii_m=self.escalation_radii_m,
            escalate_after_ms=self.escalate_after_ms,
            escalate_at_once_priority=self.escalate_at_once_priority,
            max_position_age_ms=self.max_position_age_ms,
            ack_timeout_ms=self.ack_timeout_ms,
            refusal_hold_ms=self.refusal_hold_ms,
            position_write_interval_ms=0,
            units_by_priority=dict(self.units_by_priority),
        )

    def brief(self) -> str:
        return (
            f"radius={self.radius_m:g} ladder={[int(r) for r in self.escalation_radii_m]} "
            f"escalate_after={self.escalate_after_ms} at_once<=P{self.escalate_at_once_priority} "
            f"max_age={self.max_position_age_ms} ack_timeout={self.ack_timeout_ms} "
            f"refusal_hold={self.refusal_hold_ms} units={dict(self.units_by_priority)}"
        )


def random_policy(rng: random.Random, officers: int) -> PolicyConfig:
    base = rng.choice([1500.0, 3000.0, 5000.0])
    ladders = {
        1500.0: [(3000.0, 10_000.0), (10_000.0,), (4000.0, 7000.0, 12_000.0)],
        3000.0: [(6000.0, 12_000.0), (10_000.0,)],
        5000.0: [(10_000.0, 20_000.0), (10_000.0,)],
    }
    units = [DEFAULT_UNITS, ((1, 1), (2, 1), (3, 1), (4, 1), (5, 1))]
    if officers >= 3:
        units += [((1, 3), (2, 2), (3, 1), (4, 1), (5, 1))]
    return PolicyConfig(
        radius_m=base,
        escalation_radii_m=rng.choice(ladders[base]),
        escalate_after_ms=rng.choice([15_000, 30_000, 60_000, 120_000]),
        escalate_at_once_priority=rng.choice([1, 1, 1, 2]),
        max_position_age_ms=rng.choice([30_000, 60_000, 300_000]),
        ack_timeout_ms=rng.choice([20_000, 30_000, 60_000]),
        refusal_hold_ms=rng.choice([15_000, 60_000, 300_000]),
        units_by_priority=rng.choice(units),
    )


# --- the reference model -------------------------------------------------------------------------


@dataclass
class OfficerState:
    officer_id: str
    lat: float = 0.0
    lon: float = 0.0
    pos_ms: int | None = None
    duty: str = "available"  # available | busy | off_duty
    last_status_ms: int | None = None
    holding: str | None = None
    booked_ms: int = 0
    acked: bool = False
    arrived: bool = False


@dataclass
class AlertState:
    alert_id: str
    priority: int
    lat: float
    lon: float
    event_ms: int
    opened_ms: int
    needed: int
    at_once: bool
    radius: float
    step: int = 0
    holders: set[str] = field(default_factory=set)
    served: int = 0
    first_base: int = 0  # base units never filled yet
    first_backup: int = 0  # backup units never filled yet
    refills: int = 0  # units withdrawn / timed out, not replaced yet
    booked_total: int = 0
    released_total: int = 0
    ever_complete: bool = False

    @property
    def missing(self) -> int:
        return self.needed - self.served - len(self.holders)

    @property
    def rank(self) -> tuple[int, int, str]:
        return (self.priority, self.event_ms, self.alert_id)

    def allowed_reasons(self) -> list[str]:
        counts = {"dispatch": self.first_base, "backup": self.first_backup}
        counts["reassignment"] = self.refills
        return [reason for reason, count in counts.items() if count > 0]

    def take_slot(self, reason: str) -> bool:
        if reason == "dispatch" and self.first_base > 0:
            self.first_base -= 1
        elif reason == "backup" and self.first_backup > 0:
            self.first_backup -= 1
        elif reason == "reassignment" and self.refills > 0:
            self.refills -= 1
        else:
            return False
        return True

    def brief(self) -> str:
        return (
            f"{self.alert_id}(P{self.priority}, t{rel(self.event_ms)}, needs {self.needed}, "
            f"served {self.served}, holders {sorted(self.holders)}, radius {self.radius:g})"
        )


@dataclass
class Expect:
    """What one input should cause (checked against the step's outputs)."""

    far: bool = False
    noop: bool = False
    note: str = ""
    arrival: str | None = None
    backup: str | None = None
    required: list[tuple[str, str, str]] = field(default_factory=list)
    optional: set[tuple[str, str, str]] = field(default_factory=set)
    withdraw_duty: str = "available"
    input_ms: int | None = None  # the input's own time (status events may carry it)


class Model:
    def __init__(self, cfg: PolicyConfig) -> None:
        self.cfg = cfg
        self.officers: dict[str, OfficerState] = {}
        self.alerts: dict[str, AlertState] = {}
        self.refusals: dict[tuple[str, str], int] = {}  # (officer, alert) -> until
        self.served_by: dict[tuple[str, str], int] = {}  # (officer, alert) -> units cleared
        # an officer who cleared a unit of an alert, for that alert: "eligible" (the contract's
        # eligibility does not exclude them), "excluded", or "either" (not asserted)
        self.served_mode = "eligible"
        self._distances: dict[tuple[float, float, str], float] = {}

    def distance(self, o: OfficerState, a: AlertState) -> float:
        key = (o.lat, o.lon, a.alert_id)
        found = self._distances.get(key)
        if found is None:
            found = self._distances[key] = distance_m(o.lat, o.lon, a.lat, a.lon)
        return found

    def check(
        self,
        o: OfficerState,
        a: AlertState,
        t: int,
        radius: float | None = None,
        *,
        assume_free: bool = False,
    ) -> tuple[bool | None, list[str]]:
        """Is `o` eligible for `a` at `t`: True, False, or None (a boundary case), with why."""
        why: list[str] = []
        unsure = False
        if not assume_free and o.holding is not None:
            why.append(f"holds {o.holding}")
        if o.duty != "available":
            why.append(f"is {o.duty}")
        if o.pos_ms is None:
            return False, [*why, "has no position"]
        age_margin = o.pos_ms - (t - self.cfg.max_position_age_ms)
        if age_margin < -TIME_BAND_MS:
            why.append(f"position {t - o.pos_ms} ms old > {self.cfg.max_position_age_ms}")
        elif age_margin <= TIME_BAND_MS:
            unsure = True
        r = a.radius if radius is None else radius
        d = self.distance(o, a)
        if d > r + RADIUS_BAND_M:
            why.append(f"{d:.1f} m away > radius {r:g}")
        elif d >= r - RADIUS_BAND_M:
            unsure = True
        if self.served_mode != "eligible" and (o.officer_id, a.alert_id) in self.served_by:
            if self.served_mode == "excluded":
                why.append("served it already")
            else:
                unsure = True
        until = self.refusals.get((o.officer_id, a.alert_id))
        if until is not None:
            if t < until - TIME_BAND_MS:
                why.append(f"refuses it until {rel(until)}")
            elif t <= until + TIME_BAND_MS:
                unsure = True
        if why:
            return False, why
        return (None if unsure else True), [f"{d:.1f} m away, radius {r:g}"]

    def waiting(self) -> list[AlertState]:
        return [a for a in self.alerts.values() if a.missing > 0]

    def settled(self) -> bool:
        return all(a.missing == 0 and not a.holders for a in self.alerts.values()) and all(
            o.holding is None and o.duty == "available" for o in self.officers.values()
        )

    # inputs

    def apply_input(self, topic: str, message: dict[str, Any], t: int) -> Expect:
        if topic == "gps.pings":
            return self._ping(message)
        if topic == "alerts.calls":
            return self._alert(message, t)
        if topic == "officer.status":
            return self._status(message)
        if topic == "dispatch.backup":
            return self._backup(message)
        raise OracleUsageError(f"no model for topic {topic!r}")

    def _ping(self, message: dict[str, Any]) -> Expect:
        oid, ts = message["officer_id"], message["ts"]
        o = self.officers.get(oid)
        if o is None:
            o = self.officers[oid] = OfficerState(oid)
        if o.pos_ms is not None and ts <= o.pos_ms:
            return Expect(noop=True, note=f"ping older than {oid}'s latest ({rel(o.pos_ms)})")
        o.lat, o.lon, o.pos_ms = float(message["lat"]), float(message["lon"]), ts
        return Expect()

    def _alert(self, message: dict[str, Any], t: int) -> Expect:
        aid = message["alert_id"]
        if aid in self.alerts:
            return Expect(noop=True, note=f"{aid} is a duplicate")
        priority = int(message["priority"])
        needed = self.cfg.units(priority)
        self.alerts[aid] = AlertState(
            alert_id=aid,
            priority=priority,
            lat=float(message["lat"]),
            lon=float(message["lon"]),
            event_ms=message["time"],
            opened_ms=t,
            needed=needed,
            at_once=priority <= self.cfg.escalate_at_once_priority,
            radius=self.cfg.radius_m,
            first_base=needed,
        )
        return Expect(arrival=aid)

    def _status(self, message: dict[str, Any]) -> Expect:
        oid, status, ts = message["officer_id"], message["status"], message["ts"]
        named = message.get("alert_id")
        o = self.officers.get(oid)
        if o is None:
            raise OracleUsageError(f"status for {oid} before any ping")
        held = o.holding
        names_held = held is not None and named == held and status in ("en_route", "on_scene")
        if not names_held and o.last_status_ms is not None and ts < o.last_status_ms:
            return Expect(noop=True, note=f"stale status (last {rel(o.last_status_ms)})")
        if o.last_status_ms is None or ts > o.last_status_ms:
            o.last_status_ms = ts
        expect = Expect()
        if held is None:
            if status not in ("available", "busy", "off_duty"):
                raise OracleUsageError(f"{status} for {oid} who holds nothing")
            o.duty = status
            return expect
        if status == "en_route":
            (expect.optional.add if o.acked else expect.required.append)(
                ("acknowledged", oid, held)
            )
        elif status == "on_scene":
            if o.arrived:
                expect.optional.add(("arrived", oid, held))
            else:
                expect.required.append(("arrived", oid, held))
            expect.optional.add(("acknowledged", oid, held))
        elif status == "available" and o.arrived:
            expect.required.append(("cleared", oid, held))
        elif status in ("available", "declined", "off_duty") and not o.arrived:
            expect.required.append(("withdrawn", oid, held))
            expect.withdraw_duty = "off_duty" if status == "off_duty" else "available"
        else:
            raise OracleUsageError(f"{status} for {oid} holding {held} (arrived={o.arrived})")
        return expect

    def _backup(self, message: dict[str, Any]) -> Expect:
        a = self.alerts.get(message["alert_id"])
        if a is None:
            raise OracleUsageError(f"backup for unknown {message['alert_id']}")
        units = int(message.get("units", 1))
        a.needed += units
        a.first_backup += units
        return Expect(backup=a.alert_id, required=[("backup_requested", "", a.alert_id)])


# --- the checker around a ReplaySession ----------------------------------------------------------


@dataclass
class _Step:
    kind: str
    t: int
    expect: Expect
    free0: set[str] = field(default_factory=set)
    required: list[tuple[str, str, str]] = field(default_factory=list)
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    max_radius: dict[str, float] = field(default_factory=dict)
    arrival_booked: list[str] = field(default_factory=list)
    escalated: list[tuple[str, int]] = field(default_factory=list)
    noticed: dict[str, set[int]] = field(default_factory=dict)


Listener = Callable[[str, str, str, int], None]


def _event_time(message: Any, timestamp_ms: int | None) -> int | None:
    if isinstance(message, dict):
        for key in ("ts", "time"):
            if isinstance(message.get(key), int):
                return int(message[key])
    return timestamp_ms


def _brief_input(topic: str, m: dict[str, Any], stamp: int | None) -> str:
    if topic == "gps.pings":
        return f"ping {m['officer_id']} ts{rel(m['ts'])}"
    if topic == "alerts.calls":
        return f"alert {m['alert_id']} P{m.get('priority')} time{rel(m['time'])}"
    if topic == "officer.status":
        named = f" {m['alert_id']}" if m.get("alert_id") else ""
        return f"status {m['officer_id']} {m['status']}{named} ts{rel(m['ts'])}"
    return f"{topic} {m} @{rel(stamp)}"


def _brief_output(out: dict[str, Any]) -> str:
    m = out.get("message") or {}
    topic = out.get("topic")
    if topic == "dispatch.events":
        extra = f" r={m['radius_m']:g}" if m.get("radius_m") is not None else ""
        return f"{m.get('kind')} {m.get('alert_id')}/{m.get('officer_id') or '-'}{extra}"
    if topic == "dispatch.assignments":
        return f"ASSIGN {m.get('assignment_id')}({m.get('reason')})"
    if topic == "dispatch.unassigned":
        alert = m.get("alert") or {}
        return f"NOTICE {alert.get('alert_id')} r={m.get('radius_m')} miss={m.get('units_missing')}"
    return f"{topic} {out.get('reason')}"


class Oracle:
    """A ReplaySession plus the model; every step (tick or input) is checked."""

    def __init__(self, cfg: PolicyConfig, *, label: str = "", session: Any = None) -> None:
        if session is None:
            from streams.dispatch.replay import ReplaySession
            from streams.ingest.stations import StationBook

            session = ReplaySession(policy=cfg.build(), stations=StationBook(), resolution=8)
        self.session = session
        self.cfg = cfg
        self.label = label
        self.model = Model(cfg)
        self.started = False
        self.step = 0
        self.t: int | None = None
        self.history: deque[str] = deque(maxlen=12)
        self.outputs: list[dict[str, Any]] = []
        self.events: list[tuple[int, int, dict[str, Any]]] = []
        self.assignments: list[dict[str, Any]] = []
        self.kinds: Counter[str] = Counter()
        self.recent_inputs: deque[tuple[str, dict[str, Any], int | None]] = deque(maxlen=10)
        self.listeners: list[Listener] = []
        self.pairs: dict[tuple[str, str], int] = {}
        self.noticed: set[tuple[str, int]] = set()
        # checks that can be switched off to look past a known deviation (see RELAXABLE)
        self.relaxed: frozenset[str] = frozenset()
        self.ticks = 0
        self.inputs = 0
        self.restarts: list[int] = []  # when the session was restarted

    # driving

    @property
    def clock(self) -> int:
        return int(self.session.now_ms)

    def tick(self) -> list[dict[str, Any]]:
        before = self.clock
        outs = self.session.advance(before + TICK_MS)
        after = self.clock
        if after <= before:
            self.fail(f"advance({before + TICK_MS}) left the clock at {after}")
        self.ticks += 1
        self._process("tick", after, None, outs, None)
        return outs

    def advance_to(self, until: int) -> None:
        while self.started and self.clock + TICK_MS <= until:
            self.tick()

    def feed(
        self,
        topic: str,
        message: dict[str, Any],
        *,
        timestamp_ms: int | None = None,
        duplicate: bool = False,
    ) -> list[dict[str, Any]]:
        ts = _event_time(message, timestamp_ms)
        far = False
        if self.started:
            now = self.clock
            far = ts is not None and abs(ts - now) >= FAR_MS
            if ts is not None and not far and ts > now:
                self.advance_to(ts)
                now = self.clock
            t = now if ts is None or far else max(now, ts)
        else:
            if ts is None:
                raise OracleUsageError("the first input needs a time")
            t = ts
        before = self.clock if self.started else None
        expect = Expect(far=True) if far else self.model.apply_input(topic, message, t)
        expect.input_ms = ts
        if duplicate and not (expect.noop or expect.far):
            raise OracleUsageError(f"re-fed {_brief_input(topic, message, ts)} is not a no-op")
        outs = self.session.feed(topic, message, timestamp_ms)
        self.started = True
        self.inputs += 1
        if not duplicate:
            self.recent_inputs.append((topic, message, timestamp_ms))
        label = _brief_input(topic, message, timestamp_ms)
        if duplicate:
            label = "RE-FED " + label
        if far:
            self._check_far(label, t, outs, before)
        else:
            self._process("feed", t, label, outs, expect, duplicate=duplicate)
        return outs

    def _event_keys(self) -> set[tuple[str, str, str, int]]:
        return {key for out in self.outputs if (key := _event_key(out)) is not None}

    def restart(self, *, refeed: bool) -> None:
        """A worker crash and recovery; then (optionally) the last few inputs again, which must
        change nothing."""
        self.step += 1
        self.history.append(f"#{self.step} RESTART at {rel(self.clock)}")
        self.restarts.append(self.clock)
        outs = self.session.restart()
        if outs:
            self.fail(f"restart published {[_brief_output(o) for o in outs]}")
        if not refeed:
            return
        for topic, message, stamp in list(self.recent_inputs):
            if self._is_refeedable(topic, message):
                self.feed(topic, message, timestamp_ms=stamp, duplicate=True)

    def _is_refeedable(self, topic: str, message: dict[str, Any]) -> bool:
        if topic in ("gps.pings", "alerts.calls"):
            return True
        if topic != "officer.status":
            return False
        o = self.model.officers.get(message["officer_id"])
        if o is None or o.last_status_ms is None or message["ts"] >= o.last_status_ms:
            return False
        names_held = o.holding is not None and message.get("alert_id") == o.holding
        return not (names_held and message["status"] in ("en_route", "on_scene"))

    # reporting

    def fail(self, what: str) -> None:
        recent = "\n    ".join(self.history)
        restarts = ", ".join(rel(t) for t in self.restarts) or "none"
        raise OracleViolation(
            f"{self.label} step {self.step} t={rel(self.t)} ({self.t}): {what}\n"
            f"  policy: {self.cfg.brief()}\n  restarts: {restarts}\n  recent steps:\n    {recent}"
        )

    def _notify(self, what: str, officer_id: str, alert_id: str, at: int) -> None:
        for listener in self.listeners:
            listener(what, officer_id, alert_id, at)

    # one step

    def _check_far(self, label: str, t: int, outs: list[dict[str, Any]], before: Any) -> None:
        self.step += 1
        self.t = t
        self.outputs.extend(outs)
        self.history.append(f"#{self.step} feed {rel(t)} {label} -> {_brief_outputs(outs)}")
        if [o.get("topic") for o in outs] != ["deadletter"]:
            self.fail(f"an input dated far from the clock gave {_brief_outputs(outs)}")
        if outs[0].get("reason") != "out_of_range":
            self.fail(f"far-off input dead-lettered as {outs[0].get('reason')!r}, not out_of_range")
        if self.clock != before:
            self.fail(f"a far-off input moved the clock from {rel(before)} to {rel(self.clock)}")

    def _process(
        self,
        kind: str,
        t: int,
        label: str | None,
        outs: list[dict[str, Any]],
        expect: Expect | None,
        *,
        duplicate: bool = False,
    ) -> None:
        self.step += 1
        self.t = t
        if duplicate:
            # A status event handled again announces what it did again: the same event, which
            # a consumer drops by its key (kind, alert, officer, time; README). Nothing else.
            seen = self._event_keys()
            outs = [out for out in outs if (key := _event_key(out)) is None or key not in seen]
        self.outputs.extend(outs)
        if outs or kind != "tick":
            self.history.append(
                f"#{self.step} {kind} {rel(t)} {label or ''} -> {_brief_outputs(outs)}"
            )
        m = self.model
        step = _Step(kind, t, expect or Expect())
        step.required = list(step.expect.required)
        events: list[dict[str, Any]] = []
        assigns: dict[tuple[str, str], list[dict[str, Any]]] = {}
        notices: list[dict[str, Any]] = []
        for out in outs:
            topic, message = out.get("topic"), out.get("message") or {}
            if topic == "dispatch.events":
                events.append(message)
            elif topic == "dispatch.assignments":
                key = (
                    (message.get("alert") or {}).get("alert_id"),
                    (message.get("officer") or {}).get("officer_id"),
                )
                assigns.setdefault(key, []).append(message)
                self.assignments.append(message)
            elif topic == "dispatch.unassigned":
                notices.append(message)
            elif topic == "deadletter":
                self.fail(f"unexpected dead letter {out.get('reason')!r}: {out.get('error')}")
            else:
                self.fail(f"output on unexpected topic {topic!r}")
        if (duplicate or step.expect.noop) and not self._only_pending_bookings(outs, t):
            why = "a re-fed duplicate" if duplicate else f"an ignored input ({step.expect.note})"
            self.fail(f"{why} changed something: {_brief_outputs(outs)}")
        if step.expect.arrival:
            step.free0 = {
                o.officer_id
                for o in m.officers.values()
                if o.holding is None and o.duty == "available"
            }
        for ev in events:
            if ev.get("kind") == "escalated" and ev.get("radius_m") is not None:
                aid = ev.get("alert_id", "")
                step.max_radius[aid] = max(step.max_radius.get(aid, 0.0), float(ev["radius_m"]))
        for ev in events:
            self._event(ev, step, assigns)
        for (aid, oid), left in assigns.items():
            if left:
                self.fail(f"dispatch.assignments for {aid}/{oid} without an assigned event")
        if step.required:
            self.fail(f"missing events for the input: {step.required}")
        self._notices(notices, step)
        if step.expect.arrival:
            self._check_arrival(step)
        for aid, radius in step.escalated:
            if "notice_each_widening" in self.relaxed:
                break
            if radius not in step.noticed.get(aid, set()):
                self.fail(f"{aid} widened to {radius} m without a dispatch.unassigned notice")
        self._global_checks(t)

    def _only_pending_bookings(self, outs: list[dict[str, Any]], t: int) -> bool:
        """Outputs of an input that changes nothing: at most bookings that were due anyway
        (the officer was free and eligible, or at a boundary, before the input)."""
        m = self.model
        for out in outs:
            msg = out.get("message") or {}
            if out.get("topic") == "dispatch.events" and msg.get("kind") == "assigned":
                aid, oid = msg.get("alert_id"), msg.get("officer_id")
            elif out.get("topic") == "dispatch.assignments":
                aid = (msg.get("alert") or {}).get("alert_id")
                oid = (msg.get("officer") or {}).get("officer_id")
            else:
                return False
            a, o = m.alerts.get(aid or ""), m.officers.get(oid or "")
            if a is None or o is None or a.missing <= 0 or m.check(o, a, t)[0] is False:
                return False
        return True

    def _event(
        self, ev: dict[str, Any], step: _Step, assigns: dict[tuple[str, str], list[dict[str, Any]]]
    ) -> None:
        m, t = self.model, step.t
        kind, aid = ev.get("kind"), ev.get("alert_id", "")
        oid = ev.get("officer_id") or ""
        self.kinds[str(kind)] += 1
        self.events.append((self.step, t, ev))
        if kind not in KINDS:
            self.fail(f"unknown event kind {kind!r}")
        at = ev.get("at_utc_ms")
        o = m.officers.get(oid)
        # the same booking announced again (recovery) carries the time it was booked
        repeat = kind == "assigned" and o is not None and o.holding == aid and not o.acked
        if at != t and not (repeat and o is not None and at == o.booked_ms):
            # an event caused by a status may carry the status's own time (not before booking)
            lowest = None
            if kind in LIFECYCLE and o is not None and step.expect.input_ms is not None:
                lowest = max(min(step.expect.input_ms, t), o.booked_ms)
            if lowest is None or not isinstance(at, int) or not lowest <= at <= t:
                self.fail(f"{kind} {aid}/{oid} dated {rel(at)}, decided at {rel(t)}")
        a = m.alerts.get(aid)
        if a is None:
            self.fail(f"{kind} event for unknown alert {aid!r}")
            return
        step.seen[(str(kind), aid)] += 1
        if kind in LIFECYCLE:
            key = (str(kind), "" if kind == "backup_requested" else oid, aid)
            if key in step.required:
                step.required.remove(key)
            elif key not in step.expect.optional:
                self.fail(f"unexpected {kind} event for {oid or '-'}/{aid}: {self._officer(oid)}")
        if o is None and kind in (
            "acknowledged",
            "arrived",
            "cleared",
            "withdrawn",
            "ack_timeout",
            "assigned",
        ):
            self.fail(f"{kind} event for unknown officer {oid!r}")
            return
        if kind == "assigned":
            assert o is not None
            self._assigned(o, a, step, assigns)
        elif kind in ("acknowledged", "arrived"):
            assert o is not None
            if o.holding != aid:
                self.fail(f"{kind} {aid} by {oid}, who holds {o.holding}")
            o.acked = True
            o.arrived = o.arrived or kind == "arrived"
        elif kind == "cleared":
            assert o is not None
            if o.holding != aid or not o.arrived:
                self.fail(f"cleared {aid} by {oid}: {self._officer(oid)}")
            a.served += 1
            m.served_by[(oid, aid)] = m.served_by.get((oid, aid), 0) + 1
            a.holders.discard(oid)
            o.holding, o.duty = None, "available"
            self._notify("cleared", oid, aid, t)
        elif kind in ("withdrawn", "ack_timeout"):
            assert o is not None
            if o.holding != aid:
                self.fail(f"{kind} {aid} for {oid}, who holds {o.holding}")
            if o.arrived:
                self.fail(f"{kind} {aid} for {oid} after arriving")
            if kind == "ack_timeout":
                if o.acked:
                    self.fail(f"ack_timeout {aid} for {oid}, who acknowledged")
                if t - o.booked_ms < self.cfg.ack_timeout_ms:
                    self.fail(
                        f"ack_timeout {aid}/{oid} {t - o.booked_ms} ms after booking "
                        f"(< {self.cfg.ack_timeout_ms})"
                    )
            a.holders.discard(oid)
            a.refills += 1
            a.released_total += 1
            m.refusals[(oid, aid)] = t + self.cfg.refusal_hold_ms
            o.holding = None
            o.duty = step.expect.withdraw_duty if kind == "withdrawn" else "available"
            self._notify(str(kind), oid, aid, t)
        elif kind == "unassigned":
            if a.missing <= 0:
                self.fail(f"unassigned event for {a.brief()}, which misses nothing")
        elif kind == "escalated":
            self._escalated(ev, a, step)

    def _assigned(
        self,
        o: OfficerState,
        a: AlertState,
        step: _Step,
        assigns: dict[tuple[str, str], list[dict[str, Any]]],
    ) -> None:
        t, oid, aid = step.t, o.officer_id, a.alert_id
        if o.holding == aid and not o.acked:
            # The same booking announced again (after a restart the pipeline tells officers
            # booked and not yet acknowledged once more, same assignment_id): a consumer drops
            # it by that key (README), so it changes nothing here either.
            if not assigns.get((aid, oid)):
                self.fail(f"repeated assigned event {aid}/{oid} without its assignment message")
            assigns[(aid, oid)].pop(0)
            return
        if o.holding is not None:
            self.fail(f"{oid} booked for {aid} while holding {o.holding} (double booking)")
        if a.missing <= 0:
            self.fail(f"{oid} booked for {a.brief()}, which has all its units")
        radius = max(a.radius, step.max_radius.get(aid, 0.0))
        verdict, why = self.model.check(o, a, t, radius)
        if verdict is False:
            self.fail(f"{oid} booked for {aid} but not eligible: {'; '.join(why)}")
        messages = assigns.get((aid, oid))
        if not messages:
            self.fail(f"assigned event {aid}/{oid} without a dispatch.assignments message")
            return
        message = messages.pop(0)
        self._check_assignment_message(message, o, a, t)
        reason = str(message.get("reason"))
        allowed = a.allowed_reasons()
        if not a.take_slot(reason):
            self.fail(f"{aid}/{oid} assigned with reason {reason!r}, expected one of {allowed}")
        if step.expect.arrival == aid:
            step.arrival_booked.append(oid)
        else:
            self._check_queue_choice(o, a, t)
        o.holding, o.booked_ms, o.acked, o.arrived = aid, t, False, False
        if o.last_status_ms is None or t > o.last_status_ms:
            o.last_status_ms = t
        a.holders.add(oid)
        a.booked_total += 1
        self._notify("assigned", oid, aid, t)

    def _check_assignment_message(
        self, msg: dict[str, Any], o: OfficerState, a: AlertState, t: int
    ) -> None:
        problems = []
        alert, officer = msg.get("alert") or {}, msg.get("officer") or {}
        # the README's key: `<alert>:<officer>`, then `:<n>` when sent to it an n-th time
        turn = self.model.served_by.get((o.officer_id, a.alert_id), 0) + 1
        expected_id = f"{a.alert_id}:{o.officer_id}" + (f":{turn}" if turn > 1 else "")
        if msg.get("assignment_id") != expected_id:
            problems.append(f"assignment_id {msg.get('assignment_id')!r}")
        if alert.get("priority") != a.priority:
            problems.append(f"alert priority {alert.get('priority')} != {a.priority}")
        if officer.get("position_utc_ms") != o.pos_ms:
            problems.append(
                f"position_utc_ms {rel(officer.get('position_utc_ms'))} but the latest ping "
                f"is {rel(o.pos_ms)}"
            )
        lat, lon = officer.get("lat"), officer.get("lon")
        if not (
            isinstance(lat, int | float)
            and isinstance(lon, int | float)
            and abs(lat - o.lat) < 1e-7
            and abs(lon - o.lon) < 1e-7
        ):
            problems.append(f"officer position {lat},{lon} != latest {o.lat},{o.lon}")
        distance = msg.get("distance_m")
        expected = self.model.distance(o, a)
        if not isinstance(distance, int | float) or abs(distance - expected) > NEAREST_TOL_M:
            problems.append(f"distance_m {distance} != {expected:.1f}")
        if msg.get("assigned_utc_ms") != t:
            problems.append(f"assigned_utc_ms {rel(msg.get('assigned_utc_ms'))}")
        if msg.get("units_needed") != a.needed:
            problems.append(f"units_needed {msg.get('units_needed')} != {a.needed}")
        if msg.get("reason") not in REASONS:
            problems.append(f"reason {msg.get('reason')!r}")
        if problems:
            self.fail(f"assignment {a.alert_id}/{o.officer_id}: {'; '.join(problems)}")

    def _check_queue_choice(self, o: OfficerState, a: AlertState, t: int) -> None:
        for b in self.model.alerts.values():
            if b is a or b.missing <= 0 or b.rank >= a.rank:
                continue
            verdict, why = self.model.check(o, b, t)
            if verdict is True:
                self.fail(
                    f"{o.officer_id} went to {a.brief()} while {b.brief()} ranks first and "
                    f"{o.officer_id} is eligible for it ({why[0]})"
                )

    def _escalated(self, ev: dict[str, Any], a: AlertState, step: _Step) -> None:
        radii, k = self.cfg.radii, a.step + 1
        radius = ev.get("radius_m")
        if k >= len(radii):
            self.fail(f"{a.brief()} escalated beyond the last radius")
        if not isinstance(radius, int | float) or abs(radius - radii[k]) > 0.5:
            self.fail(f"{a.alert_id} escalated to {radius}, the next step is {radii[k]:g}")
        if a.missing <= 0:
            self.fail(f"{a.brief()} escalated though it misses nothing")
        if not a.at_once:
            earliest = min(a.event_ms, a.opened_ms) + k * self.cfg.escalate_after_ms
            if step.t < earliest - TICK_MS:
                self.fail(
                    f"{a.brief()} widened to step {k} at {rel(step.t)}, before {rel(earliest)}"
                )
        waited = ev.get("waited_ms")
        if waited is not None and waited < 0:
            self.fail(f"escalated {a.alert_id} with waited_ms {waited}")
        a.step, a.radius = k, radii[k]
        step.escalated.append((a.alert_id, round(radii[k])))

    def _notices(self, notices: list[dict[str, Any]], step: _Step) -> None:
        for n in notices:
            aid = (n.get("alert") or {}).get("alert_id")
            a = self.model.alerts.get(aid or "")
            if a is None:
                self.fail(f"dispatch.unassigned for unknown alert {aid!r}")
                return
            radius = n.get("radius_m")
            reached = self.cfg.radii[: a.step + 1]
            if not isinstance(radius, int | float) or all(abs(radius - r) > 0.5 for r in reached):
                self.fail(
                    f"dispatch.unassigned {aid} at radius {radius}, not one reached {reached}"
                )
                return
            key = (a.alert_id, round(radius))
            if key in self.noticed and "notice_once_per_radius" not in self.relaxed:
                self.fail(f"a second dispatch.unassigned for {aid} at radius {radius:g}")
            self.noticed.add(key)
            step.noticed.setdefault(a.alert_id, set()).add(round(radius))
            missing = n.get("units_missing")
            if not isinstance(missing, int) or not 1 <= missing <= a.needed:
                self.fail(f"dispatch.unassigned {aid} units_missing={missing}, needs {a.needed}")

    def _check_arrival(self, step: _Step) -> None:
        m, t = self.model, step.t
        a = m.alerts[str(step.expect.arrival)]
        aid, booked = a.alert_id, step.arrival_booked

        def owed_to_a_more_urgent_alert(o: OfficerState) -> bool:
            """The queue rule outranks the fresh alert's nearest choice: an officer who can
            serve an alert that was already waiting and ranks first goes there."""
            return any(
                b is not a
                and b.missing > 0
                and b.opened_ms < t
                and b.rank < a.rank
                and m.check(o, b, t, b.radius, assume_free=True)[0] is not False
                for b in m.alerts.values()
            )

        def free0(r: float) -> tuple[list[OfficerState], list[OfficerState]]:
            sure, unsure = [], []
            for oid in sorted(step.free0):
                o = m.officers[oid]
                if o.holding not in (None, aid) or owed_to_a_more_urgent_alert(o):
                    continue
                verdict, _ = m.check(o, a, t, r, assume_free=True)
                (sure if verdict else unsure if verdict is None else []).append(o)
            return sure, unsure

        sure, _ = free0(a.radius)
        others = [o for o in sure if o.officer_id not in booked]
        if others and len(booked) < a.needed:
            self.fail(
                f"fresh {a.brief()} got {booked} though {[o.officer_id for o in others]} "
                "were free and eligible"
            )
        for o in others:
            d = m.distance(o, a)
            for b in booked:
                db = m.distance(m.officers[b], a)
                if d < db - NEAREST_TOL_M:
                    self.fail(
                        f"fresh {aid} got {b} at {db:.1f} m while {o.officer_id} at {d:.1f} m "
                        "was free and eligible"
                    )
        if a.at_once:
            for j in range(a.step):
                sure_j, _ = free0(self.cfg.radii[j])
                if len(sure_j) >= a.needed:
                    self.fail(
                        f"fresh {a.brief()} widened past {self.cfg.radii[j]:g} m where "
                        f"{[o.officer_id for o in sure_j]} could serve it"
                    )
            if a.missing > 0 and a.step < len(self.cfg.radii) - 1:
                self.fail(f"fresh {a.brief()} (widens at once) waits without widening")
        if a.missing > 0:
            if round(a.radius) not in step.noticed.get(aid, set()):
                self.fail(f"fresh {a.brief()} waits without a dispatch.unassigned notice")
            if not step.seen[("unassigned", aid)]:
                self.fail(f"fresh {a.brief()} waits without an unassigned event")

    def _global_checks(self, t: int) -> None:
        m, cfg = self.model, self.cfg
        waiting = []
        for a in m.alerts.values():
            if a.missing < 0:
                self.fail(f"{a.brief()} holds more units than it needs")
            if a.missing == 0:
                a.ever_complete = True
            else:
                waiting.append(a)
        free = [o for o in m.officers.values() if o.holding is None and o.duty == "available"]
        current: set[tuple[str, str]] = set()
        for a in waiting:
            for o in free:
                verdict, why = m.check(o, a, t)
                if verdict is not True:
                    continue
                pair = (a.alert_id, o.officer_id)
                current.add(pair)
                since = self.pairs.setdefault(pair, t)
                if t - since >= TICK_MS:  # the first tick after it arose has passed
                    self.fail(
                        f"{a.brief()} waits while {o.officer_id} is free and eligible "
                        f"({why[0]}) since {rel(since)}"
                    )
        self.pairs = {pair: self.pairs[pair] for pair in current}
        for o in m.officers.values():
            late = t - o.booked_ms - cfg.ack_timeout_ms
            if o.holding is not None and not o.acked and late > 2 * TICK_MS:
                self.fail(
                    f"{o.officer_id} booked for {o.holding} at {rel(o.booked_ms)}, never "
                    f"acknowledged, no ack_timeout after {cfg.ack_timeout_ms} ms"
                )
        radii = cfg.radii
        for a in waiting:
            if a.at_once or a.ever_complete:
                continue
            waited = t - max(a.event_ms, a.opened_ms) - 2 * TICK_MS
            due = min(max(waited, -1) // cfg.escalate_after_ms, len(radii) - 1)
            if a.step < due:
                self.fail(
                    f"{a.brief()} has waited {t - a.opened_ms} ms since arrival but is still at "
                    f"step {a.step} (due: step {due}, radius {radii[due]:g})"
                )

    def _officer(self, oid: str) -> str:
        o = self.model.officers.get(oid)
        if o is None:
            return "unknown officer"
        return (
            f"{oid} holds {o.holding} (booked {rel(o.booked_ms)}, acked={o.acked}, "
            f"arrived={o.arrived}), duty {o.duty}"
        )

    def final_check(self) -> None:
        self.step += 1
        problems = []
        for a in self.model.alerts.values():
            if a.served != a.needed or a.holders:
                why = [
                    f"{o.officer_id}: {'; '.join(self.model.check(o, a, self.clock)[1])}"
                    for o in self.model.officers.values()
                ]
                problems.append(f"{a.brief()} never got its units [{' | '.join(why)}]")
            elif a.booked_total - a.released_total != a.needed:
                problems.append(
                    f"{a.alert_id}: {a.booked_total} booked - {a.released_total} withdrawn "
                    f"!= {a.needed} needed"
                )
        if problems:
            self.fail("at the end: " + "\n      ".join(problems))


def _brief_outputs(outs: list[dict[str, Any]]) -> str:
    return "[" + ", ".join(_brief_output(o) for o in outs) + "]"


# --- the nights ---------------------------------------------------------------------------------


@dataclass(order=True)
class _Item:
    time_ms: int
    seq: int
    action: tuple[Any, ...] = field(compare=False)


@dataclass
class _App:
    """One officer's phone: GPS and the status buttons."""

    officer_id: str
    lat: float
    lon: float
    moved_ms: int = T0_MS
    gen: int = 0  # bumped by every booking and release: plans for an older one are dropped
    target: tuple[float, float] | None = None
    silence: tuple[int, int] | None = None


@dataclass
class NightResult:
    seed: int
    steps: int
    ticks: int
    inputs: int
    alerts: int
    officers: int
    kinds: Counter[str]
    outputs: list[dict[str, Any]]
    end_ms: int


def _random_point(rng: random.Random) -> tuple[float, float]:
    return offset(rng.uniform(-HALF_BOX_M, HALF_BOX_M), rng.uniform(-HALF_BOX_M, HALF_BOX_M))


def _clamp_to_box(lat: float, lon: float) -> tuple[float, float]:
    dlat = HALF_BOX_M / _M_PER_DEG_LAT
    dlon = HALF_BOX_M / _M_PER_DEG_LON
    return (
        round(min(max(lat, CENTER[0] - dlat), CENTER[0] + dlat), 7),
        round(min(max(lon, CENTER[1] - dlon), CENTER[1] + dlon), 7),
    )


class Night:
    """A seeded random night: officers pinging (late, duplicate and far-off-dated pings among
    them, and radio silences), bursts of alerts (some late, some duplicated), officers' apps
    reacting to their bookings (acking, declining, never acking, withdrawing, arriving, clearing,
    asking for backup), breaks (busy, off duty) and perhaps a worker restart with the last inputs
    re-fed. `restart`: "random" (decided by the seed, with re-feed), "plain" (always, without
    re-feed) or "none"."""

    def __init__(
        self, seed: int, *, restart: str = "random", relaxed: frozenset[str] = frozenset()
    ) -> None:
        self.relaxed = relaxed
        self.backup_rate = 0.35  # of priority-1 bookings that ask for backup on scene
        rng = self.rng = random.Random(seed)
        self.seed = seed
        n_officers, n_alerts = rng.randint(2, 6), rng.randint(8, 40)
        # time enough for every alert to be served (a bug that starves one will not end it)
        self.cap_ms = 30 * 60_000 + n_alerts * 4 * 60_000 // n_officers
        self.n_officers, self.n_alerts = n_officers, n_alerts
        self.cfg = random_policy(rng, n_officers)
        self.night_ms = rng.randint(3, 10) * 60_000
        self.end_ms = T0_MS + self.night_ms
        self.heap: list[_Item] = []
        self.seq = 0
        self.apps: dict[str, _App] = {}
        self.alert_msgs: dict[str, dict[str, Any]] = {}
        self.pending_alerts = 0
        for i in range(n_officers):
            oid = f"OFF-{i + 1}"
            lat, lon = _random_point(rng)
            app = self.apps[oid] = _App(oid, lat, lon)
            if rng.random() < 0.35:
                start = T0_MS + rng.randint(30_000, self.night_ms)
                app.silence = (start, start + rng.randint(40_000, 200_000))
            self._push(T0_MS if i == 0 else T0_MS + rng.randint(1, 2000), ("ping", oid))
            for _ in range(rng.choice([0, 0, 1, 2])):
                kind = "busy" if rng.random() < 0.7 else "off_duty"
                self._push(T0_MS + rng.randint(20_000, self.night_ms), ("break", oid, kind))
        self._plan_alerts()
        restart_at = T0_MS + rng.randint(60_000, self.night_ms)
        coin = rng.random() < 0.4
        if restart == "plain" or (restart == "random" and coin):
            self._push(restart_at, ("restart", restart == "random"))
        self.oracle: Oracle | None = None

    def _push(self, t: int, action: tuple[Any, ...]) -> None:
        self.seq += 1
        heapq.heappush(self.heap, _Item(t, self.seq, action))

    def _plan_alerts(self) -> None:
        rng = self.rng
        bursts = rng.randint(1, 5)
        sizes = [1] * bursts
        for _ in range(self.n_alerts - bursts):
            sizes[rng.randrange(bursts)] += 1
        number = 0
        for size in sizes:
            t = T0_MS + rng.randint(5_000, self.night_ms)
            north, east = rng.uniform(-2500, 2500), rng.uniform(-2500, 2500)
            for _ in range(size):
                number += 1
                aid = f"AL-{number:03d}"
                lat, lon = _clamp_to_box(
                    *offset(north + rng.uniform(-1500, 1500), east + rng.uniform(-1500, 1500))
                )
                priority = rng.choices([1, 2, 3, 4, 5], weights=[15, 20, 30, 20, 15])[0]
                msg = {
                    "alert_id": aid,
                    "category": CATEGORY[priority],
                    "priority": priority,
                    "lat": lat,
                    "lon": lon,
                    "time": t,
                }
                self.alert_msgs[aid] = msg
                feed_at = t + (rng.randint(1000, 20_000) if rng.random() < 0.1 else 0)
                self._push(feed_at, ("alert", msg))
                self.pending_alerts += 1
                if rng.random() < 0.05:
                    self._push(feed_at + rng.randint(0, 30_000), ("raw", "alerts.calls", msg, None))
                t += rng.choice([0, 0, 200, 1000, 1500, 3000, 7000])

    # the loop

    def run(self, session: Any = None) -> NightResult:
        oracle = self.oracle = Oracle(self.cfg, label=f"seed={self.seed}", session=session)
        oracle.listeners.append(self._on_dispatch)
        oracle.relaxed = self.relaxed
        if "served_excluded" in self.relaxed:
            oracle.model.served_mode = "excluded"
        cap = self.end_ms + self.cap_ms
        budget = (cap - T0_MS) // TICK_MS + 10
        while not self._settled():
            if oracle.started and oracle.clock > cap:
                break
            if oracle.ticks > budget:
                raise OracleUsageError(f"seed={self.seed}: the clock ran away ({oracle.clock})")
            item = self.heap[0]
            if oracle.started and oracle.clock + TICK_MS <= item.time_ms:
                oracle.tick()
                continue
            heapq.heappop(self.heap)
            self._execute(item)
        for _ in range(3):
            oracle.tick()
        oracle.final_check()
        return NightResult(
            seed=self.seed,
            steps=oracle.step,
            ticks=oracle.ticks,
            inputs=oracle.inputs,
            alerts=len(oracle.model.alerts),
            officers=len(oracle.model.officers),
            kinds=oracle.kinds,
            outputs=oracle.outputs,
            end_ms=oracle.clock,
        )

    def _settled(self) -> bool:
        oracle = self.oracle
        assert oracle is not None
        return (
            self.pending_alerts == 0
            and oracle.started
            and oracle.clock >= self.end_ms
            and oracle.model.settled()
        )

    def _execute(self, item: _Item) -> None:
        oracle, rng, t = self.oracle, self.rng, item.time_ms
        assert oracle is not None
        action = item.action
        kind = action[0]
        if kind == "ping":
            self._ping(t, action[1])
        elif kind == "alert":
            self.pending_alerts -= 1
            oracle.feed("alerts.calls", action[1])
        elif kind == "raw":
            oracle.feed(action[1], action[2], timestamp_ms=action[3])
        elif kind == "status":
            _, oid, gen, status, aid, shift = action
            app = self.apps[oid]
            if gen != app.gen:
                return
            msg: dict[str, Any] = {"officer_id": oid, "status": status, "ts": t + shift}
            if aid:
                msg["alert_id"] = aid
            oracle.feed("officer.status", msg)
            if status == "en_route" and aid:
                alert = self.alert_msgs[aid]
                app.target = (alert["lat"], alert["lon"])
            elif status == "on_scene" and aid:
                alert = self.alert_msgs[aid]
                app.lat, app.lon, app.target = alert["lat"], alert["lon"], None
            elif status == "off_duty":
                self._push(t + rng.randint(30_000, 150_000), ("return", oid))
        elif kind == "backup":
            _, oid, gen, aid = action
            o = oracle.model.officers[oid]
            if gen == self.apps[oid].gen and o.holding == aid and o.arrived:
                request = {"alert_id": aid, "officer_id": oid, "units": 1, "reason": "knife"}
                oracle.feed("dispatch.backup", request)  # no time of its own: the clock's
        elif kind == "break":
            _, oid, duty = action
            o = oracle.model.officers.get(oid)
            if o is not None and o.holding is None and o.duty == "available":
                oracle.feed("officer.status", {"officer_id": oid, "status": duty, "ts": t})
                self._push(t + rng.randint(20_000, 150_000), ("return", oid))
        elif kind == "return":
            o = oracle.model.officers[action[1]]
            if o.holding is None:
                oracle.feed(
                    "officer.status", {"officer_id": o.officer_id, "status": "available", "ts": t}
                )
        elif kind == "restart":
            oracle.restart(refeed=action[1])
        else:
            raise OracleUsageError(f"unknown action {action!r}")

    def _ping(self, t: int, oid: str) -> None:
        oracle, rng, app = self.oracle, self.rng, self.apps[oid]
        assert oracle is not None
        self._push(t + rng.randint(2000, 10_000), ("ping", oid))
        dt = max(0, t - app.moved_ms) / 1000
        app.moved_ms = t
        if app.target is not None:
            d = distance_m(app.lat, app.lon, *app.target)
            share = 1.0 if d <= 12.0 * dt else 12.0 * dt / d
            lat = app.lat + (app.target[0] - app.lat) * share
            lon = app.lon + (app.target[1] - app.lon) * share
        else:
            north, east = rng.uniform(-3, 3) * dt, rng.uniform(-3, 3) * dt
            lat, lon = app.lat + north / _M_PER_DEG_LAT, app.lon + east / _M_PER_DEG_LON
        app.lat, app.lon = _clamp_to_box(lat, lon)
        if app.silence is not None and app.silence[0] <= t < app.silence[1]:
            return
        msg = {"officer_id": oid, "lat": app.lat, "lon": app.lon, "ts": t}
        roll = rng.random()
        if roll < 0.04:  # arrives late
            self._push(t + rng.randint(1000, 15_000), ("raw", "gps.pings", msg, None))
        else:
            oracle.feed("gps.pings", msg)
            if roll < 0.08:  # and again
                self._push(t + rng.randint(0, 5000), ("raw", "gps.pings", dict(msg), None))
        if rng.random() < 0.01 and oracle.started:  # the session's clock starts at T0
            far = dict(msg, ts=rng.choice([FAR_FUTURE_MS, FAR_PAST_MS]))
            oracle.feed("gps.pings", far)

    def _on_dispatch(self, what: str, oid: str, aid: str, at: int) -> None:
        app = self.apps.get(oid)
        if app is None:
            return
        app.gen += 1
        app.target = None
        if what == "assigned":
            self._plan_reaction(app, aid, at)

    def _plan_reaction(self, app: _App, aid: str, booked: int) -> None:
        rng, oid, gen = self.rng, app.officer_id, app.gen
        alert = self.alert_msgs[aid]
        assert self.oracle is not None
        latest_ack = max(2000, min(20_000, self.cfg.ack_timeout_ms - 5000))
        ack_at = booked + rng.randint(1000, latest_ack)
        if rng.random() < 0.05:  # an old `available` delivered late: stale, ignored
            sent = rng.randint(0, 2000)
            self._push(
                booked + sent, ("status", oid, gen, "available", None, -sent - rng.randint(1, 5000))
            )
        roll = rng.random()
        if roll < 0.07:
            return  # never acknowledges
        if roll < 0.15:
            self._push(ack_at, ("status", oid, gen, "declined", aid, 0))
            return
        if roll < 0.18:
            self._push(ack_at, ("status", oid, gen, "off_duty", aid, 0))
            return
        first = "on_scene" if rng.random() < 0.1 else "en_route"
        skew = -rng.randint(1000, 5000) if rng.random() < 0.05 else 0  # phone clock behind
        self._push(ack_at, ("status", oid, gen, first, aid, skew))
        travel = int(distance_m(app.lat, app.lon, alert["lat"], alert["lon"]) / 12.0 * 1000)
        travel = min(max(travel, 5000), 45_000)
        if first == "en_route" and rng.random() < 0.06:  # gives up on the way
            self._push(
                ack_at + rng.randint(1000, travel), ("status", oid, gen, "available", aid, 0)
            )
            return
        arrive_at = ack_at + (travel if first == "en_route" else 0)
        if first == "en_route":
            self._push(arrive_at, ("status", oid, gen, "on_scene", aid, 0))
        service = rng.randint(8_000, 45_000)
        self._push(arrive_at + service, ("status", oid, gen, "available", aid, 0))
        needed = self.oracle.model.alerts[aid].needed
        if alert["priority"] == 1 and needed < self.n_officers and rng.random() < self.backup_rate:
            self._push(arrive_at + rng.randint(1000, service - 1000), ("backup", oid, gen, aid))


def run_night(seed: int, *, restart: str = "random", session: Any = None) -> NightResult:
    return Night(seed, restart=restart).run(session)


# --- hand-written scenarios --------------------------------------------------------------------


class Script:
    """Scripted inputs through the oracle (all checks on), with a crew that reacts to bookings
    with fixed delays (or as told per officer) and keeps pinging from where they stand."""

    def __init__(self, cfg: PolicyConfig | None = None, *, label: str = "scenario") -> None:
        self.oracle = Oracle(cfg or PolicyConfig(), label=label)
        self.positions: dict[str, tuple[float, float]] = {}
        self.plans: dict[
            str, list[tuple[int, str]]
        ] = {}  # officer -> [(delay, status)] per booking
        self.heap: list[_Item] = []
        self.seq = 0
        self.gen: Counter[str] = Counter()
        self.oracle.listeners.append(self._on_dispatch)

    def _push(self, t: int, action: tuple[Any, ...]) -> None:
        self.seq += 1
        heapq.heappush(self.heap, _Item(t, self.seq, action))

    def officer(self, oid: str, north_m: float, east_m: float, t: int = T0_MS) -> None:
        self.positions[oid] = offset(north_m, east_m)
        self.ping(oid, t)
        self._push(t + 5000, ("heartbeat", oid))

    def ping(self, oid: str, t: int) -> None:
        lat, lon = self.positions[oid]
        self.at(t, "gps.pings", {"officer_id": oid, "lat": lat, "lon": lon, "ts": t})

    def alert(self, aid: str, priority: int, north_m: float, east_m: float, t: int) -> None:
        lat, lon = offset(north_m, east_m)
        msg = {"alert_id": aid, "category": CATEGORY[priority], "priority": priority}
        self.at(t, "alerts.calls", {**msg, "lat": lat, "lon": lon, "time": t})

    def status(self, oid: str, status: str, t: int, alert_id: str | None = None) -> None:
        msg: dict[str, Any] = {"officer_id": oid, "status": status, "ts": t}
        if alert_id:
            msg["alert_id"] = alert_id
        self.at(t, "officer.status", msg)

    def at(self, t: int, topic: str, message: dict[str, Any]) -> None:
        self.run_until(t)
        self.oracle.feed(topic, message)

    def react(self, oid: str, plan: list[tuple[int, str]]) -> None:
        """Per booking of `oid`: send these statuses (naming the alert) this long after it."""
        self.plans[oid] = plan

    def run_until(self, until: int) -> None:
        oracle = self.oracle
        while self.heap and self.heap[0].time_ms <= until:
            item = heapq.heappop(self.heap)
            oracle.advance_to(item.time_ms)
            kind, oid = item.action[0], item.action[1]
            if kind == "heartbeat":
                lat, lon = self.positions[oid]
                ping = {"officer_id": oid, "lat": lat, "lon": lon, "ts": item.time_ms}
                oracle.feed("gps.pings", ping)
                self._push(item.time_ms + 5000, ("heartbeat", oid))
            elif kind == "status" and item.action[2] == self.gen[oid]:
                self.oracle.feed(
                    "officer.status",
                    {
                        "officer_id": oid,
                        "status": item.action[3],
                        "alert_id": item.action[4],
                        "ts": item.time_ms,
                    },
                )
        oracle.advance_to(until)

    def _on_dispatch(self, what: str, oid: str, aid: str, at: int) -> None:
        self.gen[oid] += 1
        if what == "assigned":
            for delay, status in self.plans.get(oid, []):
                self._push(at + delay, ("status", oid, self.gen[oid], status, aid))

    def booked(self) -> list[tuple[str, str, str, int]]:
        """(alert, officer, reason, time) of every assignment, in order."""
        return [
            (
                m["alert"]["alert_id"],
                m["officer"]["officer_id"],
                m["reason"],
                m["assigned_utc_ms"],
            )
            for m in self.oracle.assignments
        ]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [ev for _, _, ev in self.oracle.events if ev.get("kind") == kind]


def _event_key(out: dict[str, Any]) -> tuple[str, str, str, int] | None:
    """A published lifecycle event's repeat key (README), None for anything else."""
    message = out.get("message") or {}
    if out.get("topic") != "dispatch.events" or message.get("kind") == "assigned":
        return None
    return (message["kind"], message["alert_id"], message["officer_id"], message["at_utc_ms"])
