"""Typed models for every message the pipeline publishes. JSON Schema files in schemas/json are
generated from these (`smart-station schemas --write`) and checked in CI."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from base.errors import Reason

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
    text_repaired: bool = Field(default=False, description="Mojibake in address/description fixed.")
    text_lossy: bool = Field(
        default=False, description="Some characters were unrecoverable (U+FFFD)."
    )


class CameraMeta(Message):
    """Normalised camera metadata (topic `cameras.normalised`, keyed by camera_id). Fixed
    cameras have a heading and field of view; body-worn ones belong to an officer."""

    camera_id: str
    kind: Literal["fixed", "body"]
    station_id: str = ""
    officer_id: str | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    heading_deg: float = Field(default=0.0, ge=0.0, lt=360.0)
    fov_deg: float = Field(default=360.0, gt=0.0, le=360.0)
    range_m: float = Field(default=100.0, ge=0.0)
    online: bool = True
    event_time: IsoTime
    event_utc_ms: UtcMs


class OfficerStatusValue(StrEnum):
    OFF_DUTY = "off_duty"
    AVAILABLE = "available"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    BUSY = "busy"
    DECLINED = "declined"  # from the app only: the officer turns down the alert they hold


class OfficerStatusChange(Message):
    """A normalised status change from the officers' app (topic `officer.status.normalised`,
    keyed by officer_id). `dispatched` is only ever set by the dispatcher itself."""

    officer_id: str
    status: OfficerStatusValue
    alert_id: str | None = None
    event_time: IsoTime
    event_utc_ms: UtcMs
    time_quality: TimeQuality


class OfficerPosition(Message):
    """An officer's latest replicated position (the positions table's value, written by the
    positions worker: on a change of H3 cell at once, within a cell at most every
    `position_write_interval_s`)."""

    officer_id: str
    station_id: str = ""
    lat: float
    lon: float
    h3_cell: str
    position_utc_ms: int


class OfficerRelease(Message):
    """The last time an officer left an alert on a status event (cleared, or withdrawn): kept so
    that the same event, handled again after a crash that lost what it announced, announces it
    again (the officer's state alone no longer shows that anything happened)."""

    alert_id: str
    outcome: Literal["cleared", "withdrawn"]
    reason: str = ""
    status: OfficerStatusValue = Field(description="The status event that did it.")
    at_utc_ms: int = Field(description="Its event time.")
    booking: int = Field(default=0, description="The booking left (OfficerState.booking).")


class OfficerState(Message):
    """An officer's status and, merged in, their latest known position (the `officers` table's
    value is written by the officer's partition; its position fields are the position as known
    then, and a newer one from the positions table wins)."""

    officer_id: str
    station_id: str = ""
    lat: float | None = None
    lon: float | None = None
    h3_cell: str | None = None
    position_utc_ms: int | None = None
    status: OfficerStatusValue = OfficerStatusValue.AVAILABLE
    status_utc_ms: int = 0
    alert_id: str | None = Field(default=None, description="The alert the officer is assigned to.")
    dispatched_utc_ms: int | None = Field(
        default=None, description="When the current dispatch was booked (for the ack timeout)."
    )
    booking: int = Field(
        default=0,
        ge=0,
        description="The number of the officer's current (or last) booking: every word about "
        "a booking carries it, so a word about an earlier one is recognised as such.",
    )
    last_release: OfficerRelease | None = None


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


class CameraRef(Message):
    """A fixed camera that can see the incident: online, in range, and facing it."""

    camera_id: str
    lat: float
    lon: float
    distance_m: float
    bearing_deg: float = Field(description="From the camera to the incident, 0 = north.")


class BodyCamera(Message):
    camera_id: str
    officer_id: str
    online: bool


class BackgroundAlert(Message):
    """An earlier alert the responders should know about, and why it was picked."""

    alert_id: str
    category: str
    address: str
    description: str
    event_time: IsoTime
    matched_on: list[Literal["address", "cell", "caller"]]


class Assignment(Message):
    """A dispatch message (topic `dispatch.assignments`, keyed by officer_id)."""

    schema_version: Literal[1] = 1
    assignment_id: str = Field(
        description="Drop repeats by it: `<alert_id>:<officer_id>`, with `:<n>` when the same "
        "officer is sent to the same alert an n-th time (after clearing their part)."
    )
    alert: AssignedAlert
    caller_phone: str
    officer: AssignedOfficer
    distance_m: float = Field(ge=0, description="Geodesic (WGS84) distance officer -> incident.")
    eta_s: float = Field(ge=0, description="Estimated travel time, see streams/eta.py.")
    units_needed: int = Field(default=1, ge=1, description="Units this alert needs in total.")
    supervisor_notice: bool = Field(
        default=False, description="The category's priority asks for a supervisor to be told."
    )
    reason: Literal["dispatch", "backup", "reassignment"] = "dispatch"
    cameras: list[CameraRef] = Field(default_factory=list)
    body_cameras: list[BodyCamera] = Field(default_factory=list)
    background: list[BackgroundAlert] = Field(default_factory=list)
    assigned_time: IsoTime
    assigned_utc_ms: UtcMs


class BackupRequest(Message):
    """From the field (topic `dispatch.backup`, keyed by alert_id): send more units."""

    alert_id: str
    officer_id: str = ""
    units: int = Field(default=1, ge=1, le=10)
    reason: str = ""


DispatchEventKind = Literal[
    "assigned",
    "acknowledged",
    "arrived",
    "cleared",
    "withdrawn",
    "ack_timeout",
    "unassigned",
    "escalated",
    "backup_requested",
]


class DispatchEvent(Message):
    """The command room's feed (topic `dispatch.events`, keyed by alert_id): every step of an
    alert's life, with its time, so the warehouse can compute time to assign, acknowledge and
    arrive."""

    kind: DispatchEventKind
    alert_id: str
    officer_id: str = ""
    detail: str = ""
    at_utc_ms: UtcMs
    radius_m: float | None = Field(
        default=None, description="The search radius in force (unassigned, escalated)."
    )
    waited_ms: int | None = Field(
        default=None, description="How long the alert has waited since it was received."
    )
    assignment_id: str = Field(
        default="",
        description="On `assigned`: the assignment's id (a booking announced again after a "
        "restart repeats it; drop repeats by it). Other kinds repeat with the same `at_utc_ms`.",
    )


class UnassignedNotice(Message):
    """An alert still missing units (topic `dispatch.unassigned`, keyed by alert_id): sent when it
    starts waiting and again each time its search radius widens."""

    alert: AlertCall
    reason: Literal["no_available_officer_within_radius"] = "no_available_officer_within_radius"
    units_missing: int = Field(ge=1)
    radius_m: float
    waited_ms: int = Field(ge=0)
    noticed_utc_ms: UtcMs


class Tick(Message):
    """Internal clock (topic `dispatch.ticks`): the leader sends one to every partition each
    second; timeouts and the waiting queue are handled in the partition's own stream."""

    now_utc_ms: UtcMs


class Claim(Message):
    """Internal: the dispatcher asks the officer's partition to reserve (or release) an officer
    for an alert (topic `dispatch.claims`, keyed by officer_id). One partition decides per officer,
    so an officer can never be booked twice."""

    kind: Literal["claim", "release"]
    alert_id: str
    officer_id: str
    alert_utc_ms: UtcMs
    booking: int = Field(
        default=0, ge=0, description="A release: the booking given back (0: the one held)."
    )


ClaimOutcome = Literal["accepted", "rejected", "withdrawn", "cleared"]


class ClaimResult(Message):
    """Internal: the officer partition's word to the alert's partition (topic
    `dispatch.claim-results`, keyed by alert_id). `accepted` answers a claim, or offers a freed
    officer to a waiting alert unasked; `withdrawn` takes back an officer who declined, went off
    duty or did not acknowledge in time; `cleared`: the officer finished their part."""

    alert_id: str
    officer_id: str
    outcome: ClaimOutcome
    reason: str = ""
    officer: OfficerState | None = None
    booking: int = Field(
        default=0,
        ge=0,
        description="The officer's booking this word is about (OfficerState.booking; 0 for a "
        "rejection): after a crash an alert may hear a word again, late, and must not take an "
        "earlier booking's word for the current one.",
    )


class WaitingAlert(Message):
    """Internal: an alert missing units, on the waiting board (global table `alerts-waiting`,
    keyed by alert_id, written by the alert's partition) that every worker mirrors, so the
    partition of an officer who frees up can hand them to the most urgent alert within reach."""

    alert_id: str
    priority: int
    event_utc_ms: UtcMs
    lat: float
    lon: float
    radius_m: float
    units_open: int = Field(ge=0, description="0: no longer waiting (kept until forgotten).")
    refused: dict[str, int] = Field(default_factory=dict)
    wake_utc_ms: int | None = Field(
        default=None,
        description="When the alert's partition looks at it again (escalation, "
        "a refusal running out, a first re-check).",
    )
    version: int


class AlertProgress(Message):
    """Internal: an open alert's dispatch progress (the `alerts-open` table's value)."""

    alert: AlertCall
    units_needed: int = Field(ge=1)
    assigned: tuple[str, ...] = Field(default=(), description="Officers holding the alert now.")
    pending: tuple[str, ...] = Field(default=(), description="Officers claimed, not answered.")
    served: tuple[str, ...] = Field(
        default=(),
        description="Officers who cleared their part (units done; they may serve again).",
    )
    refused: dict[str, int] = Field(
        default_factory=dict,
        description="Officer -> until when (UTC ms) they are not proposed again for this alert.",
    )
    replacements_owed: int = Field(default=0, ge=0, description="Units withdrawn, not replaced.")
    reasons: dict[str, Literal["dispatch", "backup", "reassignment"]] = Field(
        default_factory=dict, description="Why each officer was assigned (to announce it again)."
    )
    bookings: dict[str, int] = Field(
        default_factory=dict,
        description="Officer -> the newest of their bookings this alert has heard of: a word "
        "about an older one (handled again after a crash) is stale.",
    )
    backups: int = 0
    radius_step: int = Field(default=0, ge=0, description="0: the base radius; k: k-th widening.")
    noticed_step: int = Field(default=-1, description="Radius step last announced as waiting.")
    opened_utc_ms: int = Field(default=0, description="When dispatch first saw the alert.")
    board: WaitingAlert | None = Field(
        default=None, description="Its entry on the waiting board as last written."
    )
    complete_utc_ms: int | None = None


class DeadLetterHeaders(Message):
    """Headers on a dead letter (topic `deadletter`); the record's key and value are the original
    bytes, untouched."""

    reason: Reason
    message: str = Field(description="What was wrong, for people (at most 1,000 characters).")
    source_topic: str
    source_partition: int
    source_offset: int
    station_id: str = Field(default="", description="The event's station, when it names one.")
    dead_utc_ms: UtcMs
    original_bytes: int | None = Field(
        default=None,
        description="Reason oversized only: the original value's size; the record keeps its "
        "first bytes.",
    )
    original_sha256: str | None = Field(
        default=None, description="Reason oversized only: SHA-256 (hex) of the original value."
    )


PUBLISHED_MODELS: dict[str, type[Message]] = {
    "gps_ping": GpsPing,
    "alert_call": AlertCall,
    "officer_state": OfficerState,
    "officer_position": OfficerPosition,
    "assignment": Assignment,
    "dead_letter_headers": DeadLetterHeaders,
    "officer_status_change": OfficerStatusChange,
    "camera_meta": CameraMeta,
    "backup_request": BackupRequest,
    "dispatch_event": DispatchEvent,
    "unassigned_notice": UnassignedNotice,
    "claim": Claim,
    "claim_result": ClaimResult,
}
