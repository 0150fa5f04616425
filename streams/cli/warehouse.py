"""The warehouse's commands: `sink` (the loader), `warehouse migrate`, `sql` and `status`. They
parse arguments and call the library; `streams/cli/app.py` registers them."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Annotated, Any

import typer

from base.settings import Settings
from streams.cli.context import settings

warehouse_cli = typer.Typer(no_args_is_help=True, help="The warehouse's schema.")


@warehouse_cli.command("migrate")
def migrate() -> None:
    """Apply the numbered migrations the warehouse lacks (also run by `up` and `sink`)."""
    from streams.pipeline.stack import migrate_warehouse, open_configured_warehouse

    conf = settings()
    warehouse = open_configured_warehouse(conf)
    result = migrate_warehouse(warehouse, conf)
    warehouse.close()
    if result.before == result.after:
        typer.echo(f"warehouse {conf.warehouse_database} is at version {result.after}")
    else:
        typer.echo(
            f"warehouse {conf.warehouse_database}: version {result.before} -> {result.after}"
        )


def sink() -> None:
    """Run the warehouse loader: output topics -> ClickHouse/chDB, each event once. SIGINT and
    SIGTERM flush and commit before it exits."""
    from sinks.loader import Loader
    from sinks.migrations import current_version
    from sinks.query_service import QueryService
    from streams.pipeline.stack import (
        bootstrap_for,
        kafka_security,
        prepare_topics,
        protector_for,
        warehouse_for,
    )

    conf = settings()
    bootstrap = bootstrap_for(conf)
    security = kafka_security(conf, "loader")
    names = prepare_topics(conf, bootstrap, security)
    warehouse = warehouse_for(conf)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    group_id = f"{conf.app_id}-warehouse"
    loader = Loader(
        bootstrap=bootstrap,
        names=names,
        group_id=group_id,
        warehouse=warehouse,
        protector=protector_for(conf),
        batch_size=conf.sink_batch_size,
        flush_interval_s=conf.sink_flush_interval_s,
        retry_max_s=conf.sink_retry_max_s,
        metrics_interval_s=conf.sink_metrics_interval_s,
        watch_groups=[conf.app_id, f"{conf.app_id}-positions"],
        stop=stop,
        security=security,
    )
    version = current_version(warehouse)

    def status() -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "group_id": group_id,
            "warehouse_version": version,
            "rows_by_table": loader.stats.rows_by_table,
            "flushes": loader.stats.flushes,
            "last_flush_utc_ms": loader.stats.last_flush_utc_ms,
            "lag": loader.lag_total,
            "broker": "unavailable" if loader.broker.down else "ok",
            "warehouse": "unavailable" if loader.store.down else "ok",
        }

    typer.echo(f"loader {group_id}: {bootstrap} -> {conf.warehouse_database}", err=True)
    with QueryService(warehouse, conf.state_dir, group_id, status):
        stats = loader.run()
    typer.echo(
        f"loader stopped after {stats.flushes} batches: "
        + ", ".join(f"{t}={n}" for t, n in sorted(stats.rows_by_table.items())),
        err=True,
    )


def sql(
    query: Annotated[
        str | None, typer.Argument(help="One read-only statement; none: an interactive prompt.")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="PrettyCompactMonoBlock | TabSeparatedWithNames | JSONEachRow | CSVWithNames",
        ),
    ] = "PrettyCompactMonoBlock",
) -> None:
    """Query the warehouse (read only), also while the loader runs. `{db}` is the database."""
    from base.errors import SmartStationError

    conf = settings()
    run = _query_runner(conf, fmt)
    if query is not None:
        _write_result(run(query))
        return
    typer.echo(f"{conf.warehouse_database}> statements end with ';', an empty line or Ctrl-D quits")
    while True:
        statement = _read_statement(conf.warehouse_database)
        if statement is None:
            return
        try:
            _write_result(run(statement))
        except SmartStationError as exc:
            typer.echo(f"error: {exc}", err=True)


def _write_result(result: bytes) -> None:
    """The warehouse's bytes as they are: a column of aggregate states is binary, not UTF-8."""
    sys.stdout.flush()
    sys.stdout.buffer.write(result)
    sys.stdout.buffer.flush()


