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

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from schemas.events import (
    AlertCall,
    BackupRequest,
    CameraMeta,
    Claim,
    ClaimResult,
    GpsPing,
    OfficerStatusChange,
    Tick,
)
from streams import dispatch
from streams.alerts import alert_from_raw
from streams.background import AlertHistory
from streams.cameras import CameraRegistry, camera_from_raw
from streams.dispatcher import Dispatcher, Outbound
from streams.errors import ConfigError, InvalidEvent, Reason
from streams.officer_view import OfficerView
from streams.officers import ping_from_raw, status_from_raw
from streams.positions import PositionKeeper
from streams.rawfields import STATION_NAMES, TIME_NAMES, first_present
from streams.stations import StationBook

PUBLISHED = ("assignments", "unassigned", "events")
TOPIC_OF = {
    "assignments": "dispatch.assignments",
    "unassigned": "dispatch.unassigned",
    "events": "dispatch.events",
}
TICK_MS = 1000
INPUT_TOPICS = ("gps.pings", "alerts.calls", "officer.status", "cameras.meta", "dispatch.backup")


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


def new_dispatcher(policy: dispatch.DispatchPolicy, *, zone: str, resolution: int) -> Dispatcher:
    return Dispatcher(
        policy=policy,
        zone=zone,
        partitions=1,
        view=OfficerView(resolution),
        cameras=CameraRegistry(resolution),
        history=AlertHistory(),
        officers={},
        alerts_open={},
        history_store={},
        camera_store={},
    )


def replay(
    events: list[RecordedEvent],
    *,
    policy: dispatch.DispatchPolicy,
    stations: StationBook | None = None,
    resolution: int = 8,
    tail_ms: int = 0,
) -> ReplayResult:
    """Run the recording with the stations' conventions; `tail_ms` keeps the clock ticking after
    the last event (so timeouts that would fire after it do)."""
    stations = stations or StationBook()
    dispatcher = new_dispatcher(policy, zone=stations.default_zone, resolution=resolution)
    # Like the live positions worker: dispatch sees the positions it would replicate.
    keeper = PositionKeeper({}, policy.position_write_interval_ms)
    result = ReplayResult(inputs=len(events))
    clock = events[0].time_ms if events else 0
    for event in events:
        clock = _tick_until(dispatcher, clock, event.time_ms, result)
        now = max(clock, event.time_ms)
        _handle_input(dispatcher, keeper, event, now, stations, resolution, result)
    if events:
        _tick_until(dispatcher, clock, clock + tail_ms, result)
    return result


def _tick_until(dispatcher: Dispatcher, clock: int, until: int, result: ReplayResult) -> int:
    while clock + TICK_MS <= until:
        clock += TICK_MS
        tick = Tick(now_utc_ms=clock)
        _drain(dispatcher, dispatcher.on_officer_tick(tick, 0), clock, result)
        _drain(dispatcher, dispatcher.on_alert_tick(tick, 0), clock, result)
    return clock


PARSERS: dict[str, Callable[..., BaseModel]] = {
    "gps.pings": ping_from_raw,
    "alerts.calls": alert_from_raw,
    "officer.status": status_from_raw,
    "cameras.meta": camera_from_raw,
}


def _handle_input(
    dispatcher: Dispatcher,
    keeper: PositionKeeper,
    event: RecordedEvent,
    now: int,
    stations: StationBook,
    resolution: int,
    result: ReplayResult,
) -> None:
    try:
        message = _decoded(event, now, stations, resolution)
    except (InvalidEvent, ValidationError) as exc:
        reason = exc.reason.value if isinstance(exc, InvalidEvent) else Reason.INVALID_FIELD.value
        result.outputs.append(
            {
                "topic": "deadletter",
                "key": None,
                "reason": reason,
                "error": str(exc),
                "message": event.message,
            }
        )
        return
    _drain(dispatcher, _handle(dispatcher, keeper, message, now), now, result)


def _decoded(event: RecordedEvent, now: int, stations: StationBook, resolution: int) -> BaseModel:
    """The recorded message as the agents would see it after normalising (raises like them)."""
    if not isinstance(event.message, dict):
        raise InvalidEvent(Reason.INVALID_JSON, "message is not a JSON object")
    if event.topic == "dispatch.backup":
        return BackupRequest.model_validate(event.message)
    return PARSERS[event.topic](
        event.message,
        stations=stations,
        resolution=resolution,
        reference_ms=event.timestamp_ms or now,
        ingest_ms=now,
    )


def _handle(
    dispatcher: Dispatcher, keeper: PositionKeeper, message: BaseModel, now: int
) -> list[Outbound]:
    if isinstance(message, GpsPing):
        written = keeper.on_ping(message)
        return [] if written is None else dispatcher.on_position(written)
    if isinstance(message, AlertCall):
        return dispatcher.on_alert(message, now)
    if isinstance(message, OfficerStatusChange):
        return dispatcher.on_status(message)
    if isinstance(message, CameraMeta):
        return dispatcher.on_camera(message)
    assert isinstance(message, BackupRequest)
    return dispatcher.on_backup(message, now)


def _drain(dispatcher: Dispatcher, out: list[Outbound], now: int, result: ReplayResult) -> None:
    """Deliver internal messages (claims and answers) at once, in order; keep published ones."""
    queue = deque(out)
    while queue:
        item = queue.popleft()
        if item.topic in PUBLISHED:
            message = (
                item.message.model_dump(mode="json")
                if isinstance(item.message, BaseModel)
                else item.message
            )
            result.outputs.append(
                {"topic": TOPIC_OF[item.topic], "key": item.key, "message": message}
            )
        elif item.topic == "claims":
            assert isinstance(item.message, Claim)
            queue.extend(dispatcher.on_claim(item.message, now))
        elif item.topic == "claim_results":
            assert isinstance(item.message, ClaimResult)
            queue.extend(dispatcher.on_claim_result(item.message, now))


def replay_file(
    events_path: Path,
    out_path: Path,
    *,
    policy: dispatch.DispatchPolicy,
    stations: StationBook,
    resolution: int,
    tail_ms: int = 0,
) -> ReplayResult:
    try:
        with events_path.open("rb") as handle:
            events = read_events(handle, stations=stations)
    except OSError as exc:
        raise ConfigError(f"cannot read {events_path}: {exc.strerror}") from exc
    result = replay(
        events, policy=policy, stations=stations, resolution=resolution, tail_ms=tail_ms
    )
    tmp = out_path.with_name(f".{out_path.name}.partial")
    with tmp.open("wb") as handle:
        for line in _lines(result.outputs):
            handle.write(line)
    tmp.replace(out_path)
    return result


def _lines(outputs: list[dict[str, Any]]) -> Iterator[bytes]:
    for output in outputs:
        yield orjson.dumps(output, option=orjson.OPT_SORT_KEYS) + b"\n"
