"""Per-station conventions: each station's time zone, how its systems write ambiguous times and
which encoding their bytes are in. Configured in settings (`SMART_STATION_STATIONS`, JSON);
unknown stations use the default zone and UTF-8."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from base.errors import InvalidEvent, Reason
from base.settings import StationSettings
from streams.ingest.fields import STATION_NAMES, RawEvent, decode_json_object, first_present
from streams.timestd import Instant, SourceConvention, parse_instant


@dataclass(frozen=True, slots=True)
class StationBook:
    default_zone: str = "Asia/Shanghai"
    stations: Mapping[str, StationSettings] = field(default_factory=dict)

    def zone_for(self, station_id: str) -> str:
        entry = self.stations.get(station_id)
        return entry.zone if entry is not None and entry.zone else self.default_zone

    def encoding_for(self, station_id: str) -> str | None:
        entry = self.stations.get(station_id)
        return entry.encoding if entry is not None else None

    def decode_event(self, payload: bytes) -> RawEvent:
        """A raw event's JSON object: UTF-8, or the encoding its station is configured with.
        Bytes that neither reads are `invalid_encoding`."""
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return self._decode_legacy(payload)
        raw = decode_json_object(text)
        if payload.isascii():
            return raw
        encoding = self.encoding_for(_station_of(raw))
        return raw if encoding is None else self._decode_as(payload, encoding)

    def _decode_legacy(self, payload: bytes) -> RawEvent:
        for encoding in sorted({e.encoding for e in self.stations.values() if e.encoding}):
            try:
                raw = decode_json_object(payload.decode(encoding))
            except (UnicodeDecodeError, InvalidEvent):
                continue
            if self.encoding_for(_station_of(raw)) == encoding:
                return raw
        raise InvalidEvent(
            Reason.INVALID_ENCODING, "not UTF-8, nor the encoding configured for its station"
        )

    def _decode_as(self, payload: bytes, encoding: str) -> RawEvent:
        try:
            return decode_json_object(payload.decode(encoding))
        except UnicodeDecodeError as exc:
            raise InvalidEvent(
                Reason.INVALID_ENCODING, f"not {encoding}, the encoding of its station"
            ) from exc

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


def _station_of(raw: RawEvent) -> str:
    return str(first_present(raw, STATION_NAMES) or "")
