"""The dispatch flow as plain handlers: each takes one decoded message (and the time) and
returns what to send. The Faust agents in streams/app.py and the broker-free replay
(streams/replay.py) call the same handlers, so a replay reproduces the live decisions."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
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
    OfficerPosition,
    OfficerState,
    OfficerStatusChange,
    Tick,
)
from streams import dispatch
from streams.background import AlertHistory, HistoryEntry
from streams.cameras import CameraRegistry
from streams.nearest import geodesic_m
from streams.officer_view import OfficerView

HISTORY_SWEEP_MS = 60_000

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
    alert-side handlers run in the alert's partition (sole writer of `alerts_open`)."""

    def __init__(
        self,
        *,
        policy: dispatch.DispatchPolicy,
        zone: str,
        partitions: int,
        view: OfficerView,
        cameras: CameraRegistry,
        history: AlertHistory,
        officers: MutableMapping[str, Any],
        alerts_open: MutableMapping[str, Any],
        history_store: MutableMapping[str, Any],
        camera_store: MutableMapping[str, Any],
    ) -> None:
        self.policy = policy
        self.zone = zone
        self.partitions = partitions
        self.view = view
        self.cameras = cameras
        self.history = history
        self.officers = officers
        self.alerts_open = alerts_open
        self.history_store = history_store
        self.camera_store = camera_store
        self._history_swept_ms: dict[int, int] = {}

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

    def on_position(self, position: OfficerPosition) -> list[Outbound]:
        """A position replicated by the positions worker (streams/positions.py)."""
        self.view.apply_position(position)
        return []

    def on_status(self, change: OfficerStatusChange) -> list[Outbound]:
        changed, withdrawal = dispatch.apply_status(self.officer(change.officer_id), change)
        if changed is not None:
            self._set_officer(changed)
        if withdrawal is None:
            return []
        return [Outbound("claim_results", withdrawal.alert_id, withdrawal)]

    def on_claim(self, claim: Claim, now_ms: int) -> list[Outbound]:
        changed, result = dispatch.decide_claim(
            self.officer(claim.officer_id), claim, self.policy, now_ms
        )
        if changed is not None:
            self._set_officer(changed)
        return [Outbound("claim_results", claim.alert_id, result)]

    def on_officer_tick(self, tick: Tick, partition: int) -> list[Outbound]:
        """Release officers of this partition who did not acknowledge in time."""
        out: list[Outbound] = []
        for officer_id in sorted(self.view.awaiting_ack):  # deterministic order
            if self.partition_of(officer_id) != partition:
                continue
            state = self.view.get(officer_id)
            if state is None or not dispatch.ack_expired(state, self.policy, tick.now_utc_ms):
                continue
            current = self.officer(officer_id)  # the table, not the view, is authoritative
            if current is None or not dispatch.ack_expired(current, self.policy, tick.now_utc_ms):
                continue
            released, withdrawal = dispatch.release_unacknowledged(current, tick.now_utc_ms)
            self._set_officer(released)
            out.append(Outbound("claim_results", withdrawal.alert_id, withdrawal))
            out.append(
                self._event(
                    "ack_timeout",
                    withdrawal.alert_id,
                    officer_id,
                    tick.now_utc_ms,
                    f"no acknowledgement within {self.policy.ack_timeout_ms // 1000}s",
                )
            )
        return out

    # -- alert side -------------------------------------------------------------------------
    def progress(self, alert_id: str) -> AlertProgress | None:
        stored = self.alerts_open.get(alert_id)
        return None if stored is None else AlertProgress.model_validate(stored)

    def _save(self, progress: AlertProgress, now_ms: int) -> None:
        progress = dispatch.mark_progress(progress, now_ms)
        self.alerts_open[progress.alert.alert_id] = progress.model_dump(mode="json")

    def on_alert(self, alert: AlertCall, now_ms: int) -> list[Outbound]:
        if alert.alert_id in self.alerts_open:
            return []  # replayed after a restart: already being dispatched
        entry = HistoryEntry.of(alert)
        self.history_store[alert.alert_id] = _entry_json(entry)
        self.history.record(entry)
        progress, out = self._propose(dispatch.open_alert(alert, self.policy), now_ms)
        self._save(progress, now_ms)
        return out

    def on_claim_result(self, result: ClaimResult, now_ms: int) -> list[Outbound]:
        progress = self.progress(result.alert_id)
        if progress is None:
            if result.accepted and not result.revoked:  # an alert we no longer know: free them
                release = dispatch.release_claim(result.alert_id, result.officer_id, now_ms)
                return [Outbound("claims", release.officer_id, release)]
            return []
        outcome = dispatch.apply_claim_result(progress, result)
        out: list[Outbound] = []
        if outcome.release is not None:
            out.append(Outbound("claims", outcome.release.officer_id, outcome.release))
        if outcome.assign is not None:
            out.extend(self._assignment(outcome.progress, outcome.assign, now_ms))
        progress = outcome.progress
        if not result.accepted or result.revoked:
            progress, proposed = self._propose(progress, now_ms, reassignment=result.revoked)
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
        """Drain this partition's waiting queue (priority, then age) and forget old alerts."""
        now = tick.now_utc_ms
        waiting: list[AlertProgress] = []
        for alert_id, progress in self._open_alerts(partition):
            done_at = progress.complete_utc_ms
            if done_at is not None and now - done_at > self.policy.keep_complete_ms:
                del self.alerts_open[alert_id]
                continue
            if dispatch.units_missing(progress) > 0 and not progress.pending:
                waiting.append(progress)
        waiting.sort(key=lambda p: (p.alert.priority, p.alert.event_utc_ms, p.alert.alert_id))
        out: list[Outbound] = []
        for progress in waiting:
            updated, proposed = self._propose(progress, now, notice=False)
            if proposed:
                out.extend(proposed)
                self._save(updated, now)
        self._forget_old_history(partition, now)
        return out

    def _open_alerts(self, partition: int) -> Iterator[tuple[str, AlertProgress]]:
        for alert_id in list(self.alerts_open.keys()):
            if self.partition_of(alert_id) == partition:
                progress = self.progress(alert_id)
                if progress is not None:
                    yield alert_id, progress

    def _forget_old_history(self, partition: int, now_ms: int) -> None:
        """Free memory of history past the window. `related` already ignores such entries, so
        a sweep of the whole history once a minute per partition (not every tick) is enough."""
        if now_ms - self._history_swept_ms.get(partition, 0) < HISTORY_SWEEP_MS:
            return
        self._history_swept_ms[partition] = now_ms
        horizon = now_ms - self.policy.history_window_ms
        for alert_id, entry in list(self.history.entries.items()):
            if entry.event_utc_ms < horizon and self.partition_of(alert_id) == partition:
                self.history_store.pop(alert_id, None)
                self.history.forget(alert_id)

    def _propose(
        self,
        progress: AlertProgress,
        now_ms: int,
        *,
        notice: bool = True,
        reassignment: bool = False,
    ) -> tuple[AlertProgress, list[Outbound]]:
        missing = dispatch.units_missing(progress)
        if missing <= 0:
            return progress, []
        alert = progress.alert
        found = self.view.nearest_candidates(
            alert.lat,
            alert.lon,
            k=missing,
            alert_utc_ms=max(alert.event_utc_ms, now_ms),
            policy=self.policy,
            exclude=dispatch.excluded_officers(progress),
        )
        progress, claims = dispatch.claim_candidates(progress, [c.officer_id for c in found])
        out = [Outbound("claims", claim.officer_id, claim) for claim in claims]
        starved = not progress.pending and dispatch.units_missing(progress) > 0
        if starved and notice and not progress.waiting_noticed:
            progress = progress.model_copy(update={"waiting_noticed": True})
            out.extend(self._unassigned(progress, now_ms))
        return progress, out

    def _unassigned(self, progress: AlertProgress, now_ms: int) -> list[Outbound]:
        alert = progress.alert
        notice = {
            "alert": alert.model_dump(mode="json"),
            "reason": "no_available_officer_within_radius",
            "units_missing": dispatch.units_missing(progress),
            "radius_m": self.policy.radius_m,
            "noticed_utc_ms": now_ms,
        }
        return [
            Outbound("unassigned", alert.alert_id, notice),
            self._event("unassigned", alert.alert_id, "", now_ms, "waiting for a free officer"),
        ]

    def _assignment(
        self, progress: AlertProgress, officer: OfficerState, now_ms: int
    ) -> list[Outbound]:
        alert = progress.alert
        assert officer.lat is not None and officer.lon is not None
        is_backup = len(progress.assigned) > progress.units_needed - progress.backups
        assignment = dispatch.build_assignment(
            alert,
            officer,
            geodesic_m(officer.lat, officer.lon, alert.lat, alert.lon),
            policy=self.policy,
            assigned_utc_ms=now_ms,
            zone=self.zone,
            units_needed=progress.units_needed,
            reason="backup" if is_backup else ("reassignment" if progress.tried else "dispatch"),
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
                now_ms,
                f"{assignment.distance_m:.0f} m, ETA {assignment.eta_s:.0f} s",
            ),
        ]

    @staticmethod
    def _event(
        kind: Literal["assigned", "unassigned", "ack_timeout", "released", "backup_requested"],
        alert_id: str,
        officer_id: str,
        now_ms: int,
        detail: str,
    ) -> Outbound:
        event = DispatchEvent(
            kind=kind, alert_id=alert_id, officer_id=officer_id, detail=detail, at_utc_ms=now_ms
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
