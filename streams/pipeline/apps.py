"""The topology, top-down: topics -> agents -> tables -> topics, in two consumer groups run as
separate processes:

- the positions worker (streams/pipeline/positions_worker.py, batched, no Faust agent): raw GPS
  pings -> normalised pings -> the `positions` table (streams/dispatch/positions.py). Pings are
  the bulk of the traffic; on their own worker they never hold up a dispatch, and each kind
  scales out on its own.
- the dispatch app (`build_dispatch_app`): alerts, status changes, cameras, claims, backup
  requests and ticks -> the handlers in streams/dispatch/handlers.py -> assignments. It mirrors
  the positions table (read only) into its OfficerView.

Which decoder reads each topic, which handler gets each message and what is delivered in place
is the routing table (streams/dispatch/routing.py), which replay reads too. Agents are thin:
decode, call the handlers, send. The warehouse loader (sinks/loader.py) reads the output topics
in its own process."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

import faust
from faust.types import TP

from base.settings import Settings
from infra.kafka_security import PLAINTEXT, KafkaSecurity
from schemas.events import AlertCall, Tick
from streams.dispatch.handlers import Dispatcher, Outbound
from streams.dispatch.routing import (
    INBOXES,
    INGEST_BY_RAW,
    Inbox,
    Table,
    Views,
    decode_and_handle,
    deliver_here,
    settle,
)
from streams.ingest.skew import bounded
from streams.pipeline.plumbing import (
    Plumbing,
    new_app,
    now_ms,
    policy_for,
    skew_for,
    to_json,
)
from streams.pipeline.positions_worker import (
    POSITIONS_APP_SUFFIX,
    POSITIONS_TABLE,
    positions_changelog,
)
from streams.pipeline.table_writes import MirroredTable, TableWrites

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0


# The dispatch app's read-only mirror of the positions table (streams/pipeline/positions_worker.py).
# Faust names a changelog `<app id>-<table>-changelog` and its assignor only knows global tables
# by that name (a custom changelog topic breaks the assignment), so the mirror is named to land
# on the positions worker's changelog.
POSITIONS_MIRROR = f"{POSITIONS_APP_SUFFIX}-{POSITIONS_TABLE}"


def build_dispatch_app(
    settings: Settings,
    bootstrap: str,
    *,
    raw_alert_partitions: int | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> faust.App:
    """Alerts, status changes, cameras, claims, backup requests and ticks -> assignments.
    `raw_alert_partitions`: as for pings, an alert its producer keyed by alert id on a raw
    topic with as many partitions is dispatched where it is normalised; its normalised copy
    (for the warehouse) then reaches `alert-dispatch` as a replay and is skipped."""
    app = new_app(settings.app_id, settings, bootstrap, security=security)
    plumbing = Plumbing(app, settings)
    names, partitions, raw_topic = plumbing.names, settings.topic_partitions, plumbing.raw_topic

    # -- tables: global ones are replayed by every worker into in-memory views -------------
    views = Views.empty(settings.h3_resolution, plumbing.partition_of)
    table_writes = TableWrites(app)

    def mirrored_table(table: Table, *, by_key: bool = False) -> faust.types.TableT:
        """A global table whose changelog (recovery and other workers' writes) feeds its view."""
        # The positions mirror lands on the positions app's changelog (see POSITIONS_MIRROR).
        name = POSITIONS_MIRROR if table is Table.POSITIONS else table.value
        mirrored = MirroredTable(
            app,
            name=name,
            beacon=app.tables.beacon,
            partitions=partitions,
            is_global=True,
            recovery_buffer_size=1,
            standby_buffer_size=1,
            use_partitioner=by_key,
            mirror=partial(views.apply, table),
            writes=table_writes,
        )
        app.tables.add(mirrored)
        return mirrored

    # An officer's status is written by whichever agent of the owning worker decides (claims
    # may be decided inline, below): the key, not the event, picks the partition.
    officers = mirrored_table(Table.OFFICERS, by_key=True)
    positions = mirrored_table(Table.POSITIONS)  # written by the positions app only
    assert positions.changelog_topic.get_topic_name() == positions_changelog(settings)
    camera_store = mirrored_table(Table.CAMERAS)
    history_store = mirrored_table(Table.HISTORY)
    waiting_store = mirrored_table(Table.WAITING, by_key=True)  # by each alert's partition
    alerts_open = app.Table(Table.ALERTS_OPEN.value, partitions=partitions)
    for written in (officers, waiting_store, alerts_open, camera_store, history_store):
        table_writes.watch(written)

    @app.on_partitions_revoked.connect
    async def settle_table_writes(sender: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        """The next owner of a partition recovers its tables up to the changelog's end as it
        is when the rebalance completes: every write this worker made (agents have finished
        their events by now) must be acknowledged before it rejoins the group, or the next
        owner decides from a view without them (an officer booked twice after a `kill -9`).
        Bounded: a broker that does not answer must not hold the rebalance up for good."""
        try:
            await asyncio.wait_for(table_writes.durable(), timeout=settings.session_timeout_s / 2)
        except TimeoutError:
            log.warning("table writes not acknowledged before rejoining the group")

    dispatcher = Dispatcher(
        policy=policy_for(settings),
        zone=settings.zone,
        partitions=partitions,
        view=views.officers,
        cameras=views.cameras,
        history=views.history,
        board=views.board,
        officers=officers,
        alerts_open=alerts_open,
        waiting_store=waiting_store,
        history_store=history_store,
        camera_store=camera_store,
    )

    def decides_for_officer(officer_id: str) -> bool:
        return TP(names.claims, plumbing.partition_of(officer_id)) in app.consumer.assignment()

    async def send_all(out: list[Outbound], partition: int) -> None:
        """`partition`: of the event being handled (whose tables' changelogs we write to).
        Everything that can be decided here is decided first (the routing table's
        `deliver_here`, as in replay); then the tables' writes are handed to the Kafka client
        (TableWrites) before anything is published, so that a crash can lose a message the
        tables remember (sent again on recovery: Dispatcher._recover), never publish a decision
        the tables forgot (an officer told to go where nobody knows)."""
        deliver = partial(
            deliver_here,
            dispatcher,
            now_ms=now_ms(),
            decides_for_officer=decides_for_officer,
            alert_partition=partition,
        )
        outgoing = settle(out, deliver)
        await table_writes.hand_over()
        for item in outgoing:
            await outputs[item.topic].send(
                key=item.key.encode(), value=to_json(item.message), partition=item.partition
            )

    outputs = {
        field: raw_topic(getattr(names, field))
        for field in ("claims", "claim_results", "assignments", "unassigned", "events", "ticks")
    }

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
    for raw in ("alerts_raw", "status_raw", "cameras_raw"):
        ingest = INGEST_BY_RAW[raw]
        plumbing.normaliser(
            raw_topic(getattr(names, raw)),
            raw_topic(getattr(names, ingest.normalised)),
            bounded(ingest.parse, skew),
            ingest.key_field,
            then=dispatch_at_once if raw == "alerts_raw" else None,
        )

    # -- the inboxes: officer partitions (sole writers of each officer's status), alert
    # partitions (owners of each alert's dispatch progress), the camera registry ------------
    def inbox_agent(inbox: Inbox) -> None:
        topics = INBOXES[inbox]
        by_name = {getattr(names, topic): topic for topic in topics}

        def handle_event(event: faust.types.EventT) -> list[Outbound]:
            message = event.message
            topic = by_name[message.topic]
            value, partition = message.value or b"", message.partition
            return decode_and_handle(dispatcher, inbox, topic, value, now_ms(), partition)

        async def run(stream: faust.StreamT) -> None:
            await plumbing.run_guarded(stream, handle_event, send_all)

        source = raw_topic(*(getattr(names, topic) for topic in topics))
        app.agent(source, name=inbox.value)(run)

    for inbox in Inbox:
        inbox_agent(inbox)

    # -- the clock: the leader ticks every partition, timeouts run in the partitions' streams -
    @app.timer(TICK_INTERVAL_S, on_leader=True)
    async def tick_every_partition() -> None:
        tick = to_json(Tick(now_utc_ms=now_ms()))
        for partition in range(partitions):
            await outputs["ticks"].send(key=b"tick", value=tick, partition=partition)

    return app
