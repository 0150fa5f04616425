"""The topology, top-down: topics -> agents -> tables -> topics, as two Faust apps (two consumer
groups, run as separate processes):

- the positions app (`build_positions_app`): raw GPS pings -> normalised pings -> the
  `positions` table (streams/positions.py). Pings are the bulk of the traffic; on their own
  worker they never hold up a dispatch, and each kind scales out on its own.
- the dispatch app (`build_dispatch_app`): alerts, status changes, cameras, claims, backup
  requests and ticks -> the handlers in streams/dispatcher.py -> assignments. It mirrors the
  positions table (read only) into its OfficerView.

Agents are thin: decode, call the handlers (pure decisions in dispatch/positions/alerts), send.
The warehouse loader (sinks/loader.py) reads the output topics in its own process."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from faust.types import TP
from pydantic import BaseModel, ValidationError

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
from streams import dispatch
from streams.alerts import alert_from_raw
from streams.background import AlertHistory
from streams.cameras import CameraRegistry, camera_from_raw
from streams.dispatcher import Dispatcher, Outbound, entry_from_json, partition_for
from streams.errors import InvalidEvent, Reason
from streams.officer_view import OfficerView
from streams.officers import ping_from_raw, status_from_raw
from streams.positions import PositionKeeper
from streams.rawfields import STATION_NAMES, first_present
from streams.settings import Settings
from streams.skew import SkewBound, bounded
from streams.stations import StationBook
from streams.table_writes import MirroredTable, TableWrites
from streams.topics import TopicNames
from streams.transport import LowLatencyTransport
from streams.waiting import WaitingBoard

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
        escalation_radii_m=tuple(settings.escalation_radii_m),
        escalate_after_ms=int(settings.escalate_after_s * 1000),
        escalate_at_once_priority=settings.escalate_at_once_priority,
        max_position_age_ms=int(settings.position_max_age_s * 1000),
        ack_timeout_ms=int(settings.ack_timeout_s * 1000),
        refusal_hold_ms=int(settings.refusal_hold_s * 1000),
        position_write_interval_ms=int(settings.position_write_interval_s * 1000),
    )


def skew_for(settings: Settings) -> SkewBound:
    return SkewBound(
        ahead_ms=int(settings.event_max_ahead_s * 1000),
        behind_ms=int(settings.event_max_behind_s * 1000),
    )


class PipelineApp(faust.App):
    """A Faust app whose workers consume through `LowLatencyTransport`."""

    fetch_min_bytes = 1  # the transport's fetches: answer as soon as there is anything

    def _new_transport(self) -> Any:
        return LowLatencyTransport(self.conf.broker_consumer, self)


POSITIONS_APP_SUFFIX = "positions"
POSITIONS_TABLE = "officers"  # the positions app's table
# The dispatch app's read-only mirror of it. Faust names a changelog `<app id>-<table>-changelog`
# and its assignor only knows global tables by that name (a custom changelog topic breaks the
# assignment), so the mirror is named to land on the positions app's changelog.
POSITIONS_MIRROR = f"{POSITIONS_APP_SUFFIX}-{POSITIONS_TABLE}"


# Each produce request is a socket write that costs the worker and the broker far more than a
# ping's own handling (half the positions worker's CPU at 2,000 pings/s with no linger): pings
# wait up to 10 ms to share one. Dispatch sends at once.
POSITIONS_LINGER_S = 0.010
# Likewise for fetches: up to the long-poll (20 ms) for ~100 raw pings per fetch.
POSITIONS_FETCH_MIN_BYTES = 16 << 10


def positions_app_id(settings: Settings) -> str:
    return f"{settings.app_id}-{POSITIONS_APP_SUFFIX}"


def positions_changelog(settings: Settings) -> str:
    """The positions table's changelog, which every dispatch worker mirrors."""
    return f"{positions_app_id(settings)}-{POSITIONS_TABLE}-changelog"


def _new_app(
    app_id: str, settings: Settings, bootstrap: str, *, producer_linger_s: float = 0.0
) -> PipelineApp:
    return PipelineApp(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        datadir=str(settings.state_dir / "faust" / app_id),
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=producer_linger_s,
        table_standby_replicas=0,
        # A rebalance waits for the events agents have started on: an agent mid-event (the
        # alert normaliser dispatches after an await) would otherwise go on deciding for a
        # partition whose next owner has already recovered its tables without those writes,
        # and an officer could be booked twice across the hand-off (seen after a `kill -9`).
        stream_wait_empty=True,
        broker_commit_interval=0.5,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 5),
        # Topics pass raw bytes explicitly; these defaults are the tables' changelog codecs.
        key_serializer="json",
        value_serializer="json",
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


