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
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_e2e import CpuMeter, machine, summary_ms

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
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
        self.ping_age_s: list[float] = []

    def run(self) -> None:
        db = self.warehouse.database
        while not self.stop.wait(POLL_S):
            now = time.time()
            for row in self.warehouse.query(f"SELECT alert_id FROM {db}.alerts"):
                self.alert_seen.setdefault(str(row["alert_id"]), now)
            (newest,) = self.warehouse.query(f"SELECT max(event_utc_ms) AS t FROM {db}.gps_pings")
            if int(newest["t"] or 0) > 0:
                self.ping_age_s.append(now - int(newest["t"]) / 1000)


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
        warehouse = ChdbWarehouse(store_path, settings.warehouse_database)
        migrate(warehouse, protector_for(settings))
        for role, niceness in ((Role.DISPATCH, 0), (Role.POSITIONS, POSITIONS_NICENESS)):
            log_path = root / f"{role.value}.log"
            workers[role.value] = WorkerProcess(settings, log_path, role).start(niceness=niceness)
        board = Board()
        fresh = Freshness(warehouse, stop)
        threads += [
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
        return {
            "scale": scale,
            "stations": stations,
            "officers": officers,
            "pings_per_s": round(sent["pings"] / sent["wall_s"], 1),
            "alerts": len(sent["sends"]),
            "waited": len(waited & set(sent["sends"])),
            "broker_cold_start_s": round(broker_s, 1),
            "workers_ready_s": round(ready_s, 1),
            "assign_ms": summary_ms(latency),
            "alert_queryable_ms": summary_ms(loaded),
            "newest_ping_age_ms": summary_ms(fresh.ping_age_s),
            "generator_cpu_percent": round(100 * sent["cpu_s"] / sent["wall_s"], 1),
            "cpu_percent": usage,
            "dispatch_rss_mib": [round(rss_before, 1), round(rss_after, 1)],
            "rss_mib_per_10k_officers": round((rss_after - rss_before) * 10_000 / officers, 1),
            "loadavg_at_end": [round(x, 2) for x in __import__("os").getloadavg()],
        }
    finally:
        stop.set()
        for worker in workers.values():
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)
        broker.stop()


def ms(summary: dict[str, Any], key: str) -> str:
    value = summary.get(key)
    return "never" if value is None else f"{value:,.0f}"


def print_run(run: dict[str, Any]) -> None:
    a, q, p = run["assign_ms"], run["alert_queryable_ms"], run["newest_ping_age_ms"]
    print(
        f"{run['scale']}: {run['stations']} stations, {run['officers']} officers, "
        f"{run['pings_per_s']} pings/s, {run['alerts']} alerts ({run['waited']} waited); "
        f"broker cold {run['broker_cold_start_s']} s, "
        f"workers ticking at {run['workers_ready_s']} s\n"
        f"  alert produced -> assignment consumed: p50 {ms(a, 'p50')} ms, p99 {ms(a, 'p99')} ms, "
        f"max {ms(a, 'max')} ms ({a['arrived']}/{a['count']})\n"
        f"  alert produced -> row queryable: p50 {ms(q, 'p50')} ms, p99 {ms(q, 'p99')} ms; "
        f"newest ping age p50 {ms(p, 'p50')} ms, p99 {ms(p, 'p99')} ms\n"
        f"  CPU % of a core: {run['cpu_percent']}; generator {run['generator_cpu_percent']}\n"
        f"  dispatch RSS {run['dispatch_rss_mib'][0]} -> {run['dispatch_rss_mib'][1]} MiB: "
        f"{run['rss_mib_per_10k_officers']} MiB per 10k officers"
    )


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
    with tempfile.TemporaryDirectory(prefix="bench-district-") as tmp:
        base = Path(tmp)
        for number in range(args.runs):
            for scale in args.scales.split(","):
                root = base / f"{scale}{number}"
                root.mkdir()
                run = one_run(scale, args, root, base / "warehouse")  # chDB: one path a process
                print_run(run)
                runs.append(run)
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(), "args": vars(args), "runs": runs}
    (OUT / "district.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
