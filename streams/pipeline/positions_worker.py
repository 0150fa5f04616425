"""The positions worker: raw GPS pings -> normalised pings -> the positions table, in batches, on
a plain aiokafka consumer and producer (no Faust agent: its per-message machinery cost ~9 times
what a ping's own handling does; bench/README.md, "Drain rate").

One loop: fetch up to `positions_batch_max` records (the raw ping topic and the re-keyed
`gps.pings.by-officer`, whose partitions the group's range assignor hands out together), fold
them (streams/pipeline/ping_batches.py: pure), hand what the fold returns to the producer with
one call per output partition, and go on with the next batch while a committer task waits for
the broker to acknowledge all of it and only then commits the batch's offsets, batches in order
(at most IN_FLIGHT_BATCHES ahead). A crash before the commit replays those batches: normalised
pings and changelog writes are sent again (their repeat key is officer + event time, and a
replayed ping never moves an officer back, so the table ends the same).

The positions table is the changelog `<app_id>-positions-officers-changelog` (compacted, keyed
by officer id as JSON, the value an OfficerPosition as JSON): every dispatch worker mirrors it,
and a positions worker that is handed an officer partition reads that partition of it to the end
before it handles a ping of it (`on_partitions_assigned`). A partition handed away is forgotten
once the batch in flight is committed (`on_partitions_revoked` waits for it).

Batch size and linger (settings): the consumer's fetches wait up to `positions_linger_ms` for
16 KiB of pings and the producer up to as long to fill a request. A ping's position reaches the
dispatch workers at most one linger and one batch's handling later (a few milliseconds; positions
are replicated every few seconds anyway), and under a backlog each fetch, produce request and
commit is shared by up to `positions_batch_max` pings. Dispatch never waits on any of it: it runs
in its own process and consumer group."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from base.settings import Settings
from base.topics import TopicNames
from infra.kafka_security import PLAINTEXT, KafkaSecurity
from streams.dispatch.handlers import partition_for
from streams.dispatch.positions import PositionKeeper
from streams.ingest.stations import StationBook
from streams.pipeline.ping_batches import FoldedBatch, KeyValue, PingBatches
from streams.pipeline.plumbing import now_ms, policy_for, skew_for

log = logging.getLogger(__name__)

POSITIONS_APP_SUFFIX = "positions"
POSITIONS_TABLE = "officers"
FETCH_MIN_BYTES = 16 << 10  # with a linger: ~100 raw pings per fetch at least
MAX_REQUEST_BYTES = 1_000_000  # as Faust's producer: under the broker's 1 MiB with headers to spare
PRODUCE_BATCH_BYTES = 512 << 10  # per output partition and produce call
IDLE_POLL_MS = 200  # how often an idle loop looks at the stop flag
IN_FLIGHT_BATCHES = 4  # handed over, not yet committed: bounds what a crash replays


@dataclass(slots=True)
class InFlight:
    acks: list[Any]  # futures of the broker's acknowledgements of all the batch produced
    offsets: dict[TopicPartition, int]  # to commit once they are all done


def positions_app_id(settings: Settings) -> str:
    """The positions worker's consumer group."""
    return f"{settings.app_id}-{POSITIONS_APP_SUFFIX}"


def positions_changelog(settings: Settings) -> str:
    """The positions table's changelog, which every dispatch worker mirrors (the name Faust
    gives a table `officers` of an app `<app_id>-positions`, which the dispatch app's mirror
    is declared as)."""
    return f"{positions_app_id(settings)}-{POSITIONS_TABLE}-changelog"


def changelog_key(officer_id: str) -> bytes:
    return orjson.dumps(officer_id)  # Faust's JSON key serialiser, which the mirror reads


