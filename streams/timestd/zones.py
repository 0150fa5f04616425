"""Station time zones: offset tables per zone, and formatting an instant in the standard form."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from functools import lru_cache
from time import gmtime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from base.errors import ConfigError
from streams.timestd.instant import DAY_S, MAX_EPOCH_MS, MIN_EPOCH_MS


def _offset_suffix(offset_s: int) -> str:
    sign = "-" if offset_s < 0 else "+"
    hours, minutes = divmod(abs(offset_s) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


class ZoneTable:
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
        self.dates: dict[int, str] = {}  # local day -> "YYYY-MM-DDT", filled by iso_in

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
def zone_table(zone: str) -> ZoneTable:
    """Scan the zone day by day (about 40 ms, once per zone) and pin each change to the second."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {zone!r}") from exc
    start = MIN_EPOCH_MS // 1000 - 2 * DAY_S
    end = MAX_EPOCH_MS // 1000 + 2 * DAY_S
    transitions: list[int] = []
    offsets = [_utc_offset(tz, start)]
    for day_start in range(start, end, DAY_S):
        if _utc_offset(tz, day_start + DAY_S) == offsets[-1]:
            continue
        low, high = day_start, day_start + DAY_S
        while high - low > 1:
            middle = (low + high) // 2
            if _utc_offset(tz, middle) == offsets[-1]:
                low = middle
            else:
                high = middle
        transitions.append(high)
        offsets.append(_utc_offset(tz, high))
    return ZoneTable(transitions, offsets)


# Table lookups: format specs and gmtime cost a microsecond per value here.
_TWO = [f"{n:02d}" for n in range(100)]
_MINUTES = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]  # by minute of the day
_MS = [""] + [f".{ms:03d}" for ms in range(1, 1000)]  # milliseconds only when non-zero


def _date_prefix(table: ZoneTable, day: int) -> str:
    y, mo, d = gmtime(day * DAY_S)[:3]
    prefix = f"{y}-{_TWO[mo]}-{_TWO[d]}T"
    if len(table.dates) >= 65_536:  # a century is 36,525 days; format_iso takes any instant
        table.dates.clear()
    table.dates[day] = prefix
    return prefix


def iso_in(table: ZoneTable, utc_ms: int) -> str:
    seconds, ms = divmod(utc_ms, 1000)
    offset = table.fixed
    if offset is None:
        offset = table.offset_at(seconds)
    day, clock = divmod(seconds + offset, DAY_S)
    prefix = table.dates.get(day) or _date_prefix(table, day)
    minute, second = divmod(clock, 60)
    return f"{prefix}{_MINUTES[minute]}{_TWO[second]}{_MS[ms]}{table.suffixes[offset]}"


def zone_offsets(zone: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The UTC offsets (seconds) of `zone` over 2000..2099 as this module applies them: the
    transition instants (UTC seconds, ascending) and the offsets, one more than the transitions;
    offsets[bisect_right(transitions, utc_s)] is in force at utc_s. ConfigError for an unknown
    zone."""
    table = zone_table(zone)
    return tuple(table.transitions), tuple(table.offsets)


def format_iso(utc_ms: int, zone: str) -> str:
    """The standard form: local wall time of `zone`, 24-hour, with offset; ms only when non-zero."""
    return iso_in(zone_table(zone), utc_ms)
