"""Drain rate of a pre-filled raw ping topic: the positions worker against a bare aiokafka
consumer that parses each message with orjson (and, when installed, the same stage written with
quixstreams), same broker, same topic, same run.

    .venv/bin/python bench/bench_drain.py [--pings 100000] [--officers 2000] [--partitions 4]
        [--runs 1] [--peers bare,worker,quix] [--profile py-spy|none]

1. fill: --pings raw pings of --officers officers (keyed by officer id, the recommended key,
   each officer's pings one second apart, dated the last minutes) on a --partitions topic.
2. bare: a consumer reads the whole topic from the start and `orjson.loads` each value.
3. worker: `smart-station worker --role positions` (its own process, niceness 0) drains it
   with a fresh group: normalise -> gps.pings.normalised, fold into the positions table.
4. quix: bench/quix_positions.py, the same stage with quixstreams (parse, normalise, latest
   position per officer in state, produce), its own process and group.

Rate = messages / (last output - first output): the first message's time is taken after each
side has started (a worker's start-up and recovery are not counted). Besides the wall rate, the
CPU time each side used while draining (per message, in µs) is printed: on a shared machine it
is the steadier figure. With `--profile py-spy` the worker's drain is sampled and the top of the
profile printed. Everything binds 127.0.0.1; processes are stopped in `finally`. Results:
stdout and bench/out/drain.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as SyncTopicPartition
from kafka.admin import KafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.topics import ensure_topics
from streams.pipeline.positions_worker import positions_app_id
from streams.pipeline.worker import Role, WorkerProcess

OUT = Path(__file__).resolve().parent / "out"
CENTRE = (29.56, 106.55)  # Chongqing
STATION_ZONE = dt.timezone(dt.timedelta(hours=8))
TICKS = os.sysconf("SC_CLK_TCK")
# quixstreams pins pydantic < 2.14 (ours: 2.14.4): the peer runs in a venv of its own
# (bench/README.md: `python -m venv .venv-quix && .venv-quix/bin/pip install -r bench/quix.txt`).
QUIX_PYTHON = str(Path(__file__).resolve().parents[1] / ".venv-quix" / "bin" / "python")


def fill(bootstrap: str, topic: str, pings: int, officers: int, seed: int) -> None:
    rng = random.Random(seed)
    spots = [
        (f"OFF-{i:05d}", CENTRE[0] + rng.uniform(-0.1, 0.1), CENTRE[1] + rng.uniform(-0.1, 0.1))
        for i in range(officers)
    ]
    start = dt.datetime.now(STATION_ZONE) - dt.timedelta(seconds=pings // officers + 60)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 << 10)
    for n in range(pings):
        officer_id, lat, lon = spots[n % officers]
        at = start + dt.timedelta(seconds=n // officers)
        value = orjson.dumps(
            {
                "officer_id": officer_id,
                "station_id": "ST-01",
                "lat": lat + rng.uniform(-1e-4, 1e-4),
                "lon": lon + rng.uniform(-1e-4, 1e-4),
                "ts": at.isoformat(timespec="milliseconds"),
            }
        )
        producer.send(topic, key=officer_id.encode(), value=value)
    producer.flush()
    producer.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


# -- the bare consumer --------------------------------------------------------------------------
async def bare_drain(bootstrap: str, topic: str, partitions: int, expected: int) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, parsed_bytes = 0, 0
        first_wall = first_cpu = 0.0
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                if not seen:
                    first_wall, first_cpu = time.perf_counter(), time.process_time()
                for record in records:
                    parsed_bytes += len(orjson.loads(record.value))
                seen += len(records)
        wall, cpu = time.perf_counter() - first_wall, time.process_time() - first_cpu
    finally:
        await consumer.stop()
    return side_result(seen, wall, cpu)


def side_result(messages: int, wall_s: float, cpu_s: float) -> dict[str, Any]:
    return {
        "messages": messages,
        "seconds": round(wall_s, 3),
        "msgs_per_s": round(messages / wall_s) if wall_s > 0 else None,
        "cpu_us_per_msg": round(1e6 * cpu_s / messages, 1) if messages else None,
    }


# -- a side in its own process: output counted on its topic ---------------------------------
class OutputWatch:
    """Counts records on `topic` as they arrive; the drain spans the first to the last."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.tps = [SyncTopicPartition(topic, p) for p in range(partitions)]
        self.consumer.assign(self.tps)
        self.consumer.seek_to_beginning(*self.tps)

    def drain(
        self, pid: int, expected: int, timeout_s: float, on_first: Any = None
    ) -> dict[str, Any]:
        seen = 0
        first_wall = first_cpu = 0.0
        deadline = time.perf_counter() + timeout_s
        while seen < expected and time.perf_counter() < deadline:
            batches = self.consumer.poll(timeout_ms=200, max_records=50_000)
            count = sum(len(r) for r in batches.values())
            if count and not seen:
                first_wall, first_cpu = time.perf_counter(), cpu_seconds(pid)
                if on_first is not None:
                    on_first()
            seen += count
        if not seen:
            raise RuntimeError(f"nothing came out within {timeout_s:.0f} s")
        wall, cpu = time.perf_counter() - first_wall, cpu_seconds(pid) - first_cpu
        result = side_result(seen, wall, cpu)
        result["complete"] = seen >= expected
        return result

    def close(self) -> None:
        self.consumer.close()


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-drain")
    try:
        tps = [SyncTopicPartition(topic, p) for p in range(partitions)]
        offsets = admin.list_group_offsets({group: tps}).get(group, {})
        return sum(max(0, o.offset) for o in offsets.values())
    finally:
        admin.close()


