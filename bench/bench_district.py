"""End to end at district and city scale, with the simulator's night as the load, on the embedded
stack: a broker started cold in each run, a dispatch and a positions worker (what `worker --role
all` runs, as two processes), the warehouse loader (chDB, in this process).

    .venv/bin/python bench/bench_district.py [--scales district,city] [--minutes 2] [--runs 1]

Per scale and run, the night is sent in real time (speed-up 1: pings every ~5 s per patrolling
officer) by a generator in its own process, started as soon as the dispatcher ticks (cold start
included: the first alerts meet freshly started workers):
- alert produced -> its first assignment consumed (a consumer of dispatch.assignments in this
  process), p50/p99 over every alert assigned without waiting for a free officer;
- the generator's own CPU (its process, after imports), apart from the pipeline's processes';
- warehouse freshness: alert produced -> its row queryable (polled every 0.2 s), and the age
  of the newest queryable ping (now - its event time), p50/p99;
- the dispatch worker's RSS before the night and at its end, per 10k officers of state.
Results: stdout and bench/out/district.json. Everything binds 127.0.0.1 and is stopped in
`finally`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_e2e import CpuMeter, machine, summary_ms
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.topics import ensure_topics
from sinks.migrations import migrate
from sinks.warehouse import ChdbWarehouse, Warehouse
from streams.pipeline.stack import prepare_topics, protector_for
from streams.pipeline.worker import POSITIONS_NICENESS, Role, WorkerProcess
from streams.sim.demo import OutputTail, await_dispatcher, loader_thread
from streams.sim.live import Board

OUT = Path(__file__).resolve().parent / "out"
SCALES = {"district": 18, "city": 169}
OFFICERS_PER_STATION = 30
POLL_S = 0.2
BARE_TOPIC = "bd.bench.bare"
WARM_AFTER_S = 30.0  # the warm figure leaves out alerts of the night's first 30 s


def generate(night: dict[str, Any], bootstrap: str, prefix: str, done: Any) -> None:
    """The generator's process: the night in real time to the raw topics; reports when each
    alert was produced and its own CPU after imports."""
    from streams.sim.night import Night, NightConfig, Record
    from streams.sim.runner import run_to_kafka

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    sends: dict[str, float] = {}

    def on_record(record: Record) -> None:
        if record.topic == "alerts.calls" and record.key is not None:
            sends[record.key] = time.time()

    plan = Night.of(NightConfig(**night, start_ms=int(time.time() * 1000)))
    result = run_to_kafka(
        plan, bootstrap, TopicNames.with_prefix(prefix), speedup=1.0, on_record=on_record
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    done.put(
        {
            "sends": sends,
            "cpu_s": usage.ru_utime + usage.ru_stime - cpu0,
            "wall_s": result.wall_s,
            "records": result.records,
            "officers": len(plan.officers),
            "pings": plan.ledger.counts["gps.pings"],
        }
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Freshness(threading.Thread):
    """When each alert's row first becomes queryable, and the age of the newest ping row."""

    def __init__(self, warehouse: Warehouse, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="bench-freshness")
        self.warehouse, self.stop = warehouse, stop
        self.alert_seen: dict[str, float] = {}
        self.ping_age_s: list[tuple[float, float]] = []  # (when, age of the newest ping)

    def run(self) -> None:
        db = self.warehouse.database
        while not self.stop.wait(POLL_S):
            now = time.time()
            for row in self.warehouse.query(f"SELECT alert_id FROM {db}.alerts"):
                self.alert_seen.setdefault(str(row["alert_id"]), now)
            (newest,) = self.warehouse.query(f"SELECT max(event_utc_ms) AS t FROM {db}.gps_pings")
            if int(newest["t"] or 0) > 0:
                self.ping_age_s.append((now, now - int(newest["t"]) / 1000))


class BareProbe(threading.Thread):
    """The peer: a message produced to a plain topic and consumed back, every 0.5 s, beside the
    night on the same broker and machine: the floor any pipeline hop pays under this load."""

    def __init__(self, bootstrap: str, topic: str, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="bench-bare")
        self.bootstrap, self.topic, self.stop = bootstrap, topic, stop
        self.round_trips_s: list[float] = []

    def run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        partition = TopicPartition(self.topic, 0)
        consumer.assign([partition])
        consumer.seek_to_end(partition)
        while not self.stop.is_set():
            try:
                consumer.position(partition)  # a new topic's metadata may take a moment
                break
            except KafkaError:
                time.sleep(0.5)
        try:
            while not self.stop.wait(0.5):
                sent = time.time()
                producer.send(self.topic, value=b"probe", partition=0)
                producer.flush()
                while not self.stop.is_set() and not consumer.poll(timeout_ms=100):
                    pass
                self.round_trips_s.append(time.time() - sent)
        finally:
            producer.close()
            consumer.close()