class PositionsWorker(ConsumerRebalanceListener):
    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        *,
        raw_ping_partitions: int | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.security = security
        self.names = TopicNames.with_prefix(settings.topic_prefix)
        self.changelog = positions_changelog(settings)
        self.table: dict[str, Any] = {}  # officer id -> OfficerPosition as JSON (the changelog)
        keeper = PositionKeeper(self.table, policy_for(settings).position_write_interval_ms)
        self.batches = PingBatches(
            keeper=keeper,
            stations=StationBook(settings.zone, settings.stations),
            skew=skew_for(settings),
            resolution=settings.h3_resolution,
            partitions=settings.topic_partitions,
            raw_topic=self.names.gps_raw,
            rekeyed_topic=self.names.gps_by_officer,
            copartitioned=raw_ping_partitions == settings.topic_partitions,
            max_request_bytes=MAX_REQUEST_BYTES,
            event_max_bytes=settings.event_max_bytes,
        )
        self.owned: set[int] = set()  # officer partitions whose positions are in the table
        self._batch = asyncio.Lock()  # a batch from fetch to hand-over; a rebalance waits for it
        # Handed-over batches waiting for their acknowledgements, then committed in order: the
        # next batch is folded meanwhile (a broker round trip per batch would idle the worker).
        self._in_flight: asyncio.Queue[InFlight] = asyncio.Queue(maxsize=IN_FLIGHT_BATCHES)
        self._committer: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._partitions: dict[str, int] = {}
        linger_ms = settings.positions_linger_ms
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=positions_app_id(settings),
            client_id=f"{positions_app_id(settings)}-worker",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            fetch_max_wait_ms=max(1, round(linger_ms)),
            fetch_min_bytes=FETCH_MIN_BYTES if linger_ms > 0 else 1,
            max_poll_records=settings.positions_batch_max,
            session_timeout_ms=round(settings.session_timeout_s * 1000),
            heartbeat_interval_ms=round(max(1.0, settings.session_timeout_s / 5) * 1000),
            **security.kafka_python(),
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=f"{positions_app_id(settings)}-producer",
            acks="all",
            linger_ms=linger_ms,
            max_batch_size=PRODUCE_BATCH_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
            **security.kafka_python(),
        )

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await self.producer.start()
        try:
            for topic in (self.names.gps, self.names.gps_by_officer, self.changelog):
                self._partitions[topic] = len(await self.producer.partitions_for(topic))
            await self.consumer.start()
            self._committer = asyncio.create_task(self._commit_in_order())
            try:
                topics = [self.names.gps_raw, self.names.gps_by_officer]
                self.consumer.subscribe(topics, listener=self)
                log.info("positions worker started group=%s", positions_app_id(self.settings))
                while not self._stopping.is_set():
                    await self._one_batch()
                await self._settled()
            finally:
                self._committer.cancel()
                await self.consumer.stop()
        finally:
            await self.producer.stop()

    async def _one_batch(self) -> None:
        fetched = await self.consumer.getmany(
            timeout_ms=IDLE_POLL_MS, max_records=self.settings.positions_batch_max
        )
        if not fetched:
            return
        async with self._batch:
            assigned = self.consumer.assignment()
            fetched = {tp: records for tp, records in fetched.items() if tp in assigned}
            records = [record for batch in fetched.values() for record in batch]
            if not records:
                return
            acks = await self._hand_over(self.batches.fold(records, now_ms()))
            offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch}
            await self._enqueue(InFlight(acks, offsets))

    async def _commit_in_order(self) -> None:
        """Commits each handed-over batch once all it produced is acknowledged, in order, several
        ready batches in one commit. A batch the broker refused stops the worker uncommitted:
        the next owner handles it again."""
        while True:
            ready = [await self._in_flight.get()]
            while not self._in_flight.empty():
                ready.append(self._in_flight.get_nowait())
            try:
                await self._commit(ready)
            finally:
                for _ in ready:
                    self._in_flight.task_done()

    async def _commit(self, ready: list[InFlight]) -> None:
        offsets: dict[TopicPartition, int] = {}
        try:
            for batch in ready:
                await asyncio.gather(*batch.acks)
                offsets.update(batch.offsets)
        except Exception:
            log.exception("positions batch not acknowledged; stopping uncommitted")
            self.stop()
            raise
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance took the partitions: their next owner
            log.warning("positions commit failed error=%r (batch handled again)", exc)

    async def _enqueue(self, batch: InFlight) -> None:
        """Queues a handed-over batch for the committer (waits while IN_FLIGHT_BATCHES are)."""
        await self._until_committer_fails(self._in_flight.put(batch))

    async def _settled(self) -> None:
        """Every handed-over batch committed (raises what stopped the committer, if it did)."""
        await self._until_committer_fails(self._in_flight.join())

    async def _until_committer_fails(self, step: Awaitable[None]) -> None:
        """Awaits `step`, unless the committer stops first (a batch not acknowledged): then
        raises what stopped it, instead of waiting for good on a queue nobody empties."""
        assert self._committer is not None
        waiting = asyncio.ensure_future(step)
        await asyncio.wait({waiting, self._committer}, return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()
            self._committer.result()  # raises what stopped it
            raise RuntimeError("the positions committer stopped")

    async def _hand_over(self, folded: FoldedBatch) -> list[Any]:
        """Hands everything the batch produced to the Kafka client: the futures of its
        acknowledgements."""
        pending = self._send_keyed(self.names.gps, folded.normalised)
        pending += self._send_keyed(self.names.gps_by_officer, folded.rekeyed)
        pending += self._send_keyed(
            self.changelog,
            [
                (changelog_key(officer_id), orjson.dumps(self.table[officer_id]))
                for officer_id in folded.positions
            ],
            by=list(folded.positions),
        )
        futures = [await send for send in pending]
        for key, value, headers in folded.dead:
            futures.append(
                await self.producer.send(
                    self.names.deadletter, key=key, value=value, headers=headers
                )
            )
        return futures

    def _send_keyed(
        self, topic: str, records: list[KeyValue], *, by: list[str] | None = None
    ) -> list[Any]:
        """One batch per partition of `topic` (the partition Kafka's default partitioner gives
        each key, or each of `by`): the coroutines that hand them to the client."""
        count = self._partitions[topic]
        builders: dict[int, Any] = {}
        sends: list[Any] = []
        partition_of: dict[bytes, int] = {}  # an officer pings several times a batch
        for i, (key, value) in enumerate(records):
            partition = partition_of.get(key, -1)
            if partition < 0:
                partition = partition_for(by[i] if by is not None else key.decode(), count)
                partition_of[key] = partition
            builder = builders.get(partition)
            if builder is None:
                builder = builders[partition] = self.producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None) is None:
                sends.append(self.producer.send_batch(builder, topic, partition=partition))
                builder = builders[partition] = self.producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
        for partition, builder in builders.items():
            sends.append(self.producer.send_batch(builder, topic, partition=partition))
        return sends

    # -- the group ---------------------------------------------------------------------------
    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self._batch:  # the batches in flight are acknowledged and committed first
            await self._settled()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        async with self._batch:
            owned = {tp.partition for tp in assigned if tp.topic == self.names.gps_by_officer}
            gone = self.owned - owned
            partitions = self.settings.topic_partitions
            if gone:
                self.batches.keeper.forget(
                    [o for o in list(self.table) if partition_for(o, partitions) in gone]
                )
            new = owned - self.owned
            self.owned = owned
            if new:
                started = time.perf_counter()
                count = await self._recover(sorted(new))
                log.info(
                    "positions recovered partitions=%s officers=%d seconds=%.2f",
                    sorted(new),
                    count,
                    time.perf_counter() - started,
                )

    async def _recover(self, partitions: list[int]) -> int:
        """Reads the changelog's `partitions` to their end into the table."""
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            **self.security.kafka_python(),
        )
        await reader.start()
        try:
            tps = [TopicPartition(self.changelog, p) for p in partitions]
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            ends = await reader.end_offsets(tps)
            waiting = {tp for tp in tps if ends[tp] > 0}
            count = 0
            while waiting:
                fetched = await reader.getmany(*waiting, timeout_ms=1000)
                for records in fetched.values():
                    count += self._apply_changelog(records)
                for tp in list(waiting):
                    if await reader.position(tp) >= ends[tp]:
                        waiting.discard(tp)
            return count
        finally:
            await reader.stop()

    def _apply_changelog(self, records: list[ConsumerRecord[bytes, bytes]]) -> int:
        for record in records:
            officer_id = orjson.loads(record.key or b'""')
            if record.value is None:
                self.table.pop(officer_id, None)
            else:
                self.table[officer_id] = orjson.loads(record.value)
        return len(records)


def run_positions_worker(
    settings: Settings,
    bootstrap: str,
    raw_ping_partitions: int,
    *,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Runs until SIGTERM or SIGINT; the batch in flight is committed first."""

    async def main() -> None:
        worker = PositionsWorker(
            settings, bootstrap, raw_ping_partitions=raw_ping_partitions, security=security
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        gc.freeze()  # what is built so far lives as long as the worker
        await worker.run()

    asyncio.run(main())
