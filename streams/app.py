"""The topology, top-down: topics -> agents -> tables -> topics. Agents are thin: decode, call
the pure functions in officers/alerts/dispatch, send. The warehouse loader (sinks/loader.py)
reads the output topics in its own process."""

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
    AlertProgress,
    Claim,
    ClaimResult,
    GpsPing,
    OfficerState,
)
from streams import dispatch
from streams.alerts import alert_from_raw
from streams.errors import InvalidEvent, Reason
from streams.officer_view import OfficerView
from streams.officers import apply_ping, ping_from_raw
from streams.rawfields import STATION_NAMES, decode_json_object, first_present
from streams.settings import Settings
from streams.topics import TopicNames

log = logging.getLogger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


def to_json(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(mode="json"))


def build_app(settings: Settings, bootstrap: str) -> faust.App:
    names = TopicNames.with_prefix(settings.topic_prefix)
    policy = dispatch.DispatchPolicy(
        radius_m=settings.dispatch_radius_m,
        max_position_age_ms=int(settings.position_max_age_s * 1000),
    )
    view = OfficerView(settings.h3_resolution)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        datadir=str(settings.state_dir / "faust" / settings.app_id),
        topic_partitions=settings.topic_partitions,
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
    gps = raw_topic(names.gps)
    alerts = raw_topic(names.alerts)
    claims = raw_topic(names.claims)
    claim_results = raw_topic(names.claim_results)
    assignments = raw_topic(names.assignments)
    unassigned = raw_topic(names.unassigned)
    deadletter = raw_topic(names.deadletter)
    # Co-partitioned by officer id: the one writer of an officer's state sees pings and claims.
    officer_inbox = raw_topic(names.gps, names.claims)
    # Co-partitioned by alert id: the one owner of an alert's progress sees it and its answers.
    alert_inbox = raw_topic(names.alerts, names.claim_results)

    # -- tables ---------------------------------------------------------------------------
    async def on_officer_changelog(event: faust.types.EventT) -> None:
        view.apply_changelog_value(event.key, event.value)

    # Global: every worker replays every partition into its OfficerView, so any alert partition
    # can search all officers; writes happen only in the officer's own partition.
    officers = app.GlobalTable(
        "officers",
        partitions=settings.topic_partitions,
        on_changelog_event=on_officer_changelog,
        recovery_buffer_size=1,
    )
    alerts_open = app.Table("alerts-open", partitions=settings.topic_partitions)

    def set_officer(state: OfficerState) -> None:
        officers[state.officer_id] = state.model_dump(mode="json")
        view.apply(state.officer_id, state)

    def officer_state(officer_id: str) -> OfficerState | None:
        stored = officers.get(officer_id)
        return None if stored is None else OfficerState.model_validate(stored)

    # -- normalising agents (raw station formats -> typed events, or the dead-letter topic) --
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

    def normaliser(
        source: faust.TopicT,
        target: faust.TopicT,
        parse: Callable[..., Any],
        key_of: Callable[[Any], str],
        then: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        async def normalise(stream: faust.StreamT) -> None:
            async for event in stream.events():
                message = event.message
                try:
                    raw = decode_json_object(message.value)
                    parsed = parse(
                        raw,
                        zone=settings.zone,
                        resolution=settings.h3_resolution,
                        reference_ms=int(message.timestamp * 1000),
                        ingest_ms=now_ms(),
                    )
                except InvalidEvent as exc:
                    await dead_letter(event, exc)
                    continue
                except ValidationError as exc:
                    detail = exc.errors()[0]
                    where = ".".join(str(p) for p in detail["loc"])
                    text = f"{where}: {detail['msg']}"
                    await dead_letter(event, InvalidEvent(Reason.INVALID_FIELD, text))
                    continue
                except Exception as exc:  # a bug must not stop the stream; it is kept, not lost
                    log.exception(
                        "normaliser failed topic=%s offset=%s", message.topic, message.offset
                    )
                    await dead_letter(event, InvalidEvent(Reason.INTERNAL_ERROR, repr(exc)))
                    continue
                await target.send(key=key_of(parsed).encode(), value=to_json(parsed))

        app.agent(source, name=f"normalise-{source.get_topic_name()}")(normalise)

    normaliser(gps_raw, gps, ping_from_raw, lambda ping: ping.officer_id)
    normaliser(alerts_raw, alerts, alert_from_raw, lambda alert: alert.alert_id)

    # -- the officer partition: sole writer of each officer's state --------------------------
    @app.agent(officer_inbox, name="officer-state")
    async def officer_partition(stream: faust.StreamT) -> None:
        async for event in stream.events():
            if event.message.topic == names.gps:
                ping = GpsPing.model_validate_json(event.message.value)
                moved = apply_ping(officer_state(ping.officer_id), ping)
                if moved is not None:
                    set_officer(moved)
                continue
            claim = Claim.model_validate_json(event.message.value)
            changed, result = dispatch.decide_claim(officer_state(claim.officer_id), claim, policy)
            if changed is not None:
                set_officer(changed)
            await claim_results.send(key=claim.alert_id.encode(), value=to_json(result))

    # -- the alert partition: owner of each alert's dispatch progress -----------------------
    async def propose(progress: AlertProgress) -> AlertProgress:
        missing = dispatch.units_missing(progress)
        if missing <= 0:
            return progress
        alert = progress.alert
        found = view.nearest_candidates(
            alert.lat,
            alert.lon,
            k=missing,
            alert_utc_ms=alert.event_utc_ms,
            policy=policy,
            exclude=dispatch.excluded_officers(progress),
        )
        progress, to_send = dispatch.claim_candidates(progress, [c.officer_id for c in found])
        for claim in to_send:
            await claims.send(key=claim.officer_id.encode(), value=to_json(claim))
        if not progress.pending and dispatch.units_missing(progress) > 0:
            notice = {
                "alert": alert.model_dump(mode="json"),
                "reason": "no_available_officer_within_radius",
                "units_missing": dispatch.units_missing(progress),
                "radius_m": policy.radius_m,
                "noticed_utc_ms": now_ms(),
            }
            await unassigned.send(key=alert.alert_id.encode(), value=orjson.dumps(notice))
        return progress

    async def on_answer(result: ClaimResult) -> AlertProgress | None:
        stored = alerts_open.get(result.alert_id)
        if stored is None:
            return None
        outcome = dispatch.apply_claim_result(AlertProgress.model_validate(stored), result)
        if outcome.release is not None:
            release = outcome.release
            await claims.send(key=release.officer_id.encode(), value=to_json(release))
        if outcome.assign is not None:
            officer = outcome.assign
            alert = outcome.progress.alert
            assert officer.lat is not None and officer.lon is not None
            assignment = dispatch.build_assignment(
                alert,
                officer,
                dispatch.geodesic_m(officer.lat, officer.lon, alert.lat, alert.lon),
                policy=policy,
                assigned_utc_ms=now_ms(),
                zone=settings.zone,
            )
            await assignments.send(key=officer.officer_id.encode(), value=to_json(assignment))
        return await propose(outcome.progress) if not result.accepted else outcome.progress

    @app.agent(alert_inbox, name="alert-dispatch")
    async def alert_partition(stream: faust.StreamT) -> None:
        async for event in stream.events():
            if event.message.topic == names.alerts:
                alert = AlertCall.model_validate_json(event.message.value)
                if alert.alert_id in alerts_open:
                    continue  # replayed after a restart: already being dispatched
                progress: AlertProgress | None = await propose(dispatch.open_alert(alert, policy))
            else:
                progress = await on_answer(ClaimResult.model_validate_json(event.message.value))
            if progress is not None:
                alerts_open[progress.alert.alert_id] = progress.model_dump(mode="json")

    app.smart_station_view = view  # type: ignore[attr-defined]  # for the CLI's live status
    return app
