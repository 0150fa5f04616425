"""`up`, `down`, `status`, `worker`, `sink`, `demo`: the embedded stack and the processes on it."""

from __future__ import annotations

from typing import Annotated

import typer

from base.settings import ENV_PREFIX, Settings
from streams.cli.context import fail, settings


def up(
    secure: Annotated[
        bool,
        typer.Option(
            "--secure",
            help="SASL/SCRAM over TLS (as SMART_STATION_KAFKA_SECURE=true): the embedded broker "
            "with its own CA and users, passwords under <state_dir>/kafka/users.",
        ),
    ] = False,
) -> None:
    """Start the embedded broker (unless a cluster is configured), create topics, migrate the
    warehouse."""
    from streams.pipeline.stack import bootstrap_for, prepare_topics, warehouse_for

    conf = settings()
    if secure:
        conf = conf.model_copy(update={"kafka_secure": True})
    bootstrap = bootstrap_for(conf, start=True)
    prepare_topics(conf, bootstrap)
    warehouse_for(conf).close()
    kafka = f"kafka {bootstrap}{' (SASL_SSL)' if conf.kafka_secure else ''}"
    typer.echo(f"{kafka} | warehouse {_warehouse_label(conf)} | state {conf.state_dir}")


def down() -> None:
    """Stop the embedded broker. State stays in the state folder for the next `up`."""
    from streams.pipeline.stack import embedded_broker

    stopped = embedded_broker(settings()).stop()
    typer.echo("broker stopped" if stopped else "broker was not running")


def worker(
    role: Annotated[
        str,
        typer.Option(
            help="all: dispatch here and positions in a child process; dispatch or positions: "
            "one of them (run several of each for more partitions' throughput)."
        ),
    ] = "all",
) -> None:
    """Run the pipeline's Faust workers."""
    from streams.pipeline.worker import Role, run_worker

    if role not in set(Role):
        fail(f"--role {role!r}: one of {', '.join(Role)}", 2)
    run_worker(settings(), Role(role))


def demo(
    officers: Annotated[int, typer.Option(min=1, max=100_000)] = 60,
    alerts: Annotated[int, typer.Option(min=1, max=100_000)] = 20,
    seed: int = 7,
) -> None:
    """Run the whole pipeline on simulated officers and alerts, then summarise."""
    from streams.sim.demo import run_demo

    summary = run_demo(settings(), officers=officers, alerts=alerts, seed=seed, echo=typer.echo)
    for line in summary.lines():
        typer.echo(line)
    if not summary.assignments:
        fail("no assignment was produced")


def show_settings() -> None:
    """The settings in force, one `SMART_STATION_*=value` a line; secrets shown as ********."""
    for name, value in settings_lines(settings()):
        typer.echo(f"{name}={value}")


def settings_lines(conf: Settings) -> list[tuple[str, str]]:
    import json

    from pydantic import SecretStr

    lines = []
    for name, value in conf.model_dump().items():
        if isinstance(value, SecretStr):
            shown = "********"
        elif isinstance(value, dict | list):
            shown = json.dumps(value, default=str)
        else:
            shown = "" if value is None else str(value)
        lines.append((f"{ENV_PREFIX}{name.upper()}", shown))
    return lines


def _warehouse_label(conf: Settings) -> str:
    return "ClickHouse server" if conf.clickhouse_url else f"chDB {conf.warehouse_dir}"
