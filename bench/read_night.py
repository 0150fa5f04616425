"""A night's dispatch traffic as one timeline, for forensics on a failed night of
bench/bench_dispatch_night.py (or any run): the status events, claims, claim results,
assignments and dispatch events, and the `officers` / `alerts-open` changelog writes with their
`writer` header (process/generation), merged by broker timestamp, optionally for one officer
or alert; `--raw` prints whole values instead of their gist.

    .venv/bin/python bench/read_night.py --kept /tmp/bench-night-XXXX --run 3 [--grep OFF-06]
    .venv/bin/python bench/read_night.py --bootstrap 127.0.0.1:9092 --prefix P. --app-id A

`--kept` starts the kept broker of a failed bench run on its data folder (and stops it after);
the run's prefix and app id are found from its topic names."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
from kafka import KafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.topics import TopicNames
from infra.broker import EmbeddedBroker
from tests.support.dispatch_night import read_records

FIELDS = ("claims", "claim_results", "assignments", "events", "status")
TABLES = ("officers", "alerts-open")


def topics_of_run(bootstrap: str, run: int) -> tuple[str, str]:
    """(topic prefix, app id) of bench run `run` (0-based), from the broker's topic names."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        names = consumer.topics()
    finally:
        consumer.close()
    prefix = next(n.split(".")[0] + "." for n in names if n.startswith(f"night{run}"))
    app_id = next(
        n[: -len("-officers-changelog")]
        for n in names
        if n.startswith(f"night-{run}-")
        and n.endswith("-officers-changelog")
        and "-positions-" not in n
    )
    return prefix, app_id


def brief(label: str, value: dict) -> str:
    """The fields that tell a booking's story, per kind of record."""
    v = value.get
    if label == "officers":
        return f"{v('officer_id')} {v('status')} alert={v('alert_id')} booking={v('booking')}"
    if label == "alerts-open":
        return (
            f"assigned={v('assigned')} pending={v('pending')} served={v('served')} "
            f"bookings={v('bookings')} needs={v('units_needed')}"
        )
    if label == "assignments":
        return f"{v('assignment_id')} at={v('assigned_utc_ms')}"
    if label == "events":
        return f"{v('kind')} {v('alert_id')} {v('officer_id')} at={v('at_utc_ms')}"
    if label == "claims":
        return f"{v('kind')} {v('alert_id')} {v('officer_id')} booking={v('booking')}"
    if label == "claim_results":
        return f"{v('outcome')} {v('alert_id')} {v('officer_id')} booking={v('booking')}"
    return f"{v('officer_id')} {v('status')} {v('alert_id')} at={v('event_utc_ms')}"


def timeline(bootstrap: str, prefix: str, app_id: str, *, raw: bool) -> list[tuple[int, str]]:
    names = TopicNames.with_prefix(prefix)
    lines: list[tuple[int, str]] = []
    sources = [(field, getattr(names, field)) for field in FIELDS]
    sources += [(table, f"{app_id}-{table}-changelog") for table in TABLES]
    for label, topic in sources:
        for record in read_records(bootstrap, topic):
            writer = dict(record.headers or ()).get("writer", b"").decode()
            value = (record.value or b"").decode(errors="replace")
            shown = value if raw else brief(label, orjson.loads(value or "{}"))
            where = f"p{record.partition}@{record.offset}"
            lines.append(
                (record.timestamp, f"{record.timestamp} {label:13} {where:7} {writer:16} {shown}")
            )
    return sorted(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kept", type=Path, help="a failed bench run's kept folder")
    parser.add_argument("--run", type=int, default=0, help="which night of it (0-based)")
    parser.add_argument("--bootstrap")
    parser.add_argument("--prefix")
    parser.add_argument("--app-id")
    parser.add_argument("--grep", action="append", default=[], help="keep lines with any of these")
    parser.add_argument("--raw", action="store_true", help="whole values, not their gist")
    args = parser.parse_args(argv)
    broker = EmbeddedBroker(args.kept / "kafka", heap="512m") if args.kept else None
    if broker is None and not (args.bootstrap and args.prefix and args.app_id):
        parser.error("give --kept, or --bootstrap with --prefix and --app-id")
    try:
        bootstrap = broker.start() if broker is not None else args.bootstrap
        prefix, app_id = (
            topics_of_run(bootstrap, args.run) if broker else (args.prefix, args.app_id)
        )
        for _, line in timeline(bootstrap, prefix, app_id, raw=args.raw):
            if not args.grep or any(word in line for word in args.grep):
                print(line)
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
