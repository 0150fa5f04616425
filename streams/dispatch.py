"""Dispatch decisions as pure functions over typed state: how many units an alert needs, who is a
candidate, how a claim on an officer is decided, and what an answered claim means for the alert.

The protocol (see docs/ARCHITECTURE.md): the alert's partition proposes the nearest candidates
and sends one `Claim` per unit to the officer's partition; the officer's partition is the only
writer of that officer's state, so it accepts at most one alert per officer; the answer comes
back to the alert's partition, which publishes the assignment or tries the next candidate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from schemas.events import (
    AlertCall,
    AlertProgress,
    AssignedAlert,
    AssignedOfficer,
    Assignment,
    BackgroundAlert,
    BodyCamera,
    CameraRef,
    Claim,
    ClaimResult,
    OfficerState,
    OfficerStatusChange,
    OfficerStatusValue,
)
from streams.eta import eta_seconds
from streams.timefmt import format_iso

DEFAULT_UNITS_BY_PRIORITY: Mapping[int, int] = MappingProxyType({1: 2, 2: 1, 3: 1, 4: 1, 5: 1})


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    radius_m: float = 5000.0
    max_position_age_ms: int = 300_000
    ack_timeout_ms: int = 60_000
    supervisor_priority: int = 1  # this priority and more urgent ones notify a supervisor
    history_window_ms: int = 30 * 24 * 3600 * 1000
    camera_radius_m: float = 300.0
    keep_complete_ms: int = 3600 * 1000  # how long finished alerts are remembered (replays)
    position_write_interval_ms: int = 10_000  # replicate a same-cell position at most this often
    units_by_priority: Mapping[int, int] = field(default_factory=lambda: DEFAULT_UNITS_BY_PRIORITY)
    travel_mode: str = "car"


def units_for(alert: AlertCall, policy: DispatchPolicy) -> int:
    return policy.units_by_priority.get(alert.priority, 1)


def is_candidate(state: OfficerState | None, alert_utc_ms: int, policy: DispatchPolicy) -> bool:
    """Available, with a known position no older than the policy allows at the alert's time."""
    if state is None or state.status is not OfficerStatusValue.AVAILABLE:
        return False
    if state.position_utc_ms is None or state.lat is None:
        return False
    return alert_utc_ms - state.position_utc_ms <= policy.max_position_age_ms


def open_alert(alert: AlertCall, policy: DispatchPolicy) -> AlertProgress:
    return AlertProgress(alert=alert, units_needed=units_for(alert, policy))


def units_missing(progress: AlertProgress) -> int:
    return progress.units_needed - len(progress.assigned) - len(progress.pending)


def excluded_officers(progress: AlertProgress) -> frozenset[str]:
    return frozenset(progress.assigned) | frozenset(progress.pending) | frozenset(progress.tried)


def claim_candidates(
    progress: AlertProgress, candidates: list[str]
) -> tuple[AlertProgress, list[Claim]]:
    """Claims for as many of `candidates` (nearest first) as units are missing."""
    excluded = excluded_officers(progress)
    chosen = [oid for oid in candidates if oid not in excluded][: max(0, units_missing(progress))]
    if not chosen:
        return progress, []
    claims = [
        Claim(
            kind="claim",
            alert_id=progress.alert.alert_id,
            officer_id=oid,
            alert_utc_ms=progress.alert.event_utc_ms,
        )
        for oid in chosen
    ]
    return progress.model_copy(update={"pending": (*progress.pending, *chosen)}), claims


def release_claim(alert_id: str, officer_id: str, at_utc_ms: int) -> Claim:
    """Give back an officer an alert holds but does not need."""
    return Claim(kind="release", alert_id=alert_id, officer_id=officer_id, alert_utc_ms=at_utc_ms)


