"""The one routing table of the dispatch flow: which decoder reads each input topic, which handler
gets each typed message, which tables feed which in-memory views, and which internal messages are
delivered where they are made. The live apps (streams/pipeline/apps.py) and replay
(streams/dispatch/replay.py) both read it, so they cannot drift.

Topics are named by their `TopicNames` field (base/topics.py): `alerts_raw`, `claims`, ..."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from base.errors import InvalidEvent, Reason
from schemas.events import (
    AlertCall,
    BackupRequest,
    CameraMeta,
    Claim,
    ClaimResult,
    GpsPing,
    OfficerPosition,
    OfficerState,
    OfficerStatusChange,
    Tick,
    WaitingAlert,
)
from streams.dispatch.cameras import CameraRegistry
from streams.dispatch.handlers import Dispatcher, Outbound, entry_from_json
from streams.dispatch.history import AlertHistory
from streams.dispatch.officer_view import OfficerView
from streams.dispatch.waiting import WaitingBoard
from streams.ingest.alerts import alert_from_raw
from streams.ingest.cameras import camera_from_raw
from streams.ingest.officers import ping_from_raw, status_from_raw

Parser = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Ingest:
    """A raw input topic: `parse` (raw station JSON -> typed model, or InvalidEvent) and the
    normalised topic its result goes to, keyed by `key_field`."""

    raw: str
    normalised: str
    parse: Parser
    key_field: str


INGESTS: tuple[Ingest, ...] = (
    Ingest("gps_raw", "gps", ping_from_raw, "officer_id"),
    Ingest("alerts_raw", "alerts", alert_from_raw, "alert_id"),
    Ingest("status_raw", "status", status_from_raw, "officer_id"),
    Ingest("cameras_raw", "cameras", camera_from_raw, "camera_id"),
)
INGEST_BY_RAW: Mapping[str, Ingest] = {ingest.raw: ingest for ingest in INGESTS}

# Typed topics the handlers read, and their models. `backup` comes typed from the field.
MODELS: Mapping[str, type[BaseModel]] = {
    "gps_by_officer": GpsPing,
    "alerts": AlertCall,
    "status": OfficerStatusChange,
    "cameras": CameraMeta,
    "backup": BackupRequest,
    "claims": Claim,
    "claim_results": ClaimResult,
    "ticks": Tick,
}
# What an input topic's events reach the handlers as (replay feeds inputs straight through).
HANDLED_AS: Mapping[str, str] = {
    "gps_raw": "gps_by_officer",
    "alerts_raw": "alerts",
    "status_raw": "status",
    "cameras_raw": "cameras",
    "backup": "backup",
}
PUBLISHED = ("assignments", "unassigned", "events")


class Inbox(StrEnum):
    """The dispatch app's agents, each reading co-partitioned topics (one writer per key)."""

    OFFICER = "officer-state"  # keyed by officer id: sole writer of each officer's status
    ALERT = "alert-dispatch"  # keyed by alert id: owner of each alert's dispatch progress
    CAMERA = "camera-registry"


INBOXES: Mapping[Inbox, tuple[str, ...]] = {
    Inbox.OFFICER: ("status", "claims", "ticks"),
    Inbox.ALERT: ("alerts", "claim_results", "backup", "ticks"),
    Inbox.CAMERA: ("cameras",),
}


def inbox_of(topic: str) -> Inbox:
    """The inbox that handles `topic` (ticks go to both: pass the inbox to `handle`)."""
    return next(inbox for inbox, topics in INBOXES.items() if topic in topics)


