"""A scarce night through the real broker (tests/test_dispatch_workers.py and
bench/bench_dispatch_night.py): few officers, a burst of alerts of mixed priority, and an
officers' app that answers every assignment as people do (acknowledges, arrives, clears;
sometimes declines). Optionally one worker is killed with SIGKILL mid-burst and restarted.

The verdict comes from what was published alone (`dispatch.assignments`, `dispatch.events`),
deduplicated by the documented keys (assignment id; event kind + alert + officer):
- no alert lost: each one has an `assigned` or `unassigned` event;
- each alert served with exactly its units (distinct officers who cleared it);
- no officer held two alerts at once (a sweep over assigned -> cleared/withdrawn/ack_timeout)."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from base.settings import Settings
from base.topics import TopicNames
from streams.pipeline.apps import positions_changelog
from streams.pipeline.worker import WorkerProcess

UNITS_BY_PRIORITY = {1: 2, 2: 1, 3: 1, 4: 1}
CATEGORY_BY_PRIORITY = {1: "weapon", 2: "violence", 3: "theft", 4: "noise"}
CENTRE = (29.56, 106.55)
# How long workers may take to start and replicate their first positions. The positions worker
# runs at niceness 10 under a role-`all` worker: at load 20+ it wrote its first log line after
# more than 90 s (the old bound), and the crash tests failed before any crash.
STARTUP_TIMEOUT_S = 300.0


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class NightPlan:
    officers: dict[str, tuple[float, float]]
    alerts: list[tuple[float, str, int, tuple[float, float]]]  # (send at s, id, priority, place)
    decline_rate: float

    @classmethod
    def random(
        cls,
        seed: int,
        *,
        officers: int = 8,
        alerts: int = 24,
        burst_s: float = 6.0,
        decline_rate: float = 0.15,
    ) -> NightPlan:
        rng = random.Random(seed)

        def near() -> tuple[float, float]:  # within ~1.5 km of the centre
            return (CENTRE[0] + rng.uniform(-0.013, 0.013), CENTRE[1] + rng.uniform(-0.015, 0.015))

        crew = {f"OFF-{i:02d}": near() for i in range(officers)}
        calls = sorted(
            (rng.uniform(0, burst_s), f"AL-{seed}-{i:03d}", rng.choice((1, 2, 3, 3, 4)), near())
            for i in range(alerts)
        )
        return cls(crew, calls, decline_rate)

    def units(self, alert_id: str) -> int:
        return next(UNITS_BY_PRIORITY[p] for _, a, p, _ in self.alerts if a == alert_id)


class OfficersApp(threading.Thread):
    """Reads `dispatch.assignments` and answers each new assignment on `officer.status`:
    declines some, otherwise en route, on scene, then available (cleared)."""

    def __init__(self, bootstrap: str, names: TopicNames, plan: NightPlan, seed: int) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.names, self.plan = bootstrap, names, plan
        self.rng = random.Random(seed)
        self.stop_flag = threading.Event()
        self.seen: set[str] = set()
        self.declined: set[tuple[str, str]] = set()

    def run(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0)
        try:
            # Every partition assigned by hand: a group-less `subscribe` takes its partitions
            # from the metadata it has at the time, and 2 of 14 loaded nights answered nothing
            # at all (officer.status empty while assignments were published).
            topic = self.names.assignments
            partitions = consumer.partitions_for_topic(topic) or set()
            while len(partitions) == 0 and not self.stop_flag.is_set():
                time.sleep(0.1)
                partitions = consumer.partitions_for_topic(topic) or set()
            consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
            while not self.stop_flag.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    for record in records:
                        self._answer(producer, orjson.loads(record.value))
        finally:
            consumer.close()
            producer.close()

    def _answer(self, producer: KafkaProducer, assignment: dict) -> None:
        if assignment["assignment_id"] in self.seen:
            return  # a repeat after a crash: the app has answered it already
        self.seen.add(assignment["assignment_id"])
        officer, alert_id = assignment["officer"]["officer_id"], assignment["alert"]["alert_id"]
        if (officer, alert_id) not in self.declined and self.rng.random() < self.plan.decline_rate:
            self.declined.add((officer, alert_id))
            steps = [("declined", 0.1)]
        else:
            steps = [("en_route", 0.1), ("on_scene", 0.2), ("available", 0.3)]
        threading.Thread(
            target=self._send, args=(producer, officer, alert_id, steps), daemon=True
        ).start()

    def _send(
        self, producer: KafkaProducer, officer: str, alert_id: str, steps: list[tuple[str, float]]
    ) -> None:
        for status, pause in steps:
            time.sleep(pause)
            message = {
                "officer_id": officer,
                "status": status,
                "alert_id": alert_id,
                "ts": now_ms(),
            }
            producer.send(self.names.status_raw, key=officer.encode(), value=orjson.dumps(message))
        producer.flush()


def send_pings(producer: KafkaProducer, names: TopicNames, plan: NightPlan) -> None:
    for officer, (lat, lon) in plan.officers.items():
        ping = {"officer_id": officer, "lat": lat, "lon": lon, "ts": now_ms()}
        producer.send(names.gps_raw, key=officer.encode(), value=orjson.dumps(ping))
    producer.flush()


def send_alerts(
    producer: KafkaProducer,
    names: TopicNames,
    plan: NightPlan,
    at_second: Callable[[float], None] = lambda s: None,
) -> None:
    """The burst, in real time; `at_second(elapsed)` is called between sends (to kill a worker
    in the middle)."""
    start = time.monotonic()
    for send_at, alert_id, priority, (lat, lon) in plan.alerts:
        while (elapsed := time.monotonic() - start) < send_at:
            at_second(elapsed)
            time.sleep(0.02)
        call = {
            "alert_id": alert_id,
            "category": CATEGORY_BY_PRIORITY[priority],
            "priority": priority,
            "lat": lat,
            "lon": lon,
            "time": now_ms(),
        }
        producer.send(names.alerts_raw, key=alert_id.encode(), value=orjson.dumps(call))
    producer.flush()


def read_records(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[ConsumerRecord]:
    """Every record of `topic` up to its end offsets now (none if it does not exist yet)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(
            consumer.position(p) < e for p, e in ends.items()
        ):
            for records in consumer.poll(timeout_ms=200).values():
                found.extend(records)
        return found
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> end offset of `topic` now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str) -> list[dict]:
    return [orjson.loads(record.value) for record in read_records(bootstrap, topic)]