def decide_claim(
    state: OfficerState | None, claim: Claim, policy: DispatchPolicy, now_ms: int
) -> tuple[OfficerState | None, ClaimResult]:
    """The officer partition's decision. Returns the officer's new state (None: unchanged)."""
    if claim.kind == "release":
        if state is None or state.alert_id != claim.alert_id:
            return None, _answer(claim, accepted=False, reason="not_assigned_to_alert")
        released = state.model_copy(
            update={
                "status": OfficerStatusValue.AVAILABLE,
                "alert_id": None,
                "dispatched_utc_ms": None,
            }
        )
        return released, _answer(claim, accepted=True, officer=released)
    if state is not None and state.alert_id == claim.alert_id:
        # A replayed claim after a crash: the answer is the same, the state does not change.
        return None, _answer(claim, accepted=True, officer=state)
    if not is_candidate(state, claim.alert_utc_ms, policy):
        reason = "unknown_officer" if state is None else f"not_available:{state.status.value}"
        return None, _answer(claim, accepted=False, reason=reason)
    assert state is not None
    booked = state.model_copy(
        update={
            "status": OfficerStatusValue.DISPATCHED,
            "alert_id": claim.alert_id,
            "dispatched_utc_ms": now_ms,
            "status_utc_ms": max(state.status_utc_ms, claim.alert_utc_ms),
        }
    )
    return booked, _answer(claim, accepted=True, officer=booked)


ACKNOWLEDGED = frozenset({OfficerStatusValue.EN_ROUTE, OfficerStatusValue.ON_SCENE})


def apply_status(
    state: OfficerState | None, change: OfficerStatusChange
) -> tuple[OfficerState | None, ClaimResult | None]:
    """The officer's state after a status change from their app (None: ignored as stale or
    meaningless), and the withdrawal to send when they drop an alert they were booked for."""
    if state is None:
        state = OfficerState(officer_id=change.officer_id, status_utc_ms=0)
    if change.event_utc_ms < state.status_utc_ms:
        return None, None
    if change.status is OfficerStatusValue.DISPATCHED:
        return None, None  # only a claim books an officer
    holding = state.alert_id
    update: dict[str, object] = {"status": change.status, "status_utc_ms": change.event_utc_ms}
    withdrawal = None
    if change.status in ACKNOWLEDGED:
        update["dispatched_utc_ms"] = None  # acknowledged: the ack timer stops
    elif change.status is OfficerStatusValue.BUSY and holding:
        pass  # busy at the scene of their own alert
    elif holding:
        update["alert_id"] = None
        update["dispatched_utc_ms"] = None
        if change.status is OfficerStatusValue.OFF_DUTY and state.dispatched_utc_ms is not None:
            withdrawal = ClaimResult(
                alert_id=holding,
                officer_id=state.officer_id,
                accepted=False,
                revoked=True,
                reason="went_off_duty",
            )
    return state.model_copy(update=update), withdrawal


def ack_expired(state: OfficerState, policy: DispatchPolicy, now_ms: int) -> bool:
    return (
        state.status is OfficerStatusValue.DISPATCHED
        and state.dispatched_utc_ms is not None
        and now_ms - state.dispatched_utc_ms > policy.ack_timeout_ms
    )


def release_unacknowledged(state: OfficerState, now_ms: int) -> tuple[OfficerState, ClaimResult]:
    """An officer who did not acknowledge in time: free again, and the alert is told."""
    assert state.alert_id is not None
    released = state.model_copy(
        update={
            "status": OfficerStatusValue.AVAILABLE,
            "alert_id": None,
            "dispatched_utc_ms": None,
            "status_utc_ms": max(state.status_utc_ms, now_ms),
        }
    )
    withdrawal = ClaimResult(
        alert_id=state.alert_id,
        officer_id=state.officer_id,
        accepted=False,
        revoked=True,
        reason="ack_timeout",
        officer=released,
    )
    return released, withdrawal


def add_backup(progress: AlertProgress, units: int) -> AlertProgress:
    return progress.model_copy(
        update={
            "units_needed": progress.units_needed + units,
            "backups": progress.backups + units,
            "complete_utc_ms": None,
            "waiting_noticed": False,
        }
    )