def handle(
    dispatcher: Dispatcher,
    inbox: Inbox,
    topic: str,
    message: BaseModel,
    now_ms: int,
    partition: int,
) -> list[Outbound]:
    """The handler for `message` read from `topic` by `inbox` (`partition`: the event's)."""
    if topic == "ticks":
        assert isinstance(message, Tick)
        if inbox is Inbox.OFFICER:
            return dispatcher.on_officer_tick(message, partition)
        return dispatcher.on_alert_tick(message, partition)
    if isinstance(message, AlertCall):
        return dispatcher.on_alert(message, now_ms)
    if isinstance(message, OfficerStatusChange):
        return dispatcher.on_status(message, now_ms)
    if isinstance(message, Claim):
        return dispatcher.on_claim(message, now_ms)
    if isinstance(message, ClaimResult):
        return dispatcher.on_claim_result(message, now_ms)
    if isinstance(message, BackupRequest):
        return dispatcher.on_backup(message, now_ms)
    assert isinstance(message, CameraMeta), f"no handler for {type(message).__name__}"
    return dispatcher.on_camera(message)


def decode_and_handle(
    dispatcher: Dispatcher, inbox: Inbox, topic: str, value: bytes, now_ms: int, partition: int
) -> list[Outbound]:
    """`handle` for a typed message as it sits on its topic (JSON bytes)."""
    if not value.strip():
        raise InvalidEvent(Reason.EMPTY, "no bytes but whitespace")
    message = MODELS[topic].model_validate_json(value)
    return handle(dispatcher, inbox, topic, message, now_ms, partition)


def deliver_here(
    dispatcher: Dispatcher,
    item: Outbound,
    now_ms: int,
    *,
    decides_for_officer: Callable[[str], bool],
    alert_partition: int,
) -> list[Outbound] | None:
    """What handling an internal message where it is made gives, when it may be (None: send
    it): a claim for an officer this worker decides for (it is that officer's one decider
    either way), an answer for an alert of the partition whose event is being handled."""
    if item.topic == "claims" and decides_for_officer(item.key):
        assert isinstance(item.message, Claim)
        return dispatcher.on_claim(item.message, now_ms)
    if item.topic == "claim_results" and dispatcher.partition_of(item.key) == alert_partition:
        assert isinstance(item.message, ClaimResult)
        return dispatcher.on_claim_result(item.message, now_ms)
    return None


def settle(
    out: Iterable[Outbound], deliver: Callable[[Outbound], list[Outbound] | None]
) -> list[Outbound]:
    """Deliver what can be delivered here (and what that gives, in order); the rest, to send."""
    queue, outgoing = deque(out), []
    while queue:
        item = queue.popleft()
        here = deliver(item)
        if here is None:
            outgoing.append(item)
        else:
            queue.extend(here)
    return outgoing


class Table(StrEnum):
    """The dispatch worker's tables (the changelog is the truth; views are rebuilt from it)."""

    OFFICERS = "officers"  # status, written in each officer's partition
    POSITIONS = "positions"  # written by the positions app, mirrored read-only
    CAMERAS = "cameras"
    HISTORY = "alert-history"
    WAITING = "alerts-waiting"  # the waiting board
    ALERTS_OPEN = "alerts-open"  # not mirrored: read only by the alert's own partition


@dataclass(slots=True)
class Views:
    """The in-memory views a dispatch worker keeps of its global tables."""

    officers: OfficerView
    cameras: CameraRegistry
    history: AlertHistory
    board: WaitingBoard

    @classmethod
    def empty(cls, resolution: int, partition_of: Callable[[str], int]) -> Views:
        return cls(
            OfficerView(resolution, partition_of),
            CameraRegistry(resolution),
            AlertHistory(),
            WaitingBoard(partition_of),
        )

    def apply(self, table: Table, key: str, value: Any | None) -> None:
        """One changelog entry of `table` (None: the key was deleted)."""
        if table is Table.OFFICERS:
            self.officers.apply(key, None if value is None else OfficerState.model_validate(value))
        elif table is Table.POSITIONS:
            if value is not None:
                self.officers.apply_position(OfficerPosition.model_validate(value))
        elif table is Table.CAMERAS:
            self.cameras.apply(key, None if value is None else CameraMeta.model_validate(value))
        elif table is Table.HISTORY:
            if value is None:
                self.history.forget(key)
            else:
                self.history.record(entry_from_json(value))
        elif table is Table.WAITING:
            self.board.apply(key, None if value is None else WaitingAlert.model_validate(value))
        else:
            raise ValueError(f"table {table} has no view")
