"""The stack as configured: the embedded broker and chDB by default, or an existing Kafka
cluster / ClickHouse server when settings name them. Every check fails fast with one line."""

from __future__ import annotations

import socket

from base.errors import ConfigError, StackError
from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.topics import ensure_topics
from sinks.warehouse import Warehouse, open_warehouse

REACH_TIMEOUT_S = 3.0


def embedded_broker(settings: Settings) -> EmbeddedBroker:
    return EmbeddedBroker(settings.broker_dir, port=settings.kafka_port, heap=settings.kafka_heap)


def check_reachable(bootstrap: str) -> None:
    """A TCP connect to at least one bootstrap server, so a typo fails in seconds, not minutes."""
    errors = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"kafka bootstrap {server!r} is not host:port")
        try:
            with socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S):
                return
        except OSError as exc:
            errors.append(f"{server} ({exc.strerror or exc})")
    raise StackError(f"Kafka is unreachable at {', '.join(errors)}")


def bootstrap_for(settings: Settings, *, start: bool = False) -> str:
    """The bootstrap address to use: the configured cluster, or the embedded broker (started
    when `start`, else it must already run)."""
    if settings.kafka_bootstrap:
        check_reachable(settings.kafka_bootstrap)
        return settings.kafka_bootstrap
    broker = embedded_broker(settings)
    if start:
        return broker.start()
    if not broker.running():
        raise StackError(
            f"the embedded broker is not running (state {settings.state_dir}); "
            "run `smart-station up`"
        )
    return broker.bootstrap


def prepare_topics(settings: Settings, bootstrap: str) -> TopicNames:
    names = TopicNames.with_prefix(settings.topic_prefix)
    ensure_topics(bootstrap, names.all(), settings.topic_partitions)
    return names


def warehouse_for(settings: Settings) -> Warehouse:
    url = settings.clickhouse_url.get_secret_value() if settings.clickhouse_url else None
    return open_warehouse(
        warehouse_dir=settings.warehouse_dir,
        database=settings.warehouse_database,
        clickhouse_url=url,
    )
