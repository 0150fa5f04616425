"""streams/timestd/columns.py: every value the column reader settles must be exactly what
`parse_instant` makes of it (instant, text, label, not inferred), whatever the zone, convention
or reference; generated values cover every shape it reads, DST gaps and folds, and impossible
fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from base.errors import InvalidEvent
from streams.timestd import SourceConvention, format_iso, parse_instant, zone_offsets
from streams.timestd.columns import read_column

ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC"]
CONVENTIONS = [
    None,
    SourceConvention(day_first=True),
    SourceConvention(day_first=False),
    SourceConvention(fold=1),
    SourceConvention(twelve_hour=True),
]

Fields = tuple[int, int, int, int, int, int, str, str]  # y, mo, d, h, mi, s, fraction, offset


def _two(n: int) -> str:
    return f"{n:02d}"


# How sources write a date and a clock (every shape the column reader knows, and a few it
# does not: those must be left to parse_instant).
TEMPLATES: list[Callable[[Fields], str]] = [
    lambda f: f"{f[0]:04d}-{_two(f[1])}-{_two(f[2])}",
    lambda f: f"{f[0]:04d}{_two(f[1])}{_two(f[2])}",
    lambda f: f"{f[0]:04d}-{_two(f[1])}-{_two(f[2])} {_two(f[3])}:{_two(f[4])}",
    lambda f: f"{f[0]:04d}-{_two(f[1])}-{_two(f[2])}T{_two(f[3])}:{_two(f[4])}:{_two(f[5])}",
    lambda f: f"{f[0]:04d}-{_two(f[1])}-{_two(f[2])}t{_two(f[3])}:{_two(f[4])}:{_two(f[5])}",
    lambda f: f"{f[0]:04d}-{_two(f[1])}-{_two(f[2])} {_two(f[3])}:{_two(f[4])}:{_two(f[5])}.{f[6]}",
    lambda f: f"{f[0]:04d}-{_two(f[1])}-{_two(f[2])}T{_two(f[3])}:{_two(f[4])}:{_two(f[5])},{f[6]}",
    lambda f: f"{f[0]:04d}-{_two(f[1])}-{_two(f[2])}T{_two(f[3])}:{_two(f[4])}:{_two(f[5])}{f[7]}",
    lambda f: f"{f[0]:04d}-{_two(f[1])}-{_two(f[2])} {_two(f[3])}:{_two(f[4])} {f[7]}",
    lambda f: (
        f"{f[0]:04d}-{_two(f[1])}-{_two(f[2])}T{_two(f[3])}:{_two(f[4])}:{_two(f[5])}.{f[6]}{f[7]}"
    ),
    lambda f: f"{f[0]:04d}/{_two(f[1])}/{_two(f[2])} {_two(f[3])}:{_two(f[4])}:{_two(f[5])}",
    lambda f: f"{f[0]:04d}.{_two(f[1])}.{_two(f[2])}T{_two(f[3])}:{_two(f[4])}",
    lambda f: f"{_two(f[2])}/{_two(f[1])}/{f[0]:04d} {_two(f[3])}:{_two(f[4])}",
    lambda f: f"{_two(f[1])}/{_two(f[2])}/{f[0]:04d} {_two(f[3])}:{_two(f[4])}:{_two(f[5])}",
    lambda f: f"{f[0]:04d}{_two(f[1])}{_two(f[2])}{_two(f[3])}{_two(f[4])}{_two(f[5])}",
    lambda f: f"{f[0]:04d}{_two(f[1])}{_two(f[2])}{_two(f[3])}{_two(f[4])}{_two(f[5])}{f[6]:.3}",
    lambda f: f"{f[0]:04d}/{f[1]}/{f[2]} {f[3]}:{_two(f[4])}",  # not padded: not a shape here
    lambda f: f" {f[0]:04d}-{_two(f[1])}-{_two(f[2])} ",  # padded: parse_instant strips
]

offsets = st.one_of(
    st.sampled_from(["Z", "z", "+08:00", "-05:00", "+0530", "-03", " +01:00", "+14:00", "-12:45"]),
    st.builds(
        lambda sign, h, m, colon: f"{sign}{h:02d}{':' if colon else ''}{m:02d}",
        st.sampled_from("+-"),
        st.integers(0, 16),
        st.integers(0, 61),
        st.booleans(),
    ),
)
fractions = st.text("0123456789", min_size=1, max_size=9)


def fields_of(local_s: int, fraction: str, offset: str) -> Fields:
    t = datetime.fromtimestamp(local_s, UTC)
    return (t.year, t.month, t.day, t.hour, t.minute, t.second, fraction, offset)


def near_transitions(zone: str) -> st.SearchStrategy[int]:
    """Wall times within two hours of a DST change (inside gaps and folds included)."""
    transitions, values = zone_offsets(zone)
    if not transitions:
        return st.integers(946_684_800, 4_102_444_799)
    return st.builds(
        lambda k, delta: transitions[k] + values[k] + delta,
        st.integers(0, len(transitions) - 1),
        st.integers(-7_200, 7_200),
    )


@st.composite
def wall_fields(draw: st.DrawFn, zone: str) -> Fields:
    local_s = draw(
        st.one_of(
            near_transitions(zone),
            near_transitions(zone),
            st.integers(946_684_800, 4_102_444_799),
            st.integers(880_000_000, 4_200_000_000),  # 1997..2103: both ends of the range
            st.integers(513_820_800, 684_892_800),  # 1986..1991: China's summer time
            st.integers(-2_000_000_000, 253_402_300_799),  # 1906..9999
        )
    )
    return fields_of(local_s, draw(fractions), draw(offsets))


impossible_fields = st.tuples(
    st.sampled_from([0, 1, 1999, 2000, 2022, 2023, 2024, 2099, 2100, 9999]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    fractions,
    offsets,
)


ZH_PERIODS = ["", "上午", "下午", "凌晨", "早上", "中午", "傍晚", "晚上", "夜里", "深夜", "午夜"]
EN_PERIODS = ["", "AM", "PM", "am", "pm"]
MONTHS = "January February March April May June July August September October November December"


@st.composite
def twelve_hour_values(draw: st.DrawFn, zone: str) -> str:
    """Chinese, month-name and 12-hour forms, with markers that fit the hour or not."""
    y, mo, d, h, mi, s, _, _ = draw(st.one_of(wall_fields(zone), impossible_fields))
    hour = draw(st.sampled_from([h, h % 12, h % 12 or 12, 0, 1, 2, 11, 12, 13, 24, 25]))
    zh, en = draw(st.sampled_from(ZH_PERIODS)), draw(st.sampled_from(EN_PERIODS))
    gap = draw(st.sampled_from(["", " "]))
    name = MONTHS.split()[(mo - 1) % 12]
    short = name if len(name) <= 4 else draw(st.sampled_from([name[:3], name[:4], name]))
    forms = [
        f"{y:04d}年{mo}月{d}日{gap}{zh}{hour}点{mi:02d}分",
        f"{y:04d}年{mo:02d}月{d}号{gap}{zh}{hour}:{mi:02d}:{s:02d}",
        f"{y:04d}年{mo}月{d:02d}日 {zh}{hour}时半",
        f"{y:04d}年{mo}月{d}日{zh}{gap}{hour}点",
        f"{short} {d}, {y:04d} {hour}:{mi:02d}{gap}{en}",
        f"{d} {name} {y:04d} {hour}:{mi:02d}:{s:02d}{gap}{en}",
        f"{mo}/{d}/{y:04d} {hour}:{mi:02d}{gap}{en}",
        f"{y:04d}-{mo}-{d} {hour}:{mi:02d} {en}",
        f"{d:02d}.{mo:02d}.{y:04d} {hour}:{mi:02d}:{s:02d}{gap}{en}",
    ]
    return draw(st.sampled_from(forms))


def values_for(zone: str) -> st.SearchStrategy[str]:
    templates = st.sampled_from(TEMPLATES)
    shaped = st.builds(lambda template, fields: template(fields), templates, wall_fields(zone))
    impossible = st.builds(lambda template, fields: template(fields), templates, impossible_fields)
    epochs = st.one_of(
        st.integers(0, 10**14).map(str),
        st.integers(946_684_000, 4_102_445_000).map(lambda s: f"{s:011d}"),
        st.integers(946_684_799_000, 4_102_444_801_000).map(str),
    )
    garbage = st.text("0123456789-/:.,Tt Zz+", max_size=30)
    anything = st.text(max_size=9)
    twelve = twelve_hour_values(zone)
    return st.one_of(shaped, shaped, shaped, twelve, twelve, impossible, epochs, garbage, anything)


def parsed(value: str, zone: str, convention: SourceConvention | None, reference: int | None):
    try:
        return parse_instant(value, zone=zone, convention=convention, reference_ms=reference)
    except InvalidEvent:
        return None


@st.composite
def columns(draw: st.DrawFn) -> tuple[str, SourceConvention | None, list[str], int | None]:
    zone = draw(st.sampled_from(ZONES))
    convention = draw(st.sampled_from(CONVENTIONS))
    values = draw(st.lists(values_for(zone), min_size=1, max_size=40))
    reference = draw(st.none() | st.integers(946_684_800_000, 4_102_444_799_999))
    return zone, convention, values, reference


@hypothesis_settings(max_examples=600, deadline=None)
@given(columns())
def test_settled_values_are_what_parse_instant_makes_of_them(
    column: tuple[str, SourceConvention | None, list[str], int | None],
) -> None:
    zone, convention, values, reference = column

    times = read_column([v.encode() for v in values], zone, convention)

    unsettled = set(times.unsettled)
    for k, value in enumerate(values):
        if k in unsettled:
            continue
        expected = parsed(value, zone, convention, reference)
        assert expected is not None, value
        assert (times.utc_ms[k], times.iso[k], times.labels[k]) == (
            expected.utc_ms,
            expected.iso.encode(),
            expected.source_format,
        ), value
        assert times.utc_ms_text[k] == str(expected.utc_ms).encode()
        assert not expected.inferred


@pytest.mark.parametrize("zone", ZONES)
@hypothesis_settings(max_examples=60, deadline=None)
@given(
    instant_ms=st.integers(946_684_800_000, 4_102_444_799_999),
    shape=st.sampled_from([0, 1, 2]),
)
def test_the_common_forms_of_any_instant_are_settled_without_parse_instant(
    zone: str, instant_ms: int, shape: int
) -> None:
    standard = format_iso(instant_ms, zone)
    value = [standard, str(instant_ms), f"{instant_ms // 1000}"][shape]

    times = read_column([value.encode()], zone)

    assert times.unsettled == []
    truncated = instant_ms - instant_ms % 1000 if shape == 2 else instant_ms
    assert (times.utc_ms[0], times.iso[0]) == (truncated, format_iso(truncated, zone).encode())


def test_dst_gaps_and_folds_are_left_to_parse_instant() -> None:
    values = [b"2022-03-13 02:30:00", b"2022-11-06 01:30:00", b"2022-11-06 03:30:00"]

    times = read_column(values, "America/New_York")

    assert times.unsettled == [0, 1]
    assert times.iso[2] == b"2022-11-06T03:30:00-05:00"


def test_shanghai_summer_time_of_1986_to_1991_does_not_move_later_instants() -> None:
    # China kept DST in 1986..1991, before the range: the zone is fixed from 2000 on.
    values = [b"1988-04-10 02:30:00", b"2000-01-01 00:00:00", b"2022-07-01 12:00:00"]

    times = read_column(values, "Asia/Shanghai")

    assert times.unsettled == [0, 1]  # out of range (1988; 1999 in UTC)
    assert times.iso[2] == b"2022-07-01T12:00:00+08:00"


@pytest.mark.parametrize(
    "value",
    ["2023-02-29", "2022-01-01 25:00", "2022-13-01 10:00:00", "2022-01-01T10:60:00", "0000-01-01"],
)
def test_impossible_fields_are_left_to_parse_instant(value: str) -> None:
    assert read_column([value.encode()], "Asia/Shanghai").unsettled == [0]
    with pytest.raises(InvalidEvent):
        parse_instant(value)


def test_a_twelve_hour_source_is_left_to_parse_instant() -> None:
    twelve_hour = SourceConvention(twelve_hour=True)

    times = read_column([b"2022-10-15 03:05:00"], "Asia/Shanghai", twelve_hour)

    assert times.unsettled == [0]


def test_values_longer_than_a_shape_or_with_nul_bytes_are_left_to_parse_instant() -> None:
    values = [b"2022-10-15 15:04:05" + b" " * 40, b"2022-10-15 15:04:05\x00", b"2022-10-15\x00"]

    times = read_column([*values, b"2022-10-15 15:04:05"], "Asia/Shanghai")

    assert times.unsettled == [0, 1, 2]
    assert times.iso[3] == b"2022-10-15T15:04:05+08:00"
