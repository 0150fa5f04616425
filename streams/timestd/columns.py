"""Time normalisation of a whole column at once: the common shapes of parse_instant's fast path
(ISO 8601 with or without offset, Y/M/D and D/M/Y with a clock, compact stamps, epochs, and the
Chinese, month-name and 12-hour forms the parser lists) read with numpy, a chunk at a time. A value
is settled here only when `parse_instant` would give it one reading with no context
needed; anything else (another shape, an invalid field, a DST gap or fold, an instant out of
range, a day/month order to settle) is left unsettled for parse_instant, which decides it and
words its error exactly as for a single value. tests/timestd/test_columns.py holds the two to that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from streams.timestd.instant import MAX_EPOCH_MS, MIN_EPOCH_MS, SourceConvention
from streams.timestd.shapes import FieldShape, field_shapes
from streams.timestd.zones import zone_offsets

Ints = npt.NDArray[np.int64]
Digits = npt.NDArray[np.int16]  # bytes - '0'
Bytes = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

MAX_WIDTH = 40  # bytes, a multiple of 8; longer values are left to parse_instant
_DAY = 86_400
_ZERO, _NINE = ord("0"), ord("9")
_FIELD_LETTERS = frozenset("ymdabhisfHMeE")


@dataclass(slots=True)
class ColumnTimes:
    """One entry per value; at the `unsettled` indices the entries are placeholders."""

    utc_ms: list[int]
    iso: list[bytes]  # the standard form (format_iso), ASCII
    utc_ms_text: list[bytes]  # utc_ms in decimal, ASCII
    labels: list[str]  # Instant.source_format
    unsettled: list[int]


# --- shapes ------------------------------------------------------------------------------------

# A value's shape is its bytes with every ASCII digit made '9' (as in shapes.py). Each shape here
# is written with letters for the digits of its fields: y m d year, month, day; a b the first
# and second number of a D/M or M/D date; h i s the clock; f a fraction of a second; H M the
# offset's hours and minutes; e epoch seconds, E epoch milliseconds. Anything else is literal.


@dataclass(frozen=True, slots=True)
class _Shape:
    shape: bytes  # UTF-8, every ASCII digit written 9
    label: str  # Instant.source_format; "day_month" is dmy or mdy, value by value
    fields: dict[str, tuple[int, int]]  # letter -> [start, stop) in bytes
    offset: str = "zone"  # "zone" (a wall time of the station zone), "utc" (Z), "+" or "-"
    kind: str | None = None  # the day-period marker's (shapes.FieldShape)
    month_number: int = 0  # a month named, not numbered
    fixed_minute: int = 0  # no minutes written: o'clock, or 30 for 半
    either_order: bool = False  # a numeric date that may be day-first

    @classmethod
    def of(cls, pattern: str, label: str) -> _Shape:
        """From an ASCII pattern whose letters are the fields' digits."""
        fields: dict[str, tuple[int, int]] = {}
        for position, char in enumerate(pattern):
            if char in _FIELD_LETTERS:
                start, _ = fields.get(char, (position, position))
                fields[char] = (start, position + 1)
        offset = "zone"
        if "H" in fields:
            offset = pattern[fields["H"][0] - 1]
        elif pattern[-1] in "Zz":
            offset = "utc"
        shape = "".join("9" if c in _FIELD_LETTERS else c for c in pattern).encode()
        return cls(shape, label, fields, offset)

    @classmethod
    def of_fields(cls, found: FieldShape) -> _Shape:
        """From one of the parser's sliced shapes: character positions become byte positions."""
        text = found.shape

        def at(position: int) -> int:
            return position if text.isascii() else len(text[:position].encode())

        fields = {letter: (at(start), at(stop)) for letter, (start, stop) in found.fields.items()}
        return cls(
            found.shape.encode(),
            found.label,
            fields,
            kind=found.kind,
            month_number=found.month_number,
            fixed_minute=found.fixed_minute,
            either_order=found.either_order,
        )


