"""Sweep text repair's margins on clauses held out of bench_textfix's sample: 1,500 news and
1,500 review clauses not among the 4,000 + 4,000 that bench_textfix draws with seed 7, damaged
at 2 % (seed 11). Prints exact / U+FFFD / wrong % per combination.

    .venv/bin/python bench/sweep_textfix_margins.py --margin 5,7 --word-margin 3,4,5 \\
        --cancelled 1,2 --lossless 6,9 --strict 8 --beam 9 --reach 3,4,6
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_textfix as bench  # noqa: E402

from streams.text import repair  # noqa: E402


def held_out(size: int, rate: float) -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(7)
    news, reviews = bench.news_clauses(), bench.review_clauses()
    used = set(bench.corpus(news, 4000, rng)) | set(bench.corpus(reviews, 4000, rng))
    draw = random.Random(11)
    sets = {}
    for name, pool in (("news", news), ("reviews", reviews)):
        clauses = bench.corpus([c for c in pool if c not in used], size, draw)
        share = sum(bench.losable(c) for s in clauses for c in s) / sum(
            c > "\x7f" for s in clauses for c in s
        )
        damage = random.Random(11)
        sets[name] = [(c, bench.damaged(c, min(1.0, rate / share), damage)[0]) for c in clauses]
    return sets


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clauses", type=int, default=1500)
    parser.add_argument("--margin", type=floats, default=[repair.MARGIN])
    parser.add_argument("--word-margin", type=floats, default=[repair.WORD_MARGIN])
    parser.add_argument("--cancelled", type=floats, default=[repair.CANCELLED_INSERTED])
    parser.add_argument("--lossless", type=floats, default=[repair.LOSSLESS_INSERTED])
    parser.add_argument("--strict", type=floats, default=[repair.STRICT_MARGIN])
    parser.add_argument("--beam", type=floats, default=[repair._BEAM])
    parser.add_argument("--reach", type=floats, default=[repair.LOSS_REACH])
    args = parser.parse_args()
    sets = held_out(args.clauses, 0.02)
    grid = itertools.product(
        args.margin,
        args.word_margin,
        args.cancelled,
        args.lossless,
        args.strict,
        args.beam,
        args.reach,
    )
    for margin, word, cancelled, lossless, strict, beam, reach in grid:
        repair.MARGIN, repair.WORD_MARGIN = margin, word
        repair.CANCELLED_INSERTED, repair.LOSSLESS_INSERTED = cancelled, lossless
        repair.STRICT_MARGIN, repair._BEAM, repair.LOSS_REACH = strict, beam, int(reach)
        line = [f"margin {margin} word {word} cancelled {cancelled} lossless {lossless}"]
        line.append(f"strict {strict} beam {beam} reach {int(reach)}:")
        for name, rows in sets.items():
            score = bench.Score()
            for truth, mojibake in rows:
                score.add(truth, repair.repair_text(mojibake).text)
            total = score.exact + score.marked + score.wrong
            line.append(
                f"{name} {100 * score.exact / total:.2f} / {100 * score.marked / total:.2f}"
                f" / {100 * score.wrong / total:.3f}"
            )
        print("  ".join(line), flush=True)


if __name__ == "__main__":
    main()
