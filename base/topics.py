"""Topic names: every topic the pipeline reads or writes, in one place, prefixed per deployment."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Every topic the pipeline reads or writes. Inputs are raw station formats; the rest carry
    the typed models in schemas/events.py as JSON."""

    gps_raw: str = "gps.pings"
    alerts_raw: str = "alerts.calls"
    status_raw: str = "officer.status"
    cameras_raw: str = "cameras.meta"
    backup: str = "dispatch.backup"
    gps: str = "gps.pings.normalised"
    gps_by_officer: str = "gps.pings.by-officer"
    alerts: str = "alerts.normalised"
    status: str = "officer.status.normalised"
    cameras: str = "cameras.normalised"
    claims: str = "dispatch.claims"
    claim_results: str = "dispatch.claim-results"
    ticks: str = "dispatch.ticks"
    assignments: str = "dispatch.assignments"
    unassigned: str = "dispatch.unassigned"
    events: str = "dispatch.events"
    deadletter: str = "deadletter"

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        return cls(**{f.name: prefix + getattr(cls(), f.name) for f in fields(cls)})

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]
