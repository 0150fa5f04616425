"""`harmonise`: historical exports (files or a topic range) to the time standard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from streams.cli.context import fail, settings


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
    from base.errors import ConfigError, InvalidEvent
    from streams.bulk.jobs import harmonise_files, harmonise_topic, warehouse_table
    from streams.bulk.options import HarmoniseOptions, TopicRange
    from streams.timestd import SourceConvention, parse_instant

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
            from streams.pipeline.stack import warehouse_for

            common["warehouse"] = warehouse_for(conf)
        if inputs:
            assert out is not None
            summary = harmonise_files(inputs, out, rejects=rejects, out_format=out_format, **common)
        else:
            from streams.pipeline.stack import bootstrap_for, kafka_security

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
                security=kafka_security(conf),
                **common,
            )
    except (ConfigError, InvalidEvent) as exc:
        fail(str(exc), 2)
    for line in summary.lines():
        typer.echo(line)
    if summary.rows_rejected:
        raise typer.Exit(3)
