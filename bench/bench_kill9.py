"""Crash recovery through the real broker: a burst of alerts (raw topic `alerts.calls`, keyed by
alert id), the dispatch worker (`smart-station worker`, role `all`: dispatch + its positions
child) killed with SIGKILL a few seconds into the burst and restarted shortly after. Every alert
must end up normalised (`alerts.normalised`) or dead-lettered (`deadletter`), and accounted for
(assigned on `dispatch.assignments` or noticed on `dispatch.unassigned`).

    .venv/bin/python bench/bench_kill9.py [--runs 6] [--alerts 100] [--burst-s 10]
        [--kill-at 4] [--restart-after 1.5] [--partitions 4] [--session-timeout 10]

Per run it prints what was produced, normalised, dead-lettered and accounted for, the missing
ids, and the consumer group's committed offsets on the raw topic against the missing ids'
offsets (a committed offset past a missing id: the alert was skipped, not merely late). Exits 1
when any run lost an alert. It starts its own embedded broker in a temporary folder and stops
everything it started (by PID), also on failure; each run has its own topic prefix and app id.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker, child_pids, pid_alive
from infra.topics import ensure_topics
from streams.pipeline.worker import WorkerProcess
from tests.support.dispatch_night import end_offsets, read_records


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600))


def alert(alert_id: str) -> bytes:
    return orjson.dumps(
        {"alert_id": alert_id, "category": "theft", "lat": 29.56, "lon": 106.552, "time": iso_now()}
    )


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-kill9")
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


@dataclass
class Outcome:
    produced: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (partition, offset)
    normalised: set[str] = field(default_factory=set)
    dead: set[str] = field(default_factory=set)
    accounted: set[str] = field(default_factory=set)
    committed: dict[int, int] = field(default_factory=dict)  # the group's, on the raw topic
    ends: dict[int, int] = field(default_factory=dict)  # the raw topic's end offsets

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.produced) - (self.dead | (self.normalised & self.accounted)))


def observe(bootstrap: str, names: TopicNames, ids: set[str]) -> Outcome:
    outcome = Outcome()
    for r in read_records(bootstrap, names.alerts_raw):
        key = (r.key or b"").decode()
        if key in ids:
            outcome.produced[key] = (r.partition, r.offset)
    outcome.normalised = {
        orjson.loads(r.value)["alert_id"] for r in read_records(bootstrap, names.alerts)
    } & ids
    outcome.dead = {
        (r.key or b"").decode() for r in read_records(bootstrap, names.deadletter)
    } & ids
    assigned = {
        orjson.loads(r.value)["alert"]["alert_id"]
        for r in read_records(bootstrap, names.assignments)
    }
    noticed = {(r.key or b"").decode() for r in read_records(bootstrap, names.unassigned)}
    outcome.accounted = (assigned | noticed) & ids
    return outcome


@dataclass
class Run:
    index: int
    settings: Settings
    names: TopicNames
    root: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    children: set[int] = field(default_factory=set)

    def start_worker(self) -> WorkerProcess:
        n = len(self.workers)
        worker = WorkerProcess(self.settings, self.root / f"worker-{n}.log").start()
        self.workers.append(worker)
        return worker

    def note_children(self) -> None:
        for worker in self.workers:
            if worker.alive():
                self.children.update(child_pids(worker.pid))

    def stop_all(self) -> None:
        self.note_children()
        for worker in self.workers:
            worker.stop()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(pid_alive(p) for p in self.children):
            time.sleep(0.2)
        for pid in self.children:  # positions workers we started (as children of ours)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Crash:
    """Kill -9 the worker at `kill_at` seconds into the burst, start a new one `restart_after`
    seconds later."""

    run: Run
    worker: WorkerProcess
    kill_at: float
    restart_after: float
    killed_at: float | None = None
    restarted_at: float | None = None

    def on_schedule(self, now: float) -> None:
        if self.killed_at is None and now >= self.kill_at:
            self.run.note_children()
            self.worker.kill()
            self.killed_at = now
        elif (
            self.killed_at is not None
            and self.restarted_at is None
            and now >= self.killed_at + self.restart_after
        ):
            self.worker = self.run.start_worker()
            self.restarted_at = now


def wait_normalised(bootstrap: str, topic: str, alert_id: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(
            orjson.loads(r.value)["alert_id"] == alert_id for r in read_records(bootstrap, topic)
        ):
            return
        time.sleep(0.5)
    raise RuntimeError(f"worker not ready: {alert_id} not normalised in {timeout_s:.0f}s")


def one_run(run: Run, bootstrap: str, args: argparse.Namespace) -> Outcome:
    names = run.names
    ensure_topics(bootstrap, names.all(), args.partitions)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks="all")
    try:
        worker = run.start_worker()
        warm = f"WARM-{run.index}"
        producer.send(names.alerts_raw, key=warm.encode(), value=alert(warm))
        producer.flush()
        wait_normalised(bootstrap, names.alerts, warm, timeout_s=120)
        run.note_children()

        ids = [f"AL-{run.index}-{i:04d}" for i in range(args.alerts)]
        period = args.burst_s / max(1, args.alerts)
        crash = Crash(run, worker, args.kill_at, args.restart_after)
        started = time.monotonic()
        for i, alert_id in enumerate(ids):
            while (now := time.monotonic() - started) < i * period:  # paced
                crash.on_schedule(now)
                time.sleep(min(0.005, i * period - now))
            crash.on_schedule(now)
            producer.send(names.alerts_raw, key=alert_id.encode(), value=alert(alert_id))
        producer.flush()
        while crash.restarted_at is None:  # a burst shorter than the kill schedule
            crash.on_schedule(time.monotonic() - started)
            time.sleep(0.01)
        worker = crash.worker
        print(
            f"  run {run.index}: burst {time.monotonic() - started:.1f}s, "
            f"killed at {crash.killed_at:.1f}s, restarted at {crash.restarted_at:.1f}s",
            flush=True,
        )
        wanted = set(ids)
        deadline = time.monotonic() + args.settle_s
        while True:
            outcome = observe(bootstrap, names, wanted)
            if not outcome.missing or time.monotonic() > deadline:
                break
            if not worker.alive():
                raise RuntimeError(f"restarted worker exited; see {worker.log_path}")
            time.sleep(2)
        time.sleep(args.commit_grace_s)  # let the group commit what it has done
        outcome = observe(bootstrap, names, wanted)
        outcome.committed = committed_offsets(bootstrap, run.settings.app_id, names.alerts_raw)
        outcome.ends = end_offsets(bootstrap, names.alerts_raw)
        return outcome
    finally:
        producer.close()


def report(run: Run, outcome: Outcome) -> bool:
    committed = outcome.committed
    missing = outcome.missing
    print(
        f"  run {run.index}: produced {len(outcome.produced)}, normalised "
        f"{len(outcome.normalised)}, dead-lettered {len(outcome.dead)}, accounted for "
        f"{len(outcome.accounted)}, missing {len(missing)} {missing}"
    )
    print(
        f"    committed offsets on {run.names.alerts_raw}: {dict(sorted(committed.items()))}"
        f" (end offsets {dict(sorted(outcome.ends.items()))})"
    )
    for alert_id in missing:
        partition, offset = outcome.produced[alert_id]
        past = committed.get(partition, -1) > offset
        print(
            f"    {alert_id}: partition {partition} offset {offset}; committed "
            f"{committed.get(partition)} -> {'SKIPPED (committed past it)' if past else 'pending'}"
            f"; normalised {alert_id in outcome.normalised}, dead {alert_id in outcome.dead}, "
            f"accounted {alert_id in outcome.accounted}"
        )
    return not missing


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--burst-s", type=float, default=10.0, help="the burst's duration")
    parser.add_argument("--kill-at", type=float, default=4.0, help="seconds into the burst")
    parser.add_argument("--restart-after", type=float, default=1.5, help="seconds after the kill")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--session-timeout", type=float, default=10.0)
    parser.add_argument("--settle-s", type=float, default=90.0)
    parser.add_argument("--commit-grace-s", type=float, default=2.0)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-kill9-"))
    broker = EmbeddedBroker(root / "kafka", heap="768m")
    failed: list[int] = []
    try:
        bootstrap = broker.start()
        print(f"broker {bootstrap}, state {root}", flush=True)
        for index in range(args.runs):
            tag = uuid.uuid4().hex[:6]
            settings = Settings(
                state_dir=root / f"run{index}" / "state",
                kafka_bootstrap=bootstrap,
                topic_prefix=f"k9{index}{tag}.",
                app_id=f"kill9-{index}-{tag}",
                topic_partitions=args.partitions,
                session_timeout_s=args.session_timeout,
                log_level="info",
            )
            run = Run(
                index,
                settings,
                TopicNames.with_prefix(settings.topic_prefix),
                root / f"run{index}",
            )
            try:
                outcome = one_run(run, bootstrap, args)
            finally:
                run.stop_all()
            if not report(run, outcome):
                failed.append(index)
                print(f"    logs: {run.root}/worker-*.log", flush=True)
                args.keep = True
        print(f"{args.runs - len(failed)}/{args.runs} runs lost nothing; failed runs: {failed}")
    finally:
        broker.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
