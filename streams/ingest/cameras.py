"""Camera metadata from the camera platform's raw records (`cameras.meta`) to `CameraMeta`."""

from __future__ import annotations

from base.errors import InvalidEvent, Reason
from schemas.events import CameraMeta
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

CAMERA_ID_NAMES = ("camera_id", "cameraId", "id", "device_id", "设备编号")


def camera_from_raw(
    raw: RawEvent, *, stations: StationBook, reference_ms: int, **_: object
) -> CameraMeta:
    """Validate and normalise one raw camera metadata record. Raises InvalidEvent."""
    camera_id = required_text(raw, CAMERA_ID_NAMES)
    officer_id = optional_text(raw, ("officer_id", "officer", "badge", "警号")) or None
    default_kind = "body" if officer_id else "fixed"
    kind = optional_text(raw, ("kind", "type")).strip().lower() or default_kind
    if kind not in ("fixed", "body"):
        raise InvalidEvent(Reason.INVALID_FIELD, f"camera kind must be fixed or body, got {kind!r}")
    has_position = first_present(raw, LAT_NAMES) is not None
    if kind == "fixed" and not has_position:
        raise InvalidEvent(Reason.MISSING_FIELD, "a fixed camera needs lat/lon")
    station_id = optional_text(raw, STATION_NAMES)
    instant = stations.parse_time(
        first_present(raw, TIME_NAMES) or reference_ms, station_id, reference_ms
    )
    online = first_present(raw, ("online", "status"))
    return CameraMeta(
        camera_id=camera_id,
        kind=kind,  # type: ignore[arg-type]  # checked above
        station_id=station_id,
        officer_id=officer_id,
        lat=required_float(raw, LAT_NAMES, -90.0, 90.0) if has_position else None,
        lon=required_float(raw, LON_NAMES, -180.0, 180.0) if has_position else None,
        heading_deg=required_float(raw, ("heading_deg", "heading", "azimuth"), 0.0, 360.0) % 360.0
        if first_present(raw, ("heading_deg", "heading", "azimuth")) is not None
        else 0.0,
        fov_deg=required_float(raw, ("fov_deg", "fov"), 1.0, 360.0)
        if first_present(raw, ("fov_deg", "fov")) is not None
        else 360.0,
        range_m=required_float(raw, ("range_m", "range"), 0.0, 10_000.0)
        if first_present(raw, ("range_m", "range")) is not None
        else 100.0,
        online=_truthy(online) if online is not None else True,
        event_time=instant.iso,
        event_utc_ms=instant.utc_ms,
    )


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "online", "on", "在线")
