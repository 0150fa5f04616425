"""The `smart-station` command: parses arguments, builds the settings, calls the library. One
module per command group (stack, schemas, dashboards, dispatch, harmonise); this one holds the
global flags and puts the groups together."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from base.errors import SmartStationError
from base.logs import limit_repeats
from base.settings import ENV_PREFIX
from streams.cli import dashboards, dispatch, harmonise, schemas, simulate, stack, warehouse
from streams.cli.context import State

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help=f"smart-station: telemetry pipeline for smart police stations. "
    f"Settings come from {ENV_PREFIX}* environment variables; flags override them.",
)


@cli.callback()
def main_options(
    state_dir: Annotated[
        Path | None, typer.Option(help="State folder (broker, warehouse).")
    ] = None,
    kafka_bootstrap: Annotated[
        str | None, typer.Option(help="Existing Kafka cluster host:port.")
    ] = None,
    clickhouse_url: Annotated[str | None, typer.Option(help="ClickHouse server URL.")] = None,
    topic_prefix: Annotated[str | None, typer.Option(help="Prefix for every topic.")] = None,
    partitions: Annotated[int | None, typer.Option(help="Partitions for created topics.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warn|error|crit")] = None,
) -> None:
    given = {
        "state_dir": state_dir,
        "kafka_bootstrap": kafka_bootstrap,
        "clickhouse_url": clickhouse_url,
        "topic_prefix": topic_prefix,
        "topic_partitions": partitions,
        "log_level": log_level,
    }
    State.overrides = {k: v for k, v in given.items() if v is not None}
    level = getattr(logging, (log_level or "warn").upper().replace("CRIT", "CRITICAL"), 30)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    limit_repeats()
    # kafka-python narrates routine coordinator moves at WARNING; keep them for --log-level debug.
    logging.getLogger("kafka").setLevel(level if level <= logging.DEBUG else logging.ERROR)


for command in (stack.up, stack.down, warehouse.status, stack.worker, warehouse.sink, stack.demo):
    cli.command()(command)
cli.command(name="settings")(stack.show_settings)
cli.command()(warehouse.sql)
cli.add_typer(warehouse.warehouse_cli, name="warehouse")
cli.command()(schemas.schemas)
cli.add_typer(dashboards.dashboards_cli, name="dashboards")
cli.add_typer(dispatch.dispatch_cli, name="dispatch")
cli.command()(harmonise.harmonise)
cli.command()(simulate.simulate)


def main() -> None:
    try:
        cli()
    except SmartStationError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
