"""Dispatch decisions as pure functions over typed state: how many units an alert needs, who is a
candidate, how a claim on an officer is decided, the officer's status lifecycle, what an answer
means for the alert, when a waiting alert widens its search, and its entry on the waiting board.

The protocol (see docs/ARCHITECTURE.md): the alert's partition proposes the nearest candidates
and sends one `Claim` per unit to the officer's partition; the officer's partition is the only
writer of that officer's state, so it accepts at most one alert per officer; the answer comes
back to the alert's partition, which publishes the assignment or tries the next candidate. An
alert that cannot get its units waits on the waiting board; the partition of an officer who
frees up books them for the most urgent waiting alert within reach and tells that alert."""

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
    DispatchEventKind,
    OfficerRelease,
    OfficerState,
    OfficerStatusChange,
    OfficerStatusValue,
    WaitingAlert,
)
from streams.dispatch.eta import eta_seconds
from streams.timestd import format_iso

DEFAULT_UNITS_BY_PRIORITY: Mapping[int, int] = MappingProxyType({1: 2, 2: 1, 3: 1, 4: 1, 5: 1})
AssignmentReason = Literal["dispatch", "backup", "reassignment"]


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    radius_m: float = 5000.0
    # A waiting alert widens its search to these radii, one step per `escalate_after_ms` waited;
    # alerts this urgent or more (priority <= escalate_at_once_priority) widen at once.
    escalation_radii_m: tuple[float, ...] = (10_000.0, 20_000.0)
    escalate_after_ms: int = 120_000
    escalate_at_once_priority: int = 1
    max_position_age_ms: int = 300_000
    ack_timeout_ms: int = 60_000
    # An officer who declined an alert, withdrew from it or did not acknowledge it in time is
    # not proposed for that alert again for this long (other alerts may have them at once).
    refusal_hold_ms: int = 600_000
    # A newly waiting alert looks once more one tick later: what another worker's tables said
    # a moment ago may have reached this one by then.
    recheck_ms: int = 1000
    supervisor_priority: int = 1  # this priority and more urgent ones notify a supervisor
    history_window_ms: int = 30 * 24 * 3600 * 1000
    camera_radius_m: float = 300.0
    keep_complete_ms: int = 3600 * 1000  # finished alerts are remembered this long (replays)
    keep_held_ms: int = 12 * 3600 * 1000  # ... and assigned ones whose officers never cleared
    position_write_interval_ms: int = 10_000  # replicate a same-cell position at most this often
    units_by_priority: Mapping[int, int] = field(default_factory=lambda: DEFAULT_UNITS_BY_PRIORITY)
    travel_mode: str = "car"

    @property
    def radii_m(self) -> tuple[float, ...]:
        return (self.radius_m, *self.escalation_radii_m)


def units_for(alert: AlertCall, policy: DispatchPolicy) -> int:
    return policy.units_by_priority.get(alert.priority, 1)


def is_candidate(state: OfficerState | None, at_ms: int, policy: DispatchPolicy) -> bool:
    """Available, holding nothing, with a known position no older than the policy allows."""
    if state is None or state.status is not OfficerStatusValue.AVAILABLE or state.alert_id:
        return False
    if state.position_utc_ms is None or state.lat is None:
        return False
    return at_ms - state.position_utc_ms <= policy.max_position_age_ms


def urgency(priority: int, event_utc_ms: int, alert_id: str) -> tuple[int, int, str]:
    """Waiting alerts are served in this order: most urgent, then oldest."""
    return priority, event_utc_ms, alert_id


# -- the alert's side ---------------------------------------------------------------------------
def open_alert(alert: AlertCall, policy: DispatchPolicy, now_ms: int) -> AlertProgress:
    return AlertProgress(alert=alert, units_needed=units_for(alert, policy), opened_utc_ms=now_ms)


def units_missing(progress: AlertProgress) -> int:
    held = len(progress.assigned) + len(progress.served) + len(progress.pending)
    return progress.units_needed - held


def active_refusals(progress: AlertProgress, now_ms: int) -> dict[str, int]:
    return {oid: until for oid, until in progress.refused.items() if until > now_ms}


