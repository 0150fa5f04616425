"""Benchmark `smart-station harmonise` (streams.bulk.jobs.harmonise_files) on a seeded CSV of
alert records: three time columns in mixed forms, Chinese text with some GBK mojibake, phone
numbers with some full-width digits, ~1 % bad rows. Runs the job with one worker (in-process,
one core) and with every core, checks both outputs are identical, and compares with peers in
the same run:

- dateparser 1.5.0 (the library that reads the same mixed forms) in the same csv-in/csv-out
  loop, on a sample: the peer for the ratio;
- stdlib `csv` + `datetime.fromisoformat` (reads only ISO forms; the rest it rejects): the cost
  floor of a plain Python pipeline, shown with the share of rows it could read.

    .venv/bin/python bench/bench_harmonise.py [--rows 1000000] [--sample 2000] [--runs 1]
    .venv/bin/python bench/bench_harmonise.py --short     # 200,000 rows: the scaling check
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from resource import RUSAGE_CHILDREN, RUSAGE_SELF, getrusage
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streams.bulk.jobs import harmonise_files  # noqa: E402
from streams.bulk.options import HarmoniseOptions, HarmoniseSummary  # noqa: E402
from streams.timestd import SourceConvention  # noqa: E402

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2022, 1, 1, tzinfo=ZONE)
HEADER = ["alert_id", "station_id", "category", "reported_at", "received_at", "report_date"]
HEADER += ["address", "description", "caller_phone", "lat", "lon"]
TIME_COLUMNS = ("reported_at", "received_at", "report_date")
CATEGORIES = [
    "纠纷",
    "盗窃",
    "交通事故",
    "噪音扰民",
    "可疑人员",
    "走失",
    "火警",
    "dispute",
    "theft",
]
DISTRICTS = ["渝中区", "江北区", "南岸区", "沙坪坝区", "九龙坡区", "渝北区"]
STREETS = ["解放碑", "民族路", "中山路", "和平路", "建设路", "人民路", "长江路", "嘉陵路"]
DESCRIPTIONS = [
    "两人争吵",
    "电动车被盗",
    "有人在楼道吸烟",
    "老人走失",
    "车辆刮擦",
    "门口有可疑人员",
]
DESCRIPTIONS += ["caller reports loud music", "shop window broken", "报警人称钱包被偷"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
BAD_TIMES = ["not a time", "2022-13-45 10:00:00", "", "31/02/2022 10:00", "25:61", "昨天下午"]
FLOOR = 100_000  # rows/s/core
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def zh_clock(t: datetime) -> str:
    period, hour = ("上午", t.hour) if t.hour < 12 else ("下午", t.hour - 12 or 12)
    return f"{t.year}年{t.month}月{t.day}日 {period}{hour}点{t.minute:02d}分"


def twelve_hour(t: datetime) -> str:
    marker = "AM" if t.hour < 12 else "PM"
    return f"{t.day} {MONTHS[t.month - 1]} {t.year} {t.hour % 12 or 12}:{t.minute:02d} {marker}"


# How stations write the reported time: (weight, renderer of an aware local datetime).
REPORTED_FORMS: list[tuple[int, Callable[[datetime], str]]] = [
    (40, lambda t: t.strftime("%Y-%m-%d %H:%M:%S")),
    (10, lambda t: t.isoformat(timespec="seconds")),
    (10, lambda t: t.strftime("%Y/%m/%d %H:%M:%S")),
    (10, lambda t: t.strftime("%d/%m/%Y %H:%M")),  # a day-first source
    (10, zh_clock),
    (5, twelve_hour),
    (10, lambda t: str(int(t.timestamp() * 1000))),
    (5, lambda t: t.strftime("%Y%m%d%H%M%S")),
]


def garble(text: str, rng: random.Random, share: float) -> str:
    """Chinese text read as Latin-1 (GBK mojibake), for a `share` of the values."""
    if text.isascii() or rng.random() >= share:
        return text
    return text.encode("gbk").decode("latin-1")


def make_rows(count: int, seed: int) -> Iterator[list[str]]:
    rng = random.Random(seed)
    forms = [form for weight, form in REPORTED_FORMS for _ in range(weight)]
    for n in range(count):
        reported = START + timedelta(seconds=rng.randrange(365 * 86_400))
        received = reported + timedelta(milliseconds=rng.randrange(1_000, 600_000))
        address = f"{rng.choice(DISTRICTS)}{rng.choice(STREETS)}{rng.randrange(1, 300)}号"
        description = rng.choice(DESCRIPTIONS)
        phone = f"1{rng.randrange(3, 9)}{rng.randrange(10**9):09d}"
        category = rng.choice(CATEGORIES)
        row = [
            f"AL-{n:07d}",
            f"ST-{rng.randrange(1, 40):02d}",
            garble(category, rng, 0.05),
            rng.choice(forms)(reported),
            received.isoformat(timespec="milliseconds"),
            reported.strftime("%Y-%m-%d"),
            garble(address, rng, 0.10),
            garble(description, rng, 0.05),
            phone.translate(FULLWIDTH) if rng.random() < 0.03 else phone,
            f"{29.5 + rng.random() * 0.2:.6f}",
            f"{106.4 + rng.random() * 0.2:.6f}",
        ]
        if rng.random() < 0.01:
            row[rng.choice((3, 4, 5))] = rng.choice(BAD_TIMES)
        yield row


def write_csv(path: Path, rows: Iterable[list[str]], every: int) -> list[list[str]]:
    """Write the rows; return every `every`-th one (the peers' sample). Nothing else is kept:
    a million live row lists would slow the in-process job through the garbage collector."""
    sample = []
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(HEADER)
        for n, row in enumerate(rows):
            writer.writerow(row)
            if n % every == 0:
                sample.append(row)
    return sample


# --- peers -------------------------------------------------------------------------------------


def _utc_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def stdlib_pipeline(source: Path, out: Path) -> tuple[int, int]:
    """csv + datetime.fromisoformat only: ISO forms are read, everything else is rejected."""
    where = [HEADER.index(c) for c in TIME_COLUMNS]
    written = rejected = 0
    with source.open(newline="", encoding="utf-8") as file, out.open("w", newline="") as sink:
        reader = csv.reader(file)
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            try:
                stamps = [datetime.fromisoformat(row[i]) for i in where]
            except ValueError:
                rejected += 1
                continue
            for i, stamp in zip(where, stamps, strict=True):
                local = stamp if stamp.tzinfo else stamp.replace(tzinfo=ZONE)
                row[i] = local.isoformat()
                row.append(str(_utc_ms(local)))
            writer.writerow(row)
            written += 1
    return written, rejected


def dateparser_pipeline(rows: list[list[str]]) -> tuple[float, int]:
    """The same loop with dateparser reading every time cell; (seconds, rows read)."""
    import dateparser

    settings = {
        "TIMEZONE": "Asia/Shanghai",
        "RETURN_AS_TIMEZONE_AWARE": True,
        "DATE_ORDER": "DMY",
        "PREFER_DAY_OF_MONTH": "first",
    }
    where = [HEADER.index(c) for c in TIME_COLUMNS]
    parser = dateparser.DateDataParser(languages=["en", "zh"], settings=settings)
    parser.get_date_data("2022-01-01")  # load its language data before timing
    read = 0
    started = time.perf_counter()
    for row in rows:
        stamps = [parser.get_date_data(row[i]).date_obj for i in where]
        if all(stamp is not None for stamp in stamps):
            read += 1
            _ = [(s.isoformat(), _utc_ms(s)) for s in stamps if s is not None]
    return time.perf_counter() - started, read


# --- the run -----------------------------------------------------------------------------------


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process (the parent) and of its finished children (the pool's
    workers)."""
    own, children = getrusage(RUSAGE_SELF), getrusage(RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@dataclass(slots=True)
class Timed:
    wall: float  # median seconds of the runs
    parent: float  # median CPU seconds of this process
    children: float  # median CPU seconds of the pool's workers
    summary: HarmoniseSummary

    @property
    def cpu(self) -> float:
        return self.parent + self.children


def timed_job(source: Path, out: Path, workers: int, runs: int) -> Timed:
    """Medians of `runs` runs of the job: wall seconds, CPU seconds of the parent and of the
    workers."""
    options = HarmoniseOptions(
        zone="Asia/Shanghai",
        convention=SourceConvention(day_first=True),
        time_columns=TIME_COLUMNS,
    )
    walls, parents, children, summaries = [], [], [], []
    for _ in range(runs):
        wall, (parent, child) = time.perf_counter(), cpu_seconds()
        summaries.append(harmonise_files([source], out, options=options, workers=workers))
        walls.append(time.perf_counter() - wall)
        after = cpu_seconds()
        parents.append(after[0] - parent)
        children.append(after[1] - child)
    return Timed(
        statistics.median(walls),
        statistics.median(parents),
        statistics.median(children),
        summaries[-1],
    )


def fresh_timed_job(source: Path, out: Path, workers: int, runs: int) -> Timed:
    """timed_job in a new interpreter: a job run after another in the same process would find
    the text model loaded and the memos filled (and forked workers would inherit them)."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as fresh:
        return fresh.submit(timed_job, source, out, workers, runs).result()


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2_000, help="rows for dateparser")
    parser.add_argument("--runs", type=int, default=1, help="timed runs of each job (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--short", action="store_true", help="200,000 rows and a 300-row dateparser sample"
    )
    args = parser.parse_args()
    if args.short:
        args.rows, args.sample = 200_000, 300
    warnings.filterwarnings("ignore")
    cores = len(os.sched_getaffinity(0))
    print(f"machine: nproc {cores}, Python {platform.python_version()}, {platform.platform()}")
    print(f"rows {args.rows:,}, timed runs per job {args.runs} (median), seed {args.seed}")

    with tempfile.TemporaryDirectory(prefix="bench-harmonise-") as folder:
        tmp = Path(folder)
        source = tmp / "alerts.csv"
        started = time.perf_counter()
        every = max(1, args.rows // args.sample)
        sample = write_csv(source, make_rows(args.rows, args.seed), every)[: args.sample]
        elapsed = time.perf_counter() - started
        print(f"generated {source.stat().st_size / 1e6:,.0f} MB of CSV in {elapsed:.1f} s")

        print(f"before the jobs: {load()}")
        results = []
        for workers in sorted({1, cores}):
            timed = fresh_timed_job(source, tmp / f"out-{workers}.csv", workers, args.runs)
            results.append((workers, timed))
        summary = timed.summary
        print(f"after the jobs: {load()}")
        if not filecmp.cmp(tmp / "out-1.csv", tmp / f"out-{cores}.csv", shallow=False):
            raise SystemExit("the outputs of one worker and of every core differ")

        started = time.perf_counter()
        stdlib_written, _ = stdlib_pipeline(source, tmp / "stdlib.csv")
        stdlib_rate = args.rows / (time.perf_counter() - started)
        dateparser_s, dateparser_read = dateparser_pipeline(sample)
        dateparser_rate = len(sample) / dateparser_s

    for line in summary.lines():
        print(f"  {line}")
    print()
    print("rows/s/core = rows/s / workers; rows/CPU-s counts CPU time, so a busy shared machine")
    print("slows the first but not the second.")
    print(
        f"{'pipeline':<44} {'rows/s':>9} {'rows/s/core':>12} {'rows/CPU-s':>11} {'rows read':>10}"
    )
    read_share = summary.counts.rows_out / args.rows
    for workers, timed in results:
        rate = args.rows / timed.wall
        name = f"harmonise, {workers} worker{'s' if workers > 1 else ''}"
        print(
            f"{name:<44} {rate:>9,.0f} {rate / workers:>12,.0f} {args.rows / timed.cpu:>11,.0f} "
            f"{read_share:>10.1%}"
        )
    peers = [
        ("stdlib csv + fromisoformat (ISO forms only)", stdlib_rate, stdlib_written / args.rows),
        (
            f"dateparser 1.5.0 ({len(sample):,}-row sample)",
            dateparser_rate,
            dateparser_read / len(sample),
        ),
    ]
    for name, rate, share in peers:
        print(f"{name:<44} {rate:>9,.0f} {rate:>12,.0f} {'':>11} {share:>10.1%}")
    one, every = results[0][1], results[-1][1]
    per_core, per_cpu = args.rows / one.wall, args.rows / one.cpu
    print()
    print(f"per core vs dateparser: {per_core / dateparser_rate:,.0f}x")
    print(f"per core vs stdlib fromisoformat: {per_core / stdlib_rate:.2f}x")
    print(f"every core vs one: {one.wall / every.wall:.2f}x with {results[-1][0]} workers")
    print("CPU per row (µs): parent + workers")
    for workers, timed in results:
        parent, children = timed.parent / args.rows * 1e6, timed.children / args.rows * 1e6
        print(f"  {workers} worker(s): {parent:6.2f} + {children:6.2f} = {parent + children:6.2f}")
    print(
        "every core vs one on an idle machine, from CPU time (the job is CPU-bound): "
        f"{results[-1][0] * one.cpu / every.cpu:.2f}x"
    )
    verdict = "met" if max(per_core, per_cpu) >= FLOOR else "NOT met"
    print(
        f"floor {FLOOR:,} rows/s/core (one worker): {per_core:,.0f} wall, {per_cpu:,.0f} per "
        f"CPU-second -> {verdict}"
    )


if __name__ == "__main__":
    main()
