"""Alert calls: raw incident reports from the stations' call systems -> normalised alerts."""

from __future__ import annotations

import h3

from base.errors import InvalidEvent, Reason
from schemas.events import AlertCall, TimeQuality
from streams.ingest.fields import (
    LAT_NAMES,
    LON_NAMES,
    STATION_NAMES,
    TIME_NAMES,
    RawEvent,
    first_present,
    optional_text,
    required_float,
    required_text,
)
from streams.ingest.stations import StationBook
from streams.text.repair import fold_fullwidth, repair_record

ALERT_ID_NAMES = ("alert_id", "alertId", "incident_id", "id", "case_no", "警情编号")
CATEGORY_NAMES = ("category", "type", "kind", "警情类别")
ADDRESS_NAMES = ("address", "addr", "location", "地址")
DESCRIPTION_NAMES = ("description", "desc", "summary", "content", "警情描述")
PHONE_NAMES = ("caller_phone", "phone", "caller", "tel", "报警电话")

# Priority per category (1 = most urgent). The dispatch policy maps priority to unit counts.
CATEGORY_PRIORITY: dict[str, int] = {
    "weapon": 1,
    "violence": 1,
    "robbery": 1,
    "traffic_accident": 2,
    "dispute": 2,
    "theft": 3,
    "noise": 4,
    "other": 3,
}


def priority_of(category: str, explicit: object = None) -> int:
    if explicit is not None:
        try:
            value = int(str(explicit))
        except ValueError as exc:
            raise InvalidEvent(
                Reason.INVALID_FIELD, f"priority is not a number: {explicit!r}"
            ) from exc
        if not 1 <= value <= 5:
            raise InvalidEvent(Reason.OUT_OF_RANGE, f"priority {value} outside 1..5")
        return value
    return CATEGORY_PRIORITY.get(category, CATEGORY_PRIORITY["other"])


def alert_from_raw(
    raw: RawEvent, *, stations: StationBook, resolution: int, reference_ms: int, ingest_ms: int
) -> AlertCall:
    """Validate and normalise one raw alert call. Raises InvalidEvent."""
    alert_id = fold_fullwidth(required_text(raw, ALERT_ID_NAMES))
    lat = required_float(raw, LAT_NAMES, -90.0, 90.0)
    lon = required_float(raw, LON_NAMES, -180.0, 180.0)
    station_id = optional_text(raw, STATION_NAMES)
    instant = stations.parse_time(first_present(raw, TIME_NAMES), station_id, reference_ms)
    category = (optional_text(raw, CATEGORY_NAMES) or "other").strip().lower()
    address, description = repair_record(
        [optional_text(raw, ADDRESS_NAMES), optional_text(raw, DESCRIPTION_NAMES)]
    )
    return AlertCall(
        alert_id=alert_id,
        station_id=station_id,
        category=category,
        priority=priority_of(category, first_present(raw, ("priority",))),
        lat=lat,
        lon=lon,
        h3_cell=h3.latlng_to_cell(lat, lon, resolution),
        address=address.text,
        description=description.text,
        caller_phone=fold_fullwidth(optional_text(raw, PHONE_NAMES)).strip(),
        text_repaired=address.changed or description.changed,
        text_lossy=address.lossy or description.lossy,
        event_time=instant.iso,
        event_utc_ms=instant.utc_ms,
        ingest_utc_ms=ingest_ms,
        time_quality=TimeQuality(source_format=instant.source_format, inferred=instant.inferred),
    )