@dataclass(slots=True)
class NightVerdict:
    lost: list[str] = field(default_factory=list)
    wrong_units: dict[str, int] = field(default_factory=dict)  # alert -> distinct officers cleared
    double_booked: list[str] = field(default_factory=list)
    assignments: int = 0
    repeats: int = 0  # duplicate messages a consumer drops by key (at-least-once)
    withdrawn: int = 0
    timelines: dict[str, list[str]] = field(default_factory=dict)  # of double-booked officers

    @property
    def ok(self) -> bool:
        return not (self.lost or self.wrong_units or self.double_booked)

    def summary(self) -> str:
        return (
            f"assignments={self.assignments} withdrawn={self.withdrawn} repeats={self.repeats} "
            f"lost={self.lost} wrong_units={self.wrong_units} "
            f"double_booked={self.double_booked[:5]} timelines={self.timelines}"
        )


def verdict(plan: NightPlan, events: list[dict], assignments: list[dict]) -> NightVerdict:
    result = NightVerdict()
    ids = {a["assignment_id"] for a in assignments}
    result.assignments, result.repeats = len(ids), len(assignments) - len(ids)
    # The README's keys: an `assigned` repeats with its assignment_id, the others with their
    # time (an officer sent to the same alert twice clears it twice, at two times).
    first: dict[tuple[str, ...], dict] = {}
    for event in sorted(events, key=lambda e: e["at_utc_ms"]):
        kind, alert_id, officer = event["kind"], event["alert_id"], event["officer_id"]
        if kind == "assigned":
            key: tuple[str, ...] = (kind, event.get("assignment_id") or f"{alert_id}:{officer}")
        else:
            key = (kind, alert_id, officer, str(event["at_utc_ms"]))
        if key in first:
            result.repeats += 1
        else:
            first[key] = event
    kinds_by_alert: dict[str, set[str]] = defaultdict(set)
    cleared: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for event in first.values():
        kind, alert_id = event["kind"], event["alert_id"]
        kinds_by_alert[alert_id].add(kind)
        if kind == "cleared":
            cleared[alert_id].add((event["officer_id"], event["at_utc_ms"]))
        result.withdrawn += kind in ("withdrawn", "ack_timeout")
    for _, alert_id, _, _ in plan.alerts:
        if not kinds_by_alert[alert_id] & {"assigned", "unassigned"}:
            result.lost.append(alert_id)
        elif len(cleared[alert_id]) != plan.units(alert_id):
            result.wrong_units[alert_id] = len(cleared[alert_id])
    result.double_booked = _overlaps(first.values())
    for officer in {line.split()[0] for line in result.double_booked}:
        mine = sorted(
            (e for e in events if e["officer_id"] == officer), key=lambda e: e["at_utc_ms"]
        )
        result.timelines[officer] = [f"{e['at_utc_ms']} {e['kind']} {e['alert_id']}" for e in mine]
    return result


