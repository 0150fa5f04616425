"""The embedded broker with SASL/SCRAM over TLS, on its own (not the session broker): the
workers, the loader and `harmonise` work with credentials from settings; plaintext and a wrong
password are refused."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.kafka_security import KafkaSecurity
from sinks.migrations import migrate
from sinks.warehouse import ChdbWarehouse
from streams.bulk.jobs import harmonise_topic
from streams.pipeline.access import User, grant_access, grants
from streams.pipeline.apps import positions_changelog
from streams.pipeline.stack import kafka_security, prepare_topics
from streams.pipeline.worker import WorkerProcess
from tests.pipeline.test_pipeline import OFFICERS, send_alert, send_pings
from tests.support.clients import TEST_PHONE_KEY, TEST_PROTECTOR, LoaderThread, consume, wait_for

pytestmark = pytest.mark.broker

LOADER_PASSWORD = SecretStr("loader-pw-made-by-the-test-7f3a")


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secure-state")


@pytest.fixture(scope="module")
def secure_broker(state_dir: Path) -> Iterator[EmbeddedBroker]:
    """As `smart-station up --secure` leaves it: the state folder's broker, its users made; the
    loader's password is the test's own."""
    broker = EmbeddedBroker(state_dir / "kafka", heap="384m", secure=True)
    broker.start()
    try:
        broker.add_users([u.value for u in User], passwords={"loader": LOADER_PASSWORD})
        yield broker
    finally:
        broker.stop()


def embedded_settings(state_dir: Path, tmp_path: Path, **extra: object) -> Settings:
    """Settings of a process on the secure embedded broker: no bootstrap, no password given."""
    return Settings(
        state_dir=state_dir,
        kafka_secure=True,
        topic_prefix=f"s{tmp_path.name[-8:]}.",
        app_id=f"secure-{tmp_path.name[-8:]}",
        topic_partitions=2,
        warehouse_database=f"s_{tmp_path.name[-8:].replace('-', '_')}",
        phone_hmac_key=TEST_PHONE_KEY,
        log_level="info",
        **extra,  # type: ignore[arg-type]
    )


def test_plaintext_and_a_wrong_password_are_refused(
    secure_broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="kafka")
    bootstrap = secure_broker.bootstrap
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers=bootstrap, bootstrap_timeout_ms=15000)
    good = secure_broker.client_security("loader")
    wrong = KafkaSecurity("loader", SecretStr("not-the-password"), good.mechanism, good.ca_file)
    with pytest.raises(KafkaError) as refused:
        KafkaProducer(
            bootstrap_servers=bootstrap, bootstrap_timeout_ms=15000, **wrong.kafka_python()
        )
    assert "not-the-password" not in str(refused.value)
    assert "not-the-password" not in caplog.text
    refusals = secure_broker.paths.log_file.read_text()
    assert "Failed authentication with /127.0.0.1" in refusals  # the broker said no
    assert "invalid credentials with SASL mechanism SCRAM" in refusals
    unknown = KafkaSecurity("mallory", good.password, good.mechanism, good.ca_file)
    with pytest.raises(KafkaError):
        KafkaConsumer(
            bootstrap_servers=bootstrap, bootstrap_timeout_ms=15000, **unknown.kafka_python()
        )
    # the control: the right password on the same broker is let in
    KafkaProducer(bootstrap_servers=bootstrap, **good.kafka_python()).close()


def test_workers_and_loader_work_with_credentials_from_settings(
    secure_broker: EmbeddedBroker, state_dir: Path, tmp_path: Path, warehouse_path: Path
) -> None:
    worker_settings = embedded_settings(state_dir, tmp_path)  # users' generated passwords
    loader_settings = embedded_settings(
        state_dir, tmp_path, kafka_username="loader", kafka_password=LOADER_PASSWORD
    )
    admin = kafka_security(worker_settings)
    bootstrap = secure_broker.bootstrap
    topics = prepare_topics(worker_settings, bootstrap, admin)
    grant_access(bootstrap, admin, grants(worker_settings))  # as `up --secure` does
    worker = WorkerProcess(worker_settings, tmp_path / "worker.log").start()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, **admin.kafka_python())
    try:
        send_pings(producer, topics, OFFICERS)
        indexed = consume(
            bootstrap,
            positions_changelog(worker_settings),
            until=lambda r: len(r) >= len(OFFICERS) or not worker.alive(),
            timeout_s=90,
            security=admin,
        )
        assert len(indexed) >= len(OFFICERS), f"worker: {worker.log_path.read_text()[-2000:]}"
        send_alert(producer, topics, "AL-S1")
        found = consume(
            bootstrap,
            topics.assignments,
            until=lambda r: any(a["alert"]["alert_id"] == "AL-S1" for a in r),
            timeout_s=90,
            security=admin,
        )
    finally:
        producer.close()
        worker.stop()
    assert [a["officer"]["officer_id"] for a in found] == ["OFF-A"]
    log = (tmp_path / "worker.log").read_text()
    assert "SaslAuthentication" not in log and "AuthenticationFailed" not in log
    warehouse = ChdbWarehouse(warehouse_path, loader_settings.warehouse_database)
    migrate(warehouse, TEST_PROTECTOR)
    with LoaderThread(
        bootstrap=bootstrap,
        names=topics,
        group_id=f"{loader_settings.app_id}-warehouse",
        warehouse=warehouse,
        batch_size=100,
        flush_interval_s=0.2,
        security=kafka_security(loader_settings),
    ):
        wait_for(lambda: warehouse.count("alerts") >= 1, 90, "the alert in the warehouse")
    assert warehouse.count("gps_pings") == len(OFFICERS)


def test_harmonise_reads_and_writes_topics_with_credentials(
    secure_broker: EmbeddedBroker, state_dir: Path, tmp_path: Path
) -> None:
    conf = embedded_settings(state_dir, tmp_path)
    admin = kafka_security(conf)
    bootstrap = secure_broker.bootstrap
    names = TopicNames.with_prefix(conf.topic_prefix)
    source = f"{names.gps_raw}.export"
    producer = KafkaProducer(bootstrap_servers=bootstrap, **admin.kafka_python())
    for n in range(3):
        producer.send(source, orjson.dumps({"n": n, "ts": "2024-03-05 08:00:00"}))
    producer.flush()
    producer.close()
    out = tmp_path / "harmonised.jsonl"
    summary = harmonise_topic(bootstrap, source, out=out, security=admin, progress=False)
    assert summary.counts.rows_out == 3
    assert len(out.read_text().splitlines()) == 3


def denied_read(bootstrap: str, topic: str, security: KafkaSecurity, partitions: int = 2) -> bool:
    """Whether `security`'s user reads nothing of `topic` (which holds a record) for 10 s and
    the broker's answer marks the topic unauthorized. kafka-python logs that answer without
    raising when it cannot find the partitions' leaders, and raises when a fetch is refused."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **security.kafka_python())
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if consumer.poll(timeout_ms=500):
                return False
        return topic in consumer._client.cluster.unauthorized_topics
    except TopicAuthorizationFailedError:
        return True
    finally:
        consumer.close()


