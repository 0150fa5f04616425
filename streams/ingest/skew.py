"""The bound on event times: an event dated too far ahead of (or behind) the time it is handled
is refused `out_of_range`, so that no clock, table or replay can be dragged years away by one
bad device or typo (a ping "from 2099" would otherwise look fresh forever)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from base.errors import InvalidEvent, Reason


class _Timed(Protocol):
    @property
    def event_utc_ms(self) -> int: ...


P = TypeVar("P", bound=_Timed)

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class SkewBound:
    ahead_ms: int = HOUR_MS
    behind_ms: int = 3 * DAY_MS

    def check(self, event_utc_ms: int, reference_ms: int) -> None:
        """Raise InvalidEvent(out_of_range) unless `event_utc_ms` lies within the bound around
        `reference_ms` (the wall clock on the live path, the replay clock in a replay)."""
        ahead = event_utc_ms - reference_ms
        if ahead > self.ahead_ms:
            raise InvalidEvent(Reason.OUT_OF_RANGE, f"event time {_span(ahead)} ahead of now")
        if -ahead > self.behind_ms:
            raise InvalidEvent(Reason.OUT_OF_RANGE, f"event time {_span(-ahead)} behind now")


def _span(ms: int) -> str:
    if ms >= 2 * DAY_MS:
        return f"{ms / DAY_MS:.0f} days"
    if ms >= 2 * HOUR_MS:
        return f"{ms / HOUR_MS:.0f} hours"
    return f"{ms / 60_000:.0f} minutes"


def bounded(parse: Callable[..., P], skew: SkewBound) -> Callable[..., P]:
    """`parse` (a raw event reader taking `ingest_ms`) that also refuses times out of bounds."""

    def parse_within_bound(raw: Any, *, ingest_ms: int, **context: Any) -> P:
        parsed = parse(raw, ingest_ms=ingest_ms, **context)
        skew.check(parsed.event_utc_ms, ingest_ms)
        return parsed

    return parse_within_bound
