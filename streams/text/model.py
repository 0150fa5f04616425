"""A character model of real Chinese text, for text repair to choose between readings of bytes that
were lost: how likely a character is after another, in nats, from the word frequencies of jieba's
dictionary (jieba 0.42.1, `jieba/dict.txt`: 349,046 words, ~100 M character occurrences)."""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import math
import os
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

# Within a word the next character follows the dictionary's pairs; across a word boundary (about
# half the characters of running text) only its unigram share helps.
_IN_WORD = 0.5
_UNSEEN = 1e-9  # a hanzi the dictionary never saw (GBK extension characters mostly)
_CACHE = 0.1  # the weight of the text's own repeated words against the dictionary
# What a character outside the dictionary's alphabet costs: ASCII and the everyday punctuation
# (about one character in eight of running text) predict nothing about their neighbours; the
# other symbols of GBK (box drawing, Greek, pinyin letters...) are rare in running text.
_ASCII_COST = 4.0
_PUNCTUATION = frozenset("，。、；：？！“”‘’（）《》〈〉【】…—·「」『』～")
_PUNCTUATION_COST = 3.0
_FULLWIDTH_COST = 7.0
_SYMBOL_COST = 14.0


@dataclass(frozen=True, slots=True)
class WordModel:
    """Words and their -log share of running text: a reading is as likely as its likeliest cut
    into dictionary words (as jieba cuts without its HMM)."""

    words: dict[str, float]
    longest: int
    unknown: float  # a hanzi that is no word on its own

    def cost(self, text: str) -> float:
        """-log P(text) of its likeliest cut into words, with a cache: a word the text also has
        elsewhere is likelier (a place or name repeats within one report), so a second reading of
        it is not a coin toss between two dictionary words."""
        return self._cut(text)[0]

    def cut(self, text: str) -> list[str]:
        return self._cut(text)[1]

    def _cut(self, text: str) -> tuple[float, list[str]]:
        n = len(text)
        words_in_text = max(1.0, n / 2)
        best = [0.0] + [math.inf] * n
        back = [0] * (n + 1)
        for end in range(1, n + 1):
            char = text[end - 1]
            single = self.words.get(char)
            if single is None:
                single = self.unknown if _is_hanzi(char) else _other_cost(char)
            best[end], back[end] = best[end - 1] + single, end - 1
            for start in range(max(0, end - self.longest), end - 1):
                piece = text[start:end]
                word = self.words.get(piece)
                if word is None:
                    continue
                others = text.count(piece) - 1
                if others:
                    word = -math.log(math.exp(-word) + _CACHE * others / words_in_text)
                if best[start] + word < best[end]:
                    best[end], back[end] = best[start] + word, start
        words, end = [], n
        while end:
            words.append(text[back[end] : end])
            end = back[end]
        return best[n], words[::-1]


@dataclass(frozen=True, slots=True)
class CharModel:
    """-log P(char | prev), worked out once when the model is built: a lattice asks for the
    same pairs thousands of times per value."""

    unigram: dict[str, float]  # P(c)
    rows: dict[str, dict[str, float]]  # prev -> {char: cost} for pairs seen inside words
    unseen_pair: dict[str, float]  # the cost of char after a prev that starts pairs, not this one
    alone: dict[str, float]  # the cost of char after a prev that starts no pair

    def cost(self, prev: str, char: str) -> float:
        """-log P(char | prev)."""
        row = self.rows.get(prev)
        if row is None:
            found = self.alone.get(char)
        else:
            found = row.get(char)
            if found is None:
                found = self.unseen_pair.get(char)
        return _other_cost(char) if found is None else found


