"""The positions stage written with quixstreams, the peer of bench/bench_drain.py: raw pings ->
parse -> normalise (the project's own normaliser, as the worker uses) -> the officer's latest
position in quixstreams state (RocksDB, changelogged) -> normalised pings on a topic.

    .venv-quix/bin/python bench/quix_positions.py BOOTSTRAP SOURCE TARGET GROUP STATE_DIR

Runs in a venv of its own (bench/quix.txt: quixstreams pins an older pydantic than ours) until
SIGTERM. Pings are keyed by officer id, so quixstreams' per-key state is per officer."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson
from quixstreams import Application, State

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.ingest.officers import ping_from_raw
from streams.ingest.skew import SkewBound, bounded
from streams.ingest.stations import StationBook

STATIONS = StationBook("Asia/Shanghai", {})
PARSE = bounded(ping_from_raw, SkewBound())


def normalise(value: bytes, key: Any, timestamp: int, headers: Any, state: State) -> Any:
    ping = PARSE(
        STATIONS.decode_event(value),
        stations=STATIONS,
        resolution=8,
        reference_ms=timestamp,
        ingest_ms=int(time.time() * 1000),
    )
    latest = state.get("position_utc_ms")
    if latest is None or ping.event_utc_ms > latest:
        state.set("position_utc_ms", ping.event_utc_ms)
        state.set("position", [ping.lat, ping.lon, ping.h3_cell])
    return orjson.dumps(ping.model_dump(mode="json"))


def main(bootstrap: str, source: str, target: str, group: str, state_dir: str) -> None:
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        processing_guarantee="at-least-once",
    )
    raw = app.topic(source, key_deserializer="bytes", value_deserializer="bytes")
    out = app.topic(target, key_serializer="bytes", value_serializer="bytes")
    sdf = app.dataframe(raw)
    sdf = sdf.apply(normalise, stateful=True, metadata=True)
    sdf.to_topic(out)
    app.run()


if __name__ == "__main__":
    main(*sys.argv[1:6])