def excluded_officers(progress: AlertProgress, now_ms: int) -> frozenset[str]:
    """Officers not to propose for this alert now: holding or asked for it already, or a refusal
    holds. One who cleared their part may come again (units are presence at the scene: a
    backup can bring back the officer who left)."""
    return frozenset((*progress.assigned, *progress.pending, *active_refusals(progress, now_ms)))


def radius_of(progress: AlertProgress, policy: DispatchPolicy) -> float:
    radii = policy.radii_m
    return radii[min(progress.radius_step, len(radii) - 1)]


def can_widen(progress: AlertProgress, policy: DispatchPolicy) -> bool:
    return progress.radius_step < len(policy.escalation_radii_m)


def widens_at_once(progress: AlertProgress, policy: DispatchPolicy) -> bool:
    return progress.alert.priority <= policy.escalate_at_once_priority and can_widen(
        progress, policy
    )


def waited_ms(progress: AlertProgress, now_ms: int) -> int:
    return max(0, now_ms - progress.opened_utc_ms)


def step_due(progress: AlertProgress, policy: DispatchPolicy, now_ms: int) -> int:
    """The radius step a waiting alert has earned by waiting (never narrower than it is)."""
    if policy.escalate_after_ms <= 0:
        earned = len(policy.escalation_radii_m)
    else:
        earned = waited_ms(progress, now_ms) // policy.escalate_after_ms
    return max(progress.radius_step, min(earned, len(policy.escalation_radii_m)))


def next_wake_ms(progress: AlertProgress, policy: DispatchPolicy, now_ms: int) -> int | None:
    """When a waiting alert must look again although nothing happened: its next widening, or a
    refusal running out (that officer may then be proposed again)."""
    wakes = [until for until in active_refusals(progress, now_ms).values()]
    if can_widen(progress, policy) and policy.escalate_after_ms > 0:
        wakes.append(progress.opened_utc_ms + (progress.radius_step + 1) * policy.escalate_after_ms)
    return min(wakes, default=None)


def claim_candidates(
    progress: AlertProgress, candidates: list[str], now_ms: int
) -> tuple[AlertProgress, list[Claim]]:
    """Claims for as many of `candidates` (nearest first) as units are missing."""
    excluded = excluded_officers(progress, now_ms)
    chosen = [oid for oid in candidates if oid not in excluded][: max(0, units_missing(progress))]
    if not chosen:
        return progress, []
    claims = [
        Claim(kind="claim", alert_id=progress.alert.alert_id, officer_id=oid, alert_utc_ms=now_ms)
        for oid in chosen
    ]
    return progress.model_copy(update={"pending": (*progress.pending, *chosen)}), claims


def release_claim(alert_id: str, officer_id: str, at_utc_ms: int, booking: int = 0) -> Claim:
    """Give back an officer (their booking `booking`) an alert holds but does not need."""
    return Claim(
        kind="release",
        alert_id=alert_id,
        officer_id=officer_id,
        alert_utc_ms=at_utc_ms,
        booking=booking,
    )


def is_stale(progress: AlertProgress, result: ClaimResult) -> bool:
    """A word about an officer's booking older than the newest one this alert has heard of
    (handled again after a crash: claim results replayed from the last commit, an acceptance
    answered again to a claim asked again by recovery). 0: the booking is not known."""
    return 0 < result.booking < progress.bookings.get(result.officer_id, 0)


def waiting_entry(progress: AlertProgress, policy: DispatchPolicy, now_ms: int) -> WaitingAlert:
    """The alert's entry on the waiting board as it should now read (units_open 0: served).
    Its version is the last written one's; `board_update` decides on a write."""
    missing = units_missing(progress)
    last = progress.board
    if missing <= 0:
        if last is not None and last.units_open == 0:
            return last
        # Served: on the board all the same (closed), so that an officer's partition taking
        # an officer back from it (ack timeout) can rank it at once, before its own write.
        return _entry(progress, policy, 0, {}, None, last)
    newly_waiting = last is None or last.units_open == 0
    wake = next_wake_ms(progress, policy, now_ms)
    if newly_waiting:
        recheck = now_ms + policy.recheck_ms
        wake = recheck if wake is None else min(wake, recheck)
    kept_wake = wake if newly_waiting or last is None else _kept_wake(last, wake, now_ms)
    return _entry(progress, policy, missing, active_refusals(progress, now_ms), kept_wake, last)