def _is_hanzi(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf" or char > "\uffff"


def _other_cost(char: str) -> float:
    if char < "\x80":
        return _ASCII_COST
    if _is_hanzi(char):
        return -math.log(_UNSEEN)
    if char in _PUNCTUATION:
        return _PUNCTUATION_COST
    return _FULLWIDTH_COST if "\uff01" <= char <= "\uff5e" else _SYMBOL_COST


def dictionary_path() -> Path:
    """jieba's dictionary, found without importing jieba (its import sets up logging)."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("jieba is not installed: text repair needs its dictionary")
    return Path(next(iter(spec.submodule_search_locations))) / "dict.txt"


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, int]:
    words: dict[str, int] = {}
    with dictionary_path().open(encoding="utf-8") as lines:
        for line in lines:
            word, freq, *_ = line.split(" ")
            words[word] = words.get(word, 0) + int(freq)
    return words


@lru_cache(maxsize=1)
def word_model() -> WordModel:
    """Built once per process on first use."""
    words, longest, unknown = _tables()[4:]
    return WordModel(words=words, longest=longest, unknown=unknown)


@lru_cache(maxsize=1)
def char_model() -> CharModel:
    """Built once per process on first use."""
    unigram, rows, unseen_pair, alone = _tables()[:4]
    return CharModel(unigram=unigram, rows=rows, unseen_pair=unseen_pair, alone=alone)


# Bumped whenever what _build makes changes, so that a cached copy of an older build is not read.
_BUILD = 1


@lru_cache(maxsize=1)
def _tables() -> tuple[Any, ...]:
    """Both models' tables: from a cached copy (about 0.2 s) when there is one for this
    dictionary, else built (about 1.6 s, which every worker of a bulk job paid) and cached.
    The copy is a marshal file in <state_dir>/cache (700; the file 600); without a writable
    state folder the tables are built each time."""
    path = _cache_path()
    if path is not None:
        try:
            return tuple(marshal.loads(path.read_bytes()))
        except (OSError, ValueError, EOFError, TypeError):
            pass
    tables = _build()
    if path is not None:
        _store(path, marshal.dumps(tables))
    return tables


def _cache_path() -> Path | None:
    try:
        from base.settings import Settings

        source = dictionary_path()
        stat = source.stat()
        folder = Settings().state_dir / "cache"
    except Exception:  # no settings, no dictionary: build (and fail there) as before
        return None
    key = f"{source}:{stat.st_size}:{stat.st_mtime_ns}:{_BUILD}:{marshal.version}"
    return folder / f"text-model-{hashlib.sha256(key.encode()).hexdigest()[:16]}.marshal"


def _store(path: Path, data: bytes) -> None:
    """Written whole or not at all (a temporary file renamed), private to the user."""
    try:
        for folder in (path.parent.parent, path.parent):  # the state folder and its cache
            folder.mkdir(mode=0o700, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except OSError:
        return  # a read-only state folder: built again next time


def _build() -> tuple[Any, ...]:
    """(unigram, rows, unseen_pair, alone) of the character model, (words, longest, unknown)
    of the word model."""
    counts = _dictionary()
    total_words = sum(counts.values())
    words = {w: math.log(total_words / n) for w, n in counts.items() if n > 0}
    unigram: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for word, count in counts.items():
        for char in word:
            unigram[char] += count
        for i in range(len(word) - 1):
            pairs[word[i : i + 2]] += count
    hanzi = {c: n for c, n in unigram.items() if "\u3400" <= c <= "\u9fff"}
    total = sum(hanzi.values())
    share = {c: n / total for c, n in hanzi.items()}
    left: Counter[str] = Counter()
    for pair, count in pairs.items():
        left[pair[0]] += count
    rows: dict[str, dict[str, float]] = {prev: {} for prev, seen in left.items() if seen}
    for pair, count in pairs.items():
        prev, char = pair[0], pair[1]
        if char in share:
            within = _IN_WORD * count / left[prev] + (1 - _IN_WORD) * share[char]
            rows[prev][char] = -math.log(within)
    unseen_pair = {c: -math.log((1 - _IN_WORD) * p) for c, p in share.items()}
    alone = {c: -math.log(p) for c, p in share.items()}
    # longer words than 8 characters are too few to matter
    return share, rows, unseen_pair, alone, words, 8, math.log(total_words)
