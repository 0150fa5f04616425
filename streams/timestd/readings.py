"""Shared by every form: epochs and digit strings, the candidate readings of a value and how one
is chosen (the source's convention, else the reference instant, else ambiguous)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from base.errors import InvalidEvent, Reason
from streams.timestd.instant import (
    DAY_S,
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    UNIX_ORDINAL,
    Instant,
    SourceConvention,
    new_instant,
)
from streams.timestd.zones import ZoneTable, iso_in


def invalid_time(text: str, why: str) -> InvalidEvent:
    return InvalidEvent(Reason.INVALID_TIME, f"{why}: {text!r}")


def checked_ms(utc_ms: int, text: str) -> int:
    if not MIN_EPOCH_MS <= utc_ms < MAX_EPOCH_MS:
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"{text!r} is outside 2000..2099")
    return utc_ms


def fraction_ms(digits: str | None) -> int:
    return int(digits[:3].ljust(3, "0")) if digits else 0


def days_from_civil(y: int, mo: int, d: int) -> int | None:
    try:
        return date(y, mo, d).toordinal() - UNIX_ORDINAL
    except ValueError:
        return None


_OFFSET = re.compile(r"(?:utc|gmt)?([+-])(\d{1,2})(?::?(\d{2}))?")


OFFSETS: dict[str, int] = {}  # by token ('+08:00', 'Z', ...): a handful per deployment


def parse_offset(token: str, text: str) -> int:
    known = OFFSETS.get(token)
    if known is not None:
        return known
    seconds = _read_offset(token.lower(), text)
    if len(OFFSETS) < 4096:
        OFFSETS[token] = seconds
    return seconds


def _read_offset(token: str, text: str) -> int:
    if token in ("z", "utc", "gmt"):
        return 0
    match = _OFFSET.fullmatch(token)
    if match is None:
        raise invalid_time(text, "unreadable UTC offset")
    sign, hours, minutes = match.groups()
    if int(hours) > 14 or (minutes is not None and int(minutes) > 59):
        raise invalid_time(text, "impossible UTC offset")
    seconds = int(hours) * 3600 + int(minutes or 0) * 60
    return -seconds if sign == "-" else seconds


def _from_epoch_ms(utc_ms: int, label: str, table: ZoneTable, text: str) -> Instant:
    return new_instant(checked_ms(utc_ms, text), iso_in(table, utc_ms), label)


def from_number(number: int | float, table: ZoneTable) -> Instant:
    text = repr(number)
    if isinstance(number, float):
        if math.isnan(number):
            raise invalid_time(text, "not a number")
        if math.isinf(number):
            raise InvalidEvent(Reason.OUT_OF_RANGE, f"{text} is outside 2000..2099")
        if abs(number) < 1e11:  # seconds; round to microseconds first so 0.123 stays 123 ms
            return _from_epoch_ms(round(number * 1e6) // 1000, "epoch_s", table, text)
        return _from_epoch_ms(math.floor(number), "epoch_ms", table, text)
    if abs(number) < 10**11:
        return _from_epoch_ms(number * 1000, "epoch_s", table, text)
    return _from_epoch_ms(number, "epoch_ms", table, text)


NUMERIC = re.compile(r"(-?)(\d+)(?:\.(\d+))?")


def from_numeric_text(match: re.Match[str], table: ZoneTable, text: str) -> Instant:
    sign, whole, fraction = match.groups()
    if sign:
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"{text!r} is outside 2000..2099")
    if len(whole) <= 11:
        return _from_epoch_ms(int(whole) * 1000 + fraction_ms(fraction), "epoch_s", table, text)
    return _from_epoch_ms(int(whole), "epoch_ms", table, text)


def is_compact(digits: str) -> bool:
    """Digit strings that are calendar stamps, not epochs (no epoch in range has these lengths,
    except 12 digits, where epoch milliseconds of 2000..2001 start with 9)."""
    size = len(digits)
    return size in (8, 14, 17) or (size == 12 and digits[0] == "2")


# One way to read the input: local date, seconds into that day (may reach past midnight), ms,
# explicit UTC offset (None: the station zone) and the format label.
Reading = tuple[int, int, int, int, int, int | None, str]


@dataclass(slots=True)
class Context:
    table: ZoneTable
    zone: str
    convention: SourceConvention
    reference_ms: int | None
    tolerance_ms: int


def _candidates(
    readings: Sequence[Reading], ctx: Context, text: str, weekday: int | None
) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    in_gap = False
    for y, mo, d, seconds, ms, offset, label in readings:
        days = days_from_civil(y, mo, d)
        if days is None or (weekday is not None and (days + 3) % 7 != weekday):
            continue
        local = days * DAY_S + seconds
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
        raise invalid_time(text, f"local time does not exist in {ctx.zone} (DST gap)")
    if weekday is not None:
        raise invalid_time(text, "weekday does not match the date")
    raise invalid_time(text, "no such date")


def _choose(
    found: list[tuple[int, str]], ctx: Context, text: str, needs_context: bool
) -> tuple[int, str, bool]:
    """The one candidate instant, or the one nearest the reference; else ambiguous_time."""
    if len(found) == 1 and not needs_context:
        return checked_ms(found[0][0], text), found[0][1], False
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


def resolve_readings(
    readings: Sequence[Reading],
    ctx: Context,
    text: str,
    *,
    needs_context: bool = False,
    weekday: int | None = None,
) -> Instant:
    utc_ms, label, inferred = _choose(
        _candidates(readings, ctx, text, weekday), ctx, text, needs_context
    )
    return new_instant(utc_ms, iso_in(ctx.table, utc_ms), label, inferred)