def _known_shapes() -> list[_Shape]:
    """The shapes parse_instant reads on its fast path (the parser's common shapes): ISO 8601 and
    other numeric dates and epochs written out here, the Chinese, month-name and 12-hour ones
    taken from shapes.py."""
    shapes = [_Shape.of("yyyy-mm-dd", "date_only"), _Shape.of("yyyymmdd", "date_only")]
    clocks = ["hh:ii", "hh:ii:ss"]
    fractions = [f"hh:ii:ss{mark}{'f' * size}" for mark in ".," for size in range(1, 10)]
    offsets = ["Z", "z"] + [f"{sign}HH{tail}" for sign in "+-" for tail in ("", "MM", ":MM")]
    for separator in "Tt ":
        for clock in clocks:
            shapes.append(_Shape.of(f"yyyy/mm/dd{separator}{clock}", "ymd_slash"))
            shapes.append(_Shape.of(f"yyyy.mm.dd{separator}{clock}", "ymd_dot"))
            shapes.append(_Shape.of(f"aa/bb/yyyy{separator}{clock}", "day_month"))
        for clock in clocks + fractions:
            head = f"yyyy-mm-dd{separator}{clock}"
            shapes.append(_Shape.of(head, "iso8601"))
            for gap in ("", " "):
                shapes += [
                    _Shape.of(f"{head}{gap}{offset}", "iso8601_offset") for offset in offsets
                ]
    compact = ["yyyymmddhhii", "yyyymmddhhiiss", "yyyymmddhhiissfff"]
    shapes += [_Shape.of(pattern, "compact") for pattern in compact]
    shapes += [_Shape.of("e" * size, "epoch_s") for size in (9, 10, 11)]
    shapes += [_Shape.of("E" * size, "epoch_ms") for size in (12, 13)]
    shapes += [_Shape.of_fields(found) for found in field_shapes()]
    return [shape for shape in shapes if len(shape.shape) < MAX_WIDTH]