class Plumbing:
    """What both apps' agents share: raw topics, dead letters, normalising and guarded agents."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.names = TopicNames.with_prefix(settings.topic_prefix)
        self.stations = StationBook(settings.zone, settings.stations)
        self.deadletter = self.raw_topic(self.names.deadletter)

    def partition_of(self, key: str) -> int:
        return partition_for(key, self.settings.topic_partitions)

    def arrived_where_owned(self, event: faust.types.EventT, key: str, copartitioned: bool) -> bool:
        """Whether a raw event already sits on the partition its key owns: its producer keyed
        it by `key` on a raw topic with as many partitions as the keyed topics (Faust co-assigns
        partition p of topics with equal partition counts), so it can be handled right where
        it is normalised, one hop earlier."""
        return (
            copartitioned
            and event.message.key == key.encode()
            and self.partition_of(key) == event.message.partition
        )

    def raw_topic(self, *topic_names: str) -> faust.TopicT:
        """Bytes in, bytes out: agents decode themselves so bad input can be kept."""
        return self.app.topic(*topic_names, key_serializer="raw", value_serializer="raw")

    async def dead_letter(self, event: faust.types.EventT, error: InvalidEvent) -> None:
        """The original bytes untouched, the why in headers."""
        message = event.message
        station = ""
        with contextlib.suppress(InvalidEvent):
            station = str(
                first_present(self.stations.decode_event(message.value or b""), STATION_NAMES) or ""
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
        await self.deadletter.send(
            key=message.key,
            value=message.value,
            headers=[(k, v.encode()) for k, v in headers.items()],
        )

    def normaliser(
        self,
        source: faust.TopicT,
        target: faust.TopicT,
        parse: Callable[..., Any],
        key_field: str,
        then: Callable[[faust.types.EventT, Any, bytes], Awaitable[None]] | None = None,
    ) -> None:
        """An agent: raw station format -> typed event on `target`, or the dead-letter topic."""
        stations, resolution = self.stations, self.settings.h3_resolution
        # Straight to the producer (what Topic.send ends in, minus a channel, a future and
        # sensor calls per message: ~8 % of a positions worker's CPU); commits still flush it.
        send_now, target_name = self.app.producer.send, target.get_topic_name()

        async def normalise(stream: faust.StreamT) -> None:
            async for event in stream.events():
                message = event.message
                try:
                    parsed = parse(
                        stations.decode_event(message.value or b""),
                        stations=stations,
                        resolution=resolution,
                        reference_ms=int(message.timestamp * 1000),
                        ingest_ms=now_ms(),
                    )
                except Exception as exc:  # every failure is kept, none stops the stream
                    await self.dead_letter(event, invalid_event(exc))
                    continue
                key, value = getattr(parsed, key_field).encode(), to_json(parsed)
                await send_now(target_name, key, value, None, None, None)
                if then is None:
                    continue
                try:
                    await then(event, parsed, value)
                except Exception as exc:  # kept with its reason; the stream goes on
                    await self.dead_letter(event, invalid_event(exc))

        self.app.agent(source, name=f"normalise-{source.get_topic_name()}")(normalise)

    async def run_guarded(
        self,
        stream: faust.StreamT,
        handle: Callable[[faust.types.EventT], list[Outbound]],
        send_all: Callable[[list[Outbound], int], Awaitable[None]],
    ) -> None:
        """A message that cannot be handled is dead-lettered; the partition keeps going."""
        async for event in stream.events():
            try:
                out = handle(event)
            except Exception as exc:
                await self.dead_letter(event, invalid_event(exc))
                out = []  # what it wrote to tables before failing still goes out
            await send_all(out, event.message.partition)


def build_positions_app(
    settings: Settings, bootstrap: str, *, raw_ping_partitions: int | None = None
) -> faust.App:
    """Pings -> normalised pings -> the positions table. `raw_ping_partitions`: when the raw
    ping topic has as many partitions as the officer topics, Faust co-assigns its partition p
    with theirs, so a ping its producer keyed by officer id is applied where it is normalised
    (one hop instead of two)."""
    app = _new_app(
        positions_app_id(settings), settings, bootstrap, producer_linger_s=POSITIONS_LINGER_S
    )
    app.fetch_min_bytes = POSITIONS_FETCH_MIN_BYTES
    plumbing = Plumbing(app, settings)
    names, partitions = plumbing.names, settings.topic_partitions
    gps_by_officer = plumbing.raw_topic(names.gps_by_officer)
    keeper = PositionKeeper(
        app.Table(POSITIONS_TABLE, partitions=partitions),
        policy_for(settings).position_write_interval_ms,
    )
    pings_copartitioned = raw_ping_partitions == partitions

    async def route_ping(event: faust.types.EventT, ping: GpsPing, value: bytes) -> None:
        if plumbing.arrived_where_owned(event, ping.officer_id, pings_copartitioned):
            keeper.on_ping(ping)
        else:
            await gps_by_officer.send(key=ping.officer_id.encode(), value=value)

    gps = plumbing.raw_topic(names.gps)
    plumbing.normaliser(
        plumbing.raw_topic(names.gps_raw),
        gps,
        bounded(ping_from_raw, skew_for(settings)),
        "officer_id",
        then=route_ping,
    )

    def position_side(event: faust.types.EventT) -> list[Outbound]:
        keeper.on_ping(GpsPing.model_validate_json(event.message.value or b""))
        return []

    async def nothing_to_send(out: list[Outbound], partition: int) -> None:
        assert not out

    @app.agent(gps_by_officer, name="officer-positions")
    async def positions_partition(stream: faust.StreamT) -> None:
        await plumbing.run_guarded(stream, position_side, nothing_to_send)

    return app


def build_dispatch_app(
    settings: Settings, bootstrap: str, *, raw_alert_partitions: int | None = None
) -> faust.App:
    """Alerts, status changes, cameras, claims, backup requests and ticks -> assignments.
    `raw_alert_partitions`: as for pings, an alert its producer keyed by alert id on a raw
    topic with as many partitions is dispatched where it is normalised; its normalised copy
    (for the warehouse) then reaches `alert-dispatch` as a replay and is skipped."""
    app = _new_app(settings.app_id, settings, bootstrap)
    plumbing = Plumbing(app, settings)
    names, partitions, raw_topic = plumbing.names, settings.topic_partitions, plumbing.raw_topic
    outputs: dict[str, faust.TopicT] = {
        "claims": raw_topic(names.claims),
        "claim_results": raw_topic(names.claim_results),
        "assignments": raw_topic(names.assignments),
        "unassigned": raw_topic(names.unassigned),
        "events": raw_topic(names.events),
        "ticks": raw_topic(names.ticks),
    }
    normalised = {
        "alerts": raw_topic(names.alerts),
        "status": raw_topic(names.status),
        "cameras": raw_topic(names.cameras),
    }
    # Co-partitioned by officer id: the one writer of an officer's status sees all about them.
    officer_inbox = raw_topic(names.status, names.claims, names.ticks)
    # Co-partitioned by alert id: the one owner of an alert's progress sees it and its answers.
    alert_inbox = raw_topic(names.alerts, names.claim_results, names.backup, names.ticks)

    # -- tables: global ones are replayed by every worker into in-memory views -------------
    view = OfficerView(settings.h3_resolution, plumbing.partition_of)
    cameras = CameraRegistry(settings.h3_resolution)
    history = AlertHistory()
    board = WaitingBoard(plumbing.partition_of)

    table_writes = TableWrites(app)

    def mirrored_table(
        name: str, apply: Callable[[str, Any], None], *, by_key: bool = False
    ) -> faust.types.TableT:
        """A global table whose changelog (recovery and other workers' writes) feeds `apply`."""
        table = MirroredTable(
            app,
            name=name,
            beacon=app.tables.beacon,
            partitions=partitions,
            is_global=True,
            recovery_buffer_size=1,
            standby_buffer_size=1,
            use_partitioner=by_key,
            mirror=apply,
            writes=table_writes,
        )
        app.tables.add(table)
        return table

    officers = mirrored_table(
        "officers",
        lambda k, v: view.apply(k, None if v is None else OfficerState.model_validate(v)),
        # An officer's status is written by whichever agent of the owning worker decides
        # (claims may be decided inline, below): the key, not the event, picks the partition.
        by_key=True,
    )
    positions = mirrored_table(  # written by the positions app only
        POSITIONS_MIRROR,
        lambda k, v: None if v is None else view.apply_position(OfficerPosition.model_validate(v)),
    )
    assert positions.changelog_topic.get_topic_name() == positions_changelog(settings)
    camera_store = mirrored_table(
        "cameras",
        lambda k, v: cameras.apply(k, None if v is None else CameraMeta.model_validate(v)),
    )
    history_store = mirrored_table(
        "alert-history",
        lambda k, v: history.forget(k) if v is None else history.record(entry_from_json(v)),
    )
    waiting_store = mirrored_table(  # written by each alert's partition
        "alerts-waiting",
        lambda k, v: board.apply(k, None if v is None else WaitingAlert.model_validate(v)),
        by_key=True,
    )
    alerts_open = app.Table("alerts-open", partitions=partitions)
    for written in (officers, waiting_store, alerts_open, camera_store, history_store):
        table_writes.watch(written)

    @app.on_partitions_revoked.connect
    async def settle_table_writes(sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        """The next owner of a partition recovers its tables up to the changelog's end as it
        is when the rebalance completes: every write this worker made (agents have finished
        their events by now) must be acknowledged before it rejoins the group, or the next
        owner decides from a view without them (an officer booked twice after a `kill -9`)."""
        await table_writes.durable()

    dispatcher = Dispatcher(
        policy=policy_for(settings),
        zone=settings.zone,
        partitions=partitions,
        view=view,
        cameras=cameras,
        history=history,
        board=board,
        officers=officers,
        alerts_open=alerts_open,
        waiting_store=waiting_store,
        history_store=history_store,
        camera_store=camera_store,
    )

    def delivered_here(item: Outbound, partition: int) -> list[Outbound] | None:
        """What handling an internal message on this worker gives, when it may be handled here
        at once instead of two topic hops later (None: send it): a claim for an officer whose
        partition this worker owns (it is that officer's one decider either way), an answer
        for the alert whose partition's event is being handled. Replay delivers the same way."""
        if item.topic == "claims":
            assert isinstance(item.message, Claim)
            if TP(names.claims, plumbing.partition_of(item.key)) in app.consumer.assignment():
                return dispatcher.on_claim(item.message, now_ms())
        elif item.topic == "claim_results" and plumbing.partition_of(item.key) == partition:
            assert isinstance(item.message, ClaimResult)
            return dispatcher.on_claim_result(item.message, now_ms())
        return None

    async def send_all(out: list[Outbound], partition: int) -> None:
        """`partition`: of the event being handled (whose tables' changelogs we write to).
        Everything that can be decided here is decided first; then the tables' writes are
        handed to the Kafka client (TableWrites) before anything is published, so that a crash can
        lose a message the tables remember (sent again on recovery: Dispatcher._recover), never
        publish a decision the tables forgot (an officer told to go where nobody knows)."""
        queue, outgoing = deque(out), []
        while queue:
            item = queue.popleft()
            here = delivered_here(item, partition)
            if here is None:
                outgoing.append(item)
            else:
                queue.extend(here)
        await table_writes.hand_over()
        for item in outgoing:
            await outputs[item.topic].send(
                key=item.key.encode(), value=to_json(item.message), partition=item.partition
            )

    # -- normalising agents (raw station formats -> typed events, or the dead-letter topic) --
    alerts_copartitioned = raw_alert_partitions == partitions

    async def dispatch_at_once(event: faust.types.EventT, alert: AlertCall, value: bytes) -> None:
        if not plumbing.arrived_where_owned(event, alert.alert_id, alerts_copartitioned):
            return
        try:
            out = dispatcher.on_alert(alert, now_ms())
        except Exception:  # not lost: its normalised copy takes the two-hop way
            log.exception("alert %s: dispatch where normalised failed", alert.alert_id)
            out = []
        await send_all(out, event.message.partition)

    skew = skew_for(settings)
    plumbing.normaliser(
        raw_topic(names.alerts_raw),
        normalised["alerts"],
        bounded(alert_from_raw, skew),
        "alert_id",
        then=dispatch_at_once,
    )
    plumbing.normaliser(
        raw_topic(names.status_raw),
        normalised["status"],
        bounded(status_from_raw, skew),
        "officer_id",
    )
    plumbing.normaliser(
        raw_topic(names.cameras_raw),
        normalised["cameras"],
        bounded(camera_from_raw, skew),
        "camera_id",
    )

    def officer_side(event: faust.types.EventT) -> list[Outbound]:
        topic, value = event.message.topic, event.message.value or b""
        if topic == names.status:
            return dispatcher.on_status(OfficerStatusChange.model_validate_json(value), now_ms())
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

    # -- the officer partition: sole writer of each officer's status -------------------------
    @app.agent(officer_inbox, name="officer-state")
    async def officer_partition(stream: faust.StreamT) -> None:
        await plumbing.run_guarded(stream, officer_side, send_all)

    # -- the alert partition: owner of each alert's dispatch progress -----------------------
    @app.agent(alert_inbox, name="alert-dispatch")
    async def alert_partition(stream: faust.StreamT) -> None:
        await plumbing.run_guarded(stream, alert_side, send_all)

    @app.agent(normalised["cameras"], name="camera-registry")
    async def camera_partition(stream: faust.StreamT) -> None:
        await plumbing.run_guarded(stream, camera_side, send_all)

    # -- the clock: the leader ticks every partition, timeouts run in the partitions' streams -
    @app.timer(TICK_INTERVAL_S, on_leader=True)
    async def tick_every_partition() -> None:
        tick = to_json(Tick(now_utc_ms=now_ms()))
        for partition in range(partitions):
            await outputs["ticks"].send(key=b"tick", value=tick, partition=partition)

    return app
