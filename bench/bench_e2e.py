"""End-to-end dispatch latency on the embedded stack: one Kafka broker, one dispatch worker and
one positions worker (what `smart-station worker` runs), a GPS ping load, alerts in and
assignments out, against the bare Kafka round trip as the peer.

    .venv/bin/python bench/bench_e2e.py [--officers 2000] [--ping-rate 2000] [--alerts 200]
        [--steps 500,1000,2000,4000,6000,8000] [--step-seconds 15] [--runs 1]

1. latency under load: pings at --ping-rate from a separate process while alerts (theft, one
   unit, near an officer) go in at --alert-rate; produced -> first assignment consumed, per alert.
2. peer: a probe message to a plain topic, interleaved with the alerts (same producer, same
   consumer, same load); its produce -> consume time is the floor any pipeline pays per hop.
3. ping-rate steps: consumer lag of the positions worker's group on the raw ping topic and on
   gps.pings.by-officer (the re-keying hop of pings not keyed by officer id)
   at the end of each step against its start; "sustained" = it grew by less than 1 s of pings.
   Stepping stops once the lag keeps rising in a step's second half (the worker falls behind).

Everything binds 127.0.0.1; every load is bounded in count and time; the workers and the broker
are stopped in `finally`. Results: stdout and bench/out/e2e.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.topics import ensure_topics
from streams.pipeline.positions_worker import positions_app_id, positions_changelog
from streams.pipeline.worker import POSITIONS_NICENESS, Role, WorkerProcess

KAFKA_VERSION = "4.1.1"  # infra/kafka/pom.xml
CENTRE = (29.56, 106.55)  # Chongqing
HALF_SIDE_M = 10_000.0  # officers spread over a 20 km x 20 km square
PING_STEP_M = 5.0  # how far an officer drifts between two pings, at most
ALERT_OFFSET_M = 200.0  # an alert lands this close to some officer, at most
METRES_PER_DEG_LAT = 111_320.0
STATION_ZONE = dt.timezone(dt.timedelta(hours=8))
PACE_TICK_S = 0.005  # the ping generator sends a small batch every 5 ms
PREFIX = "bench."
APP_ID = "bench-e2e"
OUT = Path(__file__).resolve().parent / "out"
FALLING_BEHIND = 0.1  # lag rising by more than this share of the ping rate per second

Officer = tuple[str, float, float]


# -- data ------------------------------------------------------------------------------------
def iso_now() -> str:
    return dt.datetime.now(STATION_ZONE).isoformat(timespec="milliseconds")


def offset_deg(lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (
        north_m / METRES_PER_DEG_LAT,
        east_m / (METRES_PER_DEG_LAT * math.cos(math.radians(lat))),
    )


def officer_positions(n: int, seed: int) -> list[Officer]:
    rng = random.Random(seed)
    officers = []
    for i in range(n):
        dlat, dlon = offset_deg(
            CENTRE[0],
            rng.uniform(-HALF_SIDE_M, HALF_SIDE_M),
            rng.uniform(-HALF_SIDE_M, HALF_SIDE_M),
        )
        officers.append((f"OFF-{i:05d}", CENTRE[0] + dlat, CENTRE[1] + dlon))
    return officers


def ping(officer_id: str, lat: float, lon: float, ts: str) -> bytes:
    return orjson.dumps(
        {"officer_id": officer_id, "station_id": "ST-01", "lat": lat, "lon": lon, "ts": ts}
    )


def alert(alert_id: str, index: int, lat: float, lon: float) -> bytes:
    return orjson.dumps(
        {
            "alert_id": alert_id,
            "category": "theft",
            "lat": lat,
            "lon": lon,
            "address": f"测试路 {index} 号",
            "caller_phone": f"138{index:08d}",
            "time": iso_now(),
        }
    )


# -- the ping load, in its own process so it does not share a GIL with the latency clock ------
@dataclass(slots=True)
class LoadResult:
    target_rate: float
    sent: int
    seconds: float
    cpu_seconds: float

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def ping_load(
    bootstrap: str,
    topic: str,
    officers: int,
    seed: int,
    rate: float,
    seconds: float,
    linger_ms: int,
    stop: Any,
    results: Any,
) -> None:
    """Send pings round-robin over the officers at `rate`/s for `seconds` (or until `stop`)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms)
    positions = officer_positions(officers, seed)
    ids = [officer_id.encode() for officer_id, _, _ in positions]
    lats = [lat for _, lat, _ in positions]
    lons = [lon for _, _, lon in positions]
    dlat, dlon = offset_deg(CENTRE[0], PING_STEP_M, PING_STEP_M)
    rng = random.Random(seed + 1)
    cap = max(1, officers // 2)  # one ping per officer per batch: equal timestamps are dropped
    sent = cursor = 0
    start = time.perf_counter()
    deadline = start + seconds
    while not stop.is_set():
        now = time.perf_counter()
        if now >= deadline:
            break
        due = min(cap, int(rate * (now - start)) - sent)
        ts = iso_now()
        for _ in range(max(0, due)):
            k = cursor
            cursor = (cursor + 1) % officers
            lats[k] += rng.uniform(-dlat, dlat)
            lons[k] += rng.uniform(-dlon, dlon)
            producer.send(topic, key=ids[k], value=ping(positions[k][0], lats[k], lons[k], ts))
        sent += max(0, due)
        time.sleep(max(0.0, PACE_TICK_S - (time.perf_counter() - now)))
    producer.flush(timeout=30)
    elapsed = time.perf_counter() - start
    producer.close(timeout=10)
    results.put(asdict(LoadResult(rate, sent, elapsed, time.process_time())))


class PingLoad:
    """A bounded ping generator process: starts, runs `seconds`, stops by itself."""

    def __init__(
        self, bootstrap: str, topic: str, args: argparse.Namespace, rate: float, seconds: float
    ) -> None:
        ctx = mp.get_context("spawn")
        self.stop_event = ctx.Event()
        self.results = ctx.Queue()
        self.process = ctx.Process(
            target=ping_load,
            args=(
                bootstrap,
                topic,
                args.officers,
                args.seed,
                rate,
                seconds,
                args.linger_ms,
                self.stop_event,
                self.results,
            ),
            daemon=True,
        )
        self.seconds = seconds

    def start(self) -> PingLoad:
        self.process.start()
        return self

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def result(self) -> LoadResult:
        data = self.results.get(timeout=self.seconds + 60)
        self.process.join(timeout=30)
        return LoadResult(**data)

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)