def _entry(
    progress: AlertProgress,
    policy: DispatchPolicy,
    units_open: int,
    refused: dict[str, int],
    wake_ms: int | None,
    last: WaitingAlert | None,
) -> WaitingAlert:
    alert = progress.alert
    return WaitingAlert(
        alert_id=alert.alert_id,
        priority=alert.priority,
        event_utc_ms=alert.event_utc_ms,
        lat=alert.lat,
        lon=alert.lon,
        radius_m=radius_of(progress, policy),
        units_open=units_open,
        refused=refused,
        wake_utc_ms=wake_ms,
        version=0 if last is None else last.version,
    )


def _kept_wake(last: WaitingAlert, wake: int | None, now_ms: int) -> int | None:
    """A pending first re-check is kept until it has run."""
    if last.wake_utc_ms is not None and last.wake_utc_ms > now_ms:
        return last.wake_utc_ms if wake is None else min(wake, last.wake_utc_ms)
    return wake


def board_update(progress: AlertProgress, entry: WaitingAlert) -> WaitingAlert | None:
    """The entry to write when it differs from the one last written (with the next version)."""
    last = progress.board
    if last is not None and entry == last:
        return None
    return entry.model_copy(update={"version": (0 if last is None else last.version) + 1})


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    """What an answer from an officer's partition means for the alert: its new progress, an
    officer to assign (and why), a release to send back (an accepted officer the alert does not
    need), and whether to propose again."""

    progress: AlertProgress
    assign: OfficerState | None = None
    reason: AssignmentReason = "dispatch"
    release: Claim | None = None
    propose: bool = False


def apply_claim_result(
    progress: AlertProgress, result: ClaimResult, policy: DispatchPolicy, now_ms: int
) -> ResultOutcome:
    oid = result.officer_id
    pending = tuple(p for p in progress.pending if p != oid)
    if result.outcome == "rejected":
        # Taken meanwhile (this worker's view of them was behind): passed over for a moment,
        # so the next proposal does not ask again before the view catches up.
        until = max(progress.refused.get(oid, 0), now_ms + policy.recheck_ms)
        passed_over = {"pending": pending, "refused": {**progress.refused, oid: until}}
        return ResultOutcome(progress.model_copy(update=passed_over), propose=True)
    if is_stale(progress, result):
        return ResultOutcome(progress)  # about an earlier booking: that one is over
    if result.outcome == "cleared":
        if oid not in progress.assigned:
            return ResultOutcome(progress)
        assigned = tuple(a for a in progress.assigned if a != oid)
        served = (*progress.served, oid)
        return ResultOutcome(progress.model_copy(update={"assigned": assigned, "served": served}))
    if result.outcome == "withdrawn":
        if oid not in progress.assigned and oid not in progress.pending:
            return ResultOutcome(progress)  # a repeat: already handled
        owed = progress.replacements_owed + (1 if oid in progress.assigned else 0)
        update: dict[str, object] = {
            "assigned": tuple(a for a in progress.assigned if a != oid),
            "pending": pending,
            "refused": {**progress.refused, oid: now_ms + policy.refusal_hold_ms},
            "replacements_owed": owed,
        }
        return ResultOutcome(progress.model_copy(update=update), propose=True)
    return _accepted(progress, result, pending, now_ms)


