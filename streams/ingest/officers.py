"""Officers' raw events: GPS pings and status changes from the officers' app, validated and
normalised (positions are folded in streams/dispatch/positions.py, status in
streams/dispatch/rules.py)."""

from __future__ import annotations

import h3

from base.errors import InvalidEvent, Reason
from schemas.events import (
    GpsPing,
    OfficerStatusChange,
    OfficerStatusValue,
    TimeQuality,
)
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
from streams.text.repair import fold_fullwidth
from streams.timestd.instant import Instant

OFFICER_NAMES = ("officer_id", "officerId", "officer", "badge", "police_id", "警号")
EVENT_ID_NAMES = ("event_id", "id", "ping_id", "msg_id")


def ping_from_raw(
    raw: RawEvent,
    *,
    stations: StationBook,
    resolution: int,
    reference_ms: int,
    ingest_ms: int,
    instant: Instant | None = None,
) -> GpsPing:
    """Validate and normalise one raw ping. Raises InvalidEvent. `instant`: its time as a batch
    read it column-wise (streams/pipeline/ping_batches.py), else it is read here."""
    officer_id = fold_fullwidth(required_text(raw, OFFICER_NAMES))
    lat = required_float(raw, LAT_NAMES, -90.0, 90.0)
    lon = required_float(raw, LON_NAMES, -180.0, 180.0)
    station_id = optional_text(raw, STATION_NAMES)
    if instant is None:
        instant = stations.parse_time(first_present(raw, TIME_NAMES), station_id, reference_ms)
    event_id = optional_text(raw, EVENT_ID_NAMES) or f"{officer_id}@{instant.utc_ms}"
    accuracy = first_present(raw, ("accuracy_m", "accuracy", "acc"))
    return GpsPing(
        event_id=event_id,
        officer_id=officer_id,
        station_id=station_id,
        lat=lat,
        lon=lon,
        h3_cell=h3.latlng_to_cell(lat, lon, resolution),
        event_time=instant.iso,
        event_utc_ms=instant.utc_ms,
        ingest_utc_ms=ingest_ms,
        accuracy_m=float(accuracy) if isinstance(accuracy, int | float) else None,
        time_quality=TimeQuality(source_format=instant.source_format, inferred=instant.inferred),
    )


STATUS_ALIASES: dict[str, OfficerStatusValue] = {
    **{value.value: value for value in OfficerStatusValue},
    "offduty": OfficerStatusValue.OFF_DUTY,
    "off": OfficerStatusValue.OFF_DUTY,
    "free": OfficerStatusValue.AVAILABLE,
    "idle": OfficerStatusValue.AVAILABLE,
    "ack": OfficerStatusValue.EN_ROUTE,
    "acknowledged": OfficerStatusValue.EN_ROUTE,
    "enroute": OfficerStatusValue.EN_ROUTE,
    "arrived": OfficerStatusValue.ON_SCENE,
    "onscene": OfficerStatusValue.ON_SCENE,
    "下班": OfficerStatusValue.OFF_DUTY,
    "空闲": OfficerStatusValue.AVAILABLE,
    "已派警": OfficerStatusValue.DISPATCHED,
    "出警": OfficerStatusValue.EN_ROUTE,
    "到达现场": OfficerStatusValue.ON_SCENE,
    "忙碌": OfficerStatusValue.BUSY,
}


def status_from_raw(
    raw: RawEvent, *, stations: StationBook, reference_ms: int, **_: object
) -> OfficerStatusChange:
    """Validate and normalise one status change from the officers' app. Raises InvalidEvent."""
    officer_id = fold_fullwidth(required_text(raw, OFFICER_NAMES))
    text = required_text(raw, ("status", "state", "状态")).lower().replace("-", "_")
    status = STATUS_ALIASES.get(text) or STATUS_ALIASES.get(text.replace("_", "").replace(" ", ""))
    if status is None:
        raise InvalidEvent(Reason.INVALID_FIELD, f"unknown officer status {text!r}")
    station_id = optional_text(raw, STATION_NAMES)
    instant = stations.parse_time(first_present(raw, TIME_NAMES), station_id, reference_ms)
    return OfficerStatusChange(
        officer_id=officer_id,
        status=status,
        alert_id=optional_text(raw, ("alert_id", "alertId", "incident_id")) or None,
        event_time=instant.iso,
        event_utc_ms=instant.utc_ms,
        time_quality=TimeQuality(source_format=instant.source_format, inferred=instant.inferred),
    )
