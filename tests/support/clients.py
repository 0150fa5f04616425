"""Helpers the broker tests share: send and read JSON on real topics, wait, run the loader in a
thread, a clean environment for CLI subprocesses, a fresh event time."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.kafka_security import PLAINTEXT, KafkaSecurity
from sinks.callers import PhoneProtector


def now_iso() -> str:
    """Now in Chongqing, to the second: events of these tests are fresh when sent (a position
    older than `position_max_age_s` is not dispatched; a time far from now is refused)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600))


def send_json(producer: KafkaProducer, topic: str, value: object, key: str | None = None) -> None:
    producer.send(topic, key=key.encode() if key else None, value=orjson.dumps(value))


def consume(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[dict[str, object]]], bool],
    timeout_s: float = 60.0,
    raw: bool = False,
    security: KafkaSecurity = PLAINTEXT,
) -> list:
    """Every record of `topic` from the start until `until(records)` holds (or time runs out)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        **security.kafka_python(),
    )
    deadline = time.monotonic() + timeout_s
    partitions: list[TopicPartition] = []
    while not partitions and time.monotonic() < deadline:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            time.sleep(0.2)
    if not partitions:
        consumer.close()
        return []
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found: list = []
    try:
        while time.monotonic() < deadline and not until(found):
            for records in consumer.poll(timeout_ms=200).values():
                found.extend(records if raw else (orjson.loads(r.value) for r in records))
    finally:
        consumer.close()
    return found


def consume_all(bootstrap: str, topic: str, *, raw: bool = False, timeout_s: float = 120.0) -> list:
    """Every record of `topic` up to its end offsets as of the call: unlike a read for a fixed
    time, it cannot come back short on a slow machine (it fails instead, past `timeout_s`)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout_s
        numbers = consumer.partitions_for_topic(topic)
        while numbers is None and time.monotonic() < deadline:
            time.sleep(0.2)
            numbers = consumer.partitions_for_topic(topic)
        partitions = [TopicPartition(topic, p) for p in numbers or []]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: list = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end in {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=200).values():
                found.extend(records if raw else (orjson.loads(r.value) for r in records))
        return found
    finally:
        consumer.close()


def wait_for(
    predicate: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


TEST_PHONE_KEY = "test-key-0123456789abcdef"
TEST_PROTECTOR = PhoneProtector(TEST_PHONE_KEY.encode())


class LoaderThread:
    """The warehouse loader running in this process (chDB is in-process)."""

    def __init__(self, **kwargs: object) -> None:
        from sinks.loader import run_loader

        self.stop_event = threading.Event()
        kwargs.setdefault("protector", TEST_PROTECTOR)
        self.thread = threading.Thread(
            target=run_loader, kwargs={**kwargs, "stop": self.stop_event}, daemon=True
        )

    def __enter__(self) -> LoaderThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)


def env_without_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SMART_STATION_")}