def wait_committed(
    bootstrap: str, group: str, topic: str, partitions: int, expected: int, timeout_s: float
) -> bool:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if committed_total(bootstrap, group, topic, partitions) >= expected:
            return True
        time.sleep(0.5)
    return False


class Profiler:
    """py-spy sampling a process for a while, folded stacks to a file."""

    def __init__(self, pid: int, out: Path, seconds: float) -> None:
        self.out = out
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        command = [exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"]
        command += ["-f", "raw", "-o", str(out), "--nonblocking"]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def top(self, n: int = 25) -> list[str]:
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not self.out.exists():
            return ["(no profile: py-spy could not sample the worker)"]
        return profile_top(self.out.read_text(), n)


def profile_top(folded: str, n: int) -> list[str]:
    """Self and total share per function, from py-spy's folded stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = [short_frame(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples; self% total% function (file)"]
    for frame, count in own.most_common(n):
        lines.append(f"{100 * count / samples:5.1f} {100 * total[frame] / samples:5.1f}  {frame}")
    return lines


def short_frame(frame: str) -> str:
    """`func (path/to/file.py:line)` -> `func (file.py)`: lines merged per function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    tail = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({tail})"


def run_process_side(
    name: str,
    start: Any,
    bootstrap: str,
    out_topic: str,
    group: str,
    raw_topic: str,
    args: argparse.Namespace,
    root: Path,
) -> dict[str, Any]:
    watch = OutputWatch(bootstrap, out_topic, args.partitions)
    process = start()
    profilers: list[Profiler] = []

    def profile() -> None:  # from the first output on: the drain, not the start-up
        if args.profile == "py-spy" and name == "worker":
            profilers.append(Profiler(process.pid, root / f"{name}.folded", args.profile_s))

    try:
        result = watch.drain(process.pid, args.pings, args.timeout_s, on_first=profile)
        result["committed"] = wait_committed(
            bootstrap, group, raw_topic, args.partitions, args.pings, 30
        )
        for profiler in profilers:
            result["profile_top"] = profiler.top()
        return result
    finally:
        watch.close()
        process.stop()


class QuixProcess:
    """bench/quix_positions.py in its own process (quixstreams is a bench-only dependency)."""

    def __init__(self, bootstrap: str, source: str, target: str, group: str, state: Path) -> None:
        script = str(Path(__file__).with_name("quix_positions.py"))
        self.process = subprocess.Popen(
            [QUIX_PYTHON, script, bootstrap, source, target, group, str(state)],
            stdout=subprocess.DEVNULL,
            stderr=open(state.with_suffix(".log"), "wb"),  # noqa: SIM115 - closed with the process
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def one_run(
    broker: EmbeddedBroker, bootstrap: str, run: int, args: argparse.Namespace, root: Path
) -> dict[str, Any]:
    prefix = f"drain{run}."
    names = TopicNames.with_prefix(prefix)
    quix_out = f"{prefix}quix.pings.normalised"
    ensure_topics(bootstrap, [*names.all(), quix_out], args.partitions)
    started = time.perf_counter()
    fill(bootstrap, names.gps_raw, args.pings, args.officers, args.seed + run)
    print(f"run {run}: filled {args.pings} pings in {time.perf_counter() - started:.1f} s")
    result: dict[str, Any] = {"run": run, "loadavg_before": os.getloadavg()[0]}
    peers = args.peers.split(",")
    if "bare" in peers:
        result["bare"] = asyncio.run(
            bare_drain(bootstrap, names.gps_raw, args.partitions, args.pings)
        )
        print(f"  bare:   {result['bare']}")
    if "worker" in peers:
        settings = Settings(
            state_dir=root / f"state{run}",
            kafka_bootstrap=bootstrap,
            topic_prefix=prefix,
            app_id=f"drain{run}",
            topic_partitions=args.partitions,
            log_level="warn",
        )
        log = root / f"worker{run}.log"
        result["worker"] = run_process_side(
            "worker",
            lambda: WorkerProcess(settings, log, Role.POSITIONS).start(),
            bootstrap,
            names.gps,
            positions_app_id(settings),
            names.gps_raw,
            args,
            root,
        )
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, OUT / f"drain-worker{run}.log")
        print(f"  worker: { {k: v for k, v in result['worker'].items() if k != 'profile_top'} }")
    if "quix" in peers:
        group = f"drain{run}-quix"
        state = root / f"quix{run}"
        result["quix"] = run_process_side(
            "quix",
            lambda: QuixProcess(bootstrap, names.gps_raw, quix_out, group, state),
            bootstrap,
            quix_out,
            group,
            names.gps_raw,
            args,
            root,
        )
        print(f"  quix:   {result['quix']}")
    result["loadavg_after"] = os.getloadavg()[0]
    return result


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def ratios(runs: list[dict[str, Any]], side: str) -> list[float]:
    return [
        round(r[side]["msgs_per_s"] / r["bare"]["msgs_per_s"], 4)
        for r in runs
        if side in r and "bare" in r and r[side]["msgs_per_s"]
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=100_000)
    parser.add_argument("--officers", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--peers", default="bare,worker,quix")
    parser.add_argument("--profile", choices=("none", "py-spy"), default="none")
    parser.add_argument("--profile-s", type=float, default=15.0, help="seconds sampled")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per side")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    info = machine()
    print("machine: " + " ".join(f"{k}={v}" for k, v in info.items()))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        root = Path(tmp)
        broker = EmbeddedBroker(root / "kafka", heap="1g")
        try:
            bootstrap = broker.start()
            for run in range(1, args.runs + 1):
                runs.append(one_run(broker, bootstrap, run, args, root))
        finally:
            broker.stop()
    summary = {side: ratios(runs, side) for side in ("worker", "quix")}
    for side, values in summary.items():
        if values:
            print(
                f"{side} / bare: {', '.join(f'{100 * v:.1f} %' for v in values)}"
                f" (median {100 * statistics.median(values):.1f} %)"
            )
    for r in runs:
        for line in r.get("worker", {}).get("profile_top", []):
            print("  " + line)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "drain.json").write_text(
        json.dumps({"machine": info, "config": vars(args), "runs": runs}, indent=1)
    )


if __name__ == "__main__":
    main()
