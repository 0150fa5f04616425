"""What text repair costs `harmonise`: the same job (one worker, in-process) with the text repair
of commit fb32467 (before the language model), of 4b88dee (the model's first version) and of
this tree, alternating in one process, CPU seconds (the machine's cores are shared). Two inputs
from bench_harmonise's generator: its own CSV (mojibake from a few repeated values, memoised),
and the same rows with the description a distinct People's Daily clause, 30 % of them GBK
mojibake read as Latin-1 with 2 % of multi-byte characters losing a byte (bench_textfix).

    .venv/bin/python bench/bench_harmonise_text.py [--rows 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_harmonise  # noqa: E402
import bench_textfix  # noqa: E402

import streams.bulk.cells as cells_module  # noqa: E402
import streams.text.model  # noqa: E402
from streams.bulk.jobs import harmonise_files  # noqa: E402
from streams.bulk.options import HarmoniseOptions  # noqa: E402
from streams.text.repair import repair_text  # noqa: E402
from streams.timestd import SourceConvention  # noqa: E402


def repair_at(commit: str) -> Callable[[str], object]:
    """`repair_text` of streams/textfix.py at `commit`, loaded as a module."""
    sys.modules.setdefault("streams.textmodel", streams.text.model)  # its old path
    source = subprocess.run(
        ["git", "show", f"{commit}:streams/textfix.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    name = f"textfix_{commit}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, name, "exec"), module.__dict__)
    return module.repair_text  # type: ignore[no-any-return]


def with_news_text(source: Path, target: Path, seed: int) -> None:
    rng = random.Random(seed)
    clauses = [c for c in bench_textfix.news_clauses() if bench_textfix.encodable(c)]
    sample = clauses[:5000]
    share = sum(bench_textfix.losable(c) for s in sample for c in s) / sum(
        c > "\x7f" for s in sample for c in s
    )
    with (
        source.open(newline="", encoding="utf-8") as src,
        target.open("w", newline="", encoding="utf-8") as dst,
    ):
        reader, writer = csv.reader(src), csv.writer(dst)
        header = next(reader)
        writer.writerow(header)
        column = header.index("description")
        for row in reader:
            clause = rng.choice(clauses)
            if rng.random() < 0.3:
                clause = bench_textfix.damaged(clause, 0.02 / share, rng)[0]
            row[column] = clause
            writer.writerow(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    versions = {"fb32467": repair_at("fb32467"), "4b88dee": repair_at("4b88dee")}
    versions["this tree"] = repair_text
    streams.text.model.char_model()  # built once per process (~2 s), shared by all versions
    streams.text.model.word_model()
    options = HarmoniseOptions(
        zone="Asia/Shanghai",
        convention=SourceConvention(day_first=True),
        time_columns=bench_harmonise.TIME_COLUMNS,
    )
    folder = Path(tempfile.mkdtemp(prefix="bench_harmonise_text_"))
    plain, news = folder / "plain.csv", folder / "news.csv"
    rows = bench_harmonise.make_rows(args.rows, 7)
    bench_harmonise.write_csv(plain, rows, max(1, args.rows // 2000))
    with_news_text(plain, news, 3)
    for label, path in (("bench_harmonise CSV", plain), ("distinct news text", news)):
        seconds: dict[str, list[float]] = {name: [] for name in versions}
        for _ in range(args.runs):
            for name, repair in versions.items():
                cells_module.repair_text = repair  # type: ignore[assignment]
                cells_module._CELLS.clear()  # a worker's memos would carry the last run's repairs
                start = time.process_time()
                harmonise_files([path], folder / "out.csv", options=options, workers=1)
                seconds[name].append(time.process_time() - start)
        base = statistics.median(seconds["fb32467"])
        for name, values in seconds.items():
            median = statistics.median(values)
            runs = ", ".join(f"{v:.2f}" for v in values)
            print(
                f"{label:20} {name:9} {args.rows:,} rows: {median:6.2f} s CPU "
                f"(runs {runs}), {median / base:.2f}x fb32467"
            )


if __name__ == "__main__":
    main()
