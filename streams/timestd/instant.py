"""What the time standard is: an `Instant` (UTC ms, the ISO text, the form it was read from), the
convention a source writes ambiguous times with, and the bounds every instant keeps to."""

from __future__ import annotations

from dataclasses import dataclass

# Epochs outside [2000-01-01, 2100-01-01) are rejected rather than guessed at.
MIN_EPOCH_MS = 946_684_800_000
MAX_EPOCH_MS = 4_102_444_800_000
DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_TOLERANCE_MS = 12 * 3_600_000

DAY_S = 86_400
UNIX_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


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


NO_CONVENTION = SourceConvention()

# The generated frozen __init__ costs half a microsecond (object.__setattr__ per field); setting
# the slots directly builds the same object in half the time on the hot path.
_new = object.__new__
_set_utc_ms = Instant.__dict__["utc_ms"].__set__
_set_iso = Instant.__dict__["iso"].__set__
_set_source_format = Instant.__dict__["source_format"].__set__
_set_inferred = Instant.__dict__["inferred"].__set__


def new_instant(utc_ms: int, iso: str, source_format: str, inferred: bool = False) -> Instant:
    instant = _new(Instant)
    _set_utc_ms(instant, utc_ms)
    _set_iso(instant, iso)
    _set_source_format(instant, source_format)
    _set_inferred(instant, inferred)
    return instant
