"""Reading text forms: the ISO 8601 fast path, then any other text (numeric, Chinese and English
dates, 12- and 24-hour clocks, markers), found piece by piece."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from base.errors import InvalidEvent, Reason
from streams.timestd.instant import DAY_S, UNIX_ORDINAL, Instant, SourceConvention, new_instant
from streams.timestd.readings import (
    Context,
    Reading,
    checked_ms,
    days_from_civil,
    fraction_ms,
    invalid_time,
    parse_offset,
    resolve_readings,
)
from streams.timestd.zones import iso_in

ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(?: ?([Zz]|[+-]\d{2}(?::?\d{2})?))?"
)


def from_iso(match: re.Match[str], ctx: Context, text: str) -> Instant:
    ys, mos, ds, hs, mis, ss, fraction, zone_token = match.groups()
    hour, minute, second = int(hs), int(mis), int(ss) if ss else 0
    if hour > 23 or minute > 59 or second > 59:
        raise invalid_time(text, "impossible time of day")
    days = days_from_civil(int(ys), int(mos), int(ds))
    if days is None:
        raise invalid_time(text, "no such date")
    local = days * DAY_S + hour * 3600 + minute * 60 + second
    ms = fraction_ms(fraction)
    table = ctx.table
    if zone_token:
        utc_ms = (local - parse_offset(zone_token, text)) * 1000 + ms
        return new_instant(checked_ms(utc_ms, text), iso_in(table, utc_ms), "iso8601_offset")
    if table.fixed is None:
        return resolve_readings(
            [(int(ys), int(mos), int(ds), local - days * DAY_S, ms, None, "iso8601")], ctx, text
        )
    utc_ms = checked_ms((local - table.fixed) * 1000 + ms, text)
    tail = f".{ms:03d}" if ms else ""
    iso = f"{ys}-{mos}-{ds}T{hs}:{mis}:{ss or '00'}{tail}{table.suffixes[table.fixed]}"
    return new_instant(utc_ms, iso, "iso8601")


FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0xA0: 0x20}

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
ZH_PERIODS = "凌晨|早上|早晨|清晨|上午|中午|下午|傍晚|晚上|晚间|夜里|夜间|深夜|半夜|午夜"
_ZH_PERIOD = re.compile(ZH_PERIODS + "|早|晚")
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
    rf"(\d{{4}})年(\d{{1,2}})月(\d{{1,2}})[日号]\s*({ZH_PERIODS})?\s*"
    r"(\d{1,2})(?::(\d{2})(?::(\d{2}))?|[点时](?:(\d{1,2})分|(半))?)"
)

PERIOD_KIND = {"凌晨": "am", "早上": "am", "早晨": "am", "清晨": "am", "上午": "am", "早": "am"}
PERIOD_KIND |= {"中午": "noon", "下午": "pm", "傍晚": "evening", "晚上": "evening"}
PERIOD_KIND |= {"晚间": "evening", "晚": "evening", "夜里": "night", "夜间": "night"}
PERIOD_KIND |= {"深夜": "night", "半夜": "night", "午夜": "night", "a": "am", "p": "pm"}


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


def hour_24(kind: str | None, hour: int) -> int | None:
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
        kind = PERIOD_KIND[period] if period else None
        return _Parts(dates, int(hour), int(minute), int(sec or 0), fraction_ms(fraction), kind)
    if s.isascii():
        return None
    match = _ZH_DATETIME.fullmatch(s)
    if match is None:
        return None
    year, month, day, period, hour, minute, sec, zh_minute, half = match.groups()
    minute_value = 30 if half else int(minute or zh_minute or 0)
    kind = PERIOD_KIND[period] if period else None
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
        parts.ms = fraction_ms(fraction)
    else:
        match = _HOUR_AMPM.search(s)
        if match is None:
            return s
        hour, period, zone_token = match.groups()
        parts.hour = int(hour)
    parts.period = PERIOD_KIND[period] if period else None
    parts.offset = parse_offset(zone_token.strip(), text) if zone_token else None
    return _cut(s, match)


def _find_markers(s: str, parts: _Parts, text: str, letters: bool) -> str:
    """Day-period markers, a weekday, and a year standing apart from its date (asctime)."""
    patterns = ((_ZH_PERIOD,) if not s.isascii() else ()) + ((_EN_PERIOD,) if letters else ())
    for pattern in patterns:
        match = pattern.search(s)
        if match is None:
            continue
        if parts.period is not None:
            raise invalid_time(text, "two day-period markers")
        parts.period = PERIOD_KIND[match.group(1) if pattern is _EN_PERIOD else match.group()]
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
        raise invalid_time(text, "unrecognised timestamp")
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


def _hours(parts: _Parts, ctx: Context, text: str) -> tuple[list[int], bool]:
    """The 24-hour readings of the hour, and whether a 12-hour clock was involved."""
    if parts.hour is None:
        return [0], False
    if parts.minute > 59 or parts.second > 59:
        raise invalid_time(text, "impossible time of day")
    hour = hour_24(parts.period, parts.hour)
    if hour is None or (hour == 24 and parts.period in (None, "am", "pm", "noon")):
        raise invalid_time(text, "impossible hour")
    if parts.period is not None:
        return [hour], True
    if ctx.convention.twelve_hour and 1 <= parts.hour <= 12:
        return [parts.hour % 12, parts.hour % 12 + 12], True
    return [hour], False


def _dates_near_reference(parts: _Parts, ctx: Context) -> list[DateGuess]:
    """Fill a missing date (the day before, of and after the reference, in the station zone) or a
    missing year (the year before, of and after)."""
    assert ctx.reference_ms is not None
    seconds = ctx.reference_ms // 1000
    today = (seconds + ctx.table.offset_at(seconds)) // DAY_S + UNIX_ORDINAL
    days = [date.fromordinal(today + k) for k in (-1, 0, 1)]
    if not parts.dates:
        return [(day.year, day.month, day.day, "") for day in days]
    _, month, day_of_month, label = parts.dates[0]
    return [(day.year, month, day_of_month, label) for day in days]


def _apply_day_first(dates: list[DateGuess], convention: SourceConvention) -> list[DateGuess]:
    """Keep only the dates that exist; of a dmy/mdy pair, the convention's when it has one."""
    valid = [g for g in dates if g[0] and days_from_civil(g[0], g[1], g[2]) is not None]
    if len(valid) == 2 and convention.day_first is not None and valid[0][3] != valid[1][3]:
        wanted = "dmy" if convention.day_first else "mdy"
        valid = [g for g in valid if g[3] == wanted]
    return valid or dates


