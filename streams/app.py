"""The topology, top-down: topics -> agents -> tables -> topics. Agents are thin: decode, call
the handlers in streams/dispatcher.py (pure decisions in dispatch/officers/alerts), send. The
warehouse loader (sinks/loader.py) reads the output topics in its own process."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from pydantic import BaseModel, ValidationError

from schemas.events import (
    AlertCall,
    BackupRequest,
    CameraMeta,
    Claim,
    ClaimResult,
    GpsPing,
    OfficerState,
    OfficerStatusChange,
    Tick,
)
from streams import dispatch
from streams.alerts import alert_from_raw
from streams.background import AlertHistory
from streams.cameras import CameraRegistry, camera_from_raw
from streams.dispatcher import Dispatcher, Outbound, entry_from_json
from streams.errors import InvalidEvent, Reason
from streams.officer_view import OfficerView
from streams.officers import ping_from_raw, status_from_raw
from streams.rawfields import STATION_NAMES, decode_json_object, first_present
from streams.settings import Settings
from streams.stations import StationBook
from streams.topics import TopicNames
from streams.transport import LowLatencyTransport

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0


def now_ms() -> int:
    return int(time.time() * 1000)


def to_json(message: BaseModel | dict[str, Any]) -> bytes:
    if isinstance(message, BaseModel):
        return orjson.dumps(message.model_dump(mode="json"))
    return orjson.dumps(message)


def policy_for(settings: Settings) -> dispatch.DispatchPolicy:
    return dispatch.DispatchPolicy(
        radius_m=settings.dispatch_radius_m,
        max_position_age_ms=int(settings.position_max_age_s * 1000),
        ack_timeout_ms=int(settings.ack_timeout_s * 1000),
        position_write_interval_ms=int(settings.position_write_interval_s * 1000),
    )


class PipelineApp(faust.App):
    """A Faust app whose workers consume through `LowLatencyTransport`."""

    def _new_transport(self) -> Any:
        return LowLatencyTransport(self.conf.broker_consumer, self)


def build_app(
    settings: Settings, bootstrap: str, *, raw_ping_partitions: int | None = None
) -> faust.App:
    """`raw_ping_partitions`: when the raw ping topic has as many partitions as the officer
    topics, Faust co-assigns its partition p with theirs, so a ping its producer keyed by officer
    id is applied where it is normalised (one hop instead of two)."""
    names = TopicNames.with_prefix(settings.topic_prefix)
    partitions = settings.topic_partitions
    app = PipelineApp(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        datadir=str(settings.state_dir / "faust" / settings.app_id),
        topic_partitions=partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        table_standby_replicas=0,
        stream_wait_empty=False,
        broker_commit_interval=0.5,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 5),
        # Topics pass raw bytes explicitly; these defaults are the tables' changelog codecs.
        key_serializer="json",
        value_serializer="json",
    )

    # -- topics (bytes in, bytes out: agents decode themselves so bad input can be kept) ----
    def raw_topic(*topic_names: str) -> faust.TopicT:
        return app.topic(*topic_names, key_serializer="raw", value_serializer="raw")

    gps_raw = raw_topic(names.gps_raw)
    alerts_raw = raw_topic(names.alerts_raw)
    status_raw = raw_topic(names.status_raw)
    cameras_raw = raw_topic(names.cameras_raw)
    deadletter = raw_topic(names.deadletter)
    outputs: dict[str, faust.TopicT] = {
        "claims": raw_topic(names.claims),
        "claim_results": raw_topic(names.claim_results),
        "assignments": raw_topic(names.assignments),
        "unassigned": raw_topic(names.unassigned),
        "events": raw_topic(names.events),
        "ticks": raw_topic(names.ticks),
    }
    normalised = {
        "gps": raw_topic(names.gps),
        "alerts": raw_topic(names.alerts),
        "status": raw_topic(names.status),
        "cameras": raw_topic(names.cameras),
    }
    # Co-partitioned by officer id: the one writer of an officer's state sees all about them.
    officer_inbox = raw_topic(names.gps_by_officer, names.status, names.claims, names.ticks)
    gps_by_officer = raw_topic(names.gps_by_officer)
    pings_copartitioned = raw_ping_partitions == partitions
    # Co-partitioned by alert id: the one owner of an alert's progress sees it and its answers.
    alert_inbox = raw_topic(names.alerts, names.claim_results, names.backup, names.ticks)

    # -- tables: global ones are replayed by every worker into in-memory views -------------
    stations = StationBook(settings.zone, settings.stations)
    view = OfficerView(settings.h3_resolution)
    cameras = CameraRegistry(settings.h3_resolution)
    history = AlertHistory()

    def mirrored_table(name: str, apply: Callable[[str, Any], None]) -> faust.types.TableT:
        """A GlobalTable whose changelog (recovery and other workers' writes) feeds `apply`."""

        async def on_changelog(event: faust.types.EventT) -> None:
            key = event.key.decode() if isinstance(event.key, bytes) else str(event.key)
            apply(key, event.value)

        return app.GlobalTable(
            name, partitions=partitions, recovery_buffer_size=1, on_changelog_event=on_changelog
        )

    officers = mirrored_table(
        "officers",
        lambda k, v: view.apply(k, None if v is None else OfficerState.model_validate(v)),
    )
    camera_store = mirrored_table(
        "cameras",
        lambda k, v: cameras.apply(k, None if v is None else CameraMeta.model_validate(v)),
    )
    history_store = mirrored_table(
        "alert-history",
        lambda k, v: history.forget(k) if v is None else history.record(entry_from_json(v)),
    )
    alerts_open = app.Table("alerts-open", partitions=partitions)

    dispatcher = Dispatcher(
        policy=policy_for(settings),
        zone=settings.zone,
        partitions=partitions,
        view=view,
        cameras=cameras,
        history=history,
        officers=officers,
        alerts_open=alerts_open,
        history_store=history_store,
        camera_store=camera_store,
    )

    async def send_all(out: list[Outbound]) -> None:
        for item in out:
            await outputs[item.topic].send(
                key=item.key.encode(), value=to_json(item.message), partition=item.partition
            )

    # -- dead letters: original bytes untouched, the why in headers ------------------------
    async def dead_letter(event: faust.types.EventT, error: InvalidEvent) -> None:
        message = event.message
        station = ""
        with contextlib.suppress(InvalidEvent):
            station = str(
                first_present(decode_json_object(message.value or b""), STATION_NAMES) or ""
            )
        headers = {
            "reason": error.reason.value,
            "message": error.message[:1000],
            "source_topic": message.topic,
            "source_partition": str(message.partition),
            "source_offset": str(message.offset),
            "station_id": station,
            "dead_utc_ms": str(now_ms()),
        }
        await deadletter.send(
            key=message.key,
            value=message.value,
            headers=[(k, v.encode()) for k, v in headers.items()],
        )

    def invalid_event(exc: Exception) -> InvalidEvent:
        if isinstance(exc, InvalidEvent):
            return exc
        if isinstance(exc, ValidationError):
            detail = exc.errors()[0]
            where = ".".join(str(p) for p in detail["loc"])
            return InvalidEvent(Reason.INVALID_FIELD, f"{where}: {detail['msg']}")
        if isinstance(exc, orjson.JSONDecodeError):
            return InvalidEvent(Reason.INVALID_JSON, str(exc))
        log.error("unexpected error handling an event: %r", exc)
        return InvalidEvent(Reason.INTERNAL_ERROR, repr(exc))

    # -- normalising agents (raw station formats -> typed events, or the dead-letter topic) --
    def normaliser(
        source: faust.TopicT,
        target: faust.TopicT,
        parse: Callable[..., Any],
        key_field: str,
        then: Callable[[faust.types.EventT, Any, bytes], Awaitable[None]] | None = None,
    ) -> None:
        async def normalise(stream: faust.StreamT) -> None:
            async for event in stream.events():
                message = event.message
                try:
                    parsed = parse(
                        decode_json_object(message.value or b""),
                        stations=stations,
                        resolution=settings.h3_resolution,
                        reference_ms=int(message.timestamp * 1000),
                        ingest_ms=now_ms(),
                    )
                except Exception as exc:  # every failure is kept, none stops the stream
                    await dead_letter(event, invalid_event(exc))
                    continue
                key, value = getattr(parsed, key_field).encode(), to_json(parsed)
                await target.send(key=key, value=value)
                if then is not None:
                    await then(event, parsed, value)

        app.agent(source, name=f"normalise-{source.get_topic_name()}")(normalise)

    async def route_ping(event: faust.types.EventT, ping: GpsPing, value: bytes) -> None:
        officer_id = ping.officer_id
        owned_here = (
            pings_copartitioned
            and event.message.key == officer_id.encode()
            and dispatcher.partition_of(officer_id) == event.message.partition
        )
        if owned_here:
            await send_all(dispatcher.on_ping(ping))
        else:
            await gps_by_officer.send(key=officer_id.encode(), value=value)

    normaliser(gps_raw, normalised["gps"], ping_from_raw, "officer_id", then=route_ping)
    normaliser(alerts_raw, normalised["alerts"], alert_from_raw, "alert_id")
    normaliser(status_raw, normalised["status"], status_from_raw, "officer_id")
    normaliser(cameras_raw, normalised["cameras"], camera_from_raw, "camera_id")

    def officer_side(event: faust.types.EventT) -> list[Outbound]:
        topic, value = event.message.topic, event.message.value or b""
        if topic == names.gps_by_officer:
            return dispatcher.on_ping(GpsPing.model_validate_json(value))
        if topic == names.status:
            return dispatcher.on_status(OfficerStatusChange.model_validate_json(value))
        if topic == names.claims:
            return dispatcher.on_claim(Claim.model_validate_json(value), now_ms())
        tick = Tick.model_validate_json(value)
        return dispatcher.on_officer_tick(tick, event.message.partition)

    def alert_side(event: faust.types.EventT) -> list[Outbound]:
        topic, value = event.message.topic, event.message.value or b""
        if topic == names.alerts:
            return dispatcher.on_alert(AlertCall.model_validate_json(value), now_ms())
        if topic == names.claim_results:
            return dispatcher.on_claim_result(ClaimResult.model_validate_json(value), now_ms())
        if topic == names.backup:
            return dispatcher.on_backup(BackupRequest.model_validate_json(value), now_ms())
        tick = Tick.model_validate_json(value)
        return dispatcher.on_alert_tick(tick, event.message.partition)

    def camera_side(event: faust.types.EventT) -> list[Outbound]:
        return dispatcher.on_camera(CameraMeta.model_validate_json(event.message.value or b""))

    async def run_guarded(
        stream: faust.StreamT, handle: Callable[[faust.types.EventT], list[Outbound]]
    ) -> None:
        """A message that cannot be handled is dead-lettered; the partition keeps going."""
        async for event in stream.events():
            try:
                out = handle(event)
            except Exception as exc:
                await dead_letter(event, invalid_event(exc))
                continue
            await send_all(out)

    # -- the officer partition: sole writer of each officer's state --------------------------
    @app.agent(officer_inbox, name="officer-state")
    async def officer_partition(stream: faust.StreamT) -> None:
        await run_guarded(stream, officer_side)

    # -- the alert partition: owner of each alert's dispatch progress -----------------------
    @app.agent(alert_inbox, name="alert-dispatch")
    async def alert_partition(stream: faust.StreamT) -> None:
        await run_guarded(stream, alert_side)

    @app.agent(normalised["cameras"], name="camera-registry")
    async def camera_partition(stream: faust.StreamT) -> None:
        await run_guarded(stream, camera_side)

    # -- the clock: the leader ticks every partition, timeouts run in the partitions' streams -
    @app.timer(TICK_INTERVAL_S, on_leader=True)
    async def tick_every_partition() -> None:
        tick = to_json(Tick(now_utc_ms=now_ms()))
        for partition in range(partitions):
            await outputs["ticks"].send(key=b"tick", value=tick, partition=partition)

    return app
