"""`dispatch replay`: the dispatch decisions over a recorded stream, without a broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli.context import State, fail, settings

dispatch_cli = typer.Typer(no_args_is_help=True, help="Dispatch tools.")


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
    from streams.dispatch.replay import replay_file
    from streams.ingest.stations import StationBook
    from streams.pipeline.apps import policy_for

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