def _accepted(
    progress: AlertProgress, result: ClaimResult, pending: tuple[str, ...], now_ms: int
) -> ResultOutcome:
    """An officer booked for the alert: asked for (pending) or offered from the waiting board.
    The same booking heard again once the officer has left it (cleared, withdrawn, given back)
    is over: taking it as new booked them again, wherever they were by then."""
    oid = result.officer_id
    if oid in progress.assigned:
        return ResultOutcome(progress.model_copy(update={"pending": pending}))  # a repeat
    if result.booking and result.booking == progress.bookings.get(oid):
        return ResultOutcome(progress)  # that booking is over here
    bookings = {**progress.bookings, oid: result.booking} if result.booking else progress.bookings
    wanted = oid in progress.pending or units_missing(progress) > 0
    if not wanted or oid in active_refusals(progress, now_ms):
        release = release_claim(progress.alert.alert_id, oid, now_ms, result.booking)
        update_released = {"pending": pending, "bookings": bookings}
        return ResultOutcome(progress.model_copy(update=update_released), release=release)
    update: dict[str, object] = {
        "pending": pending,
        "assigned": (*progress.assigned, oid),
        "bookings": bookings,
    }
    reason: AssignmentReason = "dispatch"
    if progress.replacements_owed > 0:
        reason = "reassignment"
        update["replacements_owed"] = progress.replacements_owed - 1
    elif len(progress.assigned) + len(progress.served) >= progress.units_needed - progress.backups:
        reason = "backup"
    update["reasons"] = {**progress.reasons, oid: reason}
    return ResultOutcome(progress.model_copy(update=update), assign=result.officer, reason=reason)


def add_backup(progress: AlertProgress, units: int) -> AlertProgress:
    return progress.model_copy(
        update={
            "units_needed": progress.units_needed + units,
            "backups": progress.backups + units,
            "complete_utc_ms": None,
        }
    )


def mark_progress(progress: AlertProgress, now_ms: int) -> AlertProgress:
    """Stamp completion once every unit is held or served (kept a while to recognise replays)."""
    complete = len(progress.assigned) + len(progress.served) >= progress.units_needed
    complete = complete and not progress.pending
    if complete and progress.complete_utc_ms is None:
        return progress.model_copy(update={"complete_utc_ms": now_ms})
    if not complete and progress.complete_utc_ms is not None:
        return progress.model_copy(update={"complete_utc_ms": None})
    return progress


def forgettable(progress: AlertProgress, policy: DispatchPolicy, now_ms: int) -> bool:
    """Done long enough ago: every unit cleared (or held for a very long time)."""
    done_at = progress.complete_utc_ms
    if done_at is None:
        return False
    keep = policy.keep_held_ms if progress.assigned else policy.keep_complete_ms
    return now_ms - done_at > keep


# -- the officer's side -------------------------------------------------------------------------
def _answer(
    claim: Claim,
    outcome: Literal["accepted", "rejected"],
    reason: str = "",
    officer: OfficerState | None = None,
) -> ClaimResult:
    return ClaimResult(
        alert_id=claim.alert_id,
        officer_id=claim.officer_id,
        outcome=outcome,
        reason=reason,
        officer=officer,
        booking=0 if officer is None else officer.booking,
    )


def book(state: OfficerState, alert_id: str, now_ms: int) -> OfficerState:
    """The officer dispatched to `alert_id`, stamped with the time of the decision: a status the
    app sent before it (an older `available`) is then stale and cannot free them silently.
    Numbered: every word about this booking carries its number."""
    return state.model_copy(
        update={
            "status": OfficerStatusValue.DISPATCHED,
            "alert_id": alert_id,
            "dispatched_utc_ms": now_ms,
            "status_utc_ms": max(state.status_utc_ms, now_ms),
            "booking": state.booking + 1,
        }
    )


def freed(state: OfficerState, status: OfficerStatusValue, at_ms: int) -> OfficerState:
    return state.model_copy(
        update={
            "status": status,
            "alert_id": None,
            "dispatched_utc_ms": None,
            "status_utc_ms": max(state.status_utc_ms, at_ms),
        }
    )


def decide_claim(
    state: OfficerState | None, claim: Claim, policy: DispatchPolicy, now_ms: int
) -> tuple[OfficerState | None, ClaimResult | None]:
    """The officer partition's decision on a claim or a release: the officer's new state (None:
    unchanged) and the answer for the alert (None for a release: nobody waits for it)."""
    if claim.kind == "release":
        if state is None or state.alert_id != claim.alert_id:
            return None, None
        if claim.booking and claim.booking != state.booking:
            return None, None  # an earlier booking of the same alert: already over
        return freed(state, OfficerStatusValue.AVAILABLE, now_ms), None
    if state is not None and state.alert_id == claim.alert_id:
        # A replayed claim after a crash: the answer is the same, the state does not change.
        return None, _answer(claim, "accepted", officer=state)
    if not is_candidate(state, now_ms, policy):
        if state is None:
            return None, _answer(claim, "rejected", "unknown_officer")
        held = f" ({state.alert_id})" if state.alert_id else ""
        return None, _answer(claim, "rejected", f"not_available:{state.status.value}{held}")
    assert state is not None
    booked = book(state, claim.alert_id, now_ms)
    return booked, _answer(claim, "accepted", officer=booked)