def _finish(parts: _Parts, ctx: Context, text: str) -> Instant:
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
    return resolve_readings(readings, ctx, text, needs_context=needs_context, weekday=parts.weekday)


def parse_general(text: str, ctx: Context) -> Instant:
    s = text.lower()
    compact = _COMPACT_T.fullmatch(s) if s[:8].isdigit() else None
    if compact:
        y, mo, d, h, mi, sec, fraction, zone_token = compact.groups()
        return _from_fields(text, ctx, (y, mo, d, h, mi, sec), fraction, zone_token)
    return _finish(_quick_parts(s) or _search_parts(s, text), ctx, text)


def _from_fields(
    text: str,
    ctx: Context,
    fields: tuple[str, str, str, str | None, str | None, str | None],
    fraction: str | None,
    zone_token: str | None,
) -> Instant:
    """A compact stamp: fixed-width fields, no ambiguity but the zone's own."""
    y, mo, d, h, mi, s = (int(f) if f else 0 for f in fields)
    if h > 23 or mi > 59 or s > 59:
        raise invalid_time(text, "impossible time of day")
    label = "compact" if fields[3] is not None else "date_only"
    offset = parse_offset(zone_token, text) if zone_token else None
    reading: Reading = (y, mo, d, h * 3600 + mi * 60 + s, fraction_ms(fraction), offset, label)
    return resolve_readings([reading], ctx, text)


def from_compact_digits(digits: str, ctx: Context) -> Instant:
    hour, minute, second = digits[8:10] or None, digits[10:12] or None, digits[12:14] or None
    fields = (digits[0:4], digits[4:6], digits[6:8], hour, minute, second)
    return _from_fields(digits, ctx, fields, digits[14:17] or None, None)