def one_run(scale: str, args: argparse.Namespace, root: Path, store_path: Path) -> dict[str, Any]:
    stations = SCALES[scale]
    broker = EmbeddedBroker(root / "kafka", heap="1g")
    started = time.monotonic()
    stop = threading.Event()
    workers: dict[str, WorkerProcess] = {}
    threads: list[threading.Thread] = []
    try:
        bootstrap = broker.start()
        broker_s = time.monotonic() - started
        settings = Settings(
            state_dir=root / "state",
            kafka_bootstrap=bootstrap,
            topic_prefix="bd.",
            app_id=f"bench-district-{root.name}",
            warehouse_database=f"bench_{root.name}",
            log_level="warn",
        )
        names = prepare_topics(settings, bootstrap)
        ensure_topics(bootstrap, [BARE_TOPIC], 1)
        warehouse = ChdbWarehouse(store_path, settings.warehouse_database)
        migrate(warehouse, protector_for(settings))
        for role, niceness in ((Role.DISPATCH, 0), (Role.POSITIONS, POSITIONS_NICENESS)):
            log_path = root / f"{role.value}.log"
            workers[role.value] = WorkerProcess(settings, log_path, role).start(niceness=niceness)
        board = Board()
        fresh = Freshness(warehouse, stop)
        bare = BareProbe(bootstrap, BARE_TOPIC, stop)
        threads += [
            bare,
            loader_thread(settings, bootstrap, names, warehouse, stop),
            OutputTail(bootstrap, names, board, stop),
            fresh,
        ]
        for thread in threads:
            thread.start()
        await_dispatcher(bootstrap, names.ticks, workers["dispatch"])
        ready_s = time.monotonic() - started
        dispatch_pid = workers["dispatch"].pid
        rss_before = rss_mib(dispatch_pid)
        pids = {name: worker.pid for name, worker in workers.items()}
        pids["broker"] = broker.pid() or 0
        cpu = CpuMeter(pids)
        night = {
            "seed": args.seed,
            "stations": stations,
            "officers_per_station": OFFICERS_PER_STATION,
            "duration_s": args.minutes * 60,
            "calls_per_station_hour": args.calls_per_hour,
        }
        done: Any = mp.get_context("spawn").Queue()
        generator = mp.get_context("spawn").Process(
            target=generate, args=(night, bootstrap, "bd.", done), daemon=True
        )
        generator.start()
        night_from = time.time()
        sent = done.get(timeout=args.minutes * 60 + 300)
        generator.join(30)
        usage = cpu.percent()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(sent["sends"]) <= board.accounted():
            time.sleep(0.5)
        time.sleep(3 * POLL_S + settings.sink_flush_interval_s)
        rss_after = rss_mib(dispatch_pid)
        with board.lock:
            heard, waited = dict(board.assigned_s), set(board.waited)
        fresh_alerts = [a for a in sent["sends"] if a not in waited]
        latency = [heard.get(a, float("inf")) - sent["sends"][a] for a in fresh_alerts]
        loaded = [fresh.alert_seen.get(a, float("inf")) - sent["sends"][a] for a in sent["sends"]]
        officers = sent["officers"]
        bare_s = list(bare.round_trips_s)
        night_to = night_from + args.minutes * 60  # then only late pings trickle in
        ping_age = [age for at, age in fresh.ping_age_s if night_from <= at <= night_to]
        warm = [
            value
            for a, value in zip(fresh_alerts, latency, strict=True)
            if sent["sends"][a] >= night_from + WARM_AFTER_S
        ]
        return {
            "scale": scale,
            "stations": stations,
            "officers": officers,
            "pings_per_s": round(sent["pings"] / (args.minutes * 60), 1),
            "alerts": len(sent["sends"]),
            "waited": len(waited & set(sent["sends"])),
            "broker_cold_start_s": round(broker_s, 1),
            "workers_ready_s": round(ready_s, 1),
            "assign_ms": summary_ms(latency),
            "assign_ms_warm": summary_ms(warm),
            "bare_kafka_ms": summary_ms(bare_s),
            "alert_queryable_ms": summary_ms(loaded),
            "newest_ping_age_ms": summary_ms(ping_age),
            "generator_cpu_percent": round(100 * sent["cpu_s"] / sent["wall_s"], 1),
            "cpu_percent": usage,
            "dispatch_rss_mib": [round(rss_before, 1), round(rss_after, 1)],
            "rss_growth_mib": round(rss_after - rss_before, 1),
            "loadavg_at_end": [round(x, 2) for x in __import__("os").getloadavg()],
        }
    finally:
        stop.set()
        for worker in workers.values():
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)
        broker.stop()