def _read_statement(database: str) -> str | None:
    lines: list[str] = []
    while True:
        try:
            line = input(f"{database}> " if not lines else "... ")
        except EOFError:
            return None
        if not line.strip() and not lines:
            return None
        lines.append(line)
        if line.rstrip().endswith(";"):
            return "\n".join(lines)


def _query_runner(conf: Settings, fmt: str) -> Any:
    """Ask the running loader (embedded warehouse), else open the warehouse here."""
    from sinks.query_service import ask_loader, find_loader, run_read_only
    from streams.pipeline.stack import open_configured_warehouse

    endpoint = None if conf.clickhouse_url else find_loader(conf.state_dir)
    if endpoint is not None:
        database = conf.warehouse_database
        return lambda q: ask_loader(
            endpoint, f"/query?format={fmt}", q.replace("{db}", database).encode()
        )
    warehouse = open_configured_warehouse(conf)
    return lambda q: run_read_only(warehouse, q, fmt)


def status() -> None:
    """Broker, workers, loader, warehouse version and lag."""
    for line in status_lines(settings()):
        typer.echo(line)


def status_lines(conf: Settings) -> list[str]:
    from base.errors import SmartStationError
    from sinks.lag import group_lags
    from sinks.migrations import CODE_VERSION, check_version
    from sinks.query_service import ask_loader, find_loader
    from streams.pipeline.stack import embedded_broker, kafka_security, open_configured_warehouse

    lines = []
    bootstrap = conf.kafka_bootstrap
    if not bootstrap:
        broker = embedded_broker(conf)
        bootstrap = broker.bootstrap if broker.running() else None
        lines.append(f"broker: running at {bootstrap}" if bootstrap else "broker: not running")
    else:
        lines.append(f"broker: configured cluster {bootstrap}")
    loader = None if conf.clickhouse_url else find_loader(conf.state_dir)
    if bootstrap:
        groups = [conf.app_id, f"{conf.app_id}-positions", f"{conf.app_id}-warehouse"]
        labels = ["workers (dispatch)", "workers (positions)", "loader"]
        try:
            lags = group_lags(bootstrap, groups, security=kafka_security(conf))
            for label, group in zip(labels, lags, strict=True):
                members = "?" if group.members < 0 else str(group.members)
                lines.append(
                    f"{label}: {members} member(s), group {group.group_id} "
                    f"{group.state.lower()}, lag {group.total}"
                )
        except SmartStationError as exc:
            lines.append(f"groups: {exc}")
    if loader is not None:
        import json

        try:
            info = json.loads(ask_loader(loader, "/status"))
        except SmartStationError as exc:
            lines.append(f"loader process: pid {loader.pid}, {exc}")
        else:
            age = (time.time() * 1000 - info["last_flush_utc_ms"]) / 1000
            last = f"{age:.0f}s ago" if info["last_flush_utc_ms"] else "never"
            lines.append(
                f"loader process: pid {info['pid']}, {info['flushes']} batches, last {last}, "
                f"broker {info['broker']}, warehouse {info['warehouse']}"
            )
            lines.append(
                f"warehouse: {conf.warehouse_database} version {info['warehouse_version']} "
                f"(code {CODE_VERSION}), served by the loader"
            )
            return lines
    try:
        warehouse = open_configured_warehouse(conf)
        version = check_version(warehouse)
        lines.append(
            f"warehouse: {conf.warehouse_database} version {version} (code {CODE_VERSION})"
        )
    except SmartStationError as exc:
        lines.append(f"warehouse: {exc}")
    except Exception as exc:  # chDB refuses a folder another process holds
        lines.append(f"warehouse: unavailable here ({str(exc).splitlines()[0][:120]})")
    return lines
