"""The `smart-station` command: parses arguments, builds the settings, calls the library."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from pydantic import ValidationError

from streams import cli_warehouse
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
    ctx: typer.Context,
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
    ctx.obj = settings  # for commands defined in other modules (this one may run as __main__)
    level = getattr(logging, (log_level or "warn").upper().replace("CRIT", "CRITICAL"), 30)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # kafka-python narrates routine coordinator moves at WARNING; keep them for --log-level debug.
    logging.getLogger("kafka").setLevel(level if level <= logging.DEBUG else logging.ERROR)


@cli.command()
def up() -> None:
    """Start the embedded broker (unless a cluster is configured), create topics, migrate the
    warehouse."""
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
    from streams.worker import Role, run_worker

    if role not in set(Role):
        fail(f"--role {role!r}: one of {', '.join(Role)}", 2)
    run_worker(settings(), Role(role))


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


cli.command()(cli_warehouse.status)
cli.command()(cli_warehouse.sink)
cli.command()(cli_warehouse.sql)
cli.add_typer(cli_warehouse.warehouse_cli, name="warehouse")

dashboards_cli = typer.Typer(no_args_is_help=True, help="Grafana dashboards kept as code.")
cli.add_typer(dashboards_cli, name="dashboards")


@dashboards_cli.command("build")
def dashboards_build() -> None:
    """Write the dashboard JSON files from their Python definitions."""
    from dashboards.build import write_dashboards

    for path in write_dashboards(settings().warehouse_database):
        typer.echo(f"wrote {path}")


@dashboards_cli.command("check")
def dashboards_check() -> None:
    """Fail if a dashboard file is stale or invalid."""
    from dashboards.build import check_dashboards

    problems = check_dashboards(settings().warehouse_database)
    if problems:
        fail("; ".join(problems))
    typer.echo("dashboards up to date and valid")


@dashboards_cli.command("push")
def dashboards_push(
    grafana_url: Annotated[str, typer.Option(envvar="SMART_STATION_GRAFANA_URL")],
    token: Annotated[
        str, typer.Option(envvar="SMART_STATION_GRAFANA_TOKEN", help="API token (never printed).")
    ],
    folder_uid: Annotated[str | None, typer.Option(help="Grafana folder uid.")] = None,
) -> None:
    """Create or update the dashboards in a Grafana (needs the ClickHouse datasource plugin)."""
    from dashboards.publish import push_dashboards

    for url in push_dashboards(
        grafana_url, token, folder_uid, database=settings().warehouse_database
    ):
        typer.echo(f"pushed {url}")


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
    from streams.stations import StationBook

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
        stations=StationBook(conf.zone, conf.stations),
        resolution=conf.h3_resolution,
        tail_ms=int(tail_s * 1000),
    )
    typer.echo(
        f"replayed {result.inputs} events: {result.count('dispatch.assignments')} assignments, "
        f"{result.count('dispatch.unassigned')} unassigned, "
        f"{result.count('deadletter')} dead letters -> {out}"
    )


# --- harmonise (bulk jobs): begin ---
@cli.command()
def harmonise(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="CSV, JSON Lines or Parquet files, in order.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Output file (.csv, .jsonl, .parquet), or warehouse:TABLE (replaced)."
        ),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Rejected rows (default: OUT's <stem>.rejects<suffix>).")
    ] = None,
    out_format: Annotated[
        str | None, typer.Option("--format", help="csv|jsonl|parquet (default: OUT's suffix).")
    ] = None,
    zone: Annotated[
        str | None, typer.Option(help="Zone of naive times (default: SMART_STATION_ZONE).")
    ] = None,
    time_columns: Annotated[
        str | None, typer.Option(help="a,b: the time columns (default: found by name).")
    ] = None,
    text_columns: Annotated[
        str | None, typer.Option(help="a,b: columns to repair (default: all but times).")
    ] = None,
    reference_column: Annotated[
        str | None, typer.Option(help="Column giving each row's context instant.")
    ] = None,
    encoding: Annotated[
        str, typer.Option(help="Of CSV / JSON Lines inputs, e.g. gbk (output: UTF-8).")
    ] = "utf-8",
    day_first: Annotated[
        bool | None, typer.Option("--day-first/--month-first", help="How 03/04/2022 reads.")
    ] = None,
    twelve_hour: Annotated[
        bool, typer.Option("--twelve-hour", help="Source writes 12-hour clocks, maybe no AM/PM.")
    ] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes (default: cores).")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    from_topic: Annotated[str | None, typer.Option(help="Read this topic, not files.")] = None,
    start_offset: Annotated[int | None, typer.Option(min=0, help="First offset read.")] = None,
    end_offset: Annotated[int | None, typer.Option(min=0, help="Offset to stop before.")] = None,
    since: Annotated[str | None, typer.Option(help="First message time read.")] = None,
    until: Annotated[str | None, typer.Option(help="Message time to stop before.")] = None,
    to_topic: Annotated[str | None, typer.Option(help="Write to this topic, not a file.")] = None,
    rejects_topic: Annotated[
        str | None, typer.Option(help="Rejects topic (default: TO_TOPIC.rejects).")
    ] = None,
) -> None:
    """Harmonise times, text and identifiers of CSV / JSON Lines / Parquet files or a topic range.
    Exit 0: every row written; 3: some rows rejected; 1: the job failed; 2: bad arguments."""
    from streams.errors import ConfigError, InvalidEvent
    from streams.harmonise import (
        HarmoniseOptions,
        TopicRange,
        harmonise_files,
        harmonise_topic,
        warehouse_table,
    )
    from streams.timefmt import SourceConvention, parse_instant

    def names(text: str | None) -> tuple[str, ...] | None:
        return None if text is None else tuple(n.strip() for n in text.split(",") if n.strip())

    if bool(inputs) == bool(from_topic):
        fail("give input files or --from-topic (one of them)", 2)
    if not from_topic and (to_topic or rejects_topic or since or until or end_offset is not None):
        fail("--to-topic, --rejects-topic, --since, --until and offsets need --from-topic", 2)
    if (since or until) and (start_offset is not None or end_offset is not None):
        fail("give offsets or --since/--until, not both", 2)
    if (out is None) == (to_topic is None):
        fail("give --out or --to-topic (one of them)", 2)
    conf = settings()
    options = HarmoniseOptions(
        zone=zone or conf.zone,
        convention=SourceConvention(day_first=day_first, twelve_hour=twelve_hour or None),
        time_columns=names(time_columns),
        text_columns=names(text_columns),
        reference_column=reference_column,
        encoding=encoding,
    )
    common: dict[str, Any] = {"options": options, "workers": workers, "progress": not no_progress}
    try:
        if out is not None and warehouse_table(out) is not None:
            from infra.stack import warehouse_for

            common["warehouse"] = warehouse_for(conf)
        if inputs:
            assert out is not None
            summary = harmonise_files(inputs, out, rejects=rejects, out_format=out_format, **common)
        else:
            from infra.stack import bootstrap_for

            when = [
                parse_instant(t, zone=options.zone).utc_ms if t else None for t in (since, until)
            ]
            window = TopicRange(start_offset, end_offset, when[0], when[1])
            summary = harmonise_topic(
                bootstrap_for(conf),
                str(from_topic),
                window=window,
                out=out,
                to_topic=to_topic,
                rejects=rejects,
                rejects_topic=rejects_topic,
                partitions=conf.topic_partitions,
                **common,
            )
    except (ConfigError, InvalidEvent) as exc:
        fail(str(exc), 2)
    for line in summary.lines():
        typer.echo(line)
    if summary.rows_rejected:
        raise typer.Exit(3)


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