def _overlaps(events: object) -> list[str]:
    """Officers who held two alerts at once: ends sort before starts at the same millisecond."""
    ends = ("cleared", "withdrawn", "ack_timeout")
    timeline: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for e in events:  # type: ignore[attr-defined]
        if e["kind"] == "assigned":
            timeline[e["officer_id"]].append((e["at_utc_ms"], 1, e["alert_id"]))
        elif e["kind"] in ends:
            timeline[e["officer_id"]].append((e["at_utc_ms"], 0, e["alert_id"]))
    found = []
    for officer, steps in timeline.items():
        held: set[str] = set()
        for at, starts, alert_id in sorted(steps):
            if starts:
                held.add(alert_id)
                if len(held) > 1:
                    found.append(f"{officer} held {sorted(held)} at {at}")
            else:
                held.discard(alert_id)
    return found


def settled(plan: NightPlan, bootstrap: str, names: TopicNames) -> bool:
    cleared: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for event in read_topic(bootstrap, names.events):
        if event["kind"] == "cleared":  # an officer may clear the same alert twice
            cleared[event["alert_id"]].add((event["officer_id"], event["at_utc_ms"]))
    return all(len(cleared[a]) >= plan.units(a) for _, a, _, _ in plan.alerts)


def run_night(
    bootstrap: str,
    names: TopicNames,
    plan: NightPlan,
    seed: int,
    *,
    during_burst: Callable[[float], None] = lambda s: None,
    timeout_s: float = 120.0,
) -> NightVerdict:
    """Send the night to workers already running, answer as the officers' app until every alert
    is served (or `timeout_s`), and judge what was published."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    app = OfficersApp(bootstrap, names, plan, seed)
    app.start()
    try:
        send_pings(producer, names, plan)
        send_alerts(producer, names, plan, during_burst or (lambda elapsed: None))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not settled(plan, bootstrap, names):
            time.sleep(1.0)
        time.sleep(1.0)  # what a crash may still repeat
    finally:
        app.stop_flag.set()
        app.join(timeout=10)
        producer.close()
    return verdict(
        plan, read_topic(bootstrap, names.events), read_topic(bootstrap, names.assignments)
    )


class MidBurstCrash:
    """`during_burst` for run_night: SIGKILL `workers[0]` `kill_at_s` into the burst, start a new
    one with the same settings `restart_after_s` later."""

    def __init__(
        self,
        workers: list[WorkerProcess],
        settings: Settings,
        log_dir: Path,
        kill_at_s: float = 2.5,
        restart_after_s: float = 1.5,
    ) -> None:
        self.workers, self.settings, self.log_dir = workers, settings, log_dir
        self.kill_at_s, self.restart_after_s = kill_at_s, restart_after_s
        self.killed_at: float | None = None
        self.restarted = False

    def __call__(self, elapsed: float) -> None:
        if self.killed_at is None and elapsed >= self.kill_at_s:
            self.workers[0].kill()
            self.killed_at = elapsed
        elif (
            self.killed_at is not None
            and not self.restarted
            and elapsed >= self.killed_at + self.restart_after_s
        ):
            log = self.log_dir / "worker-0-restarted.log"
            self.workers[0] = WorkerProcess(self.settings, log).start()
            self.restarted = True


def await_positions(
    bootstrap: str, settings: Settings, plan: NightPlan, timeout_s: float = STARTUP_TIMEOUT_S
) -> None:
    """Ping every officer and wait until the positions worker replicated them all: the workers
    are up and the night can start."""
    names = TopicNames.with_prefix(settings.topic_prefix)
    with KafkaProducer(bootstrap_servers=bootstrap) as producer:
        send_pings(producer, names, plan)
    changelog = positions_changelog(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len({r["officer_id"] for r in read_topic(bootstrap, changelog)}) >= len(plan.officers):
            return
        time.sleep(0.5)
    raise TimeoutError(f"positions of {len(plan.officers)} officers not replicated in {timeout_s}s")
