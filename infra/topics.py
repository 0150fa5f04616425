"""Kafka admin: creating topics with the right partitions, and counting a topic's partitions."""

from __future__ import annotations

import contextlib
import logging

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from base.errors import StackError
from infra.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


def partition_count(bootstrap: str, topic: str, *, security: KafkaSecurity = PLAINTEXT) -> int:
    """How many partitions `topic` has (0 when it does not exist)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **security.kafka_python())
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def check_partitions(
    bootstrap: str, topics: list[str], expected: int, *, security: KafkaSecurity = PLAINTEXT
) -> None:
    """StackError (one line) unless each existing topic of `topics` has `expected` partitions."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **security.kafka_python())
    try:
        counts = {t: len(consumer.partitions_for_topic(t) or ()) for t in topics}
    finally:
        consumer.close()
    wrong = [f"{t} has {n}" for t, n in counts.items() if n not in (0, expected)]
    if wrong:
        raise StackError(
            f"partition counts differ: {', '.join(wrong[:3])}{' ...' if len(wrong) > 3 else ''}, "
            f"the tables and their topics {expected} (SMART_STATION_TOPIC_PARTITIONS); "
            "an event would reach the worker that does not own its table partition: make "
            "every co-partitioned topic and changelog the same size, or set the setting to match"
        )


def ensure_topics(
    bootstrap: str,
    names: list[str],
    partitions: int,
    *,
    timeout_s: float = 15,
    config: dict[str, str] | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create missing topics with `partitions` partitions (replication 1 on the embedded broker;
    on a cluster create them yourself with the replication you need, this leaves them alone)."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="smart-station-admin",
            request_timeout_ms=int(timeout_s * 1000),
            **security.kafka_python(),
        )
    except KafkaError as exc:
        raise StackError(f"Kafka at {bootstrap} is unreachable: {type(exc).__name__}") from exc
    try:
        existing = set(admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            new = [
                NewTopic(n, num_partitions=partitions, replication_factor=1, topic_configs=config)
                for n in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent worker won
                admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
            log.info("created topics %s", missing)
    finally:
        admin.close()
