"""Per-station conventions: each station's time zone and how its systems write ambiguous times.
Configured in settings (`SMART_STATION_STATIONS`, JSON); unknown stations use the default zone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from base.settings import StationSettings
from streams.timestd import Instant, SourceConvention, parse_instant


@dataclass(frozen=True, slots=True)
class StationBook:
    default_zone: str = "Asia/Shanghai"
    stations: Mapping[str, StationSettings] = field(default_factory=dict)

    def zone_for(self, station_id: str) -> str:
        entry = self.stations.get(station_id)
        return entry.zone if entry is not None and entry.zone else self.default_zone

    def convention_for(self, station_id: str) -> SourceConvention | None:
        entry = self.stations.get(station_id)
        if entry is None:
            return None
        return SourceConvention(day_first=entry.day_first, twelve_hour=entry.twelve_hour)

    def parse_time(self, value: object, station_id: str, reference_ms: int | None) -> Instant:
        """A station's timestamp in the standard, read with that station's zone and conventions."""
        return parse_instant(
            value,
            zone=self.zone_for(station_id),
            convention=self.convention_for(station_id),
            reference_ms=reference_ms,
        )
