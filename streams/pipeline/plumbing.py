"""What both Faust apps are built from: the app itself (its transport and settings), raw topics,
dead letters, normalising agents and guarded agents (table writes: table_writes.py). The topology
that uses them is in streams/pipeline/apps.py."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import faust
import orjson
from pydantic import BaseModel

from base.errors import InvalidEvent, Reason, invalid_event
from base.settings import Settings
from base.topics import TopicNames
from infra.kafka_security import PLAINTEXT, KafkaSecurity
from schemas.events import DeadLetterHeaders
from streams.dispatch import rules as dispatch
from streams.dispatch.handlers import Outbound, partition_for
from streams.ingest.fields import STATION_NAMES, first_present
from streams.ingest.skew import SkewBound
from streams.ingest.stations import StationBook
from streams.pipeline.transport import LowLatencyTransport

log = logging.getLogger(__name__)

# What an oversized original keeps on the dead-letter topic: enough to see what it was.
OVERSIZED_KEEP_BYTES = 64 * 1024
OVERSIZED_KEEP_KEY_BYTES = 1024
# Record and batch framing on top of key, value and headers (aiokafka's estimate is below this).
RECORD_FRAMING_BYTES = 1024


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


def new_app(
    app_id: str,
    settings: Settings,
    bootstrap: str,
    *,
    producer_linger_s: float = 0.0,
    security: KafkaSecurity = PLAINTEXT,
) -> PipelineApp:
    return PipelineApp(
        app_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=security.faust_credentials(),
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
        """The original bytes untouched, the why in headers (`DeadLetterHeaders`); an original
        too large for the producer keeps its first bytes, its size and hash (`oversized`)."""
        key, value, headers = dead_letter_record(
            event.message, error, self.stations, self.app.conf.producer_max_request_size
        )
        await self.deadletter.send(key=key, value=value, headers=headers)

    def check_size(self, event: faust.types.EventT) -> None:
        """Raises `oversized` for a raw event over `event_max_bytes`: bounded before it is
        parsed, so no normalised event can outgrow what the producer may send."""
        size = len(event.message.value or b"") + len(event.message.key or b"")
        if size > self.settings.event_max_bytes:
            raise InvalidEvent(
                Reason.OVERSIZED,
                f"{size} bytes, over the limit of {self.settings.event_max_bytes}",
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
                    self.check_size(event)
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
                self.check_size(event)
                out = handle(event)
            except Exception as exc:
                await self.dead_letter(event, invalid_event(exc))
                out = []  # what it wrote to tables before failing still goes out
            await send_all(out, event.message.partition)


DeadLetterRecord = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


class SourceMessage(Protocol):
    """What a dead letter keeps of a consumed record: a Faust message or an aiokafka record."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def dead_letter_record(
    message: SourceMessage,
    error: InvalidEvent,
    stations: StationBook,
    max_request_bytes: int,
) -> DeadLetterRecord:
    """Key, value and headers of the dead letter of `message`: the original bytes, unless they
    would not fit in a producer request; then the first `OVERSIZED_KEEP_BYTES`, the original
    size and SHA-256, reason `oversized` (the first reason stays in `message`)."""
    key, value = message.key, message.value
    headers = dead_letter_headers(message, error, stations)
    if _record_bytes(key, value, headers) + RECORD_FRAMING_BYTES <= max_request_bytes:
        return key, value, headers
    original = value or b""
    oversized = InvalidEvent(
        Reason.OVERSIZED,
        f"{len(original)} bytes (key {len(key or b'')}), too large to dead-letter whole; "
        f"first {OVERSIZED_KEEP_BYTES} kept; was {error.reason.value}: {error.message}",
    )
    headers = dead_letter_headers(
        message,
        oversized,
        stations,
        original_bytes=len(original),
        original_sha256=hashlib.sha256(original).hexdigest(),
    )
    kept_key = None if key is None else key[:OVERSIZED_KEEP_KEY_BYTES]
    return kept_key, original[:OVERSIZED_KEEP_BYTES], headers


def _record_bytes(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value or b"") + sum(len(n) + len(v) for n, v in headers)


def dead_letter_headers(
    message: SourceMessage,
    error: InvalidEvent,
    stations: StationBook,
    *,
    original_bytes: int | None = None,
    original_sha256: str | None = None,
) -> list[tuple[str, bytes]]:
    """The headers of the dead letter of `message`, built from the published model."""
    station = ""
    with contextlib.suppress(InvalidEvent):
        station = str(
            first_present(stations.decode_event(message.value or b""), STATION_NAMES) or ""
        )
    headers = DeadLetterHeaders(
        reason=error.reason,
        message=error.message[:1000],
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
        station_id=station[:200],
        dead_utc_ms=now_ms(),
        original_bytes=original_bytes,
        original_sha256=original_sha256,
    )
    fields = headers.model_dump(mode="json", exclude_none=True)
    return [(name, str(value).encode()) for name, value in fields.items()]
