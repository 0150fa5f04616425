"""Broker-free replay: the live dispatch handlers run over a recorded stream in event-time
order, deterministically (no wall clock, no randomness). For what-if analysis, incident review
and regression tests.

Input: JSON Lines, one `{"topic": ..., "message": ...}` per line, where topic is one of the
input topics without prefix (`gps.pings`, `alerts.calls`, `officer.status`, `cameras.meta`,
`dispatch.backup`) and message is what was on that topic. Optional `"timestamp_ms"` is the
Kafka record time (context for ambiguous times; defaults to the event's own time).
Output: JSON Lines `{"topic": ..., "key": ..., "message": ...}` for every message the
pipeline would publish on `dispatch.assignments`, `dispatch.unassigned`, `dispatch.events`
and `deadletter` (the latter with `reason` and `error` instead of headers)."""

from __future__ import annotations

import contextlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from base.errors import ConfigError, InvalidEvent, Reason, invalid_event
from base.topics import TopicNames
from schemas.events import GpsPing, Tick
from streams.dispatch import rules as dispatch
from streams.dispatch.handlers import Dispatcher, Outbound, partition_for
from streams.dispatch.positions import PositionKeeper
from streams.dispatch.routing import (
    HANDLED_AS,
    INGEST_BY_RAW,
    MODELS,
    PUBLISHED,
    Inbox,
    Table,
    Views,
    deliver_here,
    handle,
    inbox_of,
    settle,
)
from streams.ingest.fields import STATION_NAMES, TIME_NAMES, first_present
from streams.ingest.skew import SkewBound
from streams.ingest.stations import StationBook

TICK_MS = 1000
NAMES = TopicNames()  # a recording names topics without the deployment's prefix
INPUT_BY_NAME = {getattr(NAMES, field): field for field in HANDLED_AS}
INPUT_TOPICS = tuple(INPUT_BY_NAME)


@dataclass(order=True, slots=True)
class RecordedEvent:
    time_ms: int
    sequence: int
    topic: str = field(compare=False)
    message: Any = field(compare=False)
    timestamp_ms: int = field(compare=False)


def read_events(lines: Iterable[bytes], *, stations: StationBook) -> list[RecordedEvent]:
    """Parse and order the recording by event time (ties keep file order)."""
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            topic, message = record["topic"], record["message"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"line {number}: not a {{topic, message}} JSON object") from exc
        if topic not in INPUT_TOPICS:
            raise ConfigError(f"line {number}: unknown topic {topic!r} (one of {INPUT_TOPICS})")
        stamp = record.get("timestamp_ms")
        events.append(
            RecordedEvent(_event_time(message, stamp, stations), number, topic, message, stamp or 0)
        )
    events.sort()
    return events


def _event_time(message: Any, stamp: int | None, stations: StationBook) -> int:
    if isinstance(stamp, int):
        return stamp
    if isinstance(message, dict):
        station_id = str(first_present(message, STATION_NAMES) or "")
        try:
            return stations.parse_time(first_present(message, TIME_NAMES), station_id, None).utc_ms
        except InvalidEvent:
            pass
    return 0  # unreadable: replayed first, and it will go to the dead letters


@dataclass(slots=True)
class ReplayResult:
    outputs: list[dict[str, Any]] = field(default_factory=list)
    inputs: int = 0

    def count(self, topic: str) -> int:
        return sum(1 for o in self.outputs if o["topic"] == topic)


@dataclass(slots=True)
class _Tables:
    """What a live worker keeps in tables (changelogs); a restart rebuilds the rest from these."""

    officers: dict[str, Any] = field(default_factory=dict)
    alerts_open: dict[str, Any] = field(default_factory=dict)
    waiting: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    cameras: dict[str, Any] = field(default_factory=dict)
    positions: dict[str, Any] = field(default_factory=dict)

    def mirrored(self) -> list[tuple[Table, dict[str, Any]]]:
        return [
            (Table.OFFICERS, self.officers),
            (Table.POSITIONS, self.positions),
            (Table.CAMERAS, self.cameras),
            (Table.HISTORY, self.history),
            (Table.WAITING, self.waiting),
        ]


