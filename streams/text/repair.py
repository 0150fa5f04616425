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

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

from streams.text.model import char_model, word_model

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
_BEAM = 20.0


def _glued_question_mark(tokens: list[int], i: int) -> float:
    if tokens[i] != _QUESTION:
        return 0.0
    before = tokens[i - 1] if i else 0
    after = tokens[i + 1] if i + 1 < len(tokens) else 0
    return _GLUED_QUESTION * ((before >= 0x80) + (after >= 0x80))


_Edge = tuple[int, str, float]  # (next position, character, cost of the assumptions)


def _pair_candidates(leads: tuple[int, ...], trails: tuple[int, ...]) -> list[str]:
    table = _gbk()
    return [
        table[lead << 8 | trail][0]
        for lead in leads
        for trail in trails
        if lead << 8 | trail in table
    ]


def _options(b: int, fits: Callable[[int], bool]) -> tuple[int, ...]:
    if b in (_UNKNOWN, _QUESTION):
        return _CP1252_UNDEFINED
    return (b,) if fits(b) else ()


def _edges_at(tokens: list[int], i: int) -> list[_Edge]:
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
        edges.extend(_restoring_edges(b, i))
    return edges


def _pair_edges(tokens: list[int], i: int) -> list[_Edge]:
    leads, trails = _options(tokens[i], _is_lead), _options(tokens[i + 1], _is_trail)
    placeholders = (len(leads) > 1) + (len(trails) > 1)
    cost = _RESOLVED_PLACEHOLDER * placeholders
    return [(i + 2, char, cost) for char in _pair_candidates(leads, trails)]


def _restoring_edges(b: int, i: int) -> list[_Edge]:
    """One token explained as half a character whose other byte was dropped, or as lost."""
    edges: list[_Edge] = [(i + 1, REPLACEMENT, _LONE)]
    if b == _UNKNOWN:
        return edges
    candidates = _pair_candidates((b,), _DROPPABLE) if _is_lead(b) else []
    candidates += _pair_candidates(_DROPPABLE, (b,))
    edges.extend((i + 1, char, _INSERTED) for char in candidates)
    return edges