def ratio(pipeline: dict[str, Any], peer: dict[str, Any]) -> str:
    if not pipeline.get("p50") or not peer.get("p50"):
        return "-"
    return f"{pipeline['p50'] / peer['p50']:.1f}x"


def ms(summary: dict[str, Any], key: str) -> str:
    value = summary.get(key)
    return "never" if value is None else f"{value:,.0f}"


def print_run(run: dict[str, Any]) -> None:
    a, q, p = run["assign_ms"], run["alert_queryable_ms"], run["newest_ping_age_ms"]
    w, b = run["assign_ms_warm"], run["bare_kafka_ms"]
    print(
        f"{run['scale']}: {run['stations']} stations, {run['officers']} officers, "
        f"{run['pings_per_s']} pings/s, {run['alerts']} alerts ({run['waited']} waited); "
        f"broker cold {run['broker_cold_start_s']} s, "
        f"workers ticking at {run['workers_ready_s']} s\n"
        f"  alert produced -> assignment consumed: p50 {ms(a, 'p50')} ms, p99 {ms(a, 'p99')} ms, "
        f"max {ms(a, 'max')} ms ({a['arrived']}/{a['count']}); after {WARM_AFTER_S:.0f} s: "
        f"p50 {ms(w, 'p50')} ms, p99 {ms(w, 'p99')} ms ({w['count']})\n"
        f"  peer, bare Kafka produce -> consume: p50 {ms(b, 'p50')} ms, p99 {ms(b, 'p99')} ms "
        f"({b['count']}); pipeline / peer p50 {ratio(a, b)}\n"
        f"  alert produced -> row queryable: p50 {ms(q, 'p50')} ms, p99 {ms(q, 'p99')} ms; "
        f"newest ping age p50 {ms(p, 'p50')} ms, p99 {ms(p, 'p99')} ms\n"
        f"  CPU % of a core: {run['cpu_percent']}; generator {run['generator_cpu_percent']}\n"
        f"  dispatch RSS {run['dispatch_rss_mib'][0]} -> {run['dispatch_rss_mib'][1]} MiB"
    )


def per_10k_officers(runs: list[dict[str, Any]]) -> float | None:
    """The dispatch worker's RSS growth over a night, city minus district, per 10k officers
    more: what the officers' state costs, net of what any night grows by (buffers, alerts)."""
    by_scale: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_scale.setdefault(run["scale"], []).append(run)
    if not {"district", "city"} <= set(by_scale):
        return None
    growth = {k: statistics.median(r["rss_growth_mib"] for r in v) for k, v in by_scale.items()}
    officers = {k: v[0]["officers"] for k, v in by_scale.items()}
    more = officers["city"] - officers["district"]
    return round((growth["city"] - growth["district"]) * 10_000 / more, 1)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="district,city")
    parser.add_argument("--minutes", type=float, default=2.0, help="night length (wall = night)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--calls-per-hour", type=float, default=120.0, help="per station at the evening peak"
    )
    args = parser.parse_args(argv)
    unknown = set(args.scales.split(",")) - set(SCALES)
    if unknown:
        parser.error(f"--scales: unknown {', '.join(sorted(unknown))} (district, city)")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    runs = []
    # chDB may still be writing parts when its folder goes: the leftovers are not our figures
    with tempfile.TemporaryDirectory(prefix="bench-district-", ignore_cleanup_errors=True) as tmp:
        base = Path(tmp)
        for number in range(args.runs):
            for scale in args.scales.split(","):
                root = base / f"{scale}{number}"
                root.mkdir()
                run = one_run(scale, args, root, base / "warehouse")  # chDB: one path a process
                print_run(run)
                runs.append(run)
                OUT.mkdir(parents=True, exist_ok=True)
                (OUT / "district.json").write_text(json.dumps({"runs": runs}, indent=2))
    slope = per_10k_officers(runs)
    if slope is not None:
        print(f"dispatch RSS growth, city minus district, per 10k officers: {slope} MiB")
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(), "args": vars(args), "runs": runs, "mib_per_10k": slope}
    (OUT / "district.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