# -- measuring -------------------------------------------------------------------------------
class Arrivals(threading.Thread):
    """Consumes the assignments and the probe topic from their end; notes, per alert or probe
    id, when its first message arrived (perf_counter, same process as the send stamps)."""

    def __init__(self, bootstrap: str, assignments: str, probes: str, partitions: int) -> None:
        super().__init__(daemon=True)
        self.assignments = assignments
        self.seen: dict[str, float] = {}
        self.stop_event = threading.Event()
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        tps = [TopicPartition(t, p) for t in (assignments, probes) for p in range(partitions)]
        self.consumer.assign(tps)
        self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, not at the first poll
            self.consumer.position(tp)

    def run(self) -> None:
        while not self.stop_event.is_set():
            batches = self.consumer.poll(timeout_ms=50)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    self.seen.setdefault(self.id_of(record), now)

    def id_of(self, record: Any) -> str:
        if record.topic == self.assignments:
            return str(orjson.loads(record.value)["alert"]["alert_id"])
        return str(record.key.decode())

    def close(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)
        self.consumer.close()


class LagProbe:
    """Consumer lag of the worker's group: end offsets minus committed offsets, per topic."""

    def __init__(self, bootstrap: str, group: str, topics: Sequence[str], partitions: int) -> None:
        self.group = group
        self.tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-lag")
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)

    def lag(self) -> dict[str, int]:
        committed = self.admin.list_group_offsets({self.group: self.tps}).get(self.group, {})
        ends = self.consumer.end_offsets(self.tps)
        lag: dict[str, int] = {}
        for tp in self.tps:
            done = committed.get(tp)
            position = done.offset if done is not None and done.offset >= 0 else 0
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends[tp] - position)
        return lag

    def end_total(self, topic: str) -> int:
        """Records written to `topic` so far (0 while it does not exist)."""
        partitions = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return sum(self.consumer.end_offsets(tps).values()) if tps else 0

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()


