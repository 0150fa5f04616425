"""The stack as configured: the embedded broker and chDB by default, or an existing Kafka
cluster / ClickHouse server when settings name them. Every check fails fast with one line."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from base.errors import ConfigError, StackError
from base.settings import Settings
from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from infra.folders import keep_state_private
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
    """The configured ClickHouse server, or the embedded warehouse in this process: from here on
    the process creates private files (chDB writes its parts itself, as it goes)."""
    url = settings.clickhouse_url.get_secret_value() if settings.clickhouse_url else None
    if url is None:
        keep_state_private()
    if url is not None:
        return open_warehouse(
            warehouse_dir=settings.warehouse_dir,
            database=settings.warehouse_database,
            clickhouse_url=url,
        )
    # chDB's embedded server writes its own failures on file descriptor 2 as well: held here,
    # replayed if it opens, replaced by one line if it does not.
    with tempfile.TemporaryFile() as held, _stderr_to(held):
        try:
            warehouse = open_warehouse(
                warehouse_dir=settings.warehouse_dir,
                database=settings.warehouse_database,
                clickhouse_url=None,
            )
        except RuntimeError as exc:  # chDB's one error type, with a page of server log in it
            raise StackError(_why_unopened(settings.warehouse_dir, exc)) from exc
        held.seek(0)
        said = held.read()
    if said:
        sys.stderr.buffer.write(said)
    return warehouse


@contextlib.contextmanager
def _stderr_to(file: IO[bytes]) -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _why_unopened(warehouse_dir: Path, exc: RuntimeError) -> str:
    """One line for an embedded warehouse chDB could not open: most often another process (a
    `sink`, `demo` or `harmonise --out warehouse:`) holds it, as its `status` file's lock says."""
    status = warehouse_dir / "status"
    try:
        with status.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = status.read_text(errors="replace").partition("\n")[0].strip()  # "PID: 123"
        return (
            f"the embedded warehouse {warehouse_dir} is in use by another process ({holder}): "
            "a running `sink`, `demo` or `harmonise --out warehouse:`; stop it, or set "
            "SMART_STATION_CLICKHOUSE_URL to share a ClickHouse server"
        )
    except OSError:
        pass
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return f"the embedded warehouse {warehouse_dir} cannot be opened: {first[:300]}"
