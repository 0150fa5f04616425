"""The dispatch flow as plain handlers: each takes one decoded message (and the time) and
returns what to send. The Faust agents in streams/pipeline/apps.py and the broker-free
replay (streams/dispatch/replay.py) call the same handlers, through the one routing table
(streams/dispatch/routing.py), so a replay reproduces the live decisions."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from kafka.partitioner.default import murmur2
from pydantic import BaseModel

from schemas.events import (
    AlertCall,
    AlertProgress,
    BackupRequest,
    CameraMeta,
    Claim,
    ClaimResult,
    DispatchEvent,
    DispatchEventKind,
    OfficerState,
    OfficerStatusChange,
    OfficerStatusValue,
    Tick,
    UnassignedNotice,
)
from streams.dispatch import rules as dispatch
from streams.dispatch.cameras import CameraRegistry
from streams.dispatch.history import AlertHistory, HistoryEntry
from streams.dispatch.nearest import geodesic_m
from streams.dispatch.officer_view import OfficerView
from streams.dispatch.waiting import WaitingBoard

SWEEP_MS = 60_000  # finished alerts and old history are swept this often per partition
# Ticks come every second: a partition not ticked here for longer was someone else's (or this
# worker just started), so what a crash may have left unsent is sent again.
RECOVER_AFTER_GAP_MS = 5_000

TopicName = Literal["claims", "claim_results", "assignments", "unassigned", "events", "ticks"]


@dataclass(frozen=True, slots=True)
class Outbound:
    topic: TopicName
    key: str
    message: BaseModel | dict[str, Any]
    partition: int | None = None


@lru_cache(maxsize=1 << 16)
def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in the Java client and aiokafka)
    puts `key` on: how a tick for partition p finds the officers and alerts it owns. Cached
    (bounded): every tick asks again for each officer and open alert."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class Dispatcher:
    """Officer-side handlers run in the officer's partition (sole writer of `officers`);
    alert-side handlers run in the alert's partition (sole writer of `alerts_open` and of the
    alert's entry in `waiting_store`)."""

    def __init__(
        self,
        *,
        policy: dispatch.DispatchPolicy,
        zone: str,
        partitions: int,
        view: OfficerView,
        cameras: CameraRegistry,
        history: AlertHistory,
        board: WaitingBoard,
        officers: MutableMapping[str, Any],
        alerts_open: MutableMapping[str, Any],
        waiting_store: MutableMapping[str, Any],
        history_store: MutableMapping[str, Any],
        camera_store: MutableMapping[str, Any],
        recover_on_start: bool = True,
    ) -> None:
        """`recover_on_start`: a partition's first tick sends again what a crash may have left
        unsent (False only where nothing can have been: a new replay)."""
        self.policy = policy
        self.zone = zone
        self.partitions = partitions
        self.view = view
        self.cameras = cameras
        self.history = history
        self.board = board
        self.officers = officers
        self.alerts_open = alerts_open
        self.waiting_store = waiting_store
        self.history_store = history_store
        self.camera_store = camera_store
        self._swept_ms: dict[int, int] = {}
        self._ticked_ms: dict[int, int] = {}
        self._officers_ticked_ms: dict[int, int] = {}
        self._recover_on_start = recover_on_start
        # Alerts this worker handled before its first tick of their partition: what it
        # published for them came after the tables' barrier, so there is nothing to send again.
        self._handled_before_tick: dict[int, set[str]] = {}

    def partition_of(self, key: str) -> int:
        return partition_for(key, self.partitions)

    # -- officer side -----------------------------------------------------------------------
    def officer(self, officer_id: str) -> OfficerState | None:
        """The officer's current state on their own partition: the table (authoritative for
        status), with the newest position this worker knows."""
        stored = self.officers.get(officer_id)
        state = None if stored is None else OfficerState.model_validate(stored)
        return self.view.merged(officer_id, state)

    def _set_officer(self, state: OfficerState) -> None:
        self.officers[state.officer_id] = state.model_dump(mode="json")
        self.view.apply(state.officer_id, state)

    def on_status(self, change: OfficerStatusChange, now_ms: int) -> list[Outbound]:
        """The lifecycle (dispatch.apply_status); an officer free again goes to the waiting
        alert that needs them most."""
        outcome = dispatch.apply_status(self.officer(change.officer_id), change)
        if outcome.state is None and outcome.notice is None and not outcome.events:
            return []
        at = change.event_utc_ms  # a replayed event: announced again, state unchanged
        if outcome.state is not None:
            self._set_officer(outcome.state)
            at = outcome.state.status_utc_ms
        out: list[Outbound] = []
        if outcome.notice is not None:
            out.append(Outbound("claim_results", outcome.notice.alert_id, outcome.notice))
        for kind in outcome.events:
            assert outcome.alert_id is not None
            detail = outcome.notice.reason if outcome.notice is not None else ""
            out.append(self._event(kind, outcome.alert_id, change.officer_id, at, detail))
        return out + self._offer(change.officer_id, now_ms)

    def on_claim(self, claim: Claim, now_ms: int) -> list[Outbound]:
        changed, result = dispatch.decide_claim(
            self.officer(claim.officer_id), claim, self.policy, now_ms
        )
        if changed is not None:
            self._set_officer(changed)
        out = [] if result is None else [Outbound("claim_results", claim.alert_id, result)]
        if claim.kind == "release" and changed is not None:
            self.board.note_returned(claim.officer_id, claim.alert_id)
            out.extend(self._offer(claim.officer_id, now_ms))
        return out

    def on_officer_tick(self, tick: Tick, partition: int) -> list[Outbound]:
        """Release officers of this partition who did not acknowledge in time; offer the ones
        who moved or freed up since the last tick to the waiting alerts. The alerts officers
        are taken back from are back on this worker's board at once (before their own write says
        so), so the others go to the most urgent alert; the released ones wait for the next
        tick, by when their alerts have heard they are free."""
        now = tick.now_utc_ms
        out: list[Outbound] = []
        if self._recovering(self._officers_ticked_ms, partition, now):
            out.extend(self._recover_bookings(partition))
        moved = self.view.take_moved(partition)  # before the releases below: theirs is next
        released: set[str] = set()
        for officer_id in sorted(self.view.awaiting_ack):  # deterministic order
            if self.partition_of(officer_id) == partition:
                timed_out = self._time_out(officer_id, now)
                if timed_out:
                    released.add(officer_id)
                    out.extend(timed_out)
        if len(self.board):
            for officer_id in sorted(moved - released):
                out.extend(self._offer(officer_id, now))
        return out

    def _recovering(self, ticked_ms: dict[int, int], partition: int, now_ms: int) -> bool:
        """Whether this tick of `partition` is its first here in a while (a start, or a
        partition taken over): then what a crash may have left unsent is sent again."""
        last_tick = ticked_ms.get(partition)
        if last_tick is None and not self._recover_on_start:
            last_tick = now_ms
        ticked_ms[partition] = now_ms
        return last_tick is None or now_ms - last_tick > RECOVER_AFTER_GAP_MS

    def _recover_bookings(self, partition: int) -> list[Outbound]:
        """Officers of this partition booked and not yet acknowledged: their alerts are told
        again (an offer's word lost in a crash left the alert unaware and the officer booked
        until the ack timeout). An alert drops a word about a booking it already knows."""
        out: list[Outbound] = []
        for officer_id in sorted(self.view.awaiting_ack):
            if self.partition_of(officer_id) != partition:
                continue
            state = self.officer(officer_id)
            if state is None or state.status is not OfficerStatusValue.DISPATCHED:
                continue
            if state.alert_id is None:
                continue
            word = ClaimResult(
                alert_id=state.alert_id,
                officer_id=officer_id,
                outcome="accepted",
                officer=state,
                booking=state.booking,
            )
            out.append(Outbound("claim_results", state.alert_id, word))
        return out

    def _time_out(self, officer_id: str, now_ms: int) -> list[Outbound]:
        state = self.view.get(officer_id)
        if state is None or not dispatch.ack_expired(state, self.policy, now_ms):
            return []
        current = self.officer(officer_id)  # the table, not the view, is authoritative
        if current is None or not dispatch.ack_expired(current, self.policy, now_ms):
            return []
        released, withdrawal = dispatch.release_unacknowledged(current, now_ms)
        self._set_officer(released)
        self.board.note_withdrawn(
            withdrawal.alert_id, officer_id, now_ms + self.policy.refusal_hold_ms
        )
        timeout_s = self.policy.ack_timeout_ms // 1000
        return [
            Outbound("claim_results", withdrawal.alert_id, withdrawal),
            self._event(
                "ack_timeout",
                withdrawal.alert_id,
                officer_id,
                now_ms,
                f"no acknowledgement within {timeout_s}s",
            ),
        ]  # offered at the next tick (view.take_moved), once its alert heard it is free

    def _offer(self, officer_id: str, now_ms: int) -> list[Outbound]:
        """Book a free officer of this partition for the most urgent waiting alert within their
        reach, and tell it (the alert gives them back if it no longer needs them)."""
        if not len(self.board):
            return []
        state = self.officer(officer_id)
        if state is None or not dispatch.is_candidate(state, now_ms, self.policy):
            return []
        waiting = self.board.best_for(state, now_ms)
        if waiting is None:
            return []
        booked, offered = dispatch.offer(state, waiting.alert_id, now_ms)
        self._set_officer(booked)
        self.board.note_offer(waiting.alert_id)
        return [Outbound("claim_results", waiting.alert_id, offered)]

    # -- alert side -------------------------------------------------------------------------
    def progress(self, alert_id: str) -> AlertProgress | None:
        stored = self.alerts_open.get(alert_id)
        return None if stored is None else AlertProgress.model_validate(stored)

    def _save(self, progress: AlertProgress, now_ms: int) -> None:
        """Store the progress and, when it changed, the alert's entry on the waiting board."""
        progress = dispatch.mark_progress(progress, now_ms)
        if dispatch.units_missing(progress) <= 0 and progress.noticed_step >= 0:
            progress = progress.model_copy(update={"noticed_step": -1})  # a later wait is new
        refused = dispatch.active_refusals(progress, now_ms)
        if refused != progress.refused:
            progress = progress.model_copy(update={"refused": refused})
        entry = dispatch.board_update(
            progress, dispatch.waiting_entry(progress, self.policy, now_ms)
        )
        alert_id = progress.alert.alert_id
        partition = self.partition_of(alert_id)
        if partition not in self._ticked_ms:
            self._handled_before_tick.setdefault(partition, set()).add(alert_id)
        if entry is not None:
            progress = progress.model_copy(update={"board": entry})
            self.waiting_store[alert_id] = entry.model_dump(mode="json")
            self.board.apply(alert_id, entry)
        self.alerts_open[alert_id] = progress.model_dump(mode="json")

    def on_alert(self, alert: AlertCall, now_ms: int) -> list[Outbound]:
        if alert.alert_id in self.alerts_open:
            return []  # replayed after a restart: already being dispatched
        entry = HistoryEntry.of(alert)
        self.history_store[alert.alert_id] = _entry_json(entry)
        self.history.record(entry)
        progress, out = self._propose(dispatch.open_alert(alert, self.policy, now_ms), now_ms)
        self._save(progress, now_ms)
        return out

    def on_claim_result(self, result: ClaimResult, now_ms: int) -> list[Outbound]:
        progress = self.progress(result.alert_id)
        if progress is None:
            if result.outcome == "accepted":  # an alert we no longer know: free them
                release = dispatch.release_claim(
                    result.alert_id, result.officer_id, now_ms, result.booking
                )
                return [Outbound("claims", release.officer_id, release)]
            return []
        outcome = dispatch.apply_claim_result(progress, result, self.policy, now_ms)
        if outcome == dispatch.ResultOutcome(progress):
            return []  # a word heard before: nothing changes, nothing to write or send
        out: list[Outbound] = []
        if outcome.release is not None:
            out.append(Outbound("claims", outcome.release.officer_id, outcome.release))
        if outcome.assign is not None:
            out.extend(self._assignment(outcome.progress, outcome.assign, now_ms, outcome.reason))
        progress = outcome.progress
        if outcome.propose:
            progress, proposed = self._propose(progress, now_ms)
            out.extend(proposed)
        self._save(progress, now_ms)
        return out

    def on_backup(self, request: BackupRequest, now_ms: int) -> list[Outbound]:
        progress = self.progress(request.alert_id)
        if progress is None:
            return [
                self._event(
                    "backup_requested",
                    request.alert_id,
                    request.officer_id,
                    now_ms,
                    "unknown alert; ignored",
                )
            ]
        out = [
            self._event(
                "backup_requested",
                request.alert_id,
                request.officer_id,
                now_ms,
                f"{request.units} unit(s): {request.reason}",
            )
        ]
        progress, proposed = self._propose(dispatch.add_backup(progress, request.units), now_ms)
        self._save(progress, now_ms)
        return out + proposed

    def on_alert_tick(self, tick: Tick, partition: int) -> list[Outbound]:
        """Look again at this partition's waiting alerts that are due (a widening, a refusal
        running out, a first re-check), most urgent first; forget long-finished alerts."""
        now = tick.now_utc_ms
        out: list[Outbound] = []
        if self._recovering(self._ticked_ms, partition, now):
            out.extend(self._recover(partition, now))
        claimed: set[str] = set()  # by a more urgent alert of this tick: not free for the next
        for alert_id in self.board.due(partition, now):
            progress = self.progress(alert_id)
            if progress is None or dispatch.units_missing(progress) <= 0:
                continue
            progress, proposed = self._propose(progress, now, taken=frozenset(claimed))
            claimed.update(o.key for o in proposed if o.topic == "claims")
            out.extend(proposed)
            self._save(progress, now)
        self._sweep(partition, now)
        return out

    def _recover(self, partition: int, now_ms: int) -> list[Outbound]:
        """A partition this worker did not tick a moment ago (a start after a crash, or taken
        over from another worker): what a crash may have left unsent is sent again. Claims still
        pending are asked again (an officer's partition answers a repeat the same), a waiting
        alert is announced again, and officers booked but not yet acknowledged are told their
        assignment again (their app drops it by
        `assignment_id` if it came through). Tables were written before anything was published
        (streams/pipeline/apps.py), so nothing published is missing from them."""
        out: list[Outbound] = []
        handled_here = self._handled_before_tick.pop(partition, set())
        for alert_id in list(self.alerts_open.keys()):
            if self.partition_of(alert_id) != partition or alert_id in handled_here:
                continue
            progress = self.progress(alert_id)
            if progress is None:
                continue
            if progress.noticed_step >= 0 and dispatch.units_missing(progress) > 0:
                out.append(self._waiting_event(progress, now_ms))  # its notice may be lost
                out.append(self._unassigned(progress, now_ms))
            for officer_id in progress.pending:
                claim = Claim(
                    kind="claim", alert_id=alert_id, officer_id=officer_id, alert_utc_ms=now_ms
                )
                out.append(Outbound("claims", officer_id, claim))
            for officer_id in progress.assigned:
                state = self.view.get(officer_id)
                if state is None or state.alert_id != alert_id or state.lat is None:
                    continue
                if state.status is OfficerStatusValue.DISPATCHED:
                    reason = progress.reasons.get(officer_id, "dispatch")
                    out.extend(self._assignment(progress, state, now_ms, reason))
        return out

    def _sweep(self, partition: int, now_ms: int) -> None:
        """Once a minute per partition: forget alerts finished long ago and history past the
        window (`related` already ignores old entries; this frees their memory)."""
        if now_ms - self._swept_ms.get(partition, 0) < SWEEP_MS:
            return
        self._swept_ms[partition] = now_ms
        for alert_id in list(self.alerts_open.keys()):
            if self.partition_of(alert_id) != partition or self.board.is_waiting(alert_id):
                continue  # (a waiting alert is not finished: no need to read it)
            progress = self.progress(alert_id)
            if progress is not None and dispatch.forgettable(progress, self.policy, now_ms):
                del self.alerts_open[alert_id]
                self.waiting_store.pop(alert_id, None)
                self.board.apply(alert_id, None)
        horizon = now_ms - self.policy.history_window_ms
        for alert_id, entry in list(self.history.entries.items()):
            if entry.event_utc_ms < horizon and self.partition_of(alert_id) == partition:
                self.history_store.pop(alert_id, None)
                self.history.forget(alert_id)

    def _propose(
        self, progress: AlertProgress, now_ms: int, taken: frozenset[str] = frozenset()
    ) -> tuple[AlertProgress, list[Outbound]]:
        """Claim the nearest candidates for the missing units; widen the search when the alert
        has waited long enough (or at once, when it is that urgent); announce a wait."""
        out: list[Outbound] = []
        progress = self._widen(
            progress, dispatch.step_due(progress, self.policy, now_ms), now_ms, out
        )
        while dispatch.units_missing(progress) > 0:
            alert = progress.alert
            found = self.view.nearest_candidates(
                alert.lat,
                alert.lon,
                k=dispatch.units_missing(progress),
                at_ms=now_ms,
                radius_m=dispatch.radius_of(progress, self.policy),
                policy=self.policy,
                exclude=dispatch.excluded_officers(progress, now_ms) | taken,
                skip=self._owed_elsewhere(alert, now_ms),
            )
            progress, claims = dispatch.claim_candidates(
                progress, [c.point_id for c in found], now_ms
            )
            out.extend(Outbound("claims", claim.officer_id, claim) for claim in claims)
            if dispatch.units_missing(progress) <= 0:
                break
            if progress.noticed_step < 0 and not any(o.topic == "unassigned" for o in out):
                out.append(self._waiting_event(progress, now_ms))
            if not dispatch.widens_at_once(progress, self.policy):
                break
            progress = self._widen(progress, progress.radius_step + 1, now_ms, out)
        if dispatch.units_missing(progress) > 0 and progress.noticed_step < progress.radius_step:
            out.append(self._unassigned(progress, now_ms))
            progress = progress.model_copy(update={"noticed_step": progress.radius_step})
        return progress, out

    def _owed_elsewhere(self, alert: AlertCall, now_ms: int) -> Callable[[str], bool] | None:
        """Officers this alert must pass over: a more urgent waiting alert can have them (they
        are offered to it at once, or at their partition's next tick, having just freed up or
        moved). None when nothing waits: the fresh alert's fast path."""
        if not len(self.board):
            return None
        rank = dispatch.urgency(alert.priority, alert.event_utc_ms, alert.alert_id)

        def owed(officer_id: str) -> bool:
            state = self.view.get(officer_id)
            if state is None or state.lat is None:
                return False
            best = self.board.best_for(state, now_ms)
            return best is not None and (
                dispatch.urgency(best.priority, best.event_utc_ms, best.alert_id) < rank
            )

        return owed

    def _widen(
        self, progress: AlertProgress, step: int, now_ms: int, out: list[Outbound]
    ) -> AlertProgress:
        while progress.radius_step < step:
            progress = progress.model_copy(update={"radius_step": progress.radius_step + 1})
            out.append(
                self._event(
                    "escalated",
                    progress.alert.alert_id,
                    "",
                    now_ms,
                    f"search widened to {dispatch.radius_of(progress, self.policy):.0f} m",
                    radius_m=dispatch.radius_of(progress, self.policy),
                    waited_ms=dispatch.waited_ms(progress, now_ms),
                )
            )
        return progress

    def _waiting_event(self, progress: AlertProgress, now_ms: int) -> Outbound:
        return self._event(
            "unassigned",
            progress.alert.alert_id,
            "",
            now_ms,
            "waiting for a free officer",
            radius_m=dispatch.radius_of(progress, self.policy),
            waited_ms=dispatch.waited_ms(progress, now_ms),
        )

    def _unassigned(self, progress: AlertProgress, now_ms: int) -> Outbound:
        notice = UnassignedNotice(
            alert=progress.alert,
            units_missing=dispatch.units_missing(progress),
            radius_m=dispatch.radius_of(progress, self.policy),
            waited_ms=dispatch.waited_ms(progress, now_ms),
            noticed_utc_ms=now_ms,
        )
        return Outbound("unassigned", progress.alert.alert_id, notice)

    def _assignment(
        self,
        progress: AlertProgress,
        officer: OfficerState,
        now_ms: int,
        reason: dispatch.AssignmentReason,
    ) -> list[Outbound]:
        """The assignment and its event, stamped with the time the officer was booked: the
        same booking announced again (recovery, maybe at a tick from the backlog) is the same
        message, not one dated whenever it was repeated."""
        alert = progress.alert
        assert officer.lat is not None and officer.lon is not None
        at = now_ms if officer.dispatched_utc_ms is None else officer.dispatched_utc_ms
        assignment = dispatch.build_assignment(
            alert,
            officer,
            geodesic_m(officer.lat, officer.lon, alert.lat, alert.lon),
            policy=self.policy,
            assigned_utc_ms=at,
            zone=self.zone,
            units_needed=progress.units_needed,
            turn=progress.served.count(officer.officer_id) + 1,
            reason=reason,
            cameras=self.cameras.covering(
                alert.lat, alert.lon, radius_m=self.policy.camera_radius_m
            ),
            body_cameras=self.cameras.body_cameras(progress.assigned),
            background=self.history.related(alert, self.policy.history_window_ms),
        )
        return [
            Outbound("assignments", officer.officer_id, assignment),
            self._event(
                "assigned",
                alert.alert_id,
                officer.officer_id,
                at,
                f"{reason}: {assignment.distance_m:.0f} m, ETA {assignment.eta_s:.0f} s",
                waited_ms=dispatch.waited_ms(progress, at),
                assignment_id=assignment.assignment_id,
            ),
        ]

    @staticmethod
    def _event(
        kind: DispatchEventKind,
        alert_id: str,
        officer_id: str,
        now_ms: int,
        detail: str,
        *,
        radius_m: float | None = None,
        waited_ms: int | None = None,
        assignment_id: str = "",
    ) -> Outbound:
        event = DispatchEvent(
            kind=kind,
            alert_id=alert_id,
            officer_id=officer_id,
            detail=detail,
            at_utc_ms=now_ms,
            radius_m=radius_m,
            waited_ms=waited_ms,
            assignment_id=assignment_id,
        )
        return Outbound("events", alert_id, event)

    # -- cameras (own partition by camera id) ------------------------------------------------
    def on_camera(self, meta: CameraMeta) -> list[Outbound]:
        stored = self.camera_store.get(meta.camera_id)
        if stored is not None and stored.get("event_utc_ms", 0) > meta.event_utc_ms:
            return []  # an older record never overwrites a newer one
        self.camera_store[meta.camera_id] = meta.model_dump(mode="json")
        self.cameras.apply(meta.camera_id, meta)
        return []


def _entry_json(entry: HistoryEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in HistoryEntry.__slots__}


def entry_from_json(value: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(**value)