class CpuMeter:
    """CPU time of named processes (from /proc) and of the whole machine, as % of one core over
    a window; `others` is what the rest of the machine used meanwhile (contention)."""

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = self.sample()
        self.machine_start = machine_busy_s()
        self.started = time.perf_counter()

    def sample(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            out[name] = (int(fields[11]) + int(fields[12])) / self.TICKS  # utime + stime
        return out

    def percent(self) -> dict[str, float]:
        end, seconds = self.sample(), time.perf_counter() - self.started
        ours = {name: 100 * (end[name] - self.start.get(name, end[name])) / seconds for name in end}
        machine = 100 * (machine_busy_s() - self.machine_start) / seconds
        ours["machine"] = machine
        ours["others"] = max(0.0, machine - sum(v for k, v in ours.items() if k != "machine"))
        return {name: round(value, 1) for name, value in ours.items()}


def machine_busy_s() -> float:
    """Busy CPU seconds of all cores since boot (/proc/stat: all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CpuMeter.TICKS


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: never interpolates, so an infinite (never arrived) value stays infinite."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """p50/p90/p99/max in ms; None stands for "never arrived" (an infinite latency)."""
    ms = [x * 1000 for x in latencies_s]

    def finite(value: float) -> float | None:
        return round(value, 2) if math.isfinite(value) else None

    arrived = [x for x in ms if math.isfinite(x)]
    return {
        "count": len(ms),
        "arrived": len(arrived),
        "p50": finite(percentile(ms, 50)),
        "p90": finite(percentile(ms, 90)),
        "p99": finite(percentile(ms, 99)),
        "max": finite(max(ms)) if ms else None,
        "mean_of_arrived": round(statistics.fmean(arrived), 2) if arrived else None,
    }


# -- the stack -------------------------------------------------------------------------------
@dataclass(slots=True)
class Stack:
    root: Path
    broker: EmbeddedBroker
    bootstrap: str
    names: TopicNames
    probes: str
    settings: Settings
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    loads: list[PingLoad] = field(default_factory=list)

    @property
    def changelog(self) -> str:
        return positions_changelog(self.settings)

    def check_workers(self) -> None:
        for name, worker in self.workers.items():
            if not worker.alive():
                raise RuntimeError(f"the {name} worker died; see {OUT / f'e2e-{name}.log'}")


def new_stack(root: Path, partitions: int) -> Stack:
    names = TopicNames.with_prefix(PREFIX)
    settings = Settings(
        state_dir=root / "state",
        topic_prefix=PREFIX,
        app_id=APP_ID,
        topic_partitions=partitions,
        log_level="warn",
    )
    return Stack(
        root, EmbeddedBroker(root / "kafka", heap="1g"), "", names, f"{PREFIX}bench.bare", settings
    )


def start_stack(stack: Stack) -> None:
    stack.bootstrap = stack.broker.start()
    partitions = stack.settings.topic_partitions
    ensure_topics(stack.bootstrap, [*stack.names.all(), stack.probes], partitions)
    stack.settings = stack.settings.model_copy(update={"kafka_bootstrap": stack.bootstrap})
    for role, niceness in ((Role.DISPATCH, 0), (Role.POSITIONS, POSITIONS_NICENESS)):
        # what `worker --role all` runs, as two processes of the bench's
        log_path = stack.root / f"{role.value}.log"
        worker = WorkerProcess(stack.settings, log_path, role).start(niceness=niceness)
        stack.workers[role.value] = worker


def stop_stack(stack: Stack) -> None:
    for load in stack.loads:
        load.stop()
    for name, worker in stack.workers.items():
        worker.stop()
        OUT.mkdir(parents=True, exist_ok=True)
        if worker.log_path.exists():
            shutil.copy(worker.log_path, OUT / f"e2e-{name}.log")
    stack.broker.stop()


def prime_officers(
    stack: Stack,
    producer: KafkaProducer,
    officers: list[Officer],
    probe: LagProbe,
    timeout_s: float = 120,
) -> float:
    """One fresh ping per officer; waits until the positions changelog holds one each."""
    started = time.perf_counter()
    ts = iso_now()
    for officer_id, lat, lon in officers:
        producer.send(
            stack.names.gps_raw, key=officer_id.encode(), value=ping(officer_id, lat, lon, ts)
        )
    producer.flush()
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        stack.check_workers()
        if probe.end_total(stack.changelog) >= len(officers):
            return time.perf_counter() - started
        time.sleep(0.5)
    raise RuntimeError(f"officers not indexed after {timeout_s:.0f}s")


# -- phase 1 + 2: latency under load, against the bare round trip ------------------------------
def latency_run(
    stack: Stack,
    args: argparse.Namespace,
    run: int,
    producer: KafkaProducer,
    officers: list[Officer],
    lag: LagProbe,
) -> dict[str, Any]:
    rng = random.Random(args.seed * 7919 + run)
    period = 1.0 / args.alert_rate
    total = args.warmup + args.alerts
    seconds = args.lead_s + total * period + 2.0
    arrivals = Arrivals(stack.bootstrap, stack.names.assignments, stack.probes, args.partitions)
    arrivals.start()
    load = PingLoad(stack.bootstrap, stack.names.gps_raw, args, args.ping_rate, seconds).start()
    stack.loads.append(load)
    cpu = CpuMeter(broker_worker_pids(stack) | {"bench": os.getpid()})
    time.sleep(args.lead_s)  # the worker settles under the load before the first alert
    lag_before = lag.lag()
    sent_alerts: dict[str, float] = {}
    sent_probes: dict[str, float] = {}
    next_at = time.perf_counter()
    for i in range(total):
        _, lat, lon = officers[rng.randrange(len(officers))]
        dlat, dlon = offset_deg(
            lat, rng.uniform(-1, 1) * ALERT_OFFSET_M, rng.uniform(-1, 1) * ALERT_OFFSET_M
        )
        alert_id = f"BA-{run}-{i:04d}"
        value = alert(alert_id, run * 100_000 + i, lat + dlat, lon + dlon)
        sent_alerts[alert_id] = time.perf_counter()
        producer.send(stack.names.alerts_raw, key=alert_id.encode(), value=value)
        time.sleep(max(0.0, next_at + period / 2 - time.perf_counter()))
        probe_id = f"BP-{run}-{i:04d}"
        sent_probes[probe_id] = time.perf_counter()
        producer.send(stack.probes, key=probe_id.encode(), value=b'{"probe": true}')
        next_at += period
        time.sleep(max(0.0, next_at - time.perf_counter()))
    deadline = time.perf_counter() + args.drain_s
    while time.perf_counter() < deadline and not set(sent_alerts) <= set(arrivals.seen):
        time.sleep(0.1)
    lag_after = lag.lag()
    cpu_percent = cpu.percent()
    loaded = load.result()
    add_generator_cpu(cpu_percent, loaded)
    arrivals.close()
    pipeline = latencies(sent_alerts, arrivals.seen, args.warmup)
    bare = latencies(sent_probes, arrivals.seen, args.warmup)
    return {
        "run": run,
        "alerts": len(pipeline),
        "assigned": sum(1 for x in pipeline if math.isfinite(x)),
        "pipeline_ms": summary_ms(pipeline),
        "bare_ms": summary_ms(bare),
        "ratio_pipeline_over_bare": {q: ratio_value(pipeline, bare, q) for q in (50, 99)},
        "ping_load": {**asdict(loaded), "achieved_rate": round(loaded.achieved_rate)},
        "lag_before": lag_before,
        "lag_after": lag_after,
        "cpu_percent_of_one_core": cpu_percent,
    }


def ratio_value(pipeline: list[float], bare: list[float], q: int) -> float | None:
    value = percentile(pipeline, q) / percentile(bare, q)
    return round(value, 2) if math.isfinite(value) else None


def latencies(sent: dict[str, float], seen: dict[str, float], warmup: int) -> list[float]:
    """Seconds from send to first arrival, after the warm-up; inf for what never arrived."""
    return [
        seen.get(key, math.inf) - at
        for key, at in sent.items()
        if int(key.rsplit("-", 1)[1]) >= warmup
    ]


def add_generator_cpu(cpu_percent: dict[str, float], loaded: LoadResult) -> None:
    generator = round(100 * loaded.cpu_seconds / loaded.seconds, 1)
    cpu_percent["generator"] = generator
    cpu_percent["others"] = round(max(0.0, cpu_percent["others"] - generator), 1)


def broker_worker_pids(stack: Stack) -> dict[str, int]:
    pids = {}
    broker_pid = stack.broker.pid()
    if broker_pid is not None:
        pids["broker"] = broker_pid
    for name, worker in stack.workers.items():
        pids[name] = worker.pid
    return pids


# -- phase 3: the highest sustained ping rate ---------------------------------------------------
def settle(stack: Stack, lag: LagProbe, timeout_s: float) -> float | None:
    """Seconds until the worker caught up with the pings (None: it did not within timeout_s)."""
    started = time.perf_counter()
    topics = (stack.names.gps_raw, stack.names.gps_by_officer)
    if wait_drained(lag, topics, limit=500, timeout_s=timeout_s):
        return round(time.perf_counter() - started, 1)
    return None


def wait_drained(lag: LagProbe, topics: Sequence[str], limit: int, timeout_s: float) -> bool:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        current = lag.lag()
        if all(current[t] <= limit for t in topics):
            return True
        time.sleep(0.5)
    return False


def rate_step(stack: Stack, args: argparse.Namespace, rate: int, lag: LagProbe) -> dict[str, Any]:
    topics = (stack.names.gps_raw, stack.names.gps_by_officer)
    drained = wait_drained(lag, topics, limit=max(500, rate // 4), timeout_s=args.drain_s)
    before = lag.lag()
    load = PingLoad(stack.bootstrap, stack.names.gps_raw, args, rate, args.step_seconds).start()
    stack.loads.append(load)
    cpu = CpuMeter(broker_worker_pids(stack))
    peak = dict(before)
    samples: list[tuple[float, dict[str, int]]] = []
    while load.alive():
        time.sleep(1.0)
        samples.append((time.perf_counter(), lag.lag()))
        for topic, value in samples[-1][1].items():
            peak[topic] = max(peak[topic], value)
    after = lag.lag()
    samples.append((time.perf_counter(), after))
    cpu_percent = cpu.percent()
    loaded = load.result()
    add_generator_cpu(cpu_percent, loaded)
    allowed = loaded.achieved_rate * args.sustain_s
    growth = {t: after[t] - before[t] for t in topics}
    slope = trend(samples, topics)
    return {
        "target_rate": rate,
        "achieved_rate": round(loaded.achieved_rate),
        "generator_bound": loaded.achieved_rate < 0.95 * rate,
        "sent": loaded.sent,
        "seconds": round(loaded.seconds, 2),
        "drained_before": drained,
        "lag_before": before,
        "lag_after": after,
        "lag_peak": peak,
        "lag_growth": growth,
        "lag_trend_second_half_per_s": slope,
        "falling_behind": any(v > FALLING_BEHIND * loaded.achieved_rate for v in slope.values()),
        "allowed_growth": round(allowed),
        "sustained": all(g <= allowed for g in growth.values()),
        "cpu_percent_of_one_core": cpu_percent,
    }


def trend(samples: list[tuple[float, dict[str, int]]], topics: Sequence[str]) -> dict[str, int]:
    """Lag change per second over the second half of a step: ~0 for a standing backlog that
    does not grow, ~(offered - processed rate) when the worker falls further behind."""
    (t0, mid), (t1, end) = samples[len(samples) // 2], samples[-1]
    if t1 <= t0:
        return {t: 0 for t in topics}
    return {t: round((end[t] - mid[t]) / (t1 - t0)) for t in topics}


# -- report ----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "kafka": KAFKA_VERSION,
        "kafka_python": __import__("kafka").__version__,
        "faust": __import__("faust").__version__,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def print_latency(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nlatency under load: {args.alerts} alerts at {args.alert_rate:g}/s "
        f"(+{args.warmup} warm-up), pings at {args.ping_rate}/s, {args.officers} officers"
    )
    print(
        f"  {'run':>3} {'path':<34} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8}"
    )
    for r in runs:
        for label, key, n in (
            ("alert -> assignment (pipeline)", "pipeline_ms", f"{r['assigned']}/{r['alerts']}"),
            ("probe -> consumed (bare Kafka)", "bare_ms", str(r["bare_ms"]["arrived"])),
        ):
            s = r[key]
            cells = " ".join(f"{ms_cell(s[q]):>8}" for q in ("p50", "p90", "p99", "max"))
            print(f"  {r['run']:>3} {label:<34} {n:>5} {cells}")
        print(
            f"      ratio pipeline/bare: p50 {ratio(r, 'p50')}, p99 {ratio(r, 'p99')}; "
            f"pings achieved {r['ping_load']['achieved_rate']}/s; worker lag raw/by-officer "
            f"{fmt_lag(r['lag_before'])} at the first alert -> {fmt_lag(r['lag_after'])} at the "
            f"end; cpu % of one core {r['cpu_percent_of_one_core']}"
        )
    print("  (never = no assignment by the end of the run; percentiles count it as infinite)")


def ms_cell(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def ratio(run: dict[str, Any], q: str) -> str:
    pipeline, bare = run["pipeline_ms"][q], run["bare_ms"][q]
    if pipeline is None or bare is None or bare == 0:
        return "n/a"
    return f"{pipeline / bare:.1f}x"


def fmt_lag(lag: dict[str, int]) -> str:
    return "/".join(str(lag[t]) for t in (f"{PREFIX}gps.pings", f"{PREFIX}gps.pings.by-officer"))


def print_steps(steps: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nping-rate steps: {args.step_seconds:g} s each; sustained = lag on raw and by-officer "
        f"pings grew by <= {args.sustain_s:g} s of achieved rate (start -> end)"
    )
    print(
        f"  {'target/s':>8} {'achieved/s':>10} {'lag raw start->end (peak)':>27} "
        f"{'lag by-officer start->end':>27} {'trend/s':>11} {'ok':>3}  "
        "cpu % broker/positions/dispatch/generator/others"
    )
    raw, norm = f"{PREFIX}gps.pings", f"{PREFIX}gps.pings.by-officer"
    for s in steps:
        cpu = s["cpu_percent_of_one_core"]
        slope = s["lag_trend_second_half_per_s"]
        bound = " (generator-bound)" if s["generator_bound"] else ""
        shares = "/".join(
            f"{cpu.get(k, 0):.0f}"
            for k in ("broker", "positions", "dispatch", "generator", "others")
        )
        print(
            f"  {s['target_rate']:>8} {s['achieved_rate']:>10} "
            f"{lag_cell(s, raw):>27} {lag_cell(s, norm):>27} "
            f"{f'{slope[raw]:+d}/{slope[norm]:+d}':>11} "
            f"{'yes' if s['sustained'] else 'no':>3}  {shares}{bound}"
        )
    print(
        "  (trend/s: lag change per second over the second half, raw/by-officer; stepping "
        f"stops once it exceeds {FALLING_BEHIND:.0%} of the rate: the worker falls behind)"
    )


def lag_cell(step: dict[str, Any], topic: str) -> str:
    return f"{step['lag_before'][topic]}->{step['lag_after'][topic]} ({step['lag_peak'][topic]})"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--officers", type=int, default=2000)
    parser.add_argument("--ping-rate", type=int, default=2000, help="pings/s during latency runs")
    parser.add_argument("--alerts", type=int, default=200, help="measured alerts per run")
    parser.add_argument("--alert-rate", type=float, default=10.0, help="alerts (and probes)/s")
    parser.add_argument("--warmup", type=int, default=10, help="alerts sent but not measured")
    parser.add_argument("--runs", type=int, default=1, help="latency runs")
    parser.add_argument(
        "--steps", default="500,1000,2000,4000,6000,8000", help="ping rates/s; empty: skip"
    )
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--sustain-s", type=float, default=1.0, help="allowed lag growth, s")
    parser.add_argument(
        "--all-steps", action="store_true", help="go on after a step that fell behind"
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--linger-ms", type=int, default=2, help="bench producers' linger")
    parser.add_argument("--lead-s", type=float, default=3.0, help="load before the first alert")
    parser.add_argument("--drain-s", type=float, default=10.0, help="wait for late answers")
    parser.add_argument(
        "--settle-s", type=float, default=60.0, help="wait for the backlog before the steps"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.alerts + args.warmup > 0.5 * args.officers * args.runs:
        parser.error("every assignment books an officer: use more --officers than alerts")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    info = machine()
    print("machine: " + " ".join(f"{k}={v}" for k, v in info.items()))
    result: dict[str, Any] = {"machine": info, "config": vars(args), "runs": [], "steps": []}
    officers = officer_positions(args.officers, args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        stack = new_stack(Path(tmp), args.partitions)
        closers: list[Any] = []
        try:
            start_stack(stack)
            producer = KafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=args.linger_ms)
            closers.append(lambda: producer.close(timeout=10))
            lag = LagProbe(
                stack.bootstrap,
                positions_app_id(stack.settings),
                [stack.names.gps_raw, stack.names.gps_by_officer],
                args.partitions,
            )
            closers.append(lag.close)
            primed_s = prime_officers(stack, producer, officers, lag)
            print(
                f"stack up in {time.perf_counter() - started:.1f} s; "
                f"{args.officers} officers indexed in {primed_s:.1f} s"
            )
            for run in range(1, args.runs + 1):
                result["runs"].append(latency_run(stack, args, run, producer, officers, lag))
            print_latency(result["runs"], args)
            if steps:
                settled = settle(stack, lag, args.settle_s)
                result["settled_before_steps_s"] = settled
                print(f"\nbacklog before the steps: drained in {settled} s (None: not drained)")
            for rate in steps:
                step = rate_step(stack, args, rate, lag)
                result["steps"].append(step)
                if step["falling_behind"] and not args.all_steps:
                    break  # higher rates only fall further behind
            if steps:
                print_steps(result["steps"], args)
        finally:
            for close in closers:
                close()
            stop_stack(stack)
    report(result, args, time.perf_counter() - started)


def report(result: dict[str, Any], args: argparse.Namespace, elapsed_s: float) -> None:
    p99s = [r["pipeline_ms"]["p99"] for r in result["runs"]]
    sustained = [s for s in result["steps"] if s["sustained"]]
    best = max(sustained, key=lambda s: s["achieved_rate"]) if sustained else None
    result["floor"] = {
        "p99_ms_below": 100,
        "met": bool(p99s) and all(p is not None and p < 100 for p in p99s),
        "ping_rate": args.ping_rate,
    }
    result["max_sustained"] = best and {
        "target_rate": best["target_rate"],
        "achieved_rate": best["achieved_rate"],
        "generator_bound": best["generator_bound"],
    }
    result["elapsed_s"] = round(elapsed_s, 1)
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"\nfloor p99 < 100 ms at {args.ping_rate} pings/s: "
        f"{'met' if result['floor']['met'] else 'MISSED'} (p99 {p99s} ms)"
    )
    if not result["steps"]:
        print("highest sustained ping rate: not measured (no --steps)")
    elif best is None:
        print("highest sustained ping rate: none of the steps")
    else:
        print(
            f"highest sustained ping rate (one worker): {best['achieved_rate']}/s achieved "
            f"(target {best['target_rate']}/s)"
            + (", generator-bound" if best["generator_bound"] else "")
        )
    print(
        f"runs: {len(result['runs'])} latency run(s), {len(result['steps'])} step(s); "
        f"total {elapsed_s:.0f} s"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "e2e.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT / 'e2e.json'}")


if __name__ == "__main__":
    main()