class ReplaySession:
    """One dispatch worker over one partition, fed event by event in event time: `feed` an
    input (the clock ticks every second up to its time first), `advance` the clock, `restart`
    as a crashed worker would (in-memory views rebuilt from the tables). Every call returns what
    the pipeline would publish meanwhile."""

    def __init__(
        self,
        *,
        policy: dispatch.DispatchPolicy,
        stations: StationBook | None = None,
        resolution: int = 8,
        skew: SkewBound | None = None,
    ) -> None:
        self.policy = policy
        self.stations = stations or StationBook()
        self.resolution = resolution
        self.skew = skew or SkewBound()
        self.now_ms: int | None = None
        self._tables = _Tables()
        self.dispatcher = self._recovered_dispatcher(fresh=True)
        # Like the live positions worker: dispatch sees the positions it would replicate.
        self._keeper = PositionKeeper(self._tables.positions, policy.position_write_interval_ms)

    def _recovered_dispatcher(self, *, fresh: bool = False) -> Dispatcher:
        tables = self._tables
        views = Views.empty(self.resolution, lambda key: partition_for(key, 1))
        for table, stored in tables.mirrored():
            for key, value in stored.items():
                views.apply(table, key, value)
        return Dispatcher(
            policy=self.policy,
            zone=self.stations.default_zone,
            partitions=1,
            view=views.officers,
            cameras=views.cameras,
            history=views.history,
            board=views.board,
            officers=tables.officers,
            alerts_open=tables.alerts_open,
            waiting_store=tables.waiting,
            history_store=tables.history,
            camera_store=tables.cameras,
            recover_on_start=not fresh,
        )

    def restart(self) -> None:
        """A worker killed and started again: what was only in memory is gone (positions not
        yet worth replicating, too); the tables come back from their changelogs."""
        self.dispatcher = self._recovered_dispatcher()
        self._keeper = PositionKeeper(
            self._tables.positions, self.policy.position_write_interval_ms
        )

    def feed(
        self, topic: str, message: Any, timestamp_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Handle one input; an unknown topic is a ConfigError."""
        if topic not in INPUT_TOPICS:
            raise ConfigError(f"unknown topic {topic!r} (one of {INPUT_TOPICS})")
        return self.feed_recorded(RecordedEvent(0, 0, topic, message, timestamp_ms or 0))

    def feed_recorded(self, event: RecordedEvent) -> list[dict[str, Any]]:
        clock = self.now_ms
        try:
            message = self._decoded(event, clock)
        except Exception as exc:  # as the live agents: every failure is a dead letter
            return [_dead_letter(event, invalid_event(exc))]
        event_ms = getattr(message, "event_utc_ms", clock)
        if event_ms is None:
            event_ms = 0
        outputs = self.advance(event_ms)
        assert self.now_ms is not None
        now = max(self.now_ms, event_ms)
        topic = HANDLED_AS[INPUT_BY_NAME[event.topic]]
        self._drain(self._handle(topic, message, now), now, outputs)
        return outputs

    def advance(self, until_ms: int) -> list[dict[str, Any]]:
        """Tick every second of event time up to `until_ms`."""
        outputs: list[dict[str, Any]] = []
        if self.now_ms is None:
            self.now_ms = until_ms
        while self.now_ms + TICK_MS <= until_ms:
            self.now_ms += TICK_MS
            tick = Tick(now_utc_ms=self.now_ms)
            for inbox in (Inbox.OFFICER, Inbox.ALERT):
                out = handle(self.dispatcher, inbox, "ticks", tick, self.now_ms, 0)
                self._drain(out, self.now_ms, outputs)
        return outputs

    def _decoded(self, event: RecordedEvent, clock: int | None) -> BaseModel:
        """The recorded message as the agents would see it after normalising (raises like
        them), its time within the skew bound of the record's time, else the replay clock."""
        if not isinstance(event.message, dict):
            raise InvalidEvent(Reason.INVALID_JSON, "message is not a JSON object")
        ingest = INGEST_BY_RAW.get(INPUT_BY_NAME[event.topic])
        if ingest is None:  # typed at the source
            return MODELS[HANDLED_AS[INPUT_BY_NAME[event.topic]]].model_validate(event.message)
        reference = event.timestamp_ms or clock
        parsed = ingest.parse(
            event.message,
            stations=self.stations,
            resolution=self.resolution,
            reference_ms=reference,
            ingest_ms=max(clock or 0, reference or 0),
        )
        event_ms: int = getattr(parsed, "event_utc_ms")  # noqa: B009 (every parsed input has one)
        if reference is not None:
            self.skew.check(event_ms, reference)
        return parsed

    def _handle(self, topic: str, message: BaseModel, now: int) -> list[Outbound]:
        if isinstance(message, GpsPing):
            # As the dispatch app's mirror of the positions table: the positions it writes.
            written = self._keeper.on_ping(message)
            if written is not None:
                self.dispatcher.view.apply_position(written)
            return []
        return handle(self.dispatcher, inbox_of(topic), topic, message, now, 0)

    def _drain(self, out: list[Outbound], now: int, outputs: list[dict[str, Any]]) -> None:
        """Deliver internal messages (claims and answers) at once, in order, as a worker that
        owns every partition would; keep published ones."""
        deliver = partial(
            deliver_here, self.dispatcher, now_ms=now, decides_for_officer=_any, alert_partition=0
        )
        for item in settle(out, deliver):
            if item.topic not in PUBLISHED:
                continue
            message = item.message
            body = message.model_dump(mode="json") if isinstance(message, BaseModel) else message
            outputs.append({"topic": getattr(NAMES, item.topic), "key": item.key, "message": body})


def _any(officer_id: str) -> bool:
    return True


def _dead_letter(event: RecordedEvent, error: InvalidEvent) -> dict[str, Any]:
    return {
        "topic": NAMES.deadletter,
        "key": None,
        "reason": error.reason.value,
        "error": str(error),
        "message": event.message,
    }


def main_span(times: list[int], max_gap_ms: int) -> tuple[int, int]:
    """The bulk of a recording's (sorted) event times: the run with the most events and no gap
    over `max_gap_ms`. Events outside it (a device dated 2099, or 2000) are refused, so one of
    them cannot make the replay tick through decades."""
    if not times:
        return 0, 0
    best, start = (times[0], times[0]), 0
    for i in range(1, len(times) + 1):
        if i == len(times) or times[i] - times[i - 1] > max_gap_ms:
            run = (times[start], times[i - 1])
            if i - start > bisect_right(times, best[1]) - bisect_left(times, best[0]):
                best = run
            start = i
    return best


def replay(
    events: list[RecordedEvent],
    *,
    policy: dispatch.DispatchPolicy,
    stations: StationBook | None = None,
    resolution: int = 8,
    tail_ms: int = 0,
    skew: SkewBound | None = None,
) -> ReplayResult:
    """Run the recording (ordered by `read_events`) with the stations' conventions; `tail_ms`
    keeps the clock ticking after the last event (so timeouts that would fire after it do)."""
    skew = skew or SkewBound()
    session = ReplaySession(policy=policy, stations=stations, resolution=resolution, skew=skew)
    result = ReplayResult(inputs=len(events))
    first, last = main_span(sorted(e.time_ms for e in events if e.time_ms), skew.behind_ms)
    session.now_ms = first if events else None
    for event in events:
        if event.time_ms and not first <= event.time_ms <= last:
            error = InvalidEvent(Reason.OUT_OF_RANGE, "event time far from the recording's bulk")
            result.outputs.append(_dead_letter(event, error))
            continue
        result.outputs.extend(session.feed_recorded(event))
    if session.now_ms is not None:
        result.outputs.extend(session.advance(session.now_ms + tail_ms))
    return result


def replay_file(
    events_path: Path,
    out_path: Path,
    *,
    policy: dispatch.DispatchPolicy,
    stations: StationBook,
    resolution: int,
    tail_ms: int = 0,
) -> ReplayResult:
    if out_path.is_dir():
        raise ConfigError(f"cannot write {out_path}: it is a folder")
    try:
        with events_path.open("rb") as handle:
            events = read_events(handle, stations=stations)
    except OSError as exc:
        raise ConfigError(f"cannot read {events_path}: {exc.strerror}") from exc
    result = replay(
        events, policy=policy, stations=stations, resolution=resolution, tail_ms=tail_ms
    )
    _write_atomically(out_path, _lines(result.outputs))
    return result


def _write_atomically(path: Path, lines: Iterator[bytes]) -> None:
    """All the lines or nothing at `path` (a partial file beside it, renamed when complete)."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with tmp.open("wb") as handle:
            for line in lines:
                handle.write(line)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # nothing was made, or nothing can be
            tmp.unlink()
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc


def _lines(outputs: list[dict[str, Any]]) -> Iterator[bytes]:
    for output in outputs:
        yield orjson.dumps(output, option=orjson.OPT_SORT_KEYS) + b"\n"
