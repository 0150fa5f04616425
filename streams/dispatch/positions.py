"""Officer positions: folding GPS pings into the latest position per officer, ordered by event
time, and deciding which positions are worth replicating.

Pings are the bulk of the traffic (every officer, every few seconds), so they have a worker of
their own (the positions app in streams/pipeline/apps.py): dispatch never queues behind them.
That worker is the sole writer of the positions table (its app's `officers` table, changelog
`<app_id>-positions-officers-changelog`); every dispatch worker mirrors the table into its
OfficerView. A position is written when the officer changes H3 cell, or when the written one is
`interval_ms` old: the dispatch workers see each officer within one cell and one interval of
where they are, at a fraction of the changelog traffic."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from schemas.events import GpsPing, OfficerPosition


def advance(current: OfficerPosition | None, ping: GpsPing) -> OfficerPosition | None:
    """The officer's position after `ping`, or None when the ping is late or a duplicate: a
    ping never moves an officer back in time."""
    if current is not None and ping.event_utc_ms <= current.position_utc_ms:
        return None
    return OfficerPosition(
        officer_id=ping.officer_id,
        station_id=ping.station_id or (current.station_id if current is not None else ""),
        lat=ping.lat,
        lon=ping.lon,
        h3_cell=ping.h3_cell,
        position_utc_ms=ping.event_utc_ms,
    )


def needs_write(written: OfficerPosition | None, moved: OfficerPosition, interval_ms: int) -> bool:
    if written is None or written.h3_cell != moved.h3_cell:
        return True
    return moved.position_utc_ms - written.position_utc_ms >= interval_ms


class PositionKeeper:
    """The positions worker's state for the officers of its partitions: `written` is the
    replicated table, `latest` the newer positions not worth writing yet (they still order
    later pings: a late ping is rejected against them too)."""

    def __init__(self, written: MutableMapping[str, Any], interval_ms: int) -> None:
        self.written = written
        self.interval_ms = interval_ms
        self.latest: dict[str, OfficerPosition] = {}
        # officer -> (the stored value, it read): each stored value is read once, not per ping
        self._read: dict[str, tuple[Any, OfficerPosition]] = {}

    def _written(self, officer_id: str) -> OfficerPosition | None:
        stored = self.written.get(officer_id)
        if stored is None:
            return None
        cached = self._read.get(officer_id)
        if cached is not None and cached[0] is stored:
            return cached[1]
        position = OfficerPosition.model_validate(stored)
        self._read[officer_id] = (stored, position)
        return position

    def forget(self, officer_ids: Iterable[str]) -> None:
        """Drop what is kept of officers whose partitions went to another worker."""
        for officer_id in officer_ids:
            self.latest.pop(officer_id, None)
            self._read.pop(officer_id, None)
            self.written.pop(officer_id, None)

    def on_ping(self, ping: GpsPing) -> OfficerPosition | None:
        """Fold in `ping`; returns the position when it was written (replicated), else None."""
        officer_id = ping.officer_id
        written = self._written(officer_id)
        current = _newer(self.latest.get(officer_id), written)
        moved = advance(current, ping)
        if moved is None:
            return None
        if not needs_write(written, moved, self.interval_ms):
            self.latest[officer_id] = moved
            return None
        self.latest.pop(officer_id, None)
        stored = moved.model_dump(mode="json")
        self.written[officer_id] = stored
        self._read[officer_id] = (stored, moved)
        return moved


def _newer(a: OfficerPosition | None, b: OfficerPosition | None) -> OfficerPosition | None:
    """`latest` can be older than the table when the partition was away on another worker."""
    if a is None or (b is not None and b.position_utc_ms >= a.position_utc_ms):
        return b
    return a
