"""The common shapes, read without regular expressions: a table from a value's digit shape to its
reader, used by `parse_instant` and column-wise by `streams.timestd.columns`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from streams.timestd.freeform import PERIOD_KIND, ZH_PERIODS, hour_24
from streams.timestd.instant import (
    DAY_S,
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    UNIX_ORDINAL,
    Instant,
    SourceConvention,
    new_instant,
)
from streams.timestd.readings import OFFSETS, days_from_civil
from streams.timestd.zones import ZoneTable, iso_in

# A value's shape is its UTF-8 bytes with every digit written as 9; letters, CJK and markers
# stay, so `Oct 15, 2022 3:05 PM` has the shape `Oct 99, 9999 9:99 PM`. The shapes below are the
# common forms; for them the C parser `datetime.fromisoformat`, or slicing the fields where the
# shape puts them (Chinese, month-name and 12-hour forms, see _Layout), reads the value in a
# fifth to a tenth of the time of the general path. Anything out of the ordinary (an invalid
# field, a DST gap or fold, an instant out of range, an offset not seen before, a day/month order
# to settle) is left to `parse_text`, which also words every error, so the two paths agree by
# construction.
SHAPE = bytes.maketrans(b"0123456789", b"9999999999")

# A reader takes (text, table, convention, shape argument) and returns None to defer.
_ShapeReader = Callable[[str, "ZoneTable", SourceConvention | None, int], "Instant | None"]


def _in_range(utc_ms: int, table: ZoneTable, label: str) -> Instant | None:
    if not MIN_EPOCH_MS <= utc_ms < MAX_EPOCH_MS:
        return None
    return new_instant(utc_ms, iso_in(table, utc_ms), label)


def _local_seconds(local: datetime) -> int:
    days = local.toordinal() - UNIX_ORDINAL
    return days * DAY_S + local.hour * 3600 + local.minute * 60 + local.second


def _read_wall_time(iso_text: str, table: ZoneTable, label: str) -> Instant | None:
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
    text: str, table: ZoneTable, convention: SourceConvention | None, offset_start: int
) -> Instant | None:
    if not offset_start:
        return _read_wall_time(text, table, "iso8601" if len(text) > 10 else "date_only")
    offset = OFFSETS.get(text[offset_start:])
    if offset is None:
        return None
    try:
        local = datetime.fromisoformat(text[:offset_start].rstrip())
    except ValueError:
        return None
    utc = _local_seconds(local) - offset
    return _in_range(utc * 1000 + local.microsecond // 1000, table, "iso8601_offset")


def _read_year_first(
    text: str, table: ZoneTable, convention: SourceConvention | None, separator: int
) -> Instant | None:
    label = "ymd_slash" if separator == ord("/") else "ymd_dot"
    return _read_wall_time(f"{text[:4]}-{text[5:7]}-{text[8:]}", table, label)


def _read_day_month(
    text: str, table: ZoneTable, convention: SourceConvention | None, _: int
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
    text: str, table: ZoneTable, convention: SourceConvention | None, _: int
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
    kind: str | None  # the day-period marker's kind, as in PERIOD_KIND
    label: str
    month_number: int = 0
    fixed_minute: int = 0
    either_order: bool = False  # a numeric D/M/Y date that may be month-first


_LAYOUTS: list[_Layout] = []  # indexed by the shape argument of _read_fields


def _read_fields(
    text: str, table: ZoneTable, convention: SourceConvention | None, index: int
) -> Instant | None:
    layout = _LAYOUTS[index]
    hour = hour_24(layout.kind, int(text[layout.hour]))
    minute = int(text[layout.minute]) if layout.minute else layout.fixed_minute
    second = int(text[layout.second]) if layout.second else 0
    if hour is None or minute > 59 or second > 59:
        return None
    year, day = int(text[layout.year]), int(text[layout.day])
    month = int(text[layout.month]) if layout.month else layout.month_number
    days = days_from_civil(year, month, day)
    if layout.either_order and month != day:
        days = _settle_day_month(days, days_from_civil(year, day, month), convention)
    if days is None:
        return None
    local = days * DAY_S + hour * 3600 + minute * 60 + second
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
    markers = [(marker, gap) for marker in ZH_PERIODS.split("|") for gap in gaps]
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
                        PERIOD_KIND[marker] if marker else None,
                        "zh",
                        fixed_minute=30 if clock.endswith("半") else 0,
                    )


# AM/PM as sources write them (the general path lowercases), mapped to PERIOD_KIND kinds.
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


COMMON_SHAPES = _common_shapes()


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
    for shape, (read, index) in COMMON_SHAPES.items():
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
