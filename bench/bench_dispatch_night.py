"""The scarce night of tests/test_dispatch_workers.py repeated through the real broker: two
dispatch workers (role `all`) over 4 partitions, eight officers, 24 alerts of mixed priority in
six seconds, the officers' app answering (declining 15 %), and, unless --calm, one worker killed
with SIGKILL mid-burst and restarted 1.5 s later. Each run is judged from the published topics
alone (tests/dispatch_night.py): no alert lost, each served by exactly its units, nobody held two
alerts at once.

    .venv/bin/python bench/bench_dispatch_night.py [--runs 10] [--calm] [--seed 100] [--busy 0]

`--busy N` runs N busy-loop processes beside the night (as the test suite's other work does in
CI): timing races between workers show far more often on a loaded machine.

Starts its own embedded broker in a temporary folder and stops everything it started, by PID,
also on failure. Exits 1 when any run failed."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.topics import ensure_topics
from streams.pipeline.worker import WorkerProcess
from tests.support.dispatch_night import MidBurstCrash, NightPlan, await_positions, run_night


def one_night(bootstrap: str, root: Path, index: int, seed: int, kill: bool) -> tuple[bool, str]:
    tag = uuid.uuid4().hex[:6]
    settings = Settings(
        state_dir=root / f"run{index}",
        kafka_bootstrap=bootstrap,
        topic_prefix=f"night{index}{tag}.",
        app_id=f"night-{index}-{tag}",
        topic_partitions=4,
        session_timeout_s=6.0,
        log_level="info",  # a failed night's logs (kept) show each worker's rebalances
    )
    names = TopicNames.with_prefix(settings.topic_prefix)
    ensure_topics(bootstrap, names.all(), settings.topic_partitions)
    plan = NightPlan.random(seed)
    log_dir = root / f"run{index}"
    workers = [WorkerProcess(settings, log_dir / f"worker-{i}.log").start() for i in range(2)]
    crash = MidBurstCrash(workers, settings, log_dir)
    try:
        await_positions(bootstrap, settings, plan)
        time.sleep(2)
        verdict = run_night(bootstrap, names, plan, seed, during_burst=crash if kill else None)
    finally:
        for worker in workers:
            worker.stop()
    ok = verdict.ok and crash.restarted == kill
    return ok, verdict.summary()


def spin(stop_at: float) -> None:
    """Burn one core until `stop_at` (monotonic), then exit: bounded load."""
    while time.monotonic() < stop_at:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=100, help="first run's seed (+1 per run)")
    parser.add_argument("--calm", action="store_true", help="no worker killed")
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes beside the night")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not 0 <= args.busy <= 8:
        parser.error("--busy must be between 0 and 8")
    root = Path(tempfile.mkdtemp(prefix="bench-night-"))
    broker = EmbeddedBroker(root / "kafka", heap="768m")
    failed: list[int] = []
    spinners = [
        mp.Process(target=spin, args=(time.monotonic() + 120.0 * args.runs,), daemon=True)
        for _ in range(args.busy)
    ]
    try:
        for spinner in spinners:
            spinner.start()
        bootstrap = broker.start()
        for index in range(args.runs):
            started = time.monotonic()
            ok, summary = one_night(bootstrap, root, index, args.seed + index, not args.calm)
            print(
                f"run {index + 1}/{args.runs} seed {args.seed + index}: "
                f"{'ok' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s: {summary}",
                flush=True,
            )
            if not ok:
                failed.append(index)
        mode = "calm" if args.calm else "kill -9 mid-burst"
        print(f"{args.runs - len(failed)}/{args.runs} nights ({mode}) without a fault")
    finally:
        for spinner in spinners:
            spinner.kill()
        broker.stop()
        if not failed:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs kept in {root}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