def offer(state: OfficerState, alert_id: str, now_ms: int) -> tuple[OfficerState, ClaimResult]:
    """A free officer booked for a waiting alert by their own partition, and the word to it."""
    booked = book(state, alert_id, now_ms)
    result = ClaimResult(
        alert_id=alert_id,
        officer_id=state.officer_id,
        outcome="accepted",
        officer=booked,
        booking=booked.booking,
    )
    return booked, result


ACKNOWLEDGED = frozenset({OfficerStatusValue.EN_ROUTE, OfficerStatusValue.ON_SCENE})
AT_SCENE = frozenset({OfficerStatusValue.ON_SCENE, OfficerStatusValue.BUSY})


@dataclass(frozen=True, slots=True)
class StatusOutcome:
    """An app's status change applied: the officer's new state (None: ignored), the word to the
    alert they held (withdrawn, cleared), and the events for the command room about that alert."""

    state: OfficerState | None = None
    notice: ClaimResult | None = None
    events: tuple[DispatchEventKind, ...] = ()
    alert_id: str | None = None


def apply_status(state: OfficerState | None, change: OfficerStatusChange) -> StatusOutcome:
    """The lifecycle: dispatched -> en_route (acknowledged) -> on_scene (arrived) -> available
    (cleared). Before arriving, `available`, `declined`, `busy` or `off_duty` withdraw the
    officer from the alert. A change older than the last accepted one is stale, except an
    acknowledgement that names the alert held (phones' clocks drift)."""
    if state is None:
        state = OfficerState(officer_id=change.officer_id, status_utc_ms=0)
    replayed = _replayed(state, change)
    if replayed is not None:
        return replayed
    status, held = change.status, state.alert_id
    names_held = held is not None and change.alert_id == held
    if change.event_utc_ms < state.status_utc_ms and not (names_held and status in ACKNOWLEDGED):
        return StatusOutcome()
    if status is OfficerStatusValue.DISPATCHED:
        return StatusOutcome()  # only a claim books an officer
    at = change.event_utc_ms
    if held is None:
        if status is OfficerStatusValue.DECLINED:
            return StatusOutcome()  # nothing to decline
        return StatusOutcome(freed(state, status, at))
    if status in ACKNOWLEDGED:
        return _progressed(state, status, at, held)
    if status is OfficerStatusValue.BUSY and state.status in AT_SCENE:
        return StatusOutcome(
            state.model_copy(
                update={"status": status, "status_utc_ms": max(state.status_utc_ms, at)}
            )
        )
    if state.status in AT_SCENE:  # available or off duty after arriving: their part is done
        done = OfficerStatusValue.OFF_DUTY if status is OfficerStatusValue.OFF_DUTY else None
        notice = ClaimResult(
            alert_id=held, officer_id=state.officer_id, outcome="cleared", booking=state.booking
        )
        cleared = _released(freed(state, done or OfficerStatusValue.AVAILABLE, at), notice, change)
        return StatusOutcome(cleared, notice, ("cleared",), held)
    after: OfficerStatusValue = (
        OfficerStatusValue.AVAILABLE if status is OfficerStatusValue.DECLINED else status
    )
    notice = ClaimResult(
        alert_id=held,
        officer_id=state.officer_id,
        outcome="withdrawn",
        reason=status.value,
        booking=state.booking,
    )
    return StatusOutcome(
        _released(freed(state, after, at), notice, change), notice, ("withdrawn",), held
    )


def _released(
    state: OfficerState, notice: ClaimResult, change: OfficerStatusChange
) -> OfficerState:
    assert notice.outcome in ("cleared", "withdrawn")
    release = OfficerRelease(
        alert_id=notice.alert_id,
        outcome=notice.outcome,
        reason=notice.reason,
        status=change.status,
        at_utc_ms=change.event_utc_ms,
        booking=notice.booking,
    )
    return state.model_copy(update={"last_release": release})


