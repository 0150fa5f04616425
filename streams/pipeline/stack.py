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
from infra.broker import ADMIN_USER, EmbeddedBroker
from infra.folders import keep_state_private
from infra.kafka_security import PLAINTEXT, KafkaSecurity
from infra.topics import ensure_topics
from sinks.callers import PhoneProtector, load_key
from sinks.migrations import MigrationResult, apply_ttls, ensure_grafana_reader, migrate
from sinks.warehouse import METRIC_TABLES, TABLES, Warehouse, open_warehouse
from streams.pipeline.access import User, grant_access, grants

REACH_TIMEOUT_S = 3.0


def embedded_broker(settings: Settings) -> EmbeddedBroker:
    return EmbeddedBroker(
        settings.broker_dir,
        port=settings.kafka_port,
        heap=settings.kafka_heap,
        secure=settings.kafka_secure,
    )


def kafka_security(settings: Settings, user: str = ADMIN_USER) -> KafkaSecurity:
    """How this process connects: plaintext, or as `kafka_username` (else `user`, the process's
    own SCRAM user) with `kafka_password` (else, on the embedded broker, the user's generated
    one) over TLS trusting `kafka_ca_file` (else the embedded broker's CA)."""
    if not settings.kafka_secure:
        return PLAINTEXT
    username = settings.kafka_username or user
    password, ca_file = settings.kafka_password, settings.kafka_ca_file
    if settings.kafka_bootstrap is None:
        own = embedded_broker(settings).client_security(username)
        password, ca_file = password or own.password, ca_file or own.ca_file
    elif password is None:
        raise ConfigError("kafka_secure with a configured cluster needs kafka_password")
    return KafkaSecurity(username, password, settings.kafka_sasl_mechanism, ca_file)


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
        bootstrap = broker.start()
        if settings.kafka_secure:
            broker.add_users([user.value for user in User])
            grant_access(bootstrap, kafka_security(settings), grants(settings))
        return bootstrap
    if not broker.running():
        raise StackError(
            f"the embedded broker is not running (state {settings.state_dir}); "
            "run `smart-station up`"
        )
    return broker.bootstrap


def prepare_topics(
    settings: Settings, bootstrap: str, security: KafkaSecurity | None = None
) -> TopicNames:
    names = TopicNames.with_prefix(settings.topic_prefix)
    security = security or kafka_security(settings)
    ensure_topics(bootstrap, names.all(), settings.topic_partitions, security=security)
    return names


def open_configured_warehouse(settings: Settings) -> Warehouse:
    """The configured warehouse as it is (no migration; for `status` and `sql`): the ClickHouse
    server, or the embedded one in this process, from here on creating private files (chDB
    writes its parts itself, as it goes)."""
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


def warehouse_for(settings: Settings) -> Warehouse:
    """The configured warehouse, migrated to this code's version with the settings' TTLs."""
    warehouse = open_configured_warehouse(settings)
    migrate_warehouse(warehouse, settings)
    return warehouse


def protector_for(settings: Settings) -> PhoneProtector:
    configured = settings.phone_hmac_key.get_secret_value() if settings.phone_hmac_key else None
    try:
        return PhoneProtector(load_key(configured, settings.state_dir))
    except ValueError as exc:
        raise ConfigError(f"phone_hmac_key: {exc}") from exc


def migrate_warehouse(warehouse: Warehouse, settings: Settings) -> MigrationResult:
    result = migrate(warehouse, protector_for(settings))
    ttl = {t: settings.warehouse_ttl_days for t in TABLES}
    ttl["gps_pings"] = settings.warehouse_pings_ttl_days
    ttl.update({t: settings.warehouse_metrics_ttl_days for t in METRIC_TABLES})
    apply_ttls(warehouse, ttl)
    if warehouse.is_server and settings.grafana_reader_password:
        ensure_grafana_reader(warehouse, settings.grafana_reader_password.get_secret_value())
    return result