def mark_progress(progress: AlertProgress, now_ms: int) -> AlertProgress:
    """Stamp completion once every unit is assigned (kept a while to recognise replays)."""
    complete = len(progress.assigned) >= progress.units_needed and not progress.pending
    if complete and progress.complete_utc_ms is None:
        return progress.model_copy(update={"complete_utc_ms": now_ms})
    if not complete and progress.complete_utc_ms is not None:
        return progress.model_copy(update={"complete_utc_ms": None})
    return progress


def _answer(
    claim: Claim, *, accepted: bool, reason: str = "", officer: OfficerState | None = None
) -> ClaimResult:
    return ClaimResult(
        alert_id=claim.alert_id,
        officer_id=claim.officer_id,
        accepted=accepted,
        reason=reason,
        officer=officer,
    )


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    """What an answered claim means: the alert's new progress, an officer to assign, or a
    release to send back (an accepted claim the alert no longer needs)."""

    progress: AlertProgress
    assign: OfficerState | None = None
    release: Claim | None = None


def apply_claim_result(progress: AlertProgress, result: ClaimResult) -> ResultOutcome:
    oid = result.officer_id
    pending = tuple(p for p in progress.pending if p != oid)
    if result.revoked:
        assigned = tuple(a for a in progress.assigned if a != oid)
        tried = progress.tried if oid in progress.tried else (*progress.tried, oid)
        update = {"assigned": assigned, "pending": pending, "tried": tried}
        return ResultOutcome(progress.model_copy(update=update))
    if not result.accepted:
        tried = progress.tried if oid in progress.tried else (*progress.tried, oid)
        return ResultOutcome(progress.model_copy(update={"pending": pending, "tried": tried}))
    if oid in progress.assigned:
        return ResultOutcome(progress.model_copy(update={"pending": pending}))
    if oid not in progress.pending or len(progress.assigned) >= progress.units_needed:
        release = release_claim(progress.alert.alert_id, oid, progress.alert.event_utc_ms)
        return ResultOutcome(progress.model_copy(update={"pending": pending}), release=release)
    updated = progress.model_copy(
        update={"pending": pending, "assigned": (*progress.assigned, oid)}
    )
    return ResultOutcome(updated, assign=result.officer)


def build_assignment(
    alert: AlertCall,
    officer: OfficerState,
    distance_m: float,
    *,
    policy: DispatchPolicy,
    assigned_utc_ms: int,
    zone: str,
    units_needed: int = 1,
    reason: Literal["dispatch", "backup", "reassignment"] = "dispatch",
    cameras: Sequence[CameraRef] = (),
    body_cameras: Sequence[BodyCamera] = (),
    background: Sequence[BackgroundAlert] = (),
) -> Assignment:
    assert officer.lat is not None and officer.lon is not None
    assert officer.position_utc_ms is not None
    return Assignment(
        units_needed=units_needed,
        supervisor_notice=alert.priority <= policy.supervisor_priority,
        reason=reason,
        cameras=list(cameras),
        body_cameras=list(body_cameras),
        background=list(background),
        assignment_id=f"{alert.alert_id}:{officer.officer_id}",
        alert=AssignedAlert(
            alert_id=alert.alert_id,
            category=alert.category,
            priority=alert.priority,
            lat=alert.lat,
            lon=alert.lon,
            address=alert.address,
            description=alert.description,
            event_time=alert.event_time,
            event_utc_ms=alert.event_utc_ms,
        ),
        caller_phone=alert.caller_phone,
        officer=AssignedOfficer(
            officer_id=officer.officer_id,
            station_id=officer.station_id,
            lat=officer.lat,
            lon=officer.lon,
            position_utc_ms=officer.position_utc_ms,
        ),
        distance_m=round(distance_m, 1),
        eta_s=round(eta_seconds(distance_m, mode=policy.travel_mode), 1),
        assigned_time=format_iso(assigned_utc_ms, zone),
        assigned_utc_ms=assigned_utc_ms,
    )
