"""Time normalisation: any accepted timestamp form -> 24-hour ISO 8601 with the station's UTC offset
plus UTC epoch milliseconds. Ambiguity is settled by the source's convention or by context (a
reference instant), never guessed; what cannot be settled is rejected with a reason code.

Decisions the tests pin down:
- Output: `YYYY-MM-DDTHH:MM:SS[.mmm]±HH:MM` in the station zone; milliseconds appear only when
  non-zero (one instant, one string); finer fractions are truncated to milliseconds.
- Instants outside [2000-01-01, 2100-01-01) UTC are `out_of_range`, whatever the input form.
- A date without a time is local midnight (`date_only`). Two-digit years, 24:00 and leap seconds
  are rejected (`invalid_time`), as is a local time inside a DST gap.
- A local time in a DST fold takes `SourceConvention.fold` (0 = first occurrence, 1 = second),
  else the occurrence nearest to the reference (`inferred`), else `ambiguous_time`.
- 上午/早上/凌晨 read like AM and 下午 like PM (12 AM and 上午12点 are 00:xx, as .NET zh-CN writes);
  中午 covers 11..2; 晚上/傍晚 are PM; 夜里 is PM for 6..11 and as written for 0..5; "12点" with an
  evening or night marker is the midnight that ends that day.
- A numeric date where both day-first and month-first are valid dates uses `day_first` when set;
  when only one reading is a valid date it is taken whatever the convention.
- Context: the candidate nearest to `reference_ms`, if within `tolerance_ms` and strictly nearer
  than the runner-up; otherwise `ambiguous_time`. A time without a date (or a date without a year)
  always needs context.

`Instant.source_format` labels, most specific first: date_only, zh, month_name, clock12, then the
date family (iso8601, iso8601_offset, ymd_dash, ymd_slash, ymd_dot, dmy, mdy, compact), time_only
for a 24-hour clock with no date, epoch_s and epoch_ms.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from time import gmtime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from base.errors import ConfigError, InvalidEvent, Reason

# Epochs outside [2000-01-01, 2100-01-01) are rejected rather than guessed at.
MIN_EPOCH_MS = 946_684_800_000
MAX_EPOCH_MS = 4_102_444_800_000
DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_TOLERANCE_MS = 12 * 3_600_000

_DAY = 86_400
_UNIX_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class SourceConvention:
    """How a source writes ambiguous times; None means 'unknown, decide from context'.

    `twelve_hour=True` says the source writes 12-hour clocks and may drop the AM/PM marker, so a
    bare 1..12 hour is ambiguous. `fold` picks the occurrence of a repeated DST hour (PEP 495)."""

    day_first: bool | None = None
    twelve_hour: bool | None = None
    fold: int | None = None

    def __post_init__(self) -> None:
        if self.fold not in (None, 0, 1):
            raise ValueError(f"fold must be 0, 1 or None, got {self.fold!r}")


@dataclass(frozen=True, slots=True)
class Instant:
    utc_ms: int
    iso: str
    source_format: str
    inferred: bool = False


_NO_CONVENTION = SourceConvention()

# The generated frozen __init__ costs half a microsecond (object.__setattr__ per field); setting
# the slots directly builds the same object in half the time on the hot path.
_new = object.__new__
_set_utc_ms = Instant.__dict__["utc_ms"].__set__
_set_iso = Instant.__dict__["iso"].__set__
_set_source_format = Instant.__dict__["source_format"].__set__
_set_inferred = Instant.__dict__["inferred"].__set__


def _instant(utc_ms: int, iso: str, source_format: str, inferred: bool = False) -> Instant:
    instant = _new(Instant)
    _set_utc_ms(instant, utc_ms)
    _set_iso(instant, iso)
    _set_source_format(instant, source_format)
    _set_inferred(instant, inferred)
    return instant


# --- zones -------------------------------------------------------------------------------------


def _offset_suffix(offset_s: int) -> str:
    sign = "-" if offset_s < 0 else "+"
    hours, minutes = divmod(abs(offset_s) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


class _ZoneTable:
    """The UTC offsets of one zone over 2000..2099: one constant for fixed-offset zones (most of
    China), else the transition instants, so each conversion is a bisect, not a zoneinfo call."""

    __slots__ = (
        "dates",
        "fixed",
        "max_offset",
        "min_offset",
        "offsets",
        "suffixes",
        "transitions",
    )

    def __init__(self, transitions: list[int], offsets: list[int]) -> None:
        self.transitions = transitions
        self.offsets = offsets
        self.fixed = None if transitions else offsets[0]
        self.min_offset = min(offsets)
        self.max_offset = max(offsets)
        self.suffixes = {offset: _offset_suffix(offset) for offset in offsets}
        self.dates: dict[int, str] = {}  # local day -> "YYYY-MM-DDT", filled by _iso

    def offset_at(self, utc_s: int) -> int:
        if self.fixed is not None:
            return self.fixed
        return self.offsets[bisect_right(self.transitions, utc_s)]

    def to_utc(self, local_s: int) -> tuple[int, ...]:
        """Every UTC second showing wall time `local_s`: none in a DST gap, two in a fold."""
        if self.fixed is not None:
            return (local_s - self.fixed,)
        earlier = self.offset_at(local_s - self.max_offset)
        later = self.offset_at(local_s - self.min_offset)
        offsets = (earlier,) if earlier == later else (earlier, later)
        return tuple(local_s - o for o in offsets if self.offset_at(local_s - o) == o)


def _utc_offset(tz: ZoneInfo, utc_s: int) -> int:
    delta = datetime.fromtimestamp(utc_s, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


@lru_cache(maxsize=64)
def _zone_table(zone: str) -> _ZoneTable:
    """Scan the zone day by day (about 40 ms, once per zone) and pin each change to the second."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {zone!r}") from exc
    start = MIN_EPOCH_MS // 1000 - 2 * _DAY
    end = MAX_EPOCH_MS // 1000 + 2 * _DAY
    transitions: list[int] = []
    offsets = [_utc_offset(tz, start)]
    for day_start in range(start, end, _DAY):
        if _utc_offset(tz, day_start + _DAY) == offsets[-1]:
            continue
        low, high = day_start, day_start + _DAY
        while high - low > 1:
            middle = (low + high) // 2
            if _utc_offset(tz, middle) == offsets[-1]:
                low = middle
            else:
                high = middle
        transitions.append(high)
        offsets.append(_utc_offset(tz, high))
    return _ZoneTable(transitions, offsets)


