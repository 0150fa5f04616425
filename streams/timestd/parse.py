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

from base.errors import InvalidEvent, Reason
from streams.timestd.freeform import FOLD, ISO, from_compact_digits, from_iso, parse_general
from streams.timestd.instant import (
    DEFAULT_TOLERANCE_MS,
    DEFAULT_ZONE,
    NO_CONVENTION,
    Instant,
    SourceConvention,
)
from streams.timestd.readings import NUMERIC, Context, from_number, from_numeric_text, is_compact
from streams.timestd.shapes import COMMON_SHAPES, SHAPE
from streams.timestd.zones import zone_table


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
    table = zone_table(zone)
    if isinstance(value, str):
        text = value.strip()
        shape = COMMON_SHAPES.get(text.encode(errors="surrogatepass").translate(SHAPE))
        if shape is not None and (convention is None or not convention.twelve_hour):
            read, argument = shape
            found = read(text, table, convention, argument)
            if found is not None:
                return found
        convention = convention or NO_CONVENTION
        return parse_text(text, Context(table, zone, convention, reference_ms, tolerance_ms))
    if value is None:
        raise InvalidEvent(Reason.EMPTY, "no timestamp")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(Reason.INVALID_FIELD, f"timestamp of type {type(value).__name__}")
    return from_number(value, table)


def parse_text(text: str, ctx: Context) -> Instant:
    """Any stripped text, by the general rules (the reference for the common shapes above)."""
    if not text.isascii():
        text = text.translate(FOLD).strip()
    if not text:
        raise InvalidEvent(Reason.EMPTY, "blank timestamp")
    match = ISO.fullmatch(text)
    if match and not ctx.convention.twelve_hour:  # a 12-hour source's "03:05" may be 15:05
        return from_iso(match, ctx, text)
    match = NUMERIC.fullmatch(text)
    if match:
        if not match.group(1) and match.group(3) is None and is_compact(text):
            return from_compact_digits(text, ctx)
        return from_numeric_text(match, ctx.table, text)
    return parse_general(text, ctx)