# Shapes are compared by a 64-bit key of their NUL-padded bytes, then byte by byte (keys may
# collide): sum of the padded row's 64-bit words times these factors, modulo 2**64.
_KEY_FACTORS = np.random.default_rng(2022).integers(1, 2**63, size=MAX_WIDTH // 8, dtype=np.uint64)


def _shape_rows(chars: Bytes) -> Bytes:
    return np.where((chars >= _ZERO) & (chars <= _NINE), np.uint8(_NINE), chars)


def _keys(shape_rows: Bytes) -> npt.NDArray[np.uint64]:
    words = np.ascontiguousarray(shape_rows).view(np.uint64)
    keys: npt.NDArray[np.uint64] = (words * _KEY_FACTORS).sum(axis=1, dtype=np.uint64)
    return keys


_KINDS = (None, "am", "pm", "noon", "evening", "night")
_OFFSETS = ("zone", "utc", "+", "-")
_LABELS = (
    *("day_month", "dmy", "mdy", "date_only", "iso8601", "iso8601_offset", "ymd_slash"),
    *("ymd_dot", "compact", "epoch_s", "epoch_ms", "zh", "month_name", "clock12"),
)
# Each field's digits are gathered into fixed slots, right-aligned (a fraction: its first three
# digits, left-aligned), missing ones reading 0; date fields first, then epochs.
_WIDEST = {"y": 4, "m": 2, "d": 2, "a": 2, "b": 2, "h": 2, "i": 2, "s": 2, "f": 3, "H": 2}
_WIDEST |= {"M": 2, "e": 11, "E": 13}
_SLOT: dict[str, int] = {}
for _letter, _widest in _WIDEST.items():
    _SLOT[_letter] = sum(_WIDEST[earlier] for earlier in _SLOT)
_DATE_SLOTS = _SLOT["e"]


class _ShapeTable:
    """Every known shape as rows of arrays, so that a column is read in one pass whatever mix
    of shapes it holds: by shape index, its bytes, each field's width (0: no such field), where
    its digits go in the slots, and its options."""

    def __init__(self, shapes: list[_Shape]) -> None:
        padded = b"".join(shape.shape.ljust(MAX_WIDTH, b"\0") for shape in shapes)
        self.rows = np.frombuffer(padded, dtype=np.uint8).reshape(len(shapes), MAX_WIDTH)
        self.width = np.array([len(shape.shape) for shape in shapes], dtype=np.int64)
        sizes = {letter: [0] * len(shapes) for letter in _FIELD_LETTERS}
        # where each slot's digit is in the value (MAX_WIDTH: a column of zeros)
        source = [[MAX_WIDTH] * sum(_WIDEST.values()) for _ in shapes]
        for index, shape in enumerate(shapes):
            for letter, (start, stop) in shape.fields.items():
                sizes[letter][index] = stop - start
                size = min(stop - start, _WIDEST[letter])
                first = _SLOT[letter] + (0 if letter == "f" else _WIDEST[letter] - size)
                source[index][first : first + size] = range(start, start + size)
        self.size = {letter: np.array(found, dtype=np.int64) for letter, found in sizes.items()}
        self.source = np.array(source, dtype=np.int64)
        self.kind = np.array([_KINDS.index(shape.kind) for shape in shapes], dtype=np.int64)
        self.offset = np.array([_OFFSETS.index(shape.offset) for shape in shapes], dtype=np.int64)
        self.label = np.array([_LABELS.index(shape.label) for shape in shapes], dtype=np.int64)
        self.month = np.array([shape.month_number for shape in shapes], dtype=np.int64)
        self.minute = np.array([shape.fixed_minute for shape in shapes], dtype=np.int64)
        self.either = np.array([shape.either_order for shape in shapes], dtype=bool)
        # twelve digits: a stamp from 2000 on, else epoch ms (one key, two shapes)
        labels = [shape.label for shape in shapes]
        twelve = [k for k, shape in enumerate(shapes) if shape.shape == b"9" * 12]
        self.stamp12 = next(k for k in twelve if labels[k] == "compact")
        self.epoch12 = next(k for k in twelve if labels[k] == "epoch_ms")
        keys = _keys(self.rows).tolist()
        self.by_key = {key: k for k, key in reversed(list(enumerate(keys))) if k != self.epoch12}

    def shape_of(self, keys: npt.NDArray[np.uint64]) -> Ints:
        """Each key's shape index, -1 for none (distinct keys are few: a dict look-up each)."""
        if len(keys) and (keys == keys[0]).all():  # a column of one shape: no sort
            return np.full(len(keys), self.by_key.get(int(keys[0]), -1), dtype=np.int64)
        distinct, which = np.unique(keys, return_inverse=True)
        found = [self.by_key.get(key, -1) for key in distinct.tolist()]
        return np.array(found, dtype=np.int64)[which]


_TABLE = _ShapeTable(_known_shapes())


# --- the station zone --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Zone:
    transitions: Ints
    offsets: Ints
    suffixes: Bytes  # `±HH:MM` of each offset
    fixed: int | None
    min_offset: int
    max_offset: int

    def offset_index(self, utc_s: Ints) -> Ints:
        if self.fixed is not None:
            return np.zeros(utc_s.shape, dtype=np.int64)
        return np.searchsorted(self.transitions, utc_s, side="right")

    def offset_at(self, utc_s: Ints) -> Ints:
        return self.offsets[self.offset_index(utc_s)]

    def to_utc(self, local_s: Ints) -> tuple[Ints, Mask]:
        """UTC seconds of wall times `local_s`, and where there is exactly one (not in a DST gap
        or fold): the rule of the parser's zone table, value by value."""
        if self.fixed is not None:
            return local_s - self.fixed, np.ones(local_s.shape, dtype=bool)
        earlier = self.offset_at(local_s - self.max_offset)
        later = self.offset_at(local_s - self.min_offset)
        first_ok = self.offset_at(local_s - earlier) == earlier
        second_ok = (earlier != later) & (self.offset_at(local_s - later) == later)
        return np.where(first_ok, local_s - earlier, local_s - later), first_ok ^ second_ok


@cache
def _zone(zone: str) -> _Zone:
    transitions, offsets = zone_offsets(zone)
    in_force = np.array(offsets, dtype=np.int64)
    return _Zone(
        np.array(transitions, dtype=np.int64),
        in_force,
        _suffix_texts(in_force),
        None if transitions else offsets[0],
        min(offsets),
        max(offsets),
    )


# --- reading -----------------------------------------------------------------------------------


def read_column(
    values: Sequence[bytes], zone: str, convention: SourceConvention | None = None
) -> ColumnTimes:
    """The instants of `values` (UTF-8 text) that their shape alone settles; see the module
    docstring. ConfigError for an unknown zone."""
    count = len(values)
    if not count or (convention is not None and convention.twelve_hour):
        # a 12-hour source's "03:05" may be 15:05: parse_instant decides
        return ColumnTimes([0] * count, [b""] * count, [b""] * count, [""] * count, [*range(count)])
    tz = _zone(zone)
    texts = np.array(values, dtype=f"S{MAX_WIDTH}")
    chars = texts.view(np.uint8).reshape(count, MAX_WIDTH)
    if b"\0" in b"".join(values):  # numpy drops trailing NULs: measure what it cannot tell
        widths = np.fromiter(map(len, values), dtype=np.int64, count=count)
    else:  # longer values are cut to MAX_WIDTH, wider than any shape
        widths = np.strings.str_len(texts).astype(np.int64)
    shape_rows = _shape_rows(chars)
    shapes = _TABLE.shape_of(_keys(shape_rows))
    rows = np.flatnonzero(shapes >= 0)
    shapes = shapes[rows]
    shapes[(shapes == _TABLE.stamp12) & (chars[rows, 0] != ord("2"))] = _TABLE.epoch12
    same = (shape_rows[rows] == _TABLE.rows[shapes]).all(axis=1)
    same &= widths[rows] == _TABLE.width[shapes]  # a value with trailing NULs looks padded
    rows, shapes = rows[same], shapes[same]
    found, ok, labels = _read(chars[rows].astype(np.int16) - _ZERO, shapes, tz, convention)
    utc_ms = np.full(count, MIN_EPOCH_MS, dtype=np.int64)  # placeholders render harmlessly
    utc_ms[rows[ok]] = found[ok]
    label_codes = np.full(count, -1, dtype=np.int64)
    label_codes[rows[ok]] = labels[ok]
    return ColumnTimes(
        utc_ms.tolist(),
        _iso_texts(utc_ms, tz),
        _decimal_texts(utc_ms),
        np.array([*_LABELS, ""], dtype=object)[label_codes].tolist(),
        np.flatnonzero(label_codes < 0).tolist(),
    )


def _read(
    digits: Digits, shapes: Ints, tz: _Zone, convention: SourceConvention | None
) -> tuple[Ints, Mask, Ints]:
    """(utc ms, settled, label code) of values (bytes - '0') of known shapes."""
    utc_ms = np.zeros(len(shapes), dtype=np.int64)
    ok = np.zeros(len(shapes), dtype=bool)
    labels = _TABLE.label[shapes]
    padded = np.zeros((len(shapes), MAX_WIDTH + 1), dtype=np.int16)  # small: cache-friendly
    padded[:, :MAX_WIDTH] = digits
    epochs = (_TABLE.size["e"][shapes] > 0) | (_TABLE.size["E"][shapes] > 0)
    for part, read, slots in (
        (epochs, _read_epochs, np.s_[_DATE_SLOTS:]),
        (~epochs, _read_dates, np.s_[:_DATE_SLOTS]),
    ):
        at = np.flatnonzero(part)
        if at.size:
            found = padded[at[:, None], _TABLE.source[shapes[at], slots]]
            utc_ms[at], ok[at], labels[at] = read(found, shapes[at], tz, convention)
    return utc_ms, ok & (utc_ms >= MIN_EPOCH_MS) & (utc_ms < MAX_EPOCH_MS), labels


def _field(slots: Digits, letter: str, first_slot: int = 0) -> Ints:
    """The number in each value's `letter` field, from its slots (0 where there is none); of a
    fraction, its milliseconds."""
    start = _SLOT[letter] - first_slot
    number = slots[:, start].astype(np.int64)
    for k in range(start + 1, start + _WIDEST[letter]):
        number = number * 10 + slots[:, k]
    return number


def _read_epochs(
    slots: Digits, shapes: Ints, tz: _Zone, convention: SourceConvention | None
) -> tuple[Ints, Mask, Ints]:
    seconds = _field(slots, "e", _DATE_SLOTS) * 1000
    utc_ms = seconds + _field(slots, "E", _DATE_SLOTS)  # one of them is 0
    return utc_ms, np.ones(len(shapes), dtype=bool), _TABLE.label[shapes]


def _read_dates(
    slots: Digits, shapes: Ints, tz: _Zone, convention: SourceConvention | None
) -> tuple[Ints, Mask, Ints]:
    def has(letter: str) -> Mask:
        return _TABLE.size[letter][shapes] > 0

    year, month, day = (_field(slots, letter) for letter in "ymd")
    month = np.where(has("m"), month, _TABLE.month[shapes])
    labels = _TABLE.label[shapes]
    ok = np.ones(len(shapes), dtype=bool)
    if has("a").any():
        first, second = _field(slots, "a"), _field(slots, "b")
        month, day, ok, labels = _day_month(has("a"), first, second, month, day, labels, convention)
    either = _TABLE.either[shapes]
    if either.any():
        either_month, either_day, settled = _either_order(year, month, day, convention)
        month, day = np.where(either, either_month, month), np.where(either, either_day, day)
        ok &= ~either | settled
    hour, possible = _hour24(_TABLE.kind[shapes], _field(slots, "h"))
    minute = np.where(has("i"), _field(slots, "i"), _TABLE.minute[shapes])
    second = _field(slots, "s")
    ok &= possible & _valid_date(year, month, day) & (minute <= 59) & (second <= 59)
    local = _days(year, month, day) * _DAY + hour * 3600 + minute * 60 + second
    offset = _TABLE.offset[shapes]
    utc, single = tz.to_utc(local)
    hours, minutes = _field(slots, "H"), _field(slots, "M")
    east = np.select([offset == 2, offset == 3], [1, -1], 0) * (hours * 3600 + minutes * 60)
    utc = np.where(offset == 0, utc, local - east)
    ok &= np.where(offset == 0, single, (hours <= 14) & (minutes <= 59))
    return utc * 1000 + _field(slots, "f"), ok, labels


def _hour24(kind: Ints, hour: Ints) -> tuple[Ints, Mask]:
    """the parser's reading of an hour under a day-period marker (_KINDS; 24: the midnight ending
    the day), and where the pair is possible."""
    none, am, pm, noon, evening, night = (kind == code for code in range(len(_KINDS)))
    ok = (hour <= 23) & ~((hour > 12) & am) & ~((hour == 0) & ~(am | night | none))
    noon_hour = np.select([hour == 11, hour == 12, hour == 1, hour == 2], [11, 12, 13, 14], -1)
    ok &= ~noon | (noon_hour >= 0) | (hour > 12)
    twelve = hour == 12
    read = np.select(
        [none, am, pm, noon, evening],
        [
            hour,
            hour % 12,
            np.where(twelve, 12, hour + 12),
            noon_hour,
            np.where(twelve, 24, hour + 12),
        ],
        np.where(twelve, 24, np.where(hour <= 5, hour, hour + 12)),  # night
    )
    return np.where(none | (hour > 12), hour, read), ok


def _either_order(
    year: Ints, month: Ints, day: Ints, convention: SourceConvention | None
) -> tuple[Ints, Ints, Mask]:
    """A month-first date that may be day-first: the one existing reading, else the
    convention's; both existing and no convention is left to parse_instant."""
    month_first, day_first = _valid_date(year, month, day), _valid_date(year, day, month)
    decided = convention is not None and convention.day_first is not None
    prefer_day_first = bool(convention and convention.day_first)
    both = month_first & day_first
    use_day_first = (month != day) & ((~month_first & day_first) | (both & prefer_day_first))
    ok = (month == day) | ~both | decided
    return np.where(use_day_first, day, month), np.where(use_day_first, month, day), ok


def _day_month(
    where: Mask,
    first: Ints,
    second: Ints,
    month: Ints,
    day: Ints,
    labels: Ints,
    convention: SourceConvention | None,
) -> tuple[Ints, Ints, Mask, Ints]:
    """Numeric D/M or M/D dates (at `where`): the reading that is the only possible one, else
    the convention's; neither (both readable, no convention) is left to parse_instant."""
    day_first = bool(convention and convention.day_first)
    month_first = convention is not None and convention.day_first is False
    dmy = (first == second) | ((second <= 12) & ((first > 12) | day_first))
    mdy = ~dmy & (first <= 12) & ((second > 12) | month_first)
    month = np.where(where, np.where(dmy, second, first), month)
    day = np.where(where, np.where(dmy, first, second), day)
    read = np.where(dmy, _LABELS.index("dmy"), _LABELS.index("mdy"))
    return month, day, ~where | dmy | mdy, np.where(where, read, labels)


def _valid_date(year: Ints, month: Ints, day: Ints) -> Mask:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    lengths = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    in_month = lengths[np.clip(month, 0, 12)] + (leap & (month == 2))
    return (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= in_month)


def _days(year: Ints, month: Ints, day: Ints) -> Ints:
    """Days since 1970-01-01 of a proleptic Gregorian date (valid dates only)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _civil(days: Ints) -> tuple[Ints, Ints, Ints]:
    """(year, month, day) of days since 1970-01-01: the inverse of _days."""
    days = days + 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = np.where(shifted_month < 10, shifted_month + 3, shifted_month - 9)
    return year_of_era + era * 400 + (month <= 2), month, day


# --- writing: the standard form and epoch milliseconds as text ---------------------------------


def _digits(values: Ints, width: int) -> Bytes:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10 + _ZERO).astype(np.uint8)


def _text(parts: Sequence[Bytes | bytes], count: int) -> Bytes:
    """Rows of ASCII: byte-string parts are the same in every row."""
    return np.hstack(
        [
            np.frombuffer(part, dtype=np.uint8)[None, :].repeat(count, axis=0)
            if isinstance(part, bytes)
            else part
            for part in parts
        ]
    )


# Pieces of the text, looked up rather than computed value by value.
_FIRST_DAY = -1 + (MIN_EPOCH_MS // 1000) // _DAY  # local dates of in-range instants
_LAST_DAY = 1 + (MAX_EPOCH_MS // 1000) // _DAY


@cache
def _date_texts() -> Bytes:
    """`YYYY-MM-DDT` by day since _FIRST_DAY."""
    year, month, day = _civil(np.arange(_FIRST_DAY, _LAST_DAY + 1, dtype=np.int64))
    count = len(year)
    return _text([_digits(year, 4), b"-", _digits(month, 2), b"-", _digits(day, 2), b"T"], count)


@cache
def _clock_texts() -> Bytes:
    """`HH:MM:SS` by second of the day."""
    second = np.arange(_DAY, dtype=np.int64)
    hours, minutes, seconds = second // 3600, second // 60 % 60, second % 60
    return _text([_digits(hours, 2), b":", _digits(minutes, 2), b":", _digits(seconds, 2)], _DAY)


@cache
def _ms_texts() -> Bytes:
    """`.mmm` by millisecond."""
    return _text([b".", _digits(np.arange(1000, dtype=np.int64), 3)], 1000)


@cache
def _four_digits() -> Bytes:
    return _digits(np.arange(10_000, dtype=np.int64), 4)


def _suffix_texts(offsets: Ints) -> Bytes:
    """`±HH:MM` by offset, as zones.py writes it (seconds of an offset dropped)."""
    minutes = np.abs(offsets) // 60
    sign = np.where(offsets < 0, ord("-"), ord("+")).astype(np.uint8)[:, None]
    return _text([sign, _digits(minutes // 60, 2), b":", _digits(minutes % 60, 2)], len(offsets))


_ISO_ROW = np.dtype(
    [("date", "S11"), ("clock", "S8"), ("ms", "S4"), ("suffix", "S6"), ("end", "S1")]
)
_DECIMAL_ROW = np.dtype(
    [("end", "S1"), ("lead", "S1"), ("high", "S4"), ("middle", "S4"), ("low", "S4")]
)


def _iso_texts(utc_ms: Ints, tz: _Zone) -> list[bytes]:
    """The standard form (format_iso) of in-range instants, built as one block of
    rows `YYYY-MM-DDTHH:MM:SS.mmm±HH:MM`, then `.000` dropped (ms only when non-zero)."""
    seconds, ms = np.divmod(utc_ms, 1000)
    which = tz.offset_index(seconds)
    days, clock = np.divmod(seconds + tz.offsets[which], _DAY)
    block = np.empty(len(utc_ms), dtype=_ISO_ROW)
    block["date"] = _date_texts().view("S11")[days - _FIRST_DAY, 0]
    block["clock"] = _clock_texts().view("S8")[clock, 0]
    block["ms"] = _ms_texts().view("S4")[ms, 0]
    block["suffix"] = tz.suffixes.view("S6")[which, 0]
    block["end"] = b"\n"
    text = block.tobytes()
    if (ms == 0).any():
        text = text.replace(b".000+", b"+")
        if tz.min_offset < 0:
            text = text.replace(b".000-", b"-")
    return text.split(b"\n")[:-1]


def _decimal_texts(utc_ms: Ints) -> list[bytes]:
    """In-range epoch milliseconds in decimal: 13 digits, or 12 before 2001-09-09."""
    high, low = np.divmod(utc_ms, 10**8)
    middle, low = np.divmod(low, 10**4)
    four = _four_digits().view("S4")[:, 0]
    block = np.empty(len(utc_ms), dtype=_DECIMAL_ROW)
    block["end"] = b"\n"
    block["lead"] = (high // 10**4 + _ZERO).astype(np.uint8).view("S1")  # high < 10**5
    block["high"] = four[high % 10**4]
    block["middle"] = four[middle]
    block["low"] = four[low]
    text = block.tobytes()
    if utc_ms.min(initial=MAX_EPOCH_MS) < 10**12:
        text = text.replace(b"\n0", b"\n")
    return text.split(b"\n")[1:]
