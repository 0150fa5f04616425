"""Column roles, by name: which columns hold times, which identifiers, which text to repair."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streams.bulk.options import SIBLING_SUFFIX, HarmoniseOptions

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_TIME_LAST = frozenset({"at", "time", "date", "ts", "timestamp", "datetime", "dt"})
_TIME_FIRST = frozenset({"time", "date", "timestamp", "datetime"})
_NOT_A_TIME = frozenset(
    {"s", "ms", "sec", "secs", "seconds", "min", "mins", "minutes", "h", "hours", "zone", "tz"}
    | {"format", "fmt", "taken", "spent", "elapsed", "left", "remaining"}
)
_ID_LAST = frozenset({"id", "no", "number", "phone", "tel", "mobile", "code"})
_ZH_TIME = ("时间", "日期", "时刻")
_ZH_ID = ("号", "号码", "编号", "电话", "手机")


def _words(name: str) -> list[str]:
    return [w for w in _NOT_WORD.split(_CAMEL.sub("_", name).lower()) if w]


def is_time_column(name: str) -> bool:
    """Whether a column holds timestamps, judged by its name (see the module docstring)."""
    if name.endswith(SIBLING_SUFFIX):
        return False
    if any(marker in name for marker in _ZH_TIME):
        return True
    words = _words(name)
    if not words:
        return False
    return words[-1] in _TIME_LAST or (words[0] in _TIME_FIRST and words[-1] not in _NOT_A_TIME)


def is_identifier_column(name: str) -> bool:
    words = _words(name)
    return name.endswith(_ZH_ID) or bool(words and words[-1] in _ID_LAST)


def reject_keys(columns: Iterable[str]) -> tuple[str, str]:
    taken = set(columns)
    if "reason" in taken or "message" in taken:
        return "reject_reason", "reject_message"
    return "reason", "message"


@dataclass(frozen=True, slots=True)
class Roles:
    """What each column of one header is, and the output's columns."""

    time: tuple[str, ...]
    text: frozenset[str]
    identifiers: frozenset[str]
    reference: str | None
    missing_times: tuple[str, ...]  # named time columns the header lacks
    siblings: frozenset[str]  # old `<time>_utc_ms` columns, recomputed
    output: tuple[str, ...]


def column_roles(columns: Sequence[str], options: HarmoniseOptions) -> Roles:
    present = set(columns)
    if options.time_columns is not None:
        times = tuple(c for c in options.time_columns if c in present)
        missing = tuple(c for c in options.time_columns if c not in present)
    else:
        times, missing = tuple(c for c in columns if is_time_column(c)), ()
    siblings = frozenset(t + SIBLING_SUFFIX for t in times)
    plain = [c for c in columns if c not in siblings and c not in times]
    wanted = present if options.text_columns is None else set(options.text_columns)
    output: list[str] = []
    for name in columns:
        if name not in siblings:
            output.extend((name, name + SIBLING_SUFFIX) if name in times else (name,))
    return Roles(
        time=times,
        text=frozenset(c for c in plain if c in wanted),
        identifiers=frozenset(c for c in plain if is_identifier_column(c)),
        reference=options.reference_column if options.reference_column in present else None,
        missing_times=missing,
        siblings=siblings,
        output=tuple(output),
    )
