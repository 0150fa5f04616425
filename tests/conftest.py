"""Shared fixtures: one real Kafka broker per test session (the project's own launcher), and per
test its own topic prefix, app id and warehouse database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from kafka import KafkaProducer

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.topics import ensure_topics
from sinks.warehouse import ChdbWarehouse, Warehouse

# CI explores a fixed set of examples (a red build must be reproducible); runs on a developer's
# machine draw new ones each time, which is where new counterexamples are found.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


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
    store.create_schema()
    return store


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    client = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=2)
    yield client
    client.close()
