"""The `smart-station` command: parses arguments, builds the settings, calls the library."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from pydantic import ValidationError

from streams.errors import SmartStationError
from streams.settings import ENV_PREFIX, Settings

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help=f"smart-station: telemetry pipeline for smart police stations. "
    f"Settings come from {ENV_PREFIX}* environment variables; flags override them.",
)


class State:
    overrides: ClassVar[dict[str, Any]] = {}


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return Settings(**State.overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        fail(f"invalid setting {where}: {first['msg']}", 2)
        raise AssertionError("unreachable") from exc


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
    # kafka-python narrates routine coordinator moves at WARNING; keep them for --log-level debug.
    logging.getLogger("kafka").setLevel(level if level <= logging.DEBUG else logging.ERROR)


@cli.command()
def up() -> None:
    """Start the embedded broker (unless a cluster is configured), create topics and tables."""
    from infra.stack import bootstrap_for, prepare_topics, warehouse_for

    conf = settings()
    bootstrap = bootstrap_for(conf, start=True)
    prepare_topics(conf, bootstrap)
    warehouse_for(conf).close()
    typer.echo(f"kafka {bootstrap} | warehouse {_warehouse_label(conf)} | state {conf.state_dir}")


@cli.command()
def down() -> None:
    """Stop the embedded broker. State stays in the state folder for the next `up`."""
    from infra.stack import embedded_broker

    stopped = embedded_broker(settings()).stop()
    typer.echo("broker stopped" if stopped else "broker was not running")


@cli.command()
def status() -> None:
    """Say whether the embedded broker runs, and where."""
    from infra.stack import embedded_broker

    broker = embedded_broker(settings())
    typer.echo(
        f"broker running at {broker.bootstrap}" if broker.running() else "broker not running"
    )


@cli.command()
def worker() -> None:
    """Run one Faust worker of the pipeline (run several for more partitions' throughput)."""
    from streams.worker import run_worker

    run_worker(settings())


@cli.command()
def sink() -> None:
    """Run the warehouse loader: output topics -> ClickHouse/chDB in batches."""
    from infra.stack import bootstrap_for, prepare_topics, warehouse_for
    from sinks.loader import run_loader

    conf = settings()
    bootstrap = bootstrap_for(conf)
    names = prepare_topics(conf, bootstrap)
    stop = threading.Event()
    try:
        run_loader(
            bootstrap=bootstrap,
            names=names,
            group_id=f"{conf.app_id}-warehouse",
            warehouse=warehouse_for(conf),
            batch_size=conf.sink_batch_size,
            flush_interval_s=conf.sink_flush_interval_s,
            stop=stop,
        )
    except KeyboardInterrupt:
        stop.set()


@cli.command()
def demo(
    officers: Annotated[int, typer.Option(min=1, max=100_000)] = 60,
    alerts: Annotated[int, typer.Option(min=1, max=100_000)] = 20,
    seed: int = 7,
) -> None:
    """Run the whole pipeline on simulated officers and alerts, then summarise."""
    from streams.demo import run_demo

    summary = run_demo(settings(), officers=officers, alerts=alerts, seed=seed, echo=typer.echo)
    for line in summary.lines():
        typer.echo(line)
    if not summary.assignments:
        fail("no assignment was produced")


@cli.command()
def schemas(
    check: Annotated[bool, typer.Option(help="Fail if the files differ from the models.")] = False,
) -> None:
    """Write (or --check) the JSON Schema files generated from the typed models."""
    from schemas.export import check_schema_files, write_schema_files

    if check:
        stale = check_schema_files()
        if stale:
            fail(f"schema files out of date: {', '.join(stale)}; run `smart-station schemas`")
        typer.echo("schema files up to date")
        return
    for path in write_schema_files():
        typer.echo(f"wrote {path}")


dispatch_cli = typer.Typer(no_args_is_help=True, help="Dispatch tools.")
cli.add_typer(dispatch_cli, name="dispatch")


@dispatch_cli.command("replay")
def dispatch_replay(
    events: Annotated[Path, typer.Argument(help="Recorded events, JSON Lines {topic, message}.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the decisions (JSONL).")],
    radius_m: Annotated[float | None, typer.Option(min=1.0, help="Search radius.")] = None,
    max_age_s: Annotated[float | None, typer.Option(min=1.0, help="Max position age.")] = None,
    ack_timeout_s: Annotated[float | None, typer.Option(min=1.0, help="Ack timeout.")] = None,
    tail_s: Annotated[float, typer.Option(min=0.0, help="Keep the clock running after.")] = 0.0,
) -> None:
    """Run the dispatch decisions over a recorded stream, without a broker (deterministic)."""
    from streams.app import policy_for
    from streams.replay import replay_file

    overrides = {
        "dispatch_radius_m": radius_m,
        "position_max_age_s": max_age_s,
        "ack_timeout_s": ack_timeout_s,
    }
    State.overrides.update({k: v for k, v in overrides.items() if v is not None})
    conf = settings()
    if not events.is_file():
        fail(f"no such file: {events}", 2)
    result = replay_file(
        events,
        out,
        policy=policy_for(conf),
        zone=conf.zone,
        resolution=conf.h3_resolution,
        tail_ms=int(tail_s * 1000),
    )
    typer.echo(
        f"replayed {result.inputs} events: {result.count('dispatch.assignments')} assignments, "
        f"{result.count('dispatch.unassigned')} unassigned, "
        f"{result.count('deadletter')} dead letters -> {out}"
    )


# --- harmonise (bulk jobs): begin ---
# --- harmonise (bulk jobs): end ---


def _warehouse_label(conf: Settings) -> str:
    return "ClickHouse server" if conf.clickhouse_url else f"chDB {conf.warehouse_dir}"


def main() -> None:
    try:
        cli()
    except SmartStationError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