def _replayed(state: OfficerState, change: OfficerStatusChange) -> StatusOutcome | None:
    """The status event that made the officer's current state, handled again (Faust is
    at-least-once: a crash after the table write and before what it announced went out):
    announce it again, state unchanged. The alert drops a notice it already had, consumers drop
    the repeated event by kind, alert, officer and time. Before, the replay changed nothing and
    announced nothing, so the alert never heard its officer had cleared or withdrawn. The officer
    may have gone on meanwhile (a clear that freed them for a waiting alert booked them for it
    in the same event): the release is matched on its own, not on the current state."""
    release = state.last_release
    if (
        release is not None
        and release.at_utc_ms == change.event_utc_ms
        and release.status is change.status
        and change.alert_id in (None, release.alert_id)
    ):
        notice = ClaimResult(
            alert_id=release.alert_id,
            officer_id=state.officer_id,
            outcome=release.outcome,
            reason=release.reason,
            booking=release.booking,
        )
        return StatusOutcome(None, notice, (release.outcome,), release.alert_id)
    if change.event_utc_ms != state.status_utc_ms or state.alert_id is None:
        return None
    if (
        change.status is not state.status
        or change.status not in ACKNOWLEDGED
        or change.alert_id not in (None, state.alert_id)
    ):
        return None
    kind: DispatchEventKind = (
        "acknowledged" if change.status is OfficerStatusValue.EN_ROUTE else "arrived"
    )
    return StatusOutcome(None, None, (kind,), state.alert_id)


def _progressed(
    state: OfficerState, status: OfficerStatusValue, at: int, held: str
) -> StatusOutcome:
    """En route or on scene for the alert held; on scene straight away acknowledges too."""
    order = {OfficerStatusValue.DISPATCHED: 0, OfficerStatusValue.EN_ROUTE: 1}
    before = order.get(state.status, 2)
    after = order.get(status, 2)
    if after <= before:
        return StatusOutcome()  # a repeat, or en route reported after arriving
    events: tuple[DispatchEventKind, ...] = ("acknowledged",) if before == 0 else ()
    if status is OfficerStatusValue.ON_SCENE:
        events = (*events, "arrived")
    updated = state.model_copy(
        update={
            "status": status,
            "dispatched_utc_ms": None,  # acknowledged: the ack timer stops
            "status_utc_ms": max(state.status_utc_ms, at),
        }
    )
    return StatusOutcome(updated, None, events, held)


def ack_expired(state: OfficerState, policy: DispatchPolicy, now_ms: int) -> bool:
    return (
        state.status is OfficerStatusValue.DISPATCHED
        and state.dispatched_utc_ms is not None
        and now_ms - state.dispatched_utc_ms > policy.ack_timeout_ms
    )


def release_unacknowledged(state: OfficerState, now_ms: int) -> tuple[OfficerState, ClaimResult]:
    """An officer who did not acknowledge in time: free again, and the alert is told."""
    assert state.alert_id is not None
    released = freed(state, OfficerStatusValue.AVAILABLE, now_ms)
    withdrawal = ClaimResult(
        alert_id=state.alert_id,
        officer_id=state.officer_id,
        outcome="withdrawn",
        reason="ack_timeout",
        officer=released,
        booking=state.booking,
    )
    return released, withdrawal


def assignment_id(alert_id: str, officer_id: str, turn: int = 1) -> str:
    """An assignment's id, the key a consumer drops repeats by: the same for a booking announced
    again (recovery), new for the same officer sent to the same alert again after clearing
    their part (`turn` 2, 3, ...), which their app must not drop as a repeat."""
    return f"{alert_id}:{officer_id}" if turn == 1 else f"{alert_id}:{officer_id}:{turn}"


def build_assignment(
    alert: AlertCall,
    officer: OfficerState,
    distance_m: float,
    *,
    policy: DispatchPolicy,
    assigned_utc_ms: int,
    zone: str,
    units_needed: int = 1,
    turn: int = 1,
    reason: AssignmentReason = "dispatch",
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
        assignment_id=assignment_id(alert.alert_id, officer.officer_id, turn),
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
