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
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, pairwise

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


def _pick(candidates: set[tuple[str, int]]) -> tuple[str, int] | None:
    """The one most common candidate, or None when two are equally plausible."""
    if not candidates:
        return None
    lowest = min(tier for _, tier in candidates)
    best = [c for c in candidates if c[1] == lowest]
    return best[0] if len(best) == 1 else None


# --- decoding with losses: a shortest path over the bytes --------------------------------------

# A path's cost is what it had to assume, in the units above: a dropped byte restored costs about
# as much as a level-2 hanzi is rare, so one restoration beats a chain of misread characters.
# Equal-cost paths are alternatives the text cannot tell apart; where they differ we write U+FFFD.
_RESOLVED_PLACEHOLDER = 1
_INSERTED = 7
_UNRESOLVED = 12
_LONE = 25
# Chinese text writes the full-width '？': an ASCII '?' glued to multi-byte text is more likely a
# byte lost on the way than punctuation.
_GLUED_QUESTION = 6


def _glued_question_mark(tokens: list[int], i: int) -> int:
    if tokens[i] != _QUESTION:
        return 0
    before = tokens[i - 1] if i else 0
    after = tokens[i + 1] if i + 1 < len(tokens) else 0
    # Between two multi-byte characters it is twice as suspect: a literal '?' there let a pair of
    # lost bytes be misread as '?' + rare hanzi + '?' instead of being marked.
    return _GLUED_QUESTION * ((before >= 0x80) + (after >= 0x80))


_Edge = tuple[int, str, int]  # (next position, character, cost)


def _pair_candidates(leads: tuple[int, ...], trails: tuple[int, ...]) -> set[tuple[str, int]]:
    table = _gbk()
    return {
        table[lead << 8 | trail] for lead in leads for trail in trails if lead << 8 | trail in table
    }


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
                edges.append((i + 4, char, _RARE))
    if b >= 0x80 or b == _UNKNOWN:
        edges.extend(_restoring_edges(b, i))
    return edges


def _pair_edges(tokens: list[int], i: int) -> list[_Edge]:
    b, c = tokens[i], tokens[i + 1]
    leads, trails = _options(b, _is_lead), _options(c, _is_trail)
    candidates = _pair_candidates(leads, trails)
    if not candidates:
        return []
    placeholder = len(leads) > 1 or len(trails) > 1
    picked = _pick(candidates)
    if picked is None:
        # A lost lead byte owns the next byte even when that is ASCII: GBK trails may be.
        return [(i + 2, REPLACEMENT, _UNRESOLVED)] if placeholder else []
    char, tier = picked
    return [(i + 2, char, tier + (_RESOLVED_PLACEHOLDER if placeholder else 0))]


def _restoring_edges(b: int, i: int) -> list[_Edge]:
    """One token explained as half a character whose other byte was dropped, or as lost."""
    edges: list[_Edge] = [(i + 1, REPLACEMENT, _LONE)]
    if b == _UNKNOWN:
        return edges
    for candidates in (
        _pair_candidates((b,), _DROPPABLE) if _is_lead(b) else set(),
        _pair_candidates(_DROPPABLE, (b,)),
    ):
        picked = _pick(candidates)
        if picked is not None:
            edges.append((i + 1, picked[0], _INSERTED + picked[1]))
    return edges


def _shortest(edges: list[list[_Edge]]) -> tuple[list[float], list[float]]:
    n = len(edges)
    inf = float("inf")
    forward, backward = [inf] * (n + 1), [inf] * (n + 1)
    forward[0] = backward[n] = 0
    for i in range(n):
        for j, _, cost in edges[i]:
            forward[j] = min(forward[j], forward[i] + cost)
    for i in range(n - 1, -1, -1):
        backward[i] = min((cost + backward[j] for j, _, cost in edges[i]), default=inf)
    return forward, backward


def _paths(
    edges: list[list[_Edge]], start: int, stop: int, optimal: set[tuple[int, int]], limit: int = 64
) -> list[list[_Edge]]:
    """Every optimal path from `start` to `stop` (at most `limit` of them)."""
    found: list[list[_Edge]] = []
    stack: list[tuple[int, list[_Edge]]] = [(start, [])]
    while stack and len(found) < limit:
        at, path = stack.pop()
        if at == stop:
            found.append(path)
            continue
        for index, edge in enumerate(edges[at]):
            if (at, index) in optimal and edge[0] <= stop:
                stack.append((edge[0], [*path, edge]))
    return found


def _agree(paths: list[list[_Edge]]) -> str:
    """The text all paths agree on, with U+FFFD where they differ."""
    texts = {"".join(edge[1] for edge in path) for path in paths}
    if len(texts) == 1:
        return texts.pop()
    lengths = {len(text) for text in texts}
    if len(lengths) > 1:
        return REPLACEMENT * min(lengths)
    columns = zip(*texts, strict=True)
    return "".join(col[0] if len(set(col)) == 1 else REPLACEMENT for col in columns)


def _decode_gbk(tokens: list[int]) -> str:
    """The best decoding of `tokens` as GBK; U+FFFD where equally good decodings differ."""
    edges = [_edges_at(tokens, i) for i in range(len(tokens))]
    forward, backward = _shortest(edges)
    best = forward[-1]
    optimal = {
        (i, k)
        for i, options in enumerate(edges)
        for k, (j, _, cost) in enumerate(options)
        if forward[i] + cost + backward[j] == best
    }
    spanned = {p for i, k in optimal for p in range(i + 1, edges[i][k][0])}
    cuts = [
        p for p in range(len(tokens) + 1) if p not in spanned and forward[p] + backward[p] == best
    ]
    return "".join(_agree(_paths(edges, start, stop, optimal)) for start, stop in pairwise(cuts))


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
    decoded = _decode_gbk(tokens)
    return (decoded, REPLACEMENT in decoded, "gbk") if _plausible_gbk(decoded) else None


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


_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def fold_fullwidth(s: str) -> str:
    """Full-width ASCII and the ideographic space folded to half-width (identifiers, numbers)."""
    return s if s.isascii() else s.translate(_FULLWIDTH)