# Table lookups: format specs and gmtime cost a microsecond per value here.
_TWO = [f"{n:02d}" for n in range(100)]
_MINUTES = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]  # by minute of the day
_MS = [""] + [f".{ms:03d}" for ms in range(1, 1000)]  # milliseconds only when non-zero


def _date_prefix(table: _ZoneTable, day: int) -> str:
    y, mo, d = gmtime(day * _DAY)[:3]
    prefix = f"{y}-{_TWO[mo]}-{_TWO[d]}T"
    if len(table.dates) >= 65_536:  # a century is 36,525 days; format_iso takes any instant
        table.dates.clear()
    table.dates[day] = prefix
    return prefix


def _iso(table: _ZoneTable, utc_ms: int) -> str:
    seconds, ms = divmod(utc_ms, 1000)
    offset = table.fixed
    if offset is None:
        offset = table.offset_at(seconds)
    day, clock = divmod(seconds + offset, _DAY)
    prefix = table.dates.get(day) or _date_prefix(table, day)
    minute, second = divmod(clock, 60)
    return f"{prefix}{_MINUTES[minute]}{_TWO[second]}{_MS[ms]}{table.suffixes[offset]}"


def zone_offsets(zone: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The UTC offsets (seconds) of `zone` over 2000..2099 as this module applies them: the
    transition instants (UTC seconds, ascending) and the offsets, one more than the transitions;
    offsets[bisect_right(transitions, utc_s)] is in force at utc_s. ConfigError for an unknown
    zone."""
    table = _zone_table(zone)
    return tuple(table.transitions), tuple(table.offsets)


def format_iso(utc_ms: int, zone: str) -> str:
    """The standard form: local wall time of `zone`, 24-hour, with offset; ms only when non-zero."""
    return _iso(_zone_table(zone), utc_ms)


# --- shared pieces -----------------------------------------------------------------------------


def _invalid(text: str, why: str) -> InvalidEvent:
    return InvalidEvent(Reason.INVALID_TIME, f"{why}: {text!r}")


def _checked_ms(utc_ms: int, text: str) -> int:
    if not MIN_EPOCH_MS <= utc_ms < MAX_EPOCH_MS:
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"{text!r} is outside 2000..2099")
    return utc_ms


def _fraction_ms(digits: str | None) -> int:
    return int(digits[:3].ljust(3, "0")) if digits else 0


def _days(y: int, mo: int, d: int) -> int | None:
    try:
        return date(y, mo, d).toordinal() - _UNIX_ORDINAL
    except ValueError:
        return None


_OFFSET = re.compile(r"(?:utc|gmt)?([+-])(\d{1,2})(?::?(\d{2}))?")


_OFFSETS: dict[str, int] = {}  # by token ('+08:00', 'Z', ...): a handful per deployment


def _parse_offset(token: str, text: str) -> int:
    known = _OFFSETS.get(token)
    if known is not None:
        return known
    seconds = _read_offset(token.lower(), text)
    if len(_OFFSETS) < 4096:
        _OFFSETS[token] = seconds
    return seconds


def _read_offset(token: str, text: str) -> int:
    if token in ("z", "utc", "gmt"):
        return 0
    match = _OFFSET.fullmatch(token)
    if match is None:
        raise _invalid(text, "unreadable UTC offset")
    sign, hours, minutes = match.groups()
    if int(hours) > 14 or (minutes is not None and int(minutes) > 59):
        raise _invalid(text, "impossible UTC offset")
    seconds = int(hours) * 3600 + int(minutes or 0) * 60
    return -seconds if sign == "-" else seconds


# --- epochs and digit strings ------------------------------------------------------------------


def _from_epoch_ms(utc_ms: int, label: str, table: _ZoneTable, text: str) -> Instant:
    return _instant(_checked_ms(utc_ms, text), _iso(table, utc_ms), label)


def _from_number(number: int | float, table: _ZoneTable) -> Instant:
    text = repr(number)
    if isinstance(number, float):
        if math.isnan(number):
            raise _invalid(text, "not a number")
        if math.isinf(number):
            raise InvalidEvent(Reason.OUT_OF_RANGE, f"{text} is outside 2000..2099")
        if abs(number) < 1e11:  # seconds; round to microseconds first so 0.123 stays 123 ms
            return _from_epoch_ms(round(number * 1e6) // 1000, "epoch_s", table, text)
        return _from_epoch_ms(math.floor(number), "epoch_ms", table, text)
    if abs(number) < 10**11:
        return _from_epoch_ms(number * 1000, "epoch_s", table, text)
    return _from_epoch_ms(number, "epoch_ms", table, text)


_NUMERIC = re.compile(r"(-?)(\d+)(?:\.(\d+))?")


def _from_numeric_text(match: re.Match[str], table: _ZoneTable, text: str) -> Instant:
    sign, whole, fraction = match.groups()
    if sign:
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"{text!r} is outside 2000..2099")
    if len(whole) <= 11:
        return _from_epoch_ms(int(whole) * 1000 + _fraction_ms(fraction), "epoch_s", table, text)
    return _from_epoch_ms(int(whole), "epoch_ms", table, text)


def _is_compact(digits: str) -> bool:
    """Digit strings that are calendar stamps, not epochs (no epoch in range has these lengths,
    except 12 digits, where epoch milliseconds of 2000..2001 start with 9)."""
    size = len(digits)
    return size in (8, 14, 17) or (size == 12 and digits[0] == "2")


# --- readings and their resolution -------------------------------------------------------------

# One way to read the input: local date, seconds into that day (may reach past midnight), ms,
# explicit UTC offset (None: the station zone) and the format label.
Reading = tuple[int, int, int, int, int, int | None, str]


@dataclass(slots=True)
class _Context:
    table: _ZoneTable
    zone: str
    convention: SourceConvention
    reference_ms: int | None
    tolerance_ms: int


def _candidates(
    readings: Sequence[Reading], ctx: _Context, text: str, weekday: int | None
) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    in_gap = False
    for y, mo, d, seconds, ms, offset, label in readings:
        days = _days(y, mo, d)
        if days is None or (weekday is not None and (days + 3) % 7 != weekday):
            continue
        local = days * _DAY + seconds
        if offset is not None:
            found.append(((local - offset) * 1000 + ms, label))
            continue
        utcs = ctx.table.to_utc(local)
        if not utcs:
            in_gap = True
        elif len(utcs) == 2 and ctx.convention.fold is not None:
            utcs = (utcs[ctx.convention.fold],)
        for utc in utcs:
            found.append((utc * 1000 + ms, label))
    if found:
        return found
    if in_gap:
        raise _invalid(text, f"local time does not exist in {ctx.zone} (DST gap)")
    if weekday is not None:
        raise _invalid(text, "weekday does not match the date")
    raise _invalid(text, "no such date")


def _choose(
    found: list[tuple[int, str]], ctx: _Context, text: str, needs_context: bool
) -> tuple[int, str, bool]:
    """The one candidate instant, or the one nearest the reference; else ambiguous_time."""
    if len(found) == 1 and not needs_context:
        return _checked_ms(found[0][0], text), found[0][1], False
    in_range = [c for c in found if MIN_EPOCH_MS <= c[0] < MAX_EPOCH_MS]
    if not in_range:
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"{text!r} is outside 2000..2099")
    if not needs_context and len({utc for utc, _ in in_range}) == 1:
        return in_range[0][0], in_range[0][1], False
    reference = ctx.reference_ms
    if reference is None:
        raise InvalidEvent(Reason.AMBIGUOUS_TIME, f"{text!r} has several readings and no context")
    ranked = sorted(in_range, key=lambda c: abs(c[0] - reference))
    best, best_label = ranked[0]
    distance = abs(best - reference)
    if distance > ctx.tolerance_ms:
        raise InvalidEvent(
            Reason.AMBIGUOUS_TIME, f"{text!r}: no reading within tolerance of the reference"
        )
    for other, _ in ranked[1:]:
        if other != best and abs(other - reference) == distance:
            raise InvalidEvent(Reason.AMBIGUOUS_TIME, f"{text!r}: two readings equally near")
    return best, best_label, True


def _resolve(
    readings: Sequence[Reading],
    ctx: _Context,
    text: str,
    *,
    needs_context: bool = False,
    weekday: int | None = None,
) -> Instant:
    utc_ms, label, inferred = _choose(
        _candidates(readings, ctx, text, weekday), ctx, text, needs_context
    )
    return _instant(utc_ms, _iso(ctx.table, utc_ms), label, inferred)


# --- the ISO 8601 fast path --------------------------------------------------------------------

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(?: ?([Zz]|[+-]\d{2}(?::?\d{2})?))?"
)


def _from_iso(match: re.Match[str], ctx: _Context, text: str) -> Instant:
    ys, mos, ds, hs, mis, ss, fraction, zone_token = match.groups()
    hour, minute, second = int(hs), int(mis), int(ss) if ss else 0
    if hour > 23 or minute > 59 or second > 59:
        raise _invalid(text, "impossible time of day")
    days = _days(int(ys), int(mos), int(ds))
    if days is None:
        raise _invalid(text, "no such date")
    local = days * _DAY + hour * 3600 + minute * 60 + second
    ms = _fraction_ms(fraction)
    table = ctx.table
    if zone_token:
        utc_ms = (local - _parse_offset(zone_token, text)) * 1000 + ms
        return _instant(_checked_ms(utc_ms, text), _iso(table, utc_ms), "iso8601_offset")
    if table.fixed is None:
        return _resolve(
            [(int(ys), int(mos), int(ds), local - days * _DAY, ms, None, "iso8601")], ctx, text
        )
    utc_ms = _checked_ms((local - table.fixed) * 1000 + ms, text)
    tail = f".{ms:03d}" if ms else ""
    iso = f"{ys}-{mos}-{ds}T{hs}:{mis}:{ss or '00'}{tail}{table.suffixes[table.fixed]}"
    return _instant(utc_ms, iso, "iso8601")


# --- everything else: find a date, a time and markers, and nothing else ------------------------

_FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0xA0: 0x20}

_COMPACT_T = re.compile(
    r"(\d{4})(\d{2})(\d{2})t(\d{2})(\d{2})(\d{2})?(?:[.,](\d{1,9}))?(z|[+-]\d{2}(?::?\d{2})?)?"
)
_PARENS = re.compile(r"\([^)]*\)")
_ZH_NUMERAL = re.compile(r"(?<!\d)[零〇一二两兩三四五六七八九十]+(?!\d)")
_ZH_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5}
_ZH_DIGIT |= {"六": 6, "七": 7, "八": 8, "九": 9}
_LETTER = re.compile("[a-z]")

_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?(?![a-z])"
)
_MONTHS = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8}
_MONTHS |= {"sep": 9, "oct": 10, "nov": 11, "dec": 12}
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_WEEKDAYS |= {"1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6, "日": 6, "天": 6}

_ZH_DATE = re.compile(r"(?:(\d{4})\s*年\s*)?(\d{1,2})\s*月\s*(\d{1,2})\s*[日号號]?")
_YMD = re.compile(r"(?<!\d)(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?!\d)")
_YMD_NAME = re.compile(rf"(?<!\d)(\d{{4}})[\s-]{_MONTH}[\s-](\d{{1,2}})(?!\d)")
_DMY_NAME = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?[\s-]*(?:of\s+)?{_MONTH}(?:[\s,-]*(\d{{4}})(?!\d))?"
)
_MDY_NAME = re.compile(
    rf"(?<![a-z]){_MONTH}[\s,-]*(\d{{1,2}})(?:st|nd|rd|th)?(?!\d)(?:[\s,-]+(\d{{4}})(?!\d))?"
)
# (pattern, group numbers of year, month name and day)
_MONTH_NAME_DATES = ((_YMD_NAME, (1, 2, 3)), (_DMY_NAME, (3, 2, 1)), (_MDY_NAME, (3, 1, 2)))
_NUM_DATE = re.compile(r"(?<![\d.:/-])(\d{1,2})([-/.])(\d{1,2})\2(\d{4})(?!\d)")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")

_TZ = r"(?:\s*(z(?![a-z])|(?:utc|gmt)?[+-]\d{1,2}(?::?\d{2})?(?!\d)|utc|gmt))?"
_AMPM = r"(?:\s*([ap])\.?\s?m(?![a-z])\.?)?"
_CLOCK = re.compile(
    r"(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?![\d:])" + _AMPM + _TZ
)
_HOUR_AMPM = re.compile(r"(?<![\d:.])(\d{1,2})\s*([ap])\.?\s?m(?![a-z])\.?" + _TZ)
_ZH_CLOCK = re.compile(
    r"(?<!\d)(\d{1,2})\s*[点點时時](?:\s*(?:([13])\s*刻|(\d{1,2})\s*分?|(半)))?"
    r"(?:\s*(\d{1,2})\s*秒)?\s*[钟鐘]?\s*整?"
)
_ZH_PERIODS = "凌晨|早上|早晨|清晨|上午|中午|下午|傍晚|晚上|晚间|夜里|夜间|深夜|半夜|午夜"
_ZH_PERIOD = re.compile(_ZH_PERIODS + "|早|晚")
_EN_PERIOD = re.compile(r"(?<![a-z])([ap])\.?m(?![a-z])\.?")
_WEEKDAY = re.compile(
    r"(?<![a-z])(mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?"
    r"|fri(?:day)?|sat(?:urday)?|sun(?:day)?)\.?(?![a-z])"
)
_ZH_WEEKDAY = re.compile("(?:星期|周|週|礼拜|禮拜)([1-7日天])")
_FILLER = re.compile(r"(?:[\s,;@]|\bat\b|\bt\b|\bon\b|的|于|在)*")

# The common shapes in one match each (numeric date + clock; Chinese date + clock); anything
# else goes through the search below.
_NUMERIC_DATETIME = re.compile(
    r"(\d{1,4})([-/.])(\d{1,2})\2(\d{1,4})(?:\s+|t)(\d{1,2}):(\d{2})"
    r"(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:\s?([ap])\.?m\.?)?"
)
_ZH_DATETIME = re.compile(
    rf"(\d{{4}})年(\d{{1,2}})月(\d{{1,2}})[日号]\s*({_ZH_PERIODS})?\s*"
    r"(\d{1,2})(?::(\d{2})(?::(\d{2}))?|[点时](?:(\d{1,2})分|(半))?)"
)

_PERIOD_KIND = {"凌晨": "am", "早上": "am", "早晨": "am", "清晨": "am", "上午": "am", "早": "am"}
_PERIOD_KIND |= {"中午": "noon", "下午": "pm", "傍晚": "evening", "晚上": "evening"}
_PERIOD_KIND |= {"晚间": "evening", "晚": "evening", "夜里": "night", "夜间": "night"}
_PERIOD_KIND |= {"深夜": "night", "半夜": "night", "午夜": "night", "a": "am", "p": "pm"}


def _arabic(match: re.Match[str]) -> str:
    """Chinese numerals as digits: 十五 -> 15, 零五 -> 05, 二〇二二 -> 2022. Runs that are not a
    plain number stay as they are for the leftover check to reject, notably the approximations
    两三点 and 三四点 ("two or three o'clock"), which digit by digit would read 23 and 34."""
    run = match.group()
    if "十" not in run:
        if len(run) == 2 and run[0] not in "零〇":
            return run
        return "".join(str(_ZH_DIGIT[c]) for c in run)
    tens, _, units = run.partition("十")
    if len(tens) > 1 or len(units) > 1 or "十" in units:
        return run
    return str((_ZH_DIGIT[tens] if tens else 1) * 10 + (_ZH_DIGIT[units] if units else 0))


def _hour24(kind: str | None, hour: int) -> int | None:
    """The 24-hour hour (24 = the midnight ending the day) for `hour` under a day-period marker."""
    if kind is None:
        return hour if hour <= 23 else None
    if hour > 23 or (hour > 12 and kind == "am") or (hour == 0 and kind not in ("am", "night")):
        return None
    if hour > 12:
        return hour
    if kind == "am":
        return hour % 12
    if kind == "pm":
        return hour if hour == 12 else hour + 12
    if kind == "noon":
        return {11: 11, 12: 12, 1: 13, 2: 14}.get(hour)
    if kind == "evening":
        return 24 if hour == 12 else hour + 12
    return 24 if hour == 12 else hour if hour <= 5 else hour + 12  # night


DateGuess = tuple[int | None, int, int, str]  # (year or None, month, day, label)


@dataclass(slots=True)
class _Parts:
    """What the parser found in one value."""

    dates: list[DateGuess]
    hour: int | None = None
    minute: int = 0
    second: int = 0
    ms: int = 0
    period: str | None = None
    offset: int | None = None
    zh: bool = False
    month_name: bool = False
    weekday: int | None = None


def _ymd(year: str, sep: str, month: str, day: str) -> DateGuess:
    padded = len(month) == 2 and len(day) == 2
    label = "ymd_slash" if sep == "/" else "ymd_dot" if sep == "." else "ymd_dash"
    return (int(year), int(month), int(day), "iso8601" if sep == "-" and padded else label)


def _day_month(first: str, second: str, year: str) -> list[DateGuess]:
    """Both readings of a numeric date; `_apply_day_first` drops the impossible one."""
    a, b, y = int(first), int(second), int(year)
    return [(y, b, a, "dmy"), (y, a, b, "mdy")] if a != b else [(y, a, b, "dmy")]


def _quick_parts(s: str) -> _Parts | None:
    match = _NUMERIC_DATETIME.fullmatch(s)
    if match:
        first, sep, second, third, hour, minute, sec, fraction, period = match.groups()
        if len(first) == 4 and len(third) <= 2:
            dates = [_ymd(first, sep, second, third)]
        elif len(third) == 4 and len(first) <= 2:
            dates = _day_month(first, second, third)
        else:
            return None
        kind = _PERIOD_KIND[period] if period else None
        return _Parts(dates, int(hour), int(minute), int(sec or 0), _fraction_ms(fraction), kind)
    if s.isascii():
        return None
    match = _ZH_DATETIME.fullmatch(s)
    if match is None:
        return None
    year, month, day, period, hour, minute, sec, zh_minute, half = match.groups()
    minute_value = 30 if half else int(minute or zh_minute or 0)
    kind = _PERIOD_KIND[period] if period else None
    parts = _Parts([(int(year), int(month), int(day), "zh")], int(hour), minute_value)
    parts.second, parts.period, parts.zh = int(sec or 0), kind, True
    return parts


def _cut(s: str, match: re.Match[str]) -> str:
    return f"{s[: match.start()]} {s[match.end() :]}"


def _find_date(s: str, parts: _Parts, letters: bool) -> str:
    if not s.isascii():
        match = _ZH_DATE.search(s)
        if match:
            year, month, day = match.groups()
            parts.dates = [(int(year) if year else None, int(month), int(day), "zh")]
            parts.zh = True
            return _cut(s, match)
    match = _YMD.search(s)
    if match:
        parts.dates = [_ymd(*match.groups())]
        return _cut(s, match)
    for pattern, order in _MONTH_NAME_DATES if letters else ():
        match = pattern.search(s)
        if match:
            year, name, day = (match.group(k) for k in order)
            month = _MONTHS[name[:3]]
            parts.dates = [(int(year) if year else None, month, int(day), "month_name")]
            parts.month_name = True
            return _cut(s, match)
    match = _NUM_DATE.search(s)
    if match:
        first, _, second, year = match.groups()
        parts.dates = _day_month(first, second, year)
        return _cut(s, match)
    return s


def _find_time(s: str, parts: _Parts, text: str) -> str:
    if not s.isascii():
        match = _ZH_CLOCK.search(s)
        if match:
            hour, quarter, minute, half, second = match.groups()
            parts.hour = int(hour)
            parts.minute = 30 if half else int(quarter) * 15 if quarter else int(minute or 0)
            parts.second = int(second or 0)
            parts.zh = True
            return _cut(s, match)
    match = _CLOCK.search(s)
    if match:
        hour, minute, second, fraction, period, zone_token = match.groups()
        parts.hour, parts.minute, parts.second = int(hour), int(minute), int(second or 0)
        parts.ms = _fraction_ms(fraction)
    else:
        match = _HOUR_AMPM.search(s)
        if match is None:
            return s
        hour, period, zone_token = match.groups()
        parts.hour = int(hour)
    parts.period = _PERIOD_KIND[period] if period else None
    parts.offset = _parse_offset(zone_token.strip(), text) if zone_token else None
    return _cut(s, match)


def _find_markers(s: str, parts: _Parts, text: str, letters: bool) -> str:
    """Day-period markers, a weekday, and a year standing apart from its date (asctime)."""
    patterns = ((_ZH_PERIOD,) if not s.isascii() else ()) + ((_EN_PERIOD,) if letters else ())
    for pattern in patterns:
        match = pattern.search(s)
        if match is None:
            continue
        if parts.period is not None:
            raise _invalid(text, "two day-period markers")
        parts.period = _PERIOD_KIND[match.group(1) if pattern is _EN_PERIOD else match.group()]
        parts.zh = parts.zh or pattern is _ZH_PERIOD
        s = _cut(s, match)
    match = _WEEKDAY.search(s) if letters else None
    if match is None and not s.isascii():
        match = _ZH_WEEKDAY.search(s)
    if match:
        parts.weekday = _WEEKDAYS[match.group(1)[:3]]
        s = _cut(s, match)
    if parts.dates and parts.dates[0][0] is None:
        match = _YEAR.search(s)
        if match:
            _, month, day, label = parts.dates[0]
            parts.dates = [(int(match.group(1)), month, day, label)]
            s = _cut(s, match)
    return s


def _search_parts(s: str, text: str) -> _Parts:
    if "(" in s:
        s = _PARENS.sub(" ", s)
    if not s.isascii() and _ZH_NUMERAL.search(s):
        s = _ZH_NUMERAL.sub(_arabic, s)
    letters = _LETTER.search(s) is not None
    parts = _Parts(dates=[])
    s = _find_time(_find_date(s, parts, letters), parts, text)
    s = _find_markers(s, parts, text, letters)
    if not _FILLER.fullmatch(s) or (parts.hour is None and not parts.dates):
        raise _invalid(text, "unrecognised timestamp")
    return parts


def _label(parts: _Parts, date_label: str, twelve: bool) -> str:
    """The most telling family seen; see the module docstring for the order."""
    if parts.hour is None:
        return "date_only"
    if parts.zh:
        return "zh"
    if parts.month_name:
        return "month_name"
    if twelve:
        return "clock12"
    if not date_label:
        return "time_only"
    if date_label == "iso8601" and parts.offset is not None:
        return "iso8601_offset"
    return date_label


def _hours(parts: _Parts, ctx: _Context, text: str) -> tuple[list[int], bool]:
    """The 24-hour readings of the hour, and whether a 12-hour clock was involved."""
    if parts.hour is None:
        return [0], False
    if parts.minute > 59 or parts.second > 59:
        raise _invalid(text, "impossible time of day")
    hour = _hour24(parts.period, parts.hour)
    if hour is None or (hour == 24 and parts.period in (None, "am", "pm", "noon")):
        raise _invalid(text, "impossible hour")
    if parts.period is not None:
        return [hour], True
    if ctx.convention.twelve_hour and 1 <= parts.hour <= 12:
        return [parts.hour % 12, parts.hour % 12 + 12], True
    return [hour], False


def _dates_near_reference(parts: _Parts, ctx: _Context) -> list[DateGuess]:
    """Fill a missing date (the day before, of and after the reference, in the station zone) or a
    missing year (the year before, of and after)."""
    assert ctx.reference_ms is not None
    seconds = ctx.reference_ms // 1000
    today = (seconds + ctx.table.offset_at(seconds)) // _DAY + _UNIX_ORDINAL
    days = [date.fromordinal(today + k) for k in (-1, 0, 1)]
    if not parts.dates:
        return [(day.year, day.month, day.day, "") for day in days]
    _, month, day_of_month, label = parts.dates[0]
    return [(day.year, month, day_of_month, label) for day in days]


def _apply_day_first(dates: list[DateGuess], convention: SourceConvention) -> list[DateGuess]:
    """Keep only the dates that exist; of a dmy/mdy pair, the convention's when it has one."""
    valid = [g for g in dates if g[0] and _days(g[0], g[1], g[2]) is not None]
    if len(valid) == 2 and convention.day_first is not None and valid[0][3] != valid[1][3]:
        wanted = "dmy" if convention.day_first else "mdy"
        valid = [g for g in valid if g[3] == wanted]
    return valid or dates


def _finish(parts: _Parts, ctx: _Context, text: str) -> Instant:
    hours, twelve = _hours(parts, ctx, text)
    needs_context = not parts.dates or parts.dates[0][0] is None
    if needs_context:
        if ctx.reference_ms is None:
            raise InvalidEvent(
                Reason.AMBIGUOUS_TIME, f"{text!r} lacks a date or a year, and no context"
            )
        parts.dates = _dates_near_reference(parts, ctx)
    clock = parts.minute * 60 + parts.second
    readings: list[Reading] = [
        (y or 0, mo, d, hour * 3600 + clock, parts.ms, parts.offset, _label(parts, label, twelve))
        for y, mo, d, label in (
            parts.dates if len(parts.dates) == 1 else _apply_day_first(parts.dates, ctx.convention)
        )
        for hour in hours
    ]
    return _resolve(readings, ctx, text, needs_context=needs_context, weekday=parts.weekday)


def _parse_general(text: str, ctx: _Context) -> Instant:
    s = text.lower()
    compact = _COMPACT_T.fullmatch(s) if s[:8].isdigit() else None
    if compact:
        y, mo, d, h, mi, sec, fraction, zone_token = compact.groups()
        return _from_fields(text, ctx, (y, mo, d, h, mi, sec), fraction, zone_token)
    return _finish(_quick_parts(s) or _search_parts(s, text), ctx, text)


def _from_fields(
    text: str,
    ctx: _Context,
    fields: tuple[str, str, str, str | None, str | None, str | None],
    fraction: str | None,
    zone_token: str | None,
) -> Instant:
    """A compact stamp: fixed-width fields, no ambiguity but the zone's own."""
    y, mo, d, h, mi, s = (int(f) if f else 0 for f in fields)
    if h > 23 or mi > 59 or s > 59:
        raise _invalid(text, "impossible time of day")
    label = "compact" if fields[3] is not None else "date_only"
    offset = _parse_offset(zone_token, text) if zone_token else None
    reading: Reading = (y, mo, d, h * 3600 + mi * 60 + s, _fraction_ms(fraction), offset, label)
    return _resolve([reading], ctx, text)


def _from_compact_digits(digits: str, ctx: _Context) -> Instant:
    hour, minute, second = digits[8:10] or None, digits[10:12] or None, digits[12:14] or None
    fields = (digits[0:4], digits[4:6], digits[6:8], hour, minute, second)
    return _from_fields(digits, ctx, fields, digits[14:17] or None, None)


# --- the common shapes, read without regular expressions ----------------------------------------

# A value's shape is its UTF-8 bytes with every digit written as 9; letters, CJK and markers
# stay, so `Oct 15, 2022 3:05 PM` has the shape `Oct 99, 9999 9:99 PM`. The shapes below are the
# common forms; for them the C parser `datetime.fromisoformat`, or slicing the fields where the
# shape puts them (Chinese, month-name and 12-hour forms, see _Layout), reads the value in a
# fifth to a tenth of the time of the general path. Anything out of the ordinary (an invalid
# field, a DST gap or fold, an instant out of range, an offset not seen before, a day/month order
# to settle) is left to `_parse_text`, which also words every error, so the two paths agree by
# construction.
_SHAPE = bytes.maketrans(b"0123456789", b"9999999999")

# A reader takes (text, table, convention, shape argument) and returns None to defer.
_ShapeReader = Callable[[str, "_ZoneTable", SourceConvention | None, int], "Instant | None"]


def _in_range(utc_ms: int, table: _ZoneTable, label: str) -> Instant | None:
    if not MIN_EPOCH_MS <= utc_ms < MAX_EPOCH_MS:
        return None
    return _instant(utc_ms, _iso(table, utc_ms), label)


def _local_seconds(local: datetime) -> int:
    days = local.toordinal() - _UNIX_ORDINAL
    return days * _DAY + local.hour * 3600 + local.minute * 60 + local.second


def _read_wall_time(iso_text: str, table: _ZoneTable, label: str) -> Instant | None:
    """A wall time of the station zone, written as ISO 8601 without an offset."""
    try:
        local = datetime.fromisoformat(iso_text)
    except ValueError:
        return None
    seconds = _local_seconds(local)
    if table.fixed is not None:
        utc = seconds - table.fixed
    else:
        utcs = table.to_utc(seconds)
        if len(utcs) != 1:
            return None
        utc = utcs[0]
    return _in_range(utc * 1000 + local.microsecond // 1000, table, label)


def _read_iso(
    text: str, table: _ZoneTable, convention: SourceConvention | None, offset_start: int
) -> Instant | None:
    if not offset_start:
        return _read_wall_time(text, table, "iso8601" if len(text) > 10 else "date_only")
    offset = _OFFSETS.get(text[offset_start:])
    if offset is None:
        return None
    try:
        local = datetime.fromisoformat(text[:offset_start].rstrip())
    except ValueError:
        return None
    utc = _local_seconds(local) - offset
    return _in_range(utc * 1000 + local.microsecond // 1000, table, "iso8601_offset")


def _read_year_first(
    text: str, table: _ZoneTable, convention: SourceConvention | None, separator: int
) -> Instant | None:
    label = "ymd_slash" if separator == ord("/") else "ymd_dot"
    return _read_wall_time(f"{text[:4]}-{text[5:7]}-{text[8:]}", table, label)


def _read_day_month(
    text: str, table: _ZoneTable, convention: SourceConvention | None, _: int
) -> Instant | None:
    first, second = int(text[:2]), int(text[3:5])
    if first == second or (second <= 12 and (first > 12 or (convention and convention.day_first))):
        day, month, label = text[:2], text[3:5], "dmy"
    elif first <= 12 and (second > 12 or (convention and convention.day_first is False)):
        day, month, label = text[3:5], text[:2], "mdy"
    else:
        return None
    return _read_wall_time(f"{text[6:10]}-{month}-{day}{text[10:]}", table, label)


def _read_digits(
    text: str, table: _ZoneTable, convention: SourceConvention | None, _: int
) -> Instant | None:
    size = len(text)
    if size == 8:
        return _read_wall_time(text, table, "date_only")
    if size in (14, 17) or (size == 12 and text[0] == "2"):
        return _read_wall_time(f"{text[:8]}T{text[8:14]}.{text[14:]}".rstrip("."), table, "compact")
    if size <= 11:
        return _in_range(int(text) * 1000, table, "epoch_s")
    return _in_range(int(text), table, "epoch_ms")


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the fields of one date+clock shape sit in the value, and what its words mean."""

    year: slice
    month: slice | None  # None: the shape names the month (`month_number`)
    day: slice
    hour: slice
    minute: slice | None  # None: `fixed_minute` (o'clock, or 30 for 半)
    second: slice | None
    kind: str | None  # the day-period marker's kind, as in _PERIOD_KIND
    label: str
    month_number: int = 0
    fixed_minute: int = 0
    either_order: bool = False  # a numeric D/M/Y date that may be month-first


_LAYOUTS: list[_Layout] = []  # indexed by the shape argument of _read_fields


def _read_fields(
    text: str, table: _ZoneTable, convention: SourceConvention | None, index: int
) -> Instant | None:
    layout = _LAYOUTS[index]
    hour = _hour24(layout.kind, int(text[layout.hour]))
    minute = int(text[layout.minute]) if layout.minute else layout.fixed_minute
    second = int(text[layout.second]) if layout.second else 0
    if hour is None or minute > 59 or second > 59:
        return None
    year, day = int(text[layout.year]), int(text[layout.day])
    month = int(text[layout.month]) if layout.month else layout.month_number
    days = _days(year, month, day)
    if layout.either_order and month != day:
        days = _settle_day_month(days, _days(year, day, month), convention)
    if days is None:
        return None
    local = days * _DAY + hour * 3600 + minute * 60 + second
    if table.fixed is not None:
        return _in_range((local - table.fixed) * 1000, table, layout.label)
    utcs = table.to_utc(local)
    return _in_range(utcs[0] * 1000, table, layout.label) if len(utcs) == 1 else None


def _settle_day_month(
    month_first: int | None, day_first: int | None, convention: SourceConvention | None
) -> int | None:
    """The one existing reading, else the convention's; None when context would have to decide."""
    if month_first is None or day_first is None:
        return month_first if day_first is None else day_first
    if convention is None or convention.day_first is None:
        return None
    return day_first if convention.day_first else month_first


def _add_layout(
    shapes: dict[bytes, tuple[_ShapeReader, int]],
    shape: str,
    fields: str,
    kind: str | None,
    label: str,
    *,
    month_number: int = 0,
    fixed_minute: int = 0,
    either_order: bool = False,
) -> None:
    """Register `shape`, whose digit runs are, in order, the fields named by letters of `fields`
    (y, m, d, h, i for minutes, s)."""
    spans = tuple(run.span() for run in re.finditer("9+", shape))
    shapes[shape.encode()] = _layout_entry(
        tuple(zip(fields, spans, strict=True)),
        kind,
        label,
        month_number,
        fixed_minute,
        either_order,
    )


@cache
def _layout_entry(
    spans: tuple[tuple[str, tuple[int, int]], ...],
    kind: str | None,
    label: str,
    month_number: int,
    fixed_minute: int,
    either_order: bool,
) -> tuple[_ShapeReader, int]:
    """One entry per distinct layout: the ~17,000 shapes share about 1,000 of them."""
    found = {field: slice(*span) for field, span in spans}
    layout = _Layout(
        found["y"],
        found.get("m"),
        found["d"],
        found["h"],
        found.get("i"),
        found.get("s"),
        kind,
        label,
        month_number,
        fixed_minute,
        either_order,
    )
    _LAYOUTS.append(layout)
    return _read_fields, len(_LAYOUTS) - 1


def _zh_shapes(shapes: dict[bytes, tuple[_ShapeReader, int]]) -> None:
    """2022年10月15日 下午3:05, 2022年10月15日 15:05:00, 2022年10月15日下午3点05分, ..."""
    clocks = {":99": "hi", ":99:99": "his"}
    clocks |= {f"{mark}{tail}": "h" for mark in "点时" for tail in ("", "半")}
    clocks |= {f"{mark}{minute}分": "hi" for mark in "点时" for minute in ("9", "99")}
    gaps = [(first, second) for first in ("", " ") for second in ("", " ")]
    markers = [(marker, gap) for marker in _ZH_PERIODS.split("|") for gap in gaps]
    markers += [("", (gap, "")) for gap in ("", " ")]
    for month, day, hour in _one_or_two_digits(3):
        for day_mark in "日号":
            for marker, (before, after) in markers:
                for clock, clock_fields in clocks.items():
                    shape = f"9999年{month}月{day}{day_mark}{before}{marker}{after}{hour}{clock}"
                    _add_layout(
                        shapes,
                        shape,
                        "ymd" + clock_fields,
                        _PERIOD_KIND[marker] if marker else None,
                        "zh",
                        fixed_minute=30 if clock.endswith("半") else 0,
                    )


# AM/PM as sources write them (the general path lowercases), mapped to _PERIOD_KIND kinds.
_EN_MARKERS: dict[str, str | None] = {"": None}
_EN_MARKERS |= {
    f"{gap}{mark}": mark[0].lower() + "m" for gap in ("", " ") for mark in ["AM", "PM", "am", "pm"]
}
_FULL_MONTHS = (
    "January February March April May June July August September October November December"
)
_MONTH_NAMES = {
    name: number
    for number, full in enumerate(_FULL_MONTHS.split(), start=1)
    for name in (full, full[:3])
}
_MONTH_NAMES["Sept"] = 9


def _one_or_two_digits(count: int) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for _ in range(count):
        combos = [(*combo, digits) for combo in combos for digits in ("9", "99")]
    return combos


def _english_shapes(shapes: dict[bytes, tuple[_ShapeReader, int]]) -> None:
    """Oct 15, 2022 3:05 PM, 15 Oct 2022 15:05, 2022-10-15 3:05 PM, 10/15/2022 3:05pm, ..."""
    for second, second_field in (("", ""), (":99", "s")):
        for marker, kind in _EN_MARKERS.items():
            for day, hour in _one_or_two_digits(2):
                clock = f"{hour}:99{second}{marker}"
                time_fields = "hi" + second_field
                for name, number in _MONTH_NAMES.items():
                    for shape in (
                        f"{name} {day}, 9999 {clock}",
                        f"{name} {day} 9999 {clock}",
                        f"{day} {name} 9999 {clock}",
                    ):
                        fields = "dy" + time_fields
                        _add_layout(shapes, shape, fields, kind, "month_name", month_number=number)
                if kind is None:
                    continue  # numeric dates with a 24-hour clock: see _common_shapes
                for month in ("9", "99"):
                    for separator in "-/.":
                        shape = f"9999{separator}{month}{separator}{day} {clock}"
                        _add_layout(shapes, shape, "ymd" + time_fields, kind, "clock12")
                        shape = f"{month}{separator}{day}{separator}9999 {clock}"
                        _add_layout(
                            shapes,
                            shape,
                            "mdy" + time_fields,
                            kind,
                            "clock12",
                            either_order=True,
                        )


def _common_shapes() -> dict[bytes, tuple[_ShapeReader, int]]:
    shapes: dict[bytes, tuple[_ShapeReader, int]] = {b"9999-99-99": (_read_iso, 0)}
    clocks = ["99:99", "99:99:99"]
    for separator in "Tt ":
        for clock in clocks:
            shapes[f"99/99/9999{separator}{clock}".encode()] = (_read_day_month, 0)
            for date_separator in "/.":
                head = f"9999{date_separator}99{date_separator}99{separator}{clock}"
                shapes[head.encode()] = (_read_year_first, ord(date_separator))
    clocks += [f"99:99:99{mark}{'9' * digits}" for mark in ".," for digits in range(1, 10)]
    offsets = ["Z", "z"] + [f"{sign}99{tail}" for sign in "+-" for tail in ("", "99", ":99")]
    for separator in "Tt ":
        for clock in clocks:
            head = f"9999-99-99{separator}{clock}"
            shapes[head.encode()] = (_read_iso, 0)
            for gap in ("", " "):
                for offset in offsets:
                    shapes[f"{head}{gap}{offset}".encode()] = (_read_iso, len(head) + len(gap))
    for size in range(1, 20):
        shapes[b"9" * size] = (_read_digits, 0)
    _zh_shapes(shapes)
    _english_shapes(shapes)
    return shapes


_COMMON_SHAPES = _common_shapes()


@dataclass(frozen=True, slots=True)
class FieldShape:
    """A common shape read by slicing its fields (Chinese, month-name and 12-hour forms), for
    readers of whole columns: `shape` is the text with every ASCII digit written 9; `fields` maps
    y m d h i s to [start, stop) in characters (a missing month is `month_number`, a missing minute
    `fixed_minute`); `kind` is the day-period marker's, as `hour24` takes it."""

    shape: str
    fields: dict[str, tuple[int, int]]
    kind: str | None
    label: str
    month_number: int
    fixed_minute: int
    either_order: bool  # a numeric date that may be day-first


def field_shapes() -> list[FieldShape]:
    """Every shape parse_instant reads with `_read_fields`, as it reads them."""
    found = []
    for shape, (read, index) in _COMMON_SHAPES.items():
        if read is not _read_fields:
            continue
        layout = _LAYOUTS[index]
        slices = {"y": layout.year, "m": layout.month, "d": layout.day, "h": layout.hour}
        slices |= {"i": layout.minute, "s": layout.second}
        fields = {k: (v.start, v.stop) for k, v in slices.items() if v is not None}
        found.append(
            FieldShape(
                shape.decode(),
                fields,
                layout.kind,
                layout.label,
                layout.month_number,
                layout.fixed_minute,
                layout.either_order,
            )
        )
    return found


# --- the entry point ---------------------------------------------------------------------------


def parse_instant(
    value: object,
    *,
    zone: str = DEFAULT_ZONE,
    convention: SourceConvention | None = None,
    reference_ms: int | None = None,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> Instant:
    """Parse one timestamp. Naive wall times are read in `zone`; `reference_ms` (e.g. the ingest
    time) settles ambiguity to the nearest reading within `tolerance_ms`. Raises InvalidEvent."""
    table = _zone_table(zone)
    if isinstance(value, str):
        text = value.strip()
        shape = _COMMON_SHAPES.get(text.encode(errors="surrogatepass").translate(_SHAPE))
        if shape is not None and (convention is None or not convention.twelve_hour):
            read, argument = shape
            found = read(text, table, convention, argument)
            if found is not None:
                return found
        convention = convention or _NO_CONVENTION
        return _parse_text(text, _Context(table, zone, convention, reference_ms, tolerance_ms))
    if value is None:
        raise InvalidEvent(Reason.EMPTY, "no timestamp")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(Reason.INVALID_FIELD, f"timestamp of type {type(value).__name__}")
    return _from_number(value, table)


def _parse_text(text: str, ctx: _Context) -> Instant:
    """Any stripped text, by the general rules (the reference for the common shapes above)."""
    if not text.isascii():
        text = text.translate(_FOLD).strip()
    if not text:
        raise InvalidEvent(Reason.EMPTY, "blank timestamp")
    match = _ISO.fullmatch(text)
    if match and not ctx.convention.twelve_hour:  # a 12-hour source's "03:05" may be 15:05
        return _from_iso(match, ctx, text)
    match = _NUMERIC.fullmatch(text)
    if match:
        if not match.group(1) and match.group(3) is None and _is_compact(text):
            return _from_compact_digits(text, ctx)
        return _from_numeric_text(match, ctx.table, text)
    return _parse_general(text, ctx)
