"""Shared fixtures: one real Kafka broker per test session (the project's own launcher), and per
test its own topic prefix, app id and warehouse database."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import settings as hypothesis_settings
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from infra.broker import EmbeddedBroker
from sinks.callers import PhoneProtector
from sinks.migrations import migrate
from sinks.warehouse import ChdbWarehouse, Warehouse
from streams.settings import Settings
from streams.topics import TopicNames, ensure_topics

# CI explores a fixed set of examples (a red build must be reproducible); runs on a developer's
# machine draw new ones each time, which is where new counterexamples are found.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


TEST_PHONE_KEY = "test-key-0123456789abcdef"
TEST_PROTECTOR = PhoneProtector(TEST_PHONE_KEY.encode())


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smart-station")


@pytest.fixture(scope="session")
def kafka_bootstrap(session_dir: Path) -> Iterator[str]:
    broker = EmbeddedBroker(session_dir / "kafka", heap="768m")
    bootstrap = broker.start()
    yield bootstrap
    broker.stop()


@pytest.fixture(scope="session")
def warehouse_path(session_dir: Path) -> Path:
    # chDB allows one data path per process: every test shares it, each with its own database.
    return session_dir / "warehouse"


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(kafka_bootstrap: str, session_dir: Path, test_id: str, tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{test_id}.",
        app_id=f"test-{test_id}",
        topic_partitions=2,
        warehouse_database=f"t_{test_id}",
        phone_hmac_key=TEST_PHONE_KEY,
        log_level="info",
    )


@pytest.fixture
def topics(settings: Settings, kafka_bootstrap: str) -> TopicNames:
    names = TopicNames.with_prefix(settings.topic_prefix)
    ensure_topics(kafka_bootstrap, names.all(), settings.topic_partitions)
    return names


@pytest.fixture
def warehouse(warehouse_path: Path, settings: Settings) -> Warehouse:
    store = ChdbWarehouse(warehouse_path, settings.warehouse_database)
    migrate(store, TEST_PROTECTOR)
    return store


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    client = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=2)
    yield client
    client.close()


def send_json(producer: KafkaProducer, topic: str, value: object, key: str | None = None) -> None:
    producer.send(topic, key=key.encode() if key else None, value=orjson.dumps(value))


def consume(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[dict[str, object]]], bool],
    timeout_s: float = 60.0,
    raw: bool = False,
) -> list:
    """Every record of `topic` from the start until `until(records)` holds (or time runs out)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
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


def wait_for(
    predicate: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


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
