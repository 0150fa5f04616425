"""`up`, `down`, `status`, `worker`, `sink`, `demo`: the embedded stack and the processes on it."""

from __future__ import annotations

from pathlib import Path
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
    minutes: Annotated[
        float, typer.Option(min=0.1, help="Wall-clock minutes; the night lasts minutes x speedup.")
    ] = 3.0,
    speedup: Annotated[float, typer.Option(min=1.0, help="Night time per wall time.")] = 10.0,
    stations: Annotated[int, typer.Option(min=1, max=5000, help="Police stations.")] = 18,
    officers_per_station: Annotated[
        int, typer.Option(min=1, max=1000, help="Officers per station (2/3 patrol).")
    ] = 30,
    calls_per_station_hour: Annotated[
        float,
        typer.Option("--calls-per-hour", min=0.0, help="Calls per station and hour at the peak."),
    ] = 6.0,
    seed: Annotated[
        int | None, typer.Option(help="Replay a night by its seed (default: a new one).")
    ] = None,
    picture: Annotated[
        Path | None, typer.Option(help="Picture of the night here (default: state/nights).")
    ] = None,
    plain: Annotated[bool, typer.Option("--plain", help="Progress lines, no live view.")] = False,
) -> None:
    """Watch a simulated night run through the whole pipeline, then its report."""
    import signal
    import sys

    from base.errors import ConfigError
    from streams.sim.demo import DemoOptions, run_demo

    signal.signal(signal.SIGTERM, _interrupt)  # stop what it started, as Ctrl-C does
    options = DemoOptions(
        minutes=minutes,
        speedup=speedup,
        stations=stations,
        officers_per_station=officers_per_station,
        calls_per_station_hour=calls_per_station_hour,
        seed=seed,
        picture=picture,
        live=not plain and sys.stdout.isatty(),
    )
    try:
        outcome = run_demo(settings(), options, echo=typer.echo)
    except ConfigError as exc:
        fail(str(exc), 2)
        return
    if outcome.stopped or outcome.report is None:
        typer.echo(f"stopped after {outcome.wall_s:.0f}s; everything it started is stopped")
        raise typer.Exit(130)
    typer.echo(f"night {outcome.run_id} (seed {outcome.seed}), {outcome.wall_s:.0f}s wall:")
    for line in outcome.report.lines():
        typer.echo(f"  {line}")
    if outcome.picture is not None:
        typer.echo(f"picture: {outcome.picture[0]} and {outcome.picture[1]}")
    typer.echo(
        f"warehouse database {outcome.database}: SMART_STATION_WAREHOUSE_DATABASE="
        f"{outcome.database} smart-station sql"
    )
    if outcome.report.unaccounted:
        for problem in outcome.report.unaccounted:
            typer.echo(f"mismatch: {problem}", err=True)
        fail(f"{len(outcome.report.unaccounted)} mismatches between the report and the night")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
