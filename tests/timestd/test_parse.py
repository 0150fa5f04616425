"""streams.timestd.parse: the labelled corpus, named behaviours, one input per reject reason, and
round trips of generated instants through every accepted form."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from base.errors import ConfigError, InvalidEvent, Reason
from streams.timestd import (
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    Instant,
    SourceConvention,
    format_iso,
    parse_instant,
)
from streams.timestd.instant import NO_CONVENTION
from streams.timestd.parse import parse_text
from streams.timestd.readings import Context
from streams.timestd.zones import zone_table

CORPUS = Path(__file__).parent.parent / "data" / "time_corpus.csv"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REF = datetime.fromisoformat("2022-10-15T16:00:00+08:00")
ZONES = ("Asia/Shanghai", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
FIXED_ZONES = ("Asia/Shanghai", "Asia/Kolkata")
CONVENTIONS = {
    "day_first": {"day_first": True},
    "month_first": {"day_first": False},
    "twelve_hour": {"twelve_hour": True},
    "fold=0": {"fold": 0},
    "fold=1": {"fold": 1},
}


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def parse(value: object, **kwargs: object) -> Instant:
    return parse_instant(value, **kwargs)  # type: ignore[arg-type]


def reason_of(value: object, **kwargs: object) -> Reason:
    with pytest.raises(InvalidEvent) as caught:
        parse(value, **kwargs)
    return caught.value.reason


# --- the labelled corpus -----------------------------------------------------------------------


def corpus_value(raw: str) -> object:
    kind, _, rest = raw.partition(":")
    if kind == "int":
        return int(rest)
    if kind == "float":
        return float(rest)
    if kind == "none":
        return None
    return raw


def corpus_cases() -> list[object]:
    cases = []
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            fields: dict[str, object] = {}
            for token in row["convention"].split():
                fields |= CONVENTIONS[token]
            kwargs: dict[str, object] = {"zone": row["zone"] or "Asia/Shanghai"}
            if fields:
                kwargs["convention"] = SourceConvention(**fields)  # type: ignore[arg-type]
            if row["reference"]:
                kwargs["reference_ms"] = ms(datetime.fromisoformat(row["reference"]))
            expected = (row["expected_iso"], row["expected_reason"], row["expected_format"])
            value = corpus_value(row["value"])
            cases.append(pytest.param(value, kwargs, expected, id=f"line{number}:{row['value']}"))
    return cases


def test_corpus_covers_every_form_and_reason() -> None:
    rows = list(csv.DictReader(CORPUS.open(encoding="utf-8", newline="")))
    formats = {row["expected_format"] for row in rows} - {""}
    reasons = {row["expected_reason"] for row in rows} - {""}
    assert len(rows) >= 150
    assert reasons == {"invalid_time", "ambiguous_time", "out_of_range", "empty"}
    assert formats >= {
        "iso8601", "iso8601_offset", "epoch_s", "epoch_ms", "ymd_slash", "ymd_dot", "compact",
        "clock12", "zh", "month_name", "dmy", "mdy", "time_only", "date_only",
    }  # fmt: skip


@pytest.mark.parametrize(("value", "kwargs", "expected"), corpus_cases())
def test_labelled_corpus_value_reads_as_labelled(
    value: object, kwargs: dict[str, object], expected: tuple[str, str, str]
) -> None:
    iso, reason, source_format = expected
    if reason:
        assert reason_of(value, **kwargs) == Reason(reason)
        return
    instant = parse(value, **kwargs)
    assert (instant.iso, instant.source_format) == (iso, source_format)
    assert instant.utc_ms == ms(datetime.fromisoformat(iso))


# --- named behaviours --------------------------------------------------------------------------


def test_twelve_thirty_am_is_half_past_midnight() -> None:
    assert parse("2022-10-15 12:30 AM").iso == "2022-10-15T00:30:00+08:00"


def test_twelve_thirty_pm_is_half_past_noon() -> None:
    assert parse("2022-10-15 12:30 PM").iso == "2022-10-15T12:30:00+08:00"


def test_day_above_twelve_forces_day_first_even_against_the_convention() -> None:
    month_first = SourceConvention(day_first=False)
    assert parse("13/10/2022 08:00", convention=month_first).iso == "2022-10-13T08:00:00+08:00"


def test_numeric_date_readable_both_ways_without_context_is_ambiguous() -> None:
    assert reason_of("05/10/2022 15:05") == Reason.AMBIGUOUS_TIME


def test_day_first_convention_settles_a_numeric_date_without_inference() -> None:
    instant = parse("05/10/2022 15:05", convention=SourceConvention(day_first=True))
    assert (instant.iso, instant.inferred) == ("2022-10-05T15:05:00+08:00", False)


def test_reference_settles_a_numeric_date_and_marks_it_inferred() -> None:
    reference = ms(datetime.fromisoformat("2022-05-10T18:00:00+08:00"))
    instant = parse("05/10/2022 15:05", reference_ms=reference)
    assert (instant.iso, instant.source_format, instant.inferred) == (
        "2022-05-10T15:05:00+08:00",
        "mdy",
        True,
    )


def test_reading_outside_the_tolerance_stays_ambiguous() -> None:
    reference = ms(datetime.fromisoformat("2022-05-10T18:00:00+08:00"))
    kwargs = {"reference_ms": reference, "tolerance_ms": 3_600_000}
    assert reason_of("05/10/2022 15:05", **kwargs) == Reason.AMBIGUOUS_TIME


def test_time_without_date_takes_the_day_nearest_the_reference() -> None:
    late_evening = ms(datetime.fromisoformat("2022-10-15T23:50:00+08:00"))
    instant = parse("00:10", reference_ms=late_evening)
    assert (instant.iso, instant.inferred) == ("2022-10-16T00:10:00+08:00", True)


def test_time_without_date_and_without_context_is_ambiguous() -> None:
    assert reason_of("下午3点05分") == Reason.AMBIGUOUS_TIME


def test_twelve_hour_source_without_marker_needs_context() -> None:
    twelve = SourceConvention(twelve_hour=True)
    assert reason_of("2022-10-15 03:05:00", convention=twelve) == Reason.AMBIGUOUS_TIME
    afternoon = parse("2022-10-15 03:05:00", convention=twelve, reference_ms=ms(REF))
    assert (afternoon.iso, afternoon.inferred) == ("2022-10-15T15:05:00+08:00", True)


def test_evening_twelve_oclock_is_the_midnight_ending_that_day() -> None:
    assert parse("2022年10月15日 晚上12点").iso == "2022-10-16T00:00:00+08:00"


def test_local_time_in_a_dst_gap_is_rejected() -> None:
    assert reason_of("2022-03-27T02:30:00", zone="Europe/Berlin") == Reason.INVALID_TIME


def test_repeated_dst_hour_uses_the_fold_convention_then_context() -> None:
    value, zone = "2022-10-30T02:30:00", "Europe/Berlin"
    assert reason_of(value, zone=zone) == Reason.AMBIGUOUS_TIME
    second = parse(value, zone=zone, convention=SourceConvention(fold=1))
    assert (second.iso, second.inferred) == ("2022-10-30T02:30:00+01:00", False)
    near_first = ms(datetime.fromisoformat("2022-10-30T00:35:00+00:00"))
    first = parse(value, zone=zone, reference_ms=near_first)
    assert (first.iso, first.inferred) == ("2022-10-30T02:30:00+02:00", True)


def test_explicit_offset_is_rendered_in_the_station_zone() -> None:
    instant = parse("2022-10-15T07:05:00Z", zone="America/New_York")
    assert instant.iso == "2022-10-15T03:05:00-04:00"


def test_milliseconds_are_written_only_when_not_zero() -> None:
    assert parse("2022-10-15T15:05:00.000").iso == "2022-10-15T15:05:00+08:00"
    assert parse("2022-10-15T15:05:00.020").iso == "2022-10-15T15:05:00.020+08:00"


def test_unambiguous_value_is_not_inferred_even_with_a_reference() -> None:
    assert not parse("2022-10-15 15:05", reference_ms=ms(REF)).inferred


def test_full_width_value_parses_like_its_half_width_twin() -> None:
    assert parse("２０２２－１０－１５　１５：０５") == parse("2022-10-15 15:05")


def test_unknown_zone_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        parse("2022-10-15 15:05", zone="Mars/Olympus_Mons")


def test_fold_convention_must_be_zero_or_one() -> None:
    with pytest.raises(ValueError):
        SourceConvention(fold=2)


@pytest.mark.parametrize(
    ("value", "kwargs", "reason"),
    [
        ("", {}, Reason.EMPTY),
        (None, {}, Reason.EMPTY),
        ("2023-02-29 10:00", {}, Reason.INVALID_TIME),
        ("2022-10-15 25:00", {}, Reason.INVALID_TIME),
        ("2022-13-01 10:00", {}, Reason.INVALID_TIME),
        ("not a time", {}, Reason.INVALID_TIME),
        ("05/10/2022 15:05", {}, Reason.AMBIGUOUS_TIME),
        ("15:05", {}, Reason.AMBIGUOUS_TIME),
        (123, {}, Reason.OUT_OF_RANGE),
        ("1999-12-31 23:59", {}, Reason.OUT_OF_RANGE),
        ([2022, 10, 15], {}, Reason.INVALID_FIELD),
        (True, {}, Reason.INVALID_FIELD),
    ],
    ids=lambda case: repr(case)[:30],
)
def test_each_reject_reason_comes_from_a_specific_input(
    value: object, kwargs: dict[str, object], reason: Reason
) -> None:
    assert reason_of(value, **kwargs) == reason


# --- properties --------------------------------------------------------------------------------

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ZH_NUMBERS = "零一二三四五六七八九"
FULL_WIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)} | {0x20: 0x3000}


def twelve(t: datetime, style: str = " PM") -> str:
    marker = style if t.hour >= 12 else style.replace("P", "A").replace("p", "a")
    return f"{t.hour % 12 or 12}:{t.minute:02d}{marker}"


def zh_clock(t: datetime) -> str:
    h = t.hour
    marker, shown = (
        ("凌晨", h) if h < 5 else ("早上", h) if h < 9 else ("上午", h) if h < 12
        else ("中午", 12) if h == 12 else ("下午", h - 12) if h < 18 else ("傍晚", 6) if h == 18
        else ("晚上", h - 12) if h < 23 else ("夜里", 11)
    )  # fmt: skip
    minute = "半" if t.minute == 30 else f"{t.minute:02d}分"
    return f"{marker}{shown}点{minute}"


def zh_number(n: int) -> str:
    tens, units = divmod(n, 10)
    if not tens:
        return ZH_NUMBERS[units]
    return ("" if tens == 1 else ZH_NUMBERS[tens]) + "十" + (ZH_NUMBERS[units] if units else "")


def zh_numerals(t: datetime) -> str:
    year = "".join("〇一二三四五六七八九"[int(d)] for d in str(t.year))
    minute = f"零{ZH_NUMBERS[t.minute]}" if 0 < t.minute < 10 else zh_number(t.minute)
    return f"{year}年{zh_number(t.month)}月{zh_number(t.day)}日 {zh_number(t.hour)}点{minute}分"


def zh_date(t: datetime) -> str:
    return f"{t.year}年{t.month}月{t.day}日"


@dataclass(frozen=True)
class Form:
    name: str
    render: Callable[[datetime], object]
    precision: str  # "m", "s" or "ms"
    convention: SourceConvention | None = None
    needs_context: bool = False  # no date (or no year): only the reference can place it


DAY_FIRST, MONTH_FIRST = SourceConvention(day_first=True), SourceConvention(day_first=False)
FORMS = [
    Form("iso_t", lambda t: f"{t:%Y-%m-%dT%H:%M:%S}", "s"),
    Form("iso_space_ms", lambda t: f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d}", "ms"),
    Form("iso_offset", lambda t: t.isoformat(timespec="milliseconds"), "ms"),
    Form("iso_z", lambda t: f"{t.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z", "s"),
    Form("epoch_s", lambda t: ms(t) // 1000, "s"),
    Form("epoch_ms", ms, "ms"),
    Form("epoch_s_text", lambda t: str(ms(t) // 1000), "s"),
    Form("epoch_ms_text", lambda t: str(ms(t)), "ms"),
    Form("epoch_float", lambda t: ms(t) / 1000, "ms"),
    Form("ymd_slash", lambda t: f"{t:%Y/%m/%d %H:%M:%S}", "s"),
    Form("ymd_dot", lambda t: f"{t:%Y.%m.%d %H:%M}", "m"),
    Form("compact", lambda t: f"{t:%Y%m%d%H%M%S}", "s"),
    Form("clock12", lambda t: f"{t:%Y-%m-%d} " + twelve(t), "m"),
    Form("clock12_tight", lambda t: f"{t:%Y/%m/%d} " + twelve(t, "pm"), "m"),
    Form("clock12_dots", lambda t: f"{t:%Y-%m-%d} " + twelve(t, " p.m."), "m"),
    Form("zh", lambda t: f"{zh_date(t)} {zh_clock(t)}", "m"),
    Form("zh_time_first", lambda t: f"{zh_clock(t)} {zh_date(t)}", "m"),
    Form("zh_colon", lambda t: f"{zh_date(t)} {t:%H:%M:%S}", "s"),
    Form("zh_numerals", zh_numerals, "m"),
    Form(
        "dotnet_zh",
        lambda t: (
            f"{t:%Y/%m/%d} {'下午' if t.hour >= 12 else '上午'} {t.hour % 12 or 12}:{t:%M:%S}"
        ),
        "s",
    ),
    Form("month_name", lambda t: f"{MONTHS[t.month - 1]} {t.day}, {t.year} " + twelve(t), "m"),
    Form("day_month_name", lambda t: f"{t.day} {MONTHS[t.month - 1]} {t.year} {t:%H:%M}", "m"),
    Form("rfc2822", lambda t: format_datetime(t), "s"),
    Form("dmy", lambda t: f"{t:%d/%m/%Y %H:%M}", "m", DAY_FIRST),
    Form("mdy", lambda t: f"{t:%m/%d/%Y} " + twelve(t), "m", MONTH_FIRST),
    Form("full_width", lambda t: f"{t:%Y-%m-%d %H:%M}".translate(FULL_WIDTH), "m"),
    Form("time_only", lambda t: f"{t:%H:%M}", "m", needs_context=True),
    Form("zh_time_only", zh_clock, "m", needs_context=True),
    Form(
        "year_less", lambda t: f"{MONTHS[t.month - 1]} {t.day} {t:%H:%M}", "m", needs_context=True
    ),
    Form(
        "twelve_hour_bare",
        lambda t: f"{t:%Y-%m-%d} {t.hour % 12 or 12}:{t:%M}",
        "m",
        SourceConvention(twelve_hour=True),
        needs_context=True,
    ),
]


def truncated(moment: datetime, precision: str) -> datetime:
    if precision == "m":
        return moment.replace(second=0, microsecond=0)
    if precision == "s":
        return moment.replace(microsecond=0)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def instants(zones: tuple[str, ...]) -> st.SearchStrategy[datetime]:
    return st.datetimes(
        min_value=datetime(2000, 1, 3),
        max_value=datetime(2099, 12, 29),
        timezones=st.sampled_from([ZoneInfo(zone) for zone in zones]),
        allow_imaginary=False,
    )


@pytest.mark.parametrize("form", FORMS, ids=lambda form: form.name)
@settings(max_examples=60, deadline=None)
@given(moment=instants(ZONES))
def test_every_form_round_trips_to_the_same_instant(form: Form, moment: datetime) -> None:
    local = truncated(moment, form.precision)
    zone = str(local.tzinfo)
    # The reference is the instant itself, as an ingest time would be: it settles DST folds,
    # missing dates and bare 12-hour clocks, and must not disturb anything else.
    instant = parse(
        form.render(local), zone=zone, convention=form.convention, reference_ms=ms(local)
    )
    assert instant.utc_ms == ms(local)
    assert instant.iso == format_iso(ms(local), zone)


@pytest.mark.parametrize(
    "form", [f for f in FORMS if not f.needs_context], ids=lambda form: form.name
)
@settings(max_examples=40, deadline=None)
@given(moment=instants(FIXED_ZONES))
def test_forms_with_a_date_need_no_context_in_fixed_offset_zones(
    form: Form, moment: datetime
) -> None:
    local = truncated(moment, form.precision)
    instant = parse(form.render(local), zone=str(local.tzinfo), convention=form.convention)
    assert (instant.utc_ms, instant.inferred) == (ms(local), False)


@settings(max_examples=200, deadline=None)
@given(moment=instants(ZONES), skew_minutes=st.integers(-11 * 60, 11 * 60))
def test_time_only_lands_on_the_right_day_for_any_reference_within_eleven_hours(
    moment: datetime, skew_minutes: int
) -> None:
    local = truncated(moment, "m")
    reference = ms(local) + skew_minutes * 60_000
    zone = str(local.tzinfo)
    instant = parse(f"{local:%H:%M}", zone=zone, reference_ms=reference)
    # In a DST fold the wall time occurs twice, and the reference may sit nearer the other one.
    assert instant.inferred
    assert instant.utc_ms in {ms(local.replace(fold=0)), ms(local.replace(fold=1))}


@settings(max_examples=300, deadline=None)
@given(utc_ms=st.integers(MIN_EPOCH_MS, MAX_EPOCH_MS - 1), zone=st.sampled_from(ZONES))
def test_format_iso_agrees_with_zoneinfo(utc_ms: int, zone: str) -> None:
    local = (EPOCH + timedelta(milliseconds=utc_ms)).astimezone(ZoneInfo(zone))
    expected = local.isoformat(timespec="milliseconds" if utc_ms % 1000 else "seconds")
    assert format_iso(utc_ms, zone) == expected


@settings(max_examples=500, deadline=None)
@given(value=st.one_of(st.text(), st.text(alphabet="0123456789:-/. T年月日点分下午上PMAM")))
def test_any_text_parses_or_is_rejected_with_a_reason(value: str) -> None:
    try:
        instant = parse(value, reference_ms=ms(REF))
    except InvalidEvent as rejected:
        assert rejected.reason in set(Reason)
        return
    assert MIN_EPOCH_MS <= instant.utc_ms < MAX_EPOCH_MS
    assert instant.iso == format_iso(instant.utc_ms, "Asia/Shanghai")


def two_digits(usual: int, edge: int) -> st.SearchStrategy[str]:
    """Mostly 1..usual, sometimes up to `edge` (an impossible value) or 0."""
    numbers = st.one_of(st.integers(1, usual), st.integers(0, edge))
    return numbers.map(lambda n: f"{n:02d}")


@st.composite
def common_shapes(draw: st.DrawFn) -> str:
    """Values in the shapes parse_instant reads without the general path, fields sometimes
    impossible (day 31 of a short month, 24:00, second 60, year out of range)."""
    year = draw(st.sampled_from(["1999", "2000", "2022", "2024", "2099", "2100"]))
    month, day = draw(two_digits(12, 13)), draw(two_digits(12, 32))
    clock = f"{draw(two_digits(23, 24))}:{draw(two_digits(59, 60))}"
    clock += draw(st.sampled_from(["", ":00", ":59", ":60", ":07.5", ",123456789", ":01.000"]))
    offset = draw(st.sampled_from(["", "Z", "z", "+08:00", " -05:00", "+0530", "+15:00", "-00"]))
    stamp = f"{year}{month}{day}{clock.replace(':', '')[:6]}"
    return draw(
        st.sampled_from(
            [
                f"{year}-{month}-{day}",
                f"{year}-{month}-{day}{draw(st.sampled_from('Tt '))}{clock}{offset}",
                f"{year}/{month}/{day} {clock}",
                f"{year}.{month}.{day}T{clock}",
                f"{day}/{month}/{year} {clock}",
                f"{month}/{day}/{year} {clock}",
                stamp[:8],
                stamp,
                str(draw(st.integers(0, 10**13))),
            ]
        )
    )


ZH_MARKERS = (
    "凌晨",
    "早上",
    "上午",
    "中午",
    "下午",
    "傍晚",
    "晚上",
    "夜里",
    "清晨",
    "深夜",
    "午夜",
)
MONTH_WORDS = (*MONTHS, "October", "May", "June", "Sept", "September")


def one_or_two_digits(usual: int, edge: int) -> st.SearchStrategy[str]:
    """Like two_digits, but also written without the leading zero."""
    return st.one_of(two_digits(usual, edge), st.integers(0, edge).map(str))


@st.composite
def date_clock_shapes(draw: st.DrawFn) -> str:
    """Chinese, month-name and 12-hour values, fields sometimes impossible (hour 0 or 13 with a
    marker, 晚上12点, February 30th, minute 60, year out of range)."""
    year = draw(st.sampled_from(["1999", "2000", "2022", "2024", "2099", "2100"]))
    month, day = draw(one_or_two_digits(12, 13)), draw(one_or_two_digits(28, 32))
    hour = draw(st.one_of(st.integers(1, 12).map(str), one_or_two_digits(23, 25)))
    minute, second = draw(two_digits(59, 60)), draw(two_digits(59, 60))
    clock = f"{hour}:{minute}" + draw(st.sampled_from(["", f":{second}"]))
    zh_clock = draw(
        st.sampled_from([clock, f"{hour}点", f"{hour}时半", f"{hour}点{int(minute)}分"])
    )
    zh_marker = draw(st.sampled_from(("", *ZH_MARKERS)))
    gap = draw(st.sampled_from(["", " "]))
    en_marker = draw(st.sampled_from(["", " AM", " PM", "am", "pm", " pm"]))
    name = draw(st.sampled_from(MONTH_WORDS))
    numeric_date = draw(
        st.sampled_from([f"{year}-{month}-{day}", f"{year}/{month}/{day}", f"{month}/{day}/{year}"])
    )
    return draw(
        st.sampled_from(
            [
                f"{year}年{month}月{day}日{gap}{zh_marker}{zh_clock}",
                f"{year}年{month}月{day}号 {zh_marker}{gap}{zh_clock}",
                f"{name} {day}, {year} {clock}{en_marker}",
                f"{name} {day} {year} {clock}{en_marker}",
                f"{day} {name} {year} {clock}{en_marker}",
                f"{numeric_date} {clock}{en_marker or ' PM'}",
            ]
        )
    )


def outcome(read: Callable[[], Instant]) -> Instant | tuple[Reason, str]:
    try:
        return read()
    except InvalidEvent as rejected:
        return rejected.reason, str(rejected)


@settings(max_examples=2000, deadline=None)
@given(
    value=common_shapes(),
    zone=st.sampled_from(ZONES),
    convention=st.sampled_from([None, DAY_FIRST, MONTH_FIRST, SourceConvention(fold=1)]),
)
def test_common_shapes_read_as_the_general_path_reads_them(
    value: str, zone: str, convention: SourceConvention | None
) -> None:
    context = Context(zone_table(zone), zone, convention or NO_CONVENTION, ms(REF), 3_600_000)
    general = outcome(lambda: parse_text(value, context))
    assert outcome(
        lambda: parse(value, zone=zone, convention=convention, reference_ms=ms(REF))
    ) == (general)


@settings(max_examples=3000, deadline=None)
@given(
    value=date_clock_shapes(),
    zone=st.sampled_from(ZONES),
    convention=st.sampled_from(
        [None, DAY_FIRST, MONTH_FIRST, SourceConvention(fold=1), SourceConvention(twelve_hour=True)]
    ),
)
def test_date_clock_shapes_read_as_the_general_path_reads_them(
    value: str, zone: str, convention: SourceConvention | None
) -> None:
    context = Context(zone_table(zone), zone, convention or NO_CONVENTION, ms(REF), 3_600_000)
    general = outcome(lambda: parse_text(value, context))
    assert outcome(
        lambda: parse(value, zone=zone, convention=convention, reference_ms=ms(REF))
    ) == (general)