class _Lattice:
    """Every reading of a run of byte tokens, with the character model's costs: the best reading
    (Viterbi over (position, last character)), and for each of its characters the readings that
    differ there and come within MARGIN of it, which the word model then weighs."""

    def __init__(self, tokens: list[int]) -> None:
        self.n = len(tokens)
        self.edges = [_edges_at(tokens, i) for i in range(self.n)]
        self.model = char_model().cost
        self.costs: dict[tuple[str, str], float] = {}
        # forward[j][c]: the best cost of reading tokens[:j] ending in c, and its last step;
        # backward[i][c]: the best cost of reading tokens[i:] after a c, and its first step.
        self.forward: list[dict[str, tuple[float, tuple[str, int, _Edge] | None]]] = [
            {} for _ in range(self.n + 1)
        ]
        self.backward: list[dict[str, tuple[float, _Edge | None]]] = [{} for _ in range(self.n + 1)]

    def step(self, prev: str, edge: _Edge) -> float:
        char = edge[1]
        if char == REPLACEMENT:
            return edge[2]
        cost = self.costs.get((prev, char))
        if cost is None:
            cost = self.costs[prev, char] = self.model(prev, char)
        return edge[2] + cost

    def run(self) -> str:
        forward, backward = self.forward, self.backward
        forward[0][""] = (0.0, None)
        for i in range(self.n):
            # Readings far behind the best so far cannot catch up: pruned (a beam).
            cutoff = min(total for total, _ in forward[i].values()) + _BEAM
            forward[i] = {c: state for c, state in forward[i].items() if state[0] <= cutoff}
            for prev, (before, _) in forward[i].items():
                for edge in self.edges[i]:
                    total = before + self.step(prev, edge)
                    found = forward[edge[0]].get(edge[1])
                    if found is None or total < found[0]:
                        forward[edge[0]][edge[1]] = (total, (prev, i, edge))
        if not forward[self.n]:
            return ""
        backward[self.n] = dict.fromkeys(forward[self.n], (0.0, None))
        for i in range(self.n - 1, -1, -1):
            for prev in forward[i]:
                options = [
                    (self.step(prev, e) + backward[e[0]][e[1]][0], e)
                    for e in self.edges[i]
                    if e[1] in backward[e[0]]
                ]
                if options:
                    backward[i][prev] = min(options, key=lambda o: o[0])
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

    def _marked(self) -> str:
        ends = self.forward[self.n]
        last = min(ends, key=lambda c: ends[c][0])
        best, path = ends[last][0], self._before(self.n, last)
        chosen: list[tuple[int, str]] = [(0, "")] * self.n  # (end, char) read over each token
        for start, (end, char, _) in path:
            for p in range(start, end):
                chosen[p] = (end, char)
        close: list[list[tuple[int, str, _Edge]]] = [[] for _ in range(self.n)]
        for i in range(self.n):
            for prev, (before, _) in self.forward[i].items():
                for edge in self.edges[i]:
                    after = self.backward[edge[0]].get(edge[1])
                    if after is None:
                        continue
                    if before + self.step(prev, edge) + after[0] - best >= MARGIN:
                        continue
                    for p in range(i, edge[0]):
                        if chosen[p] != (edge[0], edge[1]):
                            close[p].append((i, prev, edge))
        words = word_model().cost
        best_cost = words(_text(path)) + _assumed(path)
        out = []
        for start, (end, char, _) in path:
            rivals = {r for p in range(start, end) for r in close[p]}
            sure = all(self._cost_through(words, *r) - best_cost >= WORD_MARGIN for r in rivals)
            out.append(char if sure else REPLACEMENT)
        return "".join(out)

    def _cost_through(
        self, words: Callable[[str], float], start: int, prev: str, edge: _Edge
    ) -> float:
        """What the word model and the byte assumptions say of the best reading through `edge`."""
        path = [*self._before(start, prev), (start, edge), *self._after(edge[0], edge[1])]
        return words(_text(path)) + _assumed(path)


def _text(path: list[tuple[int, _Edge]]) -> str:
    return "".join(edge[1] for _, edge in path)


def _assumed(path: list[tuple[int, _Edge]]) -> float:
    return sum(edge[2] for _, edge in path)


def _decode_gbk(tokens: list[int]) -> str:
    """The likeliest decoding of `tokens` as GBK; U+FFFD where another reading comes close."""
    return _Lattice(tokens).run()


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
    decoded = _strict(bytes(tokens), "gbk") if intact and gbk_like else ""
    tiers = _tier_of_char()
    if decoded and all(c < "\x80" or tiers.get(c) == _COMMON for c in decoded):
        return decoded, False, "gbk"  # the usual case: nothing lost, nothing uncommon
    # UTF-8 Chinese never reads as all-common GBK (its lead bytes fall in level-2 rows), so the
    # order cannot steal a UTF-8 repair; strict UTF-8 of Latin text essentially never succeeds.
    utf8 = _strict(bytes(tokens), "utf-8") if intact else ""
    if utf8 and _plausible_utf8(utf8):
        return utf8, False, "utf-8"
    if not gbk_like:
        return None
    strict, decoded = decoded, _decode_gbk(tokens)
    if strict and _agrees(strict, decoded):
        # The likeliest reading is the bytes as they are; what comes close assumes lost bytes
        # that nothing shows: the text is kept as read.
        decoded = strict
    return (decoded, REPLACEMENT in decoded, "gbk") if _plausible_gbk(decoded) else None


def _agrees(text: str, marked: str) -> bool:
    return len(text) == len(marked) and all(
        m in (c, REPLACEMENT) for c, m in zip(text, marked, strict=True)
    )


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
