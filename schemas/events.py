"""Typed models for every message the pipeline publishes. JSON Schema files in schemas/json are
generated from these (`smart-station schemas --write`) and checked in CI."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Latitude = Annotated[float, Field(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0)]
IsoTime = Annotated[
    str, Field(description="24-hour ISO 8601 wall time with the station's UTC offset.")
]
UtcMs = Annotated[int, Field(description="UTC epoch milliseconds.")]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeQuality(Message):
    """How the event time was read: the format family seen and whether context decided it."""

    source_format: str
    inferred: bool = False


class GpsPing(Message):
    """A normalised officer position report (topic `gps.pings.normalised`, keyed by officer_id)."""

    event_id: str
    officer_id: str
    station_id: str
    lat: Latitude
    lon: Longitude
    h3_cell: str
    event_time: IsoTime
    event_utc_ms: UtcMs
    ingest_utc_ms: UtcMs
    accuracy_m: float | None = None
    time_quality: TimeQuality


class AlertCall(Message):
    """A normalised incident call (topic `alerts.normalised`, keyed by alert_id)."""

    alert_id: str
    station_id: str
    category: str
    priority: int = Field(ge=1, le=5, description="1 is most urgent.")
    lat: Latitude
    lon: Longitude
    h3_cell: str
    address: str = ""
    description: str = ""
    caller_phone: str = ""
    event_time: IsoTime
    event_utc_ms: UtcMs
    ingest_utc_ms: UtcMs
    time_quality: TimeQuality


class OfficerStatusValue(StrEnum):
    OFF_DUTY = "off_duty"
    AVAILABLE = "available"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    BUSY = "busy"


class OfficerState(Message):
    """An officer's latest known position and status (the `officers` table's value)."""

    officer_id: str
    station_id: str = ""
    lat: float | None = None
    lon: float | None = None
    h3_cell: str | None = None
    position_utc_ms: int | None = None
    status: OfficerStatusValue = OfficerStatusValue.AVAILABLE
    status_utc_ms: int = 0
    alert_id: str | None = Field(default=None, description="The alert the officer is assigned to.")


class AssignedAlert(Message):
    alert_id: str
    category: str
    priority: int
    lat: float
    lon: float
    address: str
    description: str
    event_time: IsoTime
    event_utc_ms: UtcMs


class AssignedOfficer(Message):
    officer_id: str
    station_id: str
    lat: float
    lon: float
    position_utc_ms: UtcMs


class Assignment(Message):
    """A dispatch message (topic `dispatch.assignments`, keyed by officer_id)."""

    schema_version: Literal[1] = 1
    assignment_id: str
    alert: AssignedAlert
    caller_phone: str
    officer: AssignedOfficer
    distance_m: float = Field(ge=0, description="Geodesic (WGS84) distance officer -> incident.")
    eta_s: float = Field(ge=0, description="Estimated travel time, see streams/eta.py.")
    assigned_time: IsoTime
    assigned_utc_ms: UtcMs


class Claim(Message):
    """Internal: the dispatcher asks the officer's partition to reserve (or release) an officer
    for an alert (topic `dispatch.claims`, keyed by officer_id). One partition decides per officer,
    so an officer can never be booked twice."""

    kind: Literal["claim", "release"]
    alert_id: str
    officer_id: str
    alert_utc_ms: UtcMs


class ClaimResult(Message):
    """Internal: the officer partition's answer (topic `dispatch.claim-results`, keyed by
    alert_id)."""

    alert_id: str
    officer_id: str
    accepted: bool
    reason: str = ""
    officer: OfficerState | None = None


class AlertProgress(Message):
    """Internal: an open alert's dispatch progress (the `alerts_open` table's value)."""

    alert: AlertCall
    units_needed: int = Field(ge=1)
    assigned: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    tried: tuple[str, ...] = ()


class DeadLetterHeaders(Message):
    """Headers on a dead letter (topic `deadletter`); the record's key and value are the original
    bytes, untouched."""

    reason: str
    message: str
    source_topic: str
    source_partition: int
    source_offset: int
    dead_utc_ms: UtcMs


PUBLISHED_MODELS: dict[str, type[Message]] = {
    "gps_ping": GpsPing,
    "alert_call": AlertCall,
    "officer_state": OfficerState,
    "assignment": Assignment,
    "dead_letter_headers": DeadLetterHeaders,
    "claim": Claim,
    "claim_result": ClaimResult,
}