def denied_write(bootstrap: str, topic: str, security: KafkaSecurity) -> bool:
    """Whether the broker refuses `security`'s user a write to `topic` (a user who may write
    nowhere is refused its producer id first: a cluster authorization error)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, **security.kafka_python())
    try:
        producer.send(topic, b"{}").get(timeout=30)
    except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
        return True
    except KafkaError as exc:  # kafka-python wraps the producer id's refusal
        return "AuthorizationFailed" in str(exc)
    finally:
        producer.close()
    return False


def test_the_officers_app_reads_assignments_and_nothing_else(
    secure_broker: EmbeddedBroker, state_dir: Path, tmp_path: Path
) -> None:
    conf = embedded_settings(state_dir, tmp_path)
    bootstrap, admin = secure_broker.bootstrap, kafka_security(conf)
    names = prepare_topics(conf, bootstrap, admin)
    grant_access(bootstrap, admin, grants(conf))
    producer = KafkaProducer(bootstrap_servers=bootstrap, **admin.kafka_python())
    for topic in (names.assignments, names.alerts, names.gps_raw):
        producer.send(topic, orjson.dumps({"on": topic}))
    producer.flush()
    producer.close()
    reader = kafka_security(conf, User.DISPATCH_READER)
    read = consume(bootstrap, names.assignments, until=bool, timeout_s=30, security=reader)
    assert read == [{"on": names.assignments}]
    assert denied_read(bootstrap, names.alerts, reader)
    assert denied_read(bootstrap, names.gps_raw, reader)
    assert denied_write(bootstrap, names.alerts_raw, reader)
    # the workers' users: each what its worker needs, not more
    station = kafka_security(conf, User.STATION)
    assert not denied_write(bootstrap, names.gps_raw, station)
    assert denied_read(bootstrap, names.gps_raw, station)
    assert denied_read(bootstrap, names.alerts_raw, kafka_security(conf, User.POSITIONS))
    assert denied_write(bootstrap, names.assignments, kafka_security(conf, User.LOADER))
