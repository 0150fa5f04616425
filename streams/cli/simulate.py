"""`simulate`: a simulated night in a district, to JSON Lines (the `dispatch replay` format) or
to the stations' raw topics on Kafka."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from streams.cli.context import fail, settings


def simulate(
    out: Annotated[
        Path | None, typer.Option(help="Write JSON Lines here (else send to Kafka).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same night.")] = 7,
    stations: Annotated[int, typer.Option(min=1, max=5000, help="Stations.")] = 18,
    officers_per_station: Annotated[int, typer.Option(min=1, max=1000)] = 30,
    area: Annotated[
        str | None, typer.Option(help="south,west,north,east (default: Jiangbei).")
    ] = None,
    minutes: Annotated[float, typer.Option(min=0.1, help="Length of the night.")] = 60.0,
    start: Annotated[
        str | None,
        typer.Option(help="ISO start (default: 18:00 on 2026-11-27 to a file, now to Kafka)."),
    ] = None,
    speedup: Annotated[float, typer.Option(min=0.01, help="Times real time (Kafka).")] = 10.0,
    calls_per_station_hour: Annotated[
        float,
        typer.Option("--calls-per-hour", min=0.0, help="Calls per station and hour at the peak."),
    ] = 2.0,
    malformed_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.002,
    picture: Annotated[
        Path | None, typer.Option(help="Draw the night's end as HTML here (and PNG beside).")
    ] = None,
) -> None:
    """Simulate a night in a district: patrols, calls, the officers' app, cameras."""
    import time

    from streams.sim.district import Area
    from streams.sim.night import Night, NightConfig

    try:
        box = Area.parse(area) if area is not None else None
        begin = datetime.fromisoformat(start) if start is not None else None
    except ValueError as exc:
        fail(str(exc), 2)
        return
    if begin is not None and begin.tzinfo is None:
        fail(f"start {start!r} needs a UTC offset, e.g. 2026-11-27T18:00+08:00", 2)
    start_ms = int(begin.timestamp() * 1000) if begin is not None else None
    conf = settings()
    if start_ms is None and out is None:
        start_ms = int(time.time()) * 1000  # the pipeline's clock is the wall clock
        ahead_min = minutes * (1 - 1 / speedup)  # the night's clock at its end, past the wall's
        if ahead_min * 60 > conf.event_max_ahead_s:
            fail(
                f"--minutes {minutes:g} at --speedup {speedup:g} ends {ahead_min:.0f} min ahead "
                f"of the clock; the pipeline drops events over "
                f"{conf.event_max_ahead_s / 60:.0f} min ahead (SMART_STATION_EVENT_MAX_AHEAD_S)",
                2,
            )
    config = NightConfig(
        seed=seed,
        stations=stations,
        officers_per_station=officers_per_station,
        area=box,
        duration_s=minutes * 60,
        calls_per_station_hour=calls_per_station_hour,
        malformed_share=malformed_share,
        **({"start_ms": start_ms} if start_ms is not None else {}),
    )
    night = Night.of(config)
    if out is not None:
        from streams.ingest.stations import StationBook
        from streams.pipeline.plumbing import policy_for
        from streams.sim.runner import run_to_jsonl

        result = run_to_jsonl(
            night,
            out,
            policy=policy_for(conf),
            stations=StationBook(conf.zone, conf.stations),
            resolution=conf.h3_resolution,
        )
    else:
        from streams.pipeline.stack import bootstrap_for, kafka_security, prepare_topics
        from streams.sim.runner import run_to_kafka

        bootstrap = bootstrap_for(conf)
        result = run_to_kafka(
            night,
            bootstrap,
            prepare_topics(conf, bootstrap),
            speedup=speedup,
            security=kafka_security(conf, "station"),
            officers_security=kafka_security(conf, "dispatch-reader"),
        )
    if picture is not None:
        from streams.sim.picture import scene_of, write_picture

        png = write_picture(scene_of(night), picture, f"seed {seed}, {minutes:g} min")
        typer.echo(f"picture: {picture} and {png}")
    ledger = night.ledger
    typer.echo(
        f"{result.records} records in {result.wall_s:.1f}s: {len(ledger.alerts)} alerts, "
        f"{ledger.counts['gps.pings']} pings, {ledger.counts['officer.status']} status, "
        f"{sum(n for k, n in ledger.counts.items() if k.startswith('malformed:'))} malformed; "
        f"{result.assignments_heard} assignments answered"
    )
