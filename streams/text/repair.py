"""Text repair: Chinese text whose GBK/GB18030 (or UTF-8) bytes were read as Latin-1 or CP1252
('ÕâÑùµÄ' for '这样的') is decoded back. Bytes lost on the way (a dropped soft hyphen, a CP1252-
undefined byte turned into '?', U+FFFD or nothing) are restored when only one restoration reads as
well as any other; where equally good readings differ, the character becomes U+FFFD and the repair
is marked lossy. Two lost bytes in one run can cancel out unnoticed; nothing can tell then.

Correct text is never touched. Only runs of Latin-1/CP1252 characters are candidates; a GBK repair
needs four non-ASCII characters in a row (two multi-byte characters; Latin text has at most three,
as in 'ÅÄÖ', so a single mis-decoded hanzi is left as it is) and a decoding that is mostly common
GB2312 characters. A UTF-8 repair needs a strict UTF-8 decoding that is all CJK.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

from streams.text.model import _PUNCTUATION, _is_hanzi, _other_cost, char_model, word_model

REPLACEMENT = "\ufffd"


@dataclass(frozen=True, slots=True)
class TextRepair:
    text: str
    changed: bool = False
    lossy: bool = False  # some characters could not be recovered: U+FFFD stands in their place
    source_encoding: str | None = None  # "gbk" or "utf-8" when the text was repaired


# --- bytes behind the characters ---------------------------------------------------------------

_UNKNOWN = -1  # a byte that became U+FFFD (or '?') on the way
_QUESTION = 0x3F
_CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)
_DROPPABLE = (0xAD, *_CP1252_UNDEFINED)  # the soft hyphen is dropped by many text cleaners


def _byte_table() -> dict[str, int]:
    table = {chr(b): b for b in range(256)}  # Latin-1, including C1 controls
    for b in range(0x80, 0xA0):
        try:
            table[bytes([b]).decode("cp1252")] = b
        except UnicodeDecodeError:
            continue
    return table


_BYTE = _byte_table()
_CP1252_ONLY = "".join(c for c, b in _BYTE.items() if ord(c) > 0xFF)
_SUSPECT = re.compile(f"[\x80-\xff{_CP1252_ONLY}{REPLACEMENT}]")
_SEGMENT = re.compile(f"[\x00-\xff{_CP1252_ONLY}{REPLACEMENT}]+")
_HIGH_RUN = re.compile("[^\x00-\x7f]{4}")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


# --- the GBK table, by how common each character is --------------------------------------------

# What reading a character costs, roughly -log of its share of real text relative to a level-1
# hanzi: level-1 covers ~99.7% of Chinese text, the rest of GB2312 most of the remainder.
_COMMON, _GB2312, _RARE = 0, 6, 10


def _tier(lead: int, trail: int) -> int:
    if trail >= 0xA1 and (0xB0 <= lead <= 0xD7 or lead in (0xA1, 0xA3)):
        return _COMMON  # GB2312 level-1 hanzi and the everyday punctuation rows
    if trail >= 0xA1 and 0xA1 <= lead <= 0xF7:
        return _GB2312
    return _RARE


@lru_cache(maxsize=1)
def _gbk() -> dict[int, tuple[str, int]]:
    """(character, tier) for every assigned two-byte GBK code, built once (about 20 ms)."""
    table = {}
    for lead in range(0x81, 0xFF):
        for trail in chain(range(0x40, 0x7F), range(0x80, 0xFF)):
            try:
                char = bytes((lead, trail)).decode("gbk")
            except UnicodeDecodeError:
                continue
            if not "\ue000" <= char <= "\uf8ff":  # private use is never real text
                table[lead << 8 | trail] = (char, _tier(lead, trail))
    return table


@lru_cache(maxsize=1)
def _tier_of_char() -> dict[str, int]:
    return {char: tier for char, tier in _gbk().values()}


def _is_lead(b: int) -> bool:
    return 0x81 <= b <= 0xFE


def _is_trail(b: int) -> bool:
    return 0x40 <= b <= 0xFE and b != 0x7F


# --- decoding with losses: the likeliest reading under a model of Chinese text ----------------

# A reading's cost, in nats, is what the character model says of its characters (textmodel) plus
# what it had to assume about the bytes. A byte dropped on the way (a soft hyphen, a CP1252-
# undefined byte) is rare: restoring one costs as much as a ~1/400 event; a U+FFFD or '?' stood
# for one of the five undefined bytes, which one is the model's to tell. A token no reading
# explains becomes U+FFFD at a cost above any restoration.
_RESOLVED_PLACEHOLDER = 1.0
_INSERTED = 6.0
_LONE = 30.0
# Chinese text writes the full-width '？': an ASCII '?' glued to multi-byte text is more likely a
# byte lost on the way than punctuation.
_GLUED_QUESTION = 3.0
# The best reading of a character is kept only when every reading that differs there costs this
# much more (e^5 ≈ 150 times less likely); measured on bench/bench_textfix.py's corpus.
MARGIN = 5.0
# A reading within MARGIN is weighed by the word model (jieba's cut): the best one is kept when it
# reads that much better as words, else U+FFFD.
WORD_MARGIN = 3.0
_BEAM = 9.0
# A run whose bytes read strictly as GBK shows no sign of loss: a reading that assumes lost bytes
# there pays this per byte instead of _INSERTED (two drops must cancel out, which is rarer still),
# except over a character that two adjacent drops make ('……' A1AD A1AD read as '　' A1A1): a
# character with equal bytes whose soft-hyphen form exists is itself a sign of them.
# Both swept with MARGIN and WORD_MARGIN on a held-out part of bench/bench_textfix.py's corpus.
LOSSLESS_INSERTED = 6.0
# A run that reads strictly as GBK, with no sign of cancelled drops, keeps its strict reading
# unless the word model likes another reading this much better (e^8 ≈ 3,000 times).
STRICT_MARGIN = 8.0
# A strict reading is weighed this many characters either side of a remarkable character.
_WINDOW = 4
CANCELLED_INSERTED = 0.5


def _glued_question_mark(tokens: list[int], i: int) -> float:
    if tokens[i] != _QUESTION:
        return 0.0
    before = tokens[i - 1] if i else 0
    after = tokens[i + 1] if i + 1 < len(tokens) else 0
    return _GLUED_QUESTION * ((before >= 0x80) + (after >= 0x80))


_Edge = tuple[int, str, float]  # (next position, character, cost of the assumptions)


@lru_cache(maxsize=4096)
def _pair_candidates(leads: tuple[int, ...], trails: tuple[int, ...]) -> tuple[str, ...]:
    table = _gbk()
    return tuple(
        table[lead << 8 | trail][0]
        for lead in leads
        for trail in trails
        if lead << 8 | trail in table
    )


def _options(b: int, fits: Callable[[int], bool]) -> tuple[int, ...]:
    if b in (_UNKNOWN, _QUESTION):
        return _CP1252_UNDEFINED
    return (b,) if fits(b) else ()


def _edges_at(tokens: list[int], i: int, inserted: Sequence[float]) -> list[_Edge]:
    b, n = tokens[i], len(tokens)
    edges: list[_Edge] = []
    if 0 <= b < 0x80:
        edges.append((i + 1, chr(b), _glued_question_mark(tokens, i)))
    if i + 1 < n:
        edges.extend(_pair_edges(tokens, i))
    if i + 3 < n and _is_lead(b) and _is_lead(tokens[i + 2]):
        four = tokens[i : i + 4]
        if 0x30 <= four[1] <= 0x39 and 0x30 <= four[3] <= 0x39:
            char = bytes(four).decode("gb18030", errors="replace")
            if len(char) == 1 and char != REPLACEMENT:
                edges.append((i + 4, char, 0.0))
    if b >= 0x80 or b == _UNKNOWN:
        edges.extend(_restoring_edges(b, i, inserted[i]))
    return edges


def _pair_edges(tokens: list[int], i: int) -> list[_Edge]:
    leads, trails = _options(tokens[i], _is_lead), _options(tokens[i + 1], _is_trail)
    placeholders = (len(leads) > 1) + (len(trails) > 1)
    cost = _RESOLVED_PLACEHOLDER * placeholders
    return [(i + 2, char, cost) for char in _pair_candidates(leads, trails)]


def _restoring_edges(b: int, i: int, inserted: float) -> list[_Edge]:
    """One token explained as half a character whose other byte was dropped, or as lost."""
    edges: list[_Edge] = [(i + 1, REPLACEMENT, _LONE)]
    if b == _UNKNOWN:
        return edges
    edges.extend((i + 1, char, inserted) for char in _restorations(b))
    return edges


@lru_cache(maxsize=256)
def _restorations(b: int) -> tuple[str, ...]:
    """The characters `b` is half of when the other byte was dropped, but only those the
    character model has seen: a restoration costs _INSERTED plus what the model says of the
    character, and one it never saw (most of the twelve or so, GBK extension characters) costs
    nearly _LONE, so it would only ever stand where a mark stands."""
    candidates = _pair_candidates((b,), _DROPPABLE) if _is_lead(b) else ()
    candidates += _pair_candidates(_DROPPABLE, (b,))
    seen = char_model().unigram
    return tuple(c for c in candidates if c in seen or not _is_hanzi(c))


class _Lattice:
    """Every reading of a run of byte tokens, with the character model's costs: the best reading
    (Viterbi over (position, last character)), and for each of its characters the readings that
    differ there and come within MARGIN of it, which the word model then weighs."""

    def __init__(
        self, tokens: list[int], inserted: Sequence[float], left: str = "", right: str = ""
    ) -> None:
        # left, right: the text around the tokens, as read (a few characters), for the models
        self.left, self.right = left, right
        self.n = len(tokens)
        self.edges = [_edges_at(tokens, i, inserted) for i in range(self.n)]
        # forward[j][c]: the best cost of reading tokens[:j] ending in c, and its last step;
        # backward[i][c]: the best cost of reading tokens[i:] after a c, and its first step.
        self.forward: list[dict[str, tuple[float, tuple[str, int, _Edge] | None]]] = [
            {} for _ in range(self.n + 1)
        ]
        self.backward: list[dict[str, tuple[float, _Edge | None]]] = [{} for _ in range(self.n + 1)]
        # steps[i]: for each reading kept at i, its character, its cost so far, and the cost of
        # each of edges[i] after it (computed once, read again backward and when marking).
        self.steps: list[list[tuple[str, float, list[float]]]] = [[] for _ in range(self.n)]

    def _forward(self) -> None:
        forward, model = self.forward, char_model()
        forward[0][self.left[-1:]] = (0.0, None)
        for i in range(self.n):
            # Readings far behind the best so far cannot catch up: pruned (a beam).
            cutoff = min(total for total, _ in forward[i].values()) + _BEAM
            forward[i] = kept = {c: state for c, state in forward[i].items() if state[0] <= cutoff}
            edges, steps = self.edges[i], self.steps[i]
            for prev, (before, _) in kept.items():
                # model.cost(prev, char), inlined: the lattice's innermost loop
                row = model.rows.get(prev)
                fallback = model.alone if row is None else model.unseen_pair
                row = row or {}
                costs: list[float] = []
                for edge in edges:
                    end, char, assumed = edge
                    if char == REPLACEMENT:
                        cost = assumed
                    else:
                        known = row.get(char)
                        if known is None:
                            known = fallback.get(char)
                        cost = (_other_cost(char) if known is None else known) + assumed
                    costs.append(cost)
                    total = before + cost
                    found = forward[end].get(char)
                    if found is None or total < found[0]:
                        forward[end][char] = (total, (prev, i, edge))
                steps.append((prev, before, costs))

    def run(self) -> tuple[str, float]:
        """The marked reading, and what the word model and the byte assumptions say of it."""
        self._forward()
        forward, backward = self.forward, self.backward
        if not forward[self.n]:
            return "", math.inf
        model, following = char_model().cost, self.right[:1]
        backward[self.n] = {
            c: (model(c, following) if following and c != REPLACEMENT else 0.0, None)
            for c in forward[self.n]
        }
        for i in range(self.n - 1, -1, -1):
            edges, found = self.edges[i], backward[i]
            for prev, _, costs in self.steps[i]:
                best: tuple[float, _Edge | None] | None = None
                for edge, cost in zip(edges, costs, strict=True):
                    after = backward[edge[0]].get(edge[1])
                    if after is not None and (best is None or cost + after[0] < best[0]):
                        best = (cost + after[0], edge)
                if best is not None:
                    found[prev] = best
        return self._marked()

    def _before(self, at: int, char: str) -> list[tuple[int, _Edge]]:
        path: list[tuple[int, _Edge]] = []
        while (back := self.forward[at][char][1]) is not None:
            char, at, edge = back
            path.append((at, edge))
        return path[::-1]

    def _after(self, at: int, char: str) -> list[tuple[int, _Edge]]:
        path: list[tuple[int, _Edge]] = []
        while (edge := self.backward[at][char][1]) is not None:
            path.append((at, edge))
            at, char = edge[0], edge[1]
        return path

    def _marked(self) -> tuple[str, float]:
        """The readings within MARGIN of the best (each the best through one close edge) are
        weighed by the word model; the one it likes best is kept where every other reading
        that differs there costs WORD_MARGIN more, else U+FFFD."""
        ends, tails = self.forward[self.n], self.backward[self.n]
        last = min(ends, key=lambda c: ends[c][0] + tails[c][0])
        best = ends[last][0] + tails[last][0]
        paths = {tuple(self._before(self.n, last))}
        for i in range(self.n):
            edges, backward = self.edges[i], self.backward
            for prev, before, steps in self.steps[i]:
                for edge, cost in zip(edges, steps, strict=True):
                    after = backward[edge[0]].get(edge[1])
                    if after is not None and before + cost + after[0] < best + MARGIN:
                        paths.add(self._through(i, prev, edge))
        words = word_model().cost
        left, right = self.left, self.right
        costs = {path: words(left + _text(path) + right) + _assumed(path) for path in paths}
        kept = min(costs, key=costs.__getitem__)
        rivals = [(path, _reads(path), cost) for path, cost in costs.items() if path != kept]
        out = []
        for start, (end, char, _) in kept:
            close = [
                (cost, path)
                for path, reads, cost in rivals
                if cost - costs[kept] < WORD_MARGIN
                and any(reads[p] != (end, char) for p in range(start, end))
            ]
            if not close:
                out.append(char)
                continue
            # U+FFFD for each character the likeliest close reading has there ('原Y' for '訷').
            rival = min(close, key=lambda c: c[0])[1]
            inside = sum(start <= at and edge[0] <= end for at, edge in rival)
            out.append(REPLACEMENT * max(1, inside))
        return "".join(out), costs[kept]

    def _through(self, start: int, prev: str, edge: _Edge) -> tuple[tuple[int, _Edge], ...]:
        """The best reading through `edge` read after `prev`."""
        return (*self._before(start, prev), (start, edge), *self._after(edge[0], edge[1]))


def _reads(path: Sequence[tuple[int, _Edge]]) -> dict[int, tuple[int, str]]:
    """(end, character) read over each token of `path`."""
    return {p: (edge[0], edge[1]) for start, edge in path for p in range(start, edge[0])}


def _text(path: Sequence[tuple[int, _Edge]]) -> str:
    return "".join(edge[1] for _, edge in path)


def _assumed(path: Sequence[tuple[int, _Edge]]) -> float:
    return sum(edge[2] for _, edge in path)


def _decode_gbk(tokens: list[int], strict: str) -> str:
    """The likeliest decoding of `tokens` as GBK; U+FFFD where another reading comes close.
    `strict` is the tokens' strict GBK decoding, "" when they have none: it is kept unless the
    word model reads the best other reading STRICT_MARGIN better, or it bears the sign of two
    cancelled drops, of a byte that became '?', or of one lost byte hidden by an ASCII byte."""
    if not strict:
        return _decode_lossy(tokens)
    doubtful = _doubled(strict)
    inserted: list[float] = []
    for k, char in enumerate(strict):
        cost = CANCELLED_INSERTED if k in doubtful else LOSSLESS_INSERTED
        inserted += [cost] * (1 if char < "\x80" else 2 if char <= "\uffff" else 4)
    decoded, cost = _Lattice(tokens, inserted).run()
    if decoded == strict or doubtful or "?" in strict or any(map(_ascii_trail, strict)):
        return decoded  # signs of loss: two cancelled drops, a '?' for a byte, an ASCII trail
    return strict if word_model().cost(strict) - cost < STRICT_MARGIN else decoded


def _decode_lossy(tokens: list[int]) -> str:
    """A run that does not read strictly, weighed only where its bytes can have been lost. Read
    two bytes a character from its start, it is right up to its first lost byte and misread
    after it, where a character that is not common soon comes: the first such character is at
    or after the first loss. Read from its end, the run is right back to its last lost byte:
    the last odd character read so is at or before the last loss. With one loss and no rare
    character of its own, the loss lies between the two; LOSS_REACH characters either side
    cover the rest (a rare character of the text's own, or more than one loss). Before and
    after that band the run stands as read."""
    inserted = _inserted_costs(tokens)
    starts, first_odd = _read_from_start(tokens)
    ends, last_odd = _read_from_end(tokens)
    reach = 2 * LOSS_REACH
    lo = max((k for k in starts if k <= min(first_odd, last_odd) - reach), default=0)
    hi = min((k for k in ends if k >= max(first_odd, last_odd) + reach), default=len(tokens))
    if lo == 0 and hi == len(tokens):
        return _Lattice(tokens, inserted).run()[0]
    table = _gbk()
    before, after = _read(tokens[:lo], table), _read(tokens[hi:], table)
    context = _CONTEXT
    window = _Lattice(tokens[lo:hi], inserted[lo:hi], before[-context:], after[:context])
    return before + window.run()[0] + after


_CONTEXT = 4  # characters either side of a weighed window that the models read with it


# How many characters a misread stretch (after a lost byte) can run on before one of them is not
# a common character: each is one by chance about 4 times in 10. Swept on held-out clauses.
LOSS_REACH = 6


def _read(tokens: list[int], table: dict[int, tuple[str, int]]) -> str:
    """Tokens that `_read_from_start` or `_read_from_end` read as whole characters."""
    out, i = [], 0
    while i < len(tokens):
        b = tokens[i]
        if b >= 0x80 and i + 1 < len(tokens) and b << 8 | tokens[i + 1] in table:
            out.append(table[b << 8 | tokens[i + 1]][0])
            i += 2
        else:
            out.append(chr(b) if 0 <= b < 0x80 else REPLACEMENT)
            i += 1
    return "".join(out)


def _is_odd(b: int, code: int | None, table: dict[int, tuple[str, int]]) -> bool:
    """Whether a token (code: the character it starts, None for one byte alone) reads as
    something a misread stretch makes: a lone byte, a '?', a character that is not common, or
    one that two characters less their soft hyphens make."""
    if code is None:
        return b == _QUESTION or not 0 <= b < 0x80
    char, tier = table[code]
    if tier != _COMMON or char in _cancelled():  # '　' may be '……' less two soft hyphens
        return True
    # the symbols of the common rows that running text rarely has ('∈'), not its punctuation
    return not _is_hanzi(char) and char not in _PUNCTUATION and not "\uff10" <= char <= "\uff5a"


def _read_from_start(tokens: list[int]) -> tuple[list[int], int]:
    """Where each character starts, read from the run's start, and where the first odd one
    starts (len(tokens) when none is)."""
    table, starts, first_odd, i = _gbk(), [], len(tokens), 0
    while i < len(tokens):
        starts.append(i)
        b = tokens[i]
        code = b << 8 | tokens[i + 1] if b >= 0x80 and i + 1 < len(tokens) else None
        if code is not None and code not in table:
            code = None
        if first_odd == len(tokens) and _is_odd(b, code, table):
            first_odd = i
        i += 1 if code is None else 2
    return starts, first_odd


def _read_from_end(tokens: list[int]) -> tuple[list[int], int]:
    """Where each character ends, read from the run's end, and where the last odd one ends
    (0 when none is). An ASCII byte is read as itself: were it a trail byte, its lead would
    pair with the byte before it, and the misread stretch shows."""
    table, ends, last_odd, j = _gbk(), [], 0, len(tokens)
    while j > 0:
        ends.append(j)
        b = tokens[j - 1]
        lead = tokens[j - 2] if j >= 2 and b >= 0x80 else -1  # ASCII is read as itself
        code = lead << 8 | b if lead >= 0x80 and lead << 8 | b in table else None
        start = j - (1 if code is None else 2)
        if last_odd == 0 and _is_odd(b if code is None else lead, code, table):
            last_odd = j
        j = start
    return ends, last_odd


def _inserted_costs(tokens: list[int]) -> list[float]:
    """What restoring a dropped byte costs at each token of a run that does not read strictly:
    _INSERTED, but CANCELLED_INSERTED over two equal bytes that two characters with their soft
    hyphens dropped make ('¡¡' for '……' A1AD A1AD), as in a run that reads strictly. The
    run is read two bytes a character from its start, so that the trail byte of one character
    and the lead byte of the next ('此孙' B4CB CBEF) are not taken for such a pair."""
    doubled, table = _doubled_leads(), _gbk()
    inserted = [_INSERTED] * len(tokens)
    i = 0
    while i < len(tokens) - 1:
        b = tokens[i]
        if b < 0x80 or b << 8 | tokens[i + 1] not in table:
            i += 1
            continue
        if b == tokens[i + 1] and b in doubled:
            inserted[i] = inserted[i + 1] = CANCELLED_INSERTED
        i += 2
    return inserted


@lru_cache(maxsize=1)
def _doubled_leads() -> frozenset[int]:
    """Bytes X for which X X and X AD are both characters."""
    table = _gbk()
    return frozenset(
        lead
        for lead in range(0x81, 0xFF)
        if lead << 8 | lead in table and lead << 8 | 0xAD in table
    )


def _ascii_trail(char: str) -> bool:
    """A GBK extension character whose second byte is ASCII (继 less its soft hyphen, 'BE',
    and the '@' after it read as 継 BE40): where one lost byte hides in a strict reading."""
    return (
        "\x80" <= char <= "\uffff"
        and len(data := char.encode("gbk", "replace")) == 2
        and data[1] < 0x80
    )


# --- deciding whether a run is mojibake --------------------------------------------------------


def _looks_like_gbk_mojibake(segment: str) -> bool:
    """Four or more non-ASCII characters in a row, i.e. two or more multi-byte characters read
    byte by byte. Latin text never has that ('ÅÄÖ', 'ÇÃ' and '«»' have three or fewer), so a lone
    mis-decoded hanzi is left alone rather than risk touching correct text."""
    return _HIGH_RUN.search(segment) is not None


def _plausible_gbk(decoded: str) -> bool:
    """Mostly common GB2312 characters (U+FFFD aside), at least one, and no control characters."""
    tiers = _tier_of_char()
    common = sum(tiers.get(c) == _COMMON for c in decoded)
    recovered = sum(c > "\x7f" and c != REPLACEMENT for c in decoded)
    return common >= 1 and 2 * common >= recovered and not _CONTROL.search(decoded)


def _is_cjk(c: str) -> bool:
    return (
        "\u2e80" <= c <= "\u9fff"
        or "\uf900" <= c <= "\ufaff"
        or "\uff00" <= c <= "\uffef"
        or "\u2010" <= c <= "\u206f"
        or c == "\u00b7"
        or c > "\uffff"
    )


def _plausible_utf8(decoded: str) -> bool:
    wide = [c for c in decoded if c > "\x7f"]
    return bool(wide) and all(_is_cjk(c) for c in wide) and any(c >= "\u2e80" for c in wide)


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return ""


def _repair_segment(segment: str) -> tuple[str, bool, str] | None:
    """(text, lossy, encoding) when `segment` is mojibake, else None."""
    tokens = [_UNKNOWN if c == REPLACEMENT else _BYTE[c] for c in segment]
    intact = _UNKNOWN not in tokens
    gbk_like = _looks_like_gbk_mojibake(segment)
    strict = _strict(bytes(tokens), "gbk") if intact and gbk_like else ""
    remarkable = _remarkable(strict) if strict else []
    if strict and not remarkable:
        return strict, False, "gbk"  # the usual case: nothing lost, nothing to weigh
    # UTF-8 Chinese never reads as all-common GBK (its lead bytes fall in level-2 rows), so the
    # order cannot steal a UTF-8 repair; strict UTF-8 of Latin text essentially never succeeds.
    utf8 = _strict(bytes(tokens), "utf-8") if intact else ""
    if utf8 and _plausible_utf8(utf8):
        return utf8, False, "utf-8"
    if not gbk_like:
        return None
    if strict and not any(_ascii_trail(strict[k]) for k in remarkable):
        decoded = _decode_around(tokens, strict, remarkable)
    else:  # one lost byte can hide anywhere before an ASCII trail byte: the whole run is weighed
        decoded = _decode_gbk(tokens, strict)
    return (decoded, REPLACEMENT in decoded, "gbk") if _plausible_gbk(decoded) else None


def _decode_around(tokens: list[int], strict: str, remarkable: list[int]) -> str:
    """A strict reading weighed only within _WINDOW characters of its remarkable ones: what two
    cancelled drops misread lies between them, and the rest stands as read."""
    offsets = [0]
    for char in strict:
        offsets.append(offsets[-1] + (1 if char < "\x80" else 2))
    windows: list[list[int]] = []
    for k in remarkable:
        lo, hi = max(0, k - _WINDOW), min(len(strict), k + _WINDOW + 1)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
        else:
            windows.append([lo, hi])
    pieces, last = [], 0
    for lo, hi in windows:
        window = tokens[offsets[lo] : offsets[hi]]
        pieces += [strict[last:lo], _decode_gbk(window, strict[lo:hi])]
        last = hi
    pieces.append(strict[last:])
    return "".join(pieces)


def _remarkable(strict: str) -> list[int]:
    """Where a strict GBK reading needs weighing: characters that are not common, and those
    that two adjacent characters with their soft hyphens dropped read nearly as well as ('……'
    A1AD A1AD read as '　' A1A1; the character model tells, on the spot)."""
    tiers, cancelled = _tier_of_char(), _cancelled()
    found = []
    for k, char in enumerate(strict):
        if char < "\x80":
            continue
        doubled = cancelled.get(char)
        if tiers.get(char) != _COMMON or (
            doubled is not None and _cancelled_reads_close(strict, k, doubled)
        ):
            found.append(k)
    return found


def _doubled(strict: str) -> set[int]:
    """Where `strict` has a character that two cancelled soft hyphens read nearly as well."""
    cancelled = _cancelled()
    return {
        k
        for k, char in enumerate(strict)
        if char in cancelled and _cancelled_reads_close(strict, k, cancelled[char])
    }


def _cancelled_reads_close(strict: str, k: int, doubled: str) -> bool:
    """Whether `doubled` twice reads within MARGIN of strict[k] between its neighbours."""
    model = char_model().cost
    prev, after = strict[k - 1] if k else "", strict[k + 1 : k + 2]
    kept = model(prev, strict[k]) + (model(strict[k], after) if after else 0.0)
    other = model(prev, doubled) + model(doubled, doubled) + 2 * CANCELLED_INSERTED
    other += model(doubled, after) if after else 0.0
    return other - kept < MARGIN


@lru_cache(maxsize=1)
def _cancelled() -> dict[str, str]:
    """{XX: X}: characters with equal bytes whose first byte and a soft hyphen make a character
    X too, so that XAD XAD with both soft hyphens dropped reads as XX."""
    table = _gbk()
    return {
        table[lead << 8 | lead][0]: table[lead << 8 | 0xAD][0]
        for lead in range(0x81, 0xFF)
        if lead << 8 | lead in table and lead << 8 | 0xAD in table
    }


def repair_text(s: str) -> TextRepair:
    """Undo GBK/UTF-8 mojibake in `s`; any other text comes back unchanged."""
    if s.isascii() or _SUSPECT.search(s) is None:
        return TextRepair(s)
    pieces: list[str] = []
    lossy, encoding, last = False, None, 0
    for match in _SEGMENT.finditer(s):
        repaired = _repair_segment(match.group())
        if repaired is None:
            continue
        pieces.append(s[last : match.start()])
        pieces.append(repaired[0])
        lossy, encoding, last = lossy or repaired[1], repaired[2], match.end()
    if encoding is None:
        return TextRepair(s)
    pieces.append(s[last:])
    return TextRepair("".join(pieces), changed=True, lossy=lossy, source_encoding=encoding)


def repair_short_field(s: str) -> TextRepair:
    """A field too short for `repair_text`'s caution, one or two hanzi read byte by byte ('·Ö'
    for 分), repaired on the word of its record: call it only when the record's other text is
    GBK mojibake. Its bytes must read strictly as GBK, and every character as a common hanzi."""
    if s.isascii() or _SUSPECT.search(s) is None:
        return TextRepair(s)
    pieces: list[str] = []
    last = 0
    tiers = _tier_of_char()
    for match in _SEGMENT.finditer(s):
        segment = match.group()
        if REPLACEMENT in segment:
            return TextRepair(s)
        decoded = _strict(bytes(_BYTE[c] for c in segment), "gbk")
        wide = [c for c in decoded if c > "\x7f"]
        if not decoded or not 1 <= len(wide) <= 2 or any(tiers.get(c) != _COMMON for c in wide):
            return TextRepair(s)
        pieces += [s[last : match.start()], decoded]
        last = match.end()
    pieces.append(s[last:])
    return TextRepair("".join(pieces), changed=True, source_encoding="gbk")


def repair_record(values: Sequence[str]) -> list[TextRepair]:
    """`repair_text` of each of a record's text fields; when one of them was GBK mojibake, the
    short fields it left alone get `repair_short_field` (a field alone keeps the caution)."""
    repairs = [repair_text(v) for v in values]
    if not any(r.source_encoding == "gbk" for r in repairs):
        return repairs
    return [r if r.changed else repair_short_field(r.text) for r in repairs]


_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def fold_fullwidth(s: str) -> str:
    """Full-width ASCII and the ideographic space folded to half-width (identifiers, numbers)."""
    return s if s.isascii() else s.translate(_FULLWIDTH)
