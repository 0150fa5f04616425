"""The batched positions path (streams/pipeline/ping_batches.py) against handling the same records
one by one, as the Faust normaliser did and replay does: the same normalised pings, re-keyed
pings, dead letters (original bytes, reason, message) and positions, over random streams with
late, duplicate, re-keyed and malformed pings, cut into random batches."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from base.errors import InvalidEvent, Reason, invalid_event
from schemas.events import GpsPing, OfficerPosition
from streams.dispatch.handlers import partition_for
from streams.dispatch.positions import PositionKeeper
from streams.ingest.officers import ping_from_raw
from streams.ingest.skew import SkewBound, bounded
from streams.ingest.stations import StationBook
from streams.pipeline.ping_batches import PingBatches
from streams.pipeline.plumbing import DeadLetterRecord, dead_letter_record, to_json

RAW, REKEYED = "gps.pings", "gps.pings.by-officer"
PARTITIONS = 2
ZONE = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=ZONE)
NOW_MS = int(T0.timestamp() * 1000) + 60_000
MAX_REQUEST = 1 << 20
EVENT_MAX = 2048
SKEW = SkewBound(ahead_ms=3_600_000, behind_ms=3 * 86_400_000)
STATIONS = StationBook("Asia/Shanghai", {})
OFFICERS = ("OFF-1", "OFF-2", "警号３", "OFF-4")
TIME_KINDS = ("iso", "iso", "naive", "slash", "epoch_ms", "epoch_s_text", "padded", "bad", "far")


def time_text(kind: str, seconds: int) -> Any:
    at = T0 + dt.timedelta(seconds=seconds)
    return {
        "iso": at.isoformat(timespec="milliseconds"),
        "naive": at.strftime("%Y-%m-%d %H:%M:%S"),
        "slash": at.strftime("%Y/%m/%d %H:%M:%S"),
        "epoch_ms": int(at.timestamp() * 1000),
        "epoch_s_text": str(int(at.timestamp())),
        "padded": f" {at.isoformat()} ",
        "bad": "25:99 yesterday",
        "far": "2099-01-01T00:00:00Z",
    }[kind]


@st.composite
def raw_values(draw: st.DrawFn) -> tuple[bytes | None, bytes]:
    """(key, value) of one raw ping: mostly good (on time, late, repeated), some malformed."""
    officer = draw(st.sampled_from(OFFICERS))
    kind = draw(
        st.sampled_from(["good"] * 6 + ["invalid_json", "empty", "missing", "lat", "big", "nul"])
    )
    key = draw(st.sampled_from([officer.encode(), officer.encode(), None, b"other"]))
    if kind == "invalid_json":
        return key, b'{"officer_id": "OFF-1", "lat": 29.5,'
    if kind == "empty":
        return key, b"  "
    if kind == "big":
        return key, b'{"pad": "' + b"x" * EVENT_MAX + b'"}'
    if kind == "nul":
        return key, b"\x00\xff\xfe"
    event: dict[str, Any] = {
        "officer_id": officer,
        "station_id": draw(st.sampled_from(["ST-01", "", "ST-02"])),
        "lat": draw(st.floats(29.0, 30.0)),
        "lon": draw(st.floats(106.0, 107.0)),
        "ts": time_text(
            draw(st.sampled_from(TIME_KINDS)),
            draw(st.integers(-120, 120)),
        ),
    }
    if kind == "missing":
        del event["officer_id"]
    if kind == "lat":
        event["lat"] = 123.0
    if draw(st.booleans()):
        event["accuracy_m"] = draw(st.floats(0, 50))
    return key, orjson.dumps(event)


@st.composite
def streams_of_records(draw: st.DrawFn) -> list[ConsumerRecord[bytes, bytes]]:
    values = draw(st.lists(raw_values(), min_size=1, max_size=60))
    records: list[ConsumerRecord[bytes, bytes]] = []
    offsets = [0, 0]
    for key, value in values:
        partition = draw(st.integers(0, PARTITIONS - 1))
        repeats = 2 if draw(st.integers(0, 9)) == 0 else 1  # a duplicate, as a producer retry
        for _ in range(repeats):
            records.append(record(RAW, partition, offsets[partition], key, value))
            offsets[partition] += 1
    rekeyed = draw(st.lists(st.sampled_from(OFFICERS), max_size=6))
    for i, officer in enumerate(rekeyed):
        value = rekeyed_ping(officer, draw(st.integers(-120, 120))) if i % 3 else b"{bad"
        at = draw(st.integers(0, len(records)))
        records.insert(
            at,
            record(REKEYED, partition_for(officer, PARTITIONS), 1000 + i, officer.encode(), value),
        )
    return records


def rekeyed_ping(officer: str, seconds: int) -> bytes:
    utc_ms = int((T0 + dt.timedelta(seconds=seconds)).timestamp() * 1000)
    return to_json(
        GpsPing(
            event_id=f"{officer}@{utc_ms}",
            officer_id=officer,
            station_id="ST-09",
            lat=29.6,
            lon=106.6,
            h3_cell="8840a4c5c1fffff",
            event_time=(T0 + dt.timedelta(seconds=seconds)).isoformat(timespec="milliseconds"),
            event_utc_ms=utc_ms,
            ingest_utc_ms=NOW_MS,
            time_quality={"source_format": "iso8601", "inferred": False},  # type: ignore[arg-type]
        )
    )


def record(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic, partition, offset, NOW_MS - 1000, 0, key, value, None, 0, len(value), ()
    )


@dataclass
class OneByOne:
    """The oracle: each record through the per-event normaliser (`bounded(ping_from_raw)`,
    one parse_instant per time) and PositionKeeper.on_ping, as the Faust agent did."""

    keeper: PositionKeeper
    normalised: list[tuple[bytes, bytes]] = field(default_factory=list)
    rekeyed: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead: list[DeadLetterRecord] = field(default_factory=list)
    written: list[OfficerPosition] = field(default_factory=list)

    def handle(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        try:
            size = len(rec.value or b"") + len(rec.key or b"")
            if size > EVENT_MAX:
                raise InvalidEvent(Reason.OVERSIZED, f"{size} bytes, over the limit of {EVENT_MAX}")
            if rec.topic == REKEYED:
                ping = GpsPing.model_validate_json(rec.value or b"")
            else:
                ping = bounded(ping_from_raw, SKEW)(
                    STATIONS.decode_event(rec.value or b""),
                    stations=STATIONS,
                    resolution=8,
                    reference_ms=rec.timestamp,
                    ingest_ms=NOW_MS,
                )
        except Exception as exc:
            self.dead.append(dead_letter_record(rec, invalid_event(exc), STATIONS, MAX_REQUEST))
            return
        if rec.topic == RAW:
            key, value = ping.officer_id.encode(), to_json(ping)
            self.normalised.append((key, value))
            owned = rec.key == key and partition_for(ping.officer_id, PARTITIONS) == rec.partition
            if not owned:
                self.rekeyed.append((key, value))
                return
        moved = self.keeper.on_ping(ping)
        if moved is not None:
            self.written.append(moved)


def without_clock(dead: list[DeadLetterRecord]) -> list[DeadLetterRecord]:
    return [(k, v, [(n, h) for n, h in headers if n != "dead_utc_ms"]) for k, v, headers in dead]


@settings(max_examples=150, deadline=None)
@given(records=streams_of_records(), cuts=st.lists(st.integers(1, 20), min_size=1, max_size=30))
def test_batched_path_gives_what_one_by_one_gives(
    records: list[ConsumerRecord[bytes, bytes]], cuts: list[int]
) -> None:
    oracle = OneByOne(PositionKeeper({}, interval_ms=30_000))
    batches = PingBatches(
        keeper=PositionKeeper({}, interval_ms=30_000),
        stations=STATIONS,
        skew=SKEW,
        resolution=8,
        partitions=PARTITIONS,
        raw_topic=RAW,
        rekeyed_topic=REKEYED,
        copartitioned=True,
        max_request_bytes=MAX_REQUEST,
        event_max_bytes=EVENT_MAX,
    )
    normalised, rekeyed, dead = [], [], []
    at, cut = 0, 0
    while at < len(records):
        size = cuts[cut % len(cuts)]
        batch, at, cut = records[at : at + size], at + size, cut + 1
        written_before = len(oracle.written)
        for rec in batch:
            oracle.handle(rec)
        folded = batches.fold(batch, NOW_MS)
        normalised += folded.normalised
        rekeyed += folded.rekeyed
        dead += folded.dead
        # the changelog gets each officer's last write of the batch, and only that
        last_writes = {p.officer_id: p for p in oracle.written[written_before:]}
        assert folded.positions == last_writes
    assert normalised == oracle.normalised
    assert rekeyed == oracle.rekeyed
    assert without_clock(dead) == without_clock(oracle.dead)
    assert batches.keeper.written == oracle.keeper.written
    assert batches.keeper.latest == oracle.keeper.latest


def test_a_batch_read_column_wise_keeps_each_ping_in_event_time_order() -> None:
    """Within one batch an officer's late ping does not move them back, a repeat is not
    written again, and a malformed one is dead-lettered with its bytes and reason."""
    keeper = PositionKeeper({}, interval_ms=0)
    batches = PingBatches(keeper, STATIONS, SKEW, 8, 1, RAW, REKEYED, True, MAX_REQUEST, EVENT_MAX)

    def ping(seconds: int) -> bytes:
        return orjson.dumps(
            {"officer_id": "A", "lat": 29.5, "lon": 106.5, "ts": time_text("iso", seconds)}
        )

    late, garbage = ping(5), b'{"officer_id": "A", "lat": 29.5}'
    values = [ping(10), late, ping(10), garbage, ping(20)]
    folded = batches.fold([record(RAW, 0, i, b"A", v) for i, v in enumerate(values)], NOW_MS)
    assert len(folded.normalised) == 4  # every readable ping is published, late or not
    assert folded.positions["A"].position_utc_ms == int(T0.timestamp() * 1000) + 20_000
    assert [(d[1], dict(d[2])["reason"]) for d in folded.dead] == [(garbage, b"missing_field")]
