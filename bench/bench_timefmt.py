"""Benchmark `parse_instant` against `dateparser.parse` on a seeded mixed corpus with known truth,
and on the labelled corpus tests/data/time_corpus.csv. Single process, pinned to one CPU.

    .venv/bin/python bench/bench_timefmt.py [--values 100000] [--sample 3000] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from base.errors import InvalidEvent  # noqa: E402
from streams.timestd import SourceConvention, parse_instant  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "time_corpus.csv"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_FIRST = SourceConvention(day_first=True)
MONTH_FIRST = SourceConvention(day_first=False)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
ZONES = ("Asia/Shanghai",) * 8 + ("Asia/Urumqi", "America/New_York")


@dataclass(frozen=True, slots=True)
class Row:
    value: object
    zone: str
    truth_ms: int | None  # None: the value must be rejected
    convention: SourceConvention | None = None
    reference_ms: int | None = None


def utc_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


# (hour before which, marker, hours to subtract): 凌晨0点, 早上7点, 中午12点, 下午3点, 夜里11点
ZH_PERIODS = [(5, "凌晨", 0), (9, "早上", 0), (12, "上午", 0), (13, "中午", 0), (18, "下午", 12)]
ZH_PERIODS += [(23, "晚上", 12), (24, "夜里", 12)]


def zh_clock(local: datetime) -> str:
    marker, shown = next(
        (m, local.hour - minus) for end, m, minus in ZH_PERIODS if local.hour < end
    )
    return f"{marker}{shown}点{local.minute:02d}分"


def twelve(local: datetime, marker: str = " PM") -> str:
    if local.hour < 12:
        marker = marker.replace("P", "A").replace("p", "a")
    return f"{local.hour % 12 or 12}:{local.minute:02d}{marker}"


# (name, weight, precision, renderer): a renderer writes an aware local time in one form.
Renderer = Callable[[datetime], object]
FORMATS: list[tuple[str, int, str, Renderer]] = [
    ("iso8601", 14, "s", lambda t: t.strftime("%Y-%m-%dT%H:%M:%S")),
    ("iso8601_ms", 6, "ms", lambda t: t.isoformat(sep=" ", timespec="milliseconds")[:23]),
    ("iso8601_offset", 8, "s", lambda t: t.isoformat(timespec="seconds")),
    (
        "iso8601_z",
        4,
        "ms",
        lambda t: t.astimezone(UTC).isoformat(timespec="milliseconds")[:23] + "Z",
    ),
    ("epoch_s", 6, "s", lambda t: utc_ms(t) // 1000),
    ("epoch_ms", 6, "ms", utc_ms),
    ("epoch_s_text", 3, "s", lambda t: str(utc_ms(t) // 1000)),
    ("epoch_ms_text", 3, "ms", lambda t: str(utc_ms(t))),
    ("ymd_slash", 6, "s", lambda t: t.strftime("%Y/%m/%d %H:%M:%S")),
    ("ymd_dot", 2, "m", lambda t: t.strftime("%Y.%m.%d %H:%M")),
    ("compact", 4, "s", lambda t: t.strftime("%Y%m%d%H%M%S")),
    ("clock12", 5, "m", lambda t: t.strftime("%Y-%m-%d ") + twelve(t)),
    ("zh", 8, "m", lambda t: f"{t.year}年{t.month}月{t.day}日 " + zh_clock(t)),
    ("zh_colon", 4, "s", lambda t: f"{t.year}年{t.month}月{t.day}日 {t:%H:%M:%S}"),
    ("zh_time_only", 3, "m", zh_clock),
    ("month_name_mdy", 4, "m", lambda t: f"{MONTHS[t.month - 1]} {t.day}, {t.year} " + twelve(t)),
    ("month_name_dmy", 3, "m", lambda t: f"{t.day} {MONTHS[t.month - 1]} {t.year} {t:%H:%M}"),
    ("dmy", 4, "m", lambda t: f"{t:%d/%m/%Y %H:%M}"),
    ("mdy", 3, "m", lambda t: f"{t:%m/%d/%Y} " + twelve(t)),
    ("fullwidth", 2, "m", lambda t: f"{t:%Y-%m-%d %H:%M}".translate(FULLWIDTH)),
    ("time_only", 2, "m", lambda t: f"{t:%H:%M}"),
]
FULLWIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)} | {0x20: 0x3000}
REJECTS = ["2023-02-29 10:00:00", "2022-10-15 25:00", "2022-13-01 10:00", "garbage", "", "10:61"]


def truncate(local: datetime, precision: str) -> datetime:
    if precision == "m":
        return local.replace(second=0, microsecond=0)
    if precision == "s":
        return local.replace(microsecond=0)
    return local.replace(microsecond=local.microsecond // 1000 * 1000)


def make_corpus(count: int, seed: int) -> list[Row]:
    rng = random.Random(seed)
    names = [f[0] for f in FORMATS]
    weights = [f[1] for f in FORMATS]
    by_name = {f[0]: f for f in FORMATS}
    start, span = utc_ms(datetime(2000, 1, 2, tzinfo=UTC)), 99 * 365 * 86_400_000
    rows: list[Row] = []
    for _ in range(count):
        zone = rng.choice(ZONES)
        if rng.random() < 0.02:
            rows.append(Row(rng.choice(REJECTS), zone, None))
            continue
        name = rng.choices(names, weights)[0]
        _, _, precision, render = by_name[name]
        moment = EPOCH + timedelta(milliseconds=start + rng.randrange(span))
        local = truncate(moment.astimezone(ZoneInfo(zone)), precision)
        convention = None
        if name in ("dmy", "mdy"):
            convention = rng.choice((None, DAY_FIRST if name == "dmy" else MONTH_FIRST))
        reference = utc_ms(local) + rng.randrange(120_000)  # ingest shortly after the event
        rows.append(Row(render(local), zone, utc_ms(local), convention, reference))
    return rows


def ours(row: Row) -> int | None:
    try:
        return parse_instant(
            row.value, zone=row.zone, convention=row.convention, reference_ms=row.reference_ms
        ).utc_ms
    except InvalidEvent:
        return None


def theirs(row: Row) -> int | None:
    import dateparser

    settings: dict[str, object] = {"TIMEZONE": row.zone, "RETURN_AS_TIMEZONE_AWARE": True}
    if row.convention is not None and row.convention.day_first is not None:
        settings["DATE_ORDER"] = "DMY" if row.convention.day_first else "MDY"
    if row.reference_ms is not None:
        base = datetime.fromtimestamp(row.reference_ms / 1000, ZoneInfo(row.zone))
        settings["RELATIVE_BASE"] = base.replace(tzinfo=None)
    try:
        parsed = dateparser.parse(str(row.value), languages=["en", "zh"], settings=settings)
    except Exception:  # dateparser raises assorted errors on odd input; count them as rejects
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(row.zone))
    return utc_ms(parsed)


def accuracy(parse: Callable[[Row], int | None], rows: Sequence[Row]) -> float:
    return sum(parse(row) == row.truth_ms for row in rows) / len(rows)


def rate(parse: Callable[[Row], int | None], rows: Sequence[Row], runs: int) -> float:
    best = []
    for _ in range(runs):
        started = time.perf_counter()
        for row in rows:
            parse(row)
        best.append(len(rows) / (time.perf_counter() - started))
    return statistics.median(best)


def read_corpus(path: Path) -> list[Row]:
    conventions = {
        "day_first": {"day_first": True},
        "month_first": {"day_first": False},
        "twelve_hour": {"twelve_hour": True},
        "fold=0": {"fold": 0},
        "fold=1": {"fold": 1},
    }
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            kind, _, raw = record["value"].partition(":")
            value: object = {"int": int, "float": float}.get(kind, str)(raw) if raw else None
            if kind not in ("int", "float", "none"):
                value = record["value"]
            fields: dict[str, object] = {}
            for token in record["convention"].split():
                fields |= conventions[token]
            reference = record["reference"]
            rows.append(
                Row(
                    value,
                    record["zone"] or "Asia/Shanghai",
                    utc_ms(datetime.fromisoformat(record["expected_iso"]))
                    if record["expected_iso"]
                    else None,
                    SourceConvention(**fields) if fields else None,  # type: ignore[arg-type]
                    utc_ms(datetime.fromisoformat(reference)) if reference else None,
                )
            )
    return rows


def pin_to_one_cpu() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to cpu {cpu}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=3_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20221015)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # dateparser's own deprecation chatter
    pinned = pin_to_one_cpu()
    print(f"machine: nproc={os.cpu_count()} python={platform.python_version()} ({pinned})")
    rows = make_corpus(args.values, args.seed)
    sample = random.Random(args.seed + 1).sample(rows, min(args.sample, len(rows)))
    for row in rows[:50]:
        ours(row)  # warm the zone tables
    theirs(sample[0])
    our_rate = rate(ours, rows, args.runs)
    their_rate = rate(theirs, sample, 1)
    labelled = read_corpus(CORPUS)
    print(
        f"corpus: {len(rows)} mixed values ({len(FORMATS)} forms + rejects), seed {args.seed}; "
        f"dateparser on a {len(sample)}-value sample; {args.runs} timed runs of ours (median), "
        f"1 of dateparser; labelled corpus {len(labelled)} rows"
    )
    print(f"{'parser':<14}{'values/s':>12}{'mixed acc':>11}{'sample acc':>12}{'labelled acc':>14}")
    print(
        f"{'parse_instant':<14}{our_rate:>12,.0f}{accuracy(ours, rows):>11.2%}"
        f"{accuracy(ours, sample):>12.2%}{accuracy(ours, labelled):>14.2%}"
    )
    print(
        f"{'dateparser':<14}{their_rate:>12,.0f}{'':>11}"
        f"{accuracy(theirs, sample):>12.2%}{accuracy(theirs, labelled):>14.2%}"
    )
    print(f"ratio: {our_rate / their_rate:,.0f}x")


if __name__ == "__main__":
    main()
