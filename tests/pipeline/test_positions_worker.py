"""The batched positions worker through the real broker: a `kill -9` in the middle of draining a
backlog loses no ping and applies none twice (the positions changelog only ever moves an officer
forward, and ends at each officer's last ping), and batches of several officers' pings keep each
officer's event-time order."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from base.settings import Settings
from base.topics import TopicNames
from streams.pipeline.positions_worker import positions_app_id, positions_changelog
from streams.pipeline.worker import Role, WorkerProcess
from tests.support.clients import consume

pytestmark = pytest.mark.broker

OFFICERS = 200
PINGS_PER_OFFICER = 60  # 12,000 pings: several batches of positions_batch_max
BATCH_MAX = 500
UNKEYED_EVERY = 10  # every 10th ping has no key: it takes the re-keying hop
ZONE = dt.timezone(dt.timedelta(hours=8))
DRAIN_TIMEOUT_S = 120


def ping(officer: int, n: int, start: dt.datetime) -> bytes:
    at = start + dt.timedelta(seconds=n)
    return orjson.dumps(
        {
            "officer_id": f"OFF-{officer:03d}",
            "station_id": "ST-01",
            "lat": 29.5 + officer * 1e-3 + n * 1e-4,  # moves: most pings are written
            "lon": 106.5 + n * 1e-4,
            "ts": at.isoformat(timespec="milliseconds"),
        }
    )


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        offsets = admin.list_group_offsets({group: tps}).get(group, {})
        return sum(max(0, o.offset) for o in offsets.values())
    finally:
        admin.close()


def count_records(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    finally:
        consumer.close()


def test_kill_9_mid_batch_loses_no_ping_and_applies_none_twice(
    settings: Settings, topics: TopicNames, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "positions_batch_max": BATCH_MAX,
            "position_write_interval_s": 0.0,  # every newer ping is written: a strict ledger
            "session_timeout_s": 6.0,
        }
    )
    start = dt.datetime.now(ZONE) - dt.timedelta(seconds=PINGS_PER_OFFICER + 30)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5, acks="all")
    expected: set[tuple[str, int]] = set()
    for n in range(PINGS_PER_OFFICER):
        for officer in range(OFFICERS):
            officer_id = f"OFF-{officer:03d}"
            key = None if (n * OFFICERS + officer) % UNKEYED_EVERY == 0 else officer_id.encode()
            producer.send(topics.gps_raw, key=key, value=ping(officer, n, start))
            at = start + dt.timedelta(seconds=n)
            expected.add((officer_id, int(at.timestamp() * 1000)))
    producer.flush()
    producer.close()
    total = len(expected)
    group = positions_app_id(settings)
    partitions = settings.topic_partitions

    first = WorkerProcess(settings, tmp_path / "first.log", Role.POSITIONS).start()
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while count_records(kafka_bootstrap, topics.gps) < total // 4:
            assert first.alive(), f"worker exited, see {first.log_path}"
            assert time.monotonic() < deadline, "the worker did not start draining"
            time.sleep(0.05)
    finally:
        first.kill()
    done_at_kill = committed(kafka_bootstrap, group, topics.gps_raw, partitions)
    assert done_at_kill < total, "killed after the drain: not a crash mid-backlog"

    second = WorkerProcess(settings, tmp_path / "second.log", Role.POSITIONS).start()
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while committed(kafka_bootstrap, group, topics.gps_raw, partitions) < total:
            assert second.alive(), f"worker exited, see {second.log_path}"
            assert time.monotonic() < deadline, f"not drained in {DRAIN_TIMEOUT_S} s"
            time.sleep(0.5)
        rekeyed_total = count_records(kafka_bootstrap, topics.gps_by_officer)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while committed(kafka_bootstrap, group, topics.gps_by_officer, partitions) < rekeyed_total:
            assert time.monotonic() < deadline, "re-keyed pings not drained"
            time.sleep(0.5)
    finally:
        second.stop()

    normalised = consume(kafka_bootstrap, topics.gps, until=lambda r: False, timeout_s=5)
    published = {(p["officer_id"], p["event_utc_ms"]) for p in normalised}
    assert published == expected, f"{len(expected - published)} pings lost"
    assert len(normalised) >= total  # repeats of the replayed batches allowed, by the repeat key
    assert consume(kafka_bootstrap, topics.deadletter, until=lambda r: False, timeout_s=2) == []

    changelog = consume(
        kafka_bootstrap, positions_changelog(settings), until=lambda r: False, timeout_s=5, raw=True
    )
    ledger: dict[str, list[int]] = defaultdict(list)
    for record in sorted(changelog, key=lambda r: (r.partition, r.offset)):
        ledger[orjson.loads(record.key)].append(orjson.loads(record.value)["position_utc_ms"])
    last = {officer: max(t for o, t in expected if o == officer) for officer, _ in expected}
    assert set(ledger) == set(last)
    for officer, times in ledger.items():
        assert times == sorted(set(times)), f"{officer}: a position applied twice or moved back"
        assert times[-1] == last[officer], f"{officer}: the last ping's position was lost"


def test_a_batch_the_broker_refused_is_not_committed_and_stops_the_worker() -> None:
    """The committer commits a batch only once all it produced is acknowledged: a refused
    batch stops the worker with nothing committed, and a loop waiting to hand over the next
    batch is woken with the error instead of waiting for good."""
    from aiokafka import TopicPartition as Partition

    from streams.pipeline import positions_worker as module

    committed: list[dict[Partition, int]] = []

    class Consumer:
        async def commit(self, offsets: dict[Partition, int]) -> None:
            committed.append(offsets)

    async def scenario() -> None:
        worker = module.PositionsWorker(Settings(), "127.0.0.1:9")
        await worker.producer.stop()  # never started: nothing is sent
        worker.consumer = Consumer()  # type: ignore[assignment]
        worker._committer = asyncio.create_task(worker._commit_in_order())
        loop = asyncio.get_running_loop()
        acked, refused = loop.create_future(), loop.create_future()
        acked.set_result(None)
        tp = Partition("gps.pings", 0)
        await worker._enqueue(module.InFlight([acked], {tp: 10}))
        await worker._settled()
        assert committed == [{tp: 10}]
        refused.set_exception(RuntimeError("refused by the broker"))
        for offset in range(20, 20 + 2 * module.IN_FLIGHT_BATCHES + 2):  # past a full queue
            await worker._enqueue(module.InFlight([refused], {tp: offset}))
        await worker._settled()

    async def bounded_scenario() -> None:
        await asyncio.wait_for(scenario(), timeout=10)  # waiting for good: TimeoutError

    with pytest.raises(RuntimeError, match="refused by the broker"):
        asyncio.run(bounded_scenario())
    assert committed == [{Partition("gps.pings", 0): 10}]
