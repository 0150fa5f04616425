"""What a batch of raw GPS pings becomes, without any I/O: normalised pings, pings to re-key by
officer, dead letters, and the positions to replicate. The positions worker
(streams/pipeline/positions_worker.py) fetches a batch, calls `PingBatches.fold` and produces
what it returns; tests/pipeline/test_ping_batches.py holds it to handling the same pings one by
one (the normaliser and PositionKeeper.on_ping, as replay does).

A batch is folded in arrival order (a partition's order; an officer's pings share one), so an
officer's position only moves forward in event time exactly as one by one. What batching saves:
the time values of a batch are read column-wise (streams/timestd/columns.py) and only the
unsettled ones one at a time; one clock reading per batch; an officer written twice in a batch
replicates only the last position (the changelog is compacted to it anyway)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from base.errors import InvalidEvent, Reason, invalid_event
from schemas.events import GpsPing, OfficerPosition
from streams.dispatch.handlers import partition_for
from streams.dispatch.positions import PositionKeeper
from streams.ingest.fields import STATION_NAMES, TIME_NAMES, RawEvent, first_present
from streams.ingest.officers import ping_from_raw
from streams.ingest.skew import SkewBound
from streams.ingest.stations import StationBook
from streams.pipeline.plumbing import DeadLetterRecord, SourceMessage, dead_letter_record
from streams.timestd.columns import read_column
from streams.timestd.instant import Instant, new_instant


class RawRecord(SourceMessage, Protocol):
    """A consumed Kafka record (aiokafka's ConsumerRecord): `timestamp` in ms."""

    @property
    def timestamp(self) -> int: ...


KeyValue = tuple[bytes, bytes]


@dataclass(slots=True)
class FoldedBatch:
    normalised: list[KeyValue] = field(default_factory=list)  # gps.pings.normalised
    rekeyed: list[KeyValue] = field(default_factory=list)  # gps.pings.by-officer
    dead: list[DeadLetterRecord] = field(default_factory=list)
    positions: dict[str, OfficerPosition] = field(default_factory=dict)  # last write per officer


@dataclass(slots=True)
class PingBatches:
    """Folds batches of records of `raw_topic` (raw station pings) and `rekeyed_topic`
    (normalised pings re-keyed by officer) into `keeper`. `copartitioned`: the raw topic has as
    many partitions as the officer topics, so a ping its producer keyed by officer id on the
    partition that owns the officer is applied here, without the re-keying hop."""

    keeper: PositionKeeper
    stations: StationBook
    skew: SkewBound
    resolution: int
    partitions: int
    raw_topic: str
    rekeyed_topic: str
    copartitioned: bool
    max_request_bytes: int
    event_max_bytes: int

    def fold(self, records: Sequence[RawRecord], now_ms: int) -> FoldedBatch:
        out = FoldedBatch()
        raws = self._decode_raw([r for r in records if r.topic == self.raw_topic])
        times = self._read_times(raws)
        raw_at = 0
        for record in records:
            if record.topic != self.raw_topic:
                self._apply_rekeyed(record, out)
                continue
            raw = raws[raw_at]
            raw_at += 1
            if isinstance(raw, InvalidEvent):
                self._dead(record, raw, out)
            else:
                self._normalise(record, raw, times.get(raw_at - 1), now_ms, out)
        return out

    def _dead(self, record: RawRecord, error: InvalidEvent, out: FoldedBatch) -> None:
        out.dead.append(dead_letter_record(record, error, self.stations, self.max_request_bytes))

    def _check_size(self, record: RawRecord) -> None:
        size = len(record.value or b"") + len(record.key or b"")
        if size > self.event_max_bytes:
            raise InvalidEvent(
                Reason.OVERSIZED, f"{size} bytes, over the limit of {self.event_max_bytes}"
            )

    def _decode_raw(self, records: list[RawRecord]) -> list[RawEvent | InvalidEvent]:
        """Each raw record's JSON object, or why it has none (dead-lettered in its turn)."""
        decoded: list[RawEvent | InvalidEvent] = []
        for record in records:
            try:
                self._check_size(record)
                decoded.append(self.stations.decode_event(record.value or b""))
            except Exception as exc:  # every failure is kept, none stops the batch
                decoded.append(invalid_event(exc))
        return decoded

    def _read_times(self, raws: list[RawEvent | InvalidEvent]) -> dict[int, Instant]:
        """The instants the column reader settles, by position in `raws`, per station zone and
        convention; the rest are read one by one (`ping_from_raw`) with their own errors."""
        groups: dict[str, list[tuple[int, bytes]]] = {}
        for at, raw in enumerate(raws):
            if isinstance(raw, InvalidEvent):
                continue
            value = first_present(raw, TIME_NAMES)
            if isinstance(value, str) and value.isascii():
                station = str(first_present(raw, STATION_NAMES) or "")
                groups.setdefault(station, []).append((at, value.encode()))
        settled: dict[int, Instant] = {}
        for station, values in groups.items():
            column = read_column(
                [v for _, v in values],
                self.stations.zone_for(station),
                self.stations.convention_for(station),
            )
            unsettled = set(column.unsettled)
            for i, (at, _) in enumerate(values):
                if i not in unsettled:
                    settled[at] = new_instant(
                        column.utc_ms[i], column.iso[i].decode(), column.labels[i]
                    )
        return settled

    def _normalise(
        self,
        record: RawRecord,
        raw: RawEvent,
        instant: Instant | None,
        now_ms: int,
        out: FoldedBatch,
    ) -> None:
        try:
            ping = ping_from_raw(
                raw,
                stations=self.stations,
                resolution=self.resolution,
                reference_ms=record.timestamp,
                ingest_ms=now_ms,
                instant=instant,
            )
            self.skew.check(ping.event_utc_ms, now_ms)
        except Exception as exc:
            self._dead(record, invalid_event(exc), out)
            return
        key, value = ping.officer_id.encode(), orjson.dumps(ping.model_dump(mode="json"))
        out.normalised.append((key, value))
        if not self._owned_here(record, key, ping.officer_id):
            out.rekeyed.append((key, value))
            return
        self._apply(record, ping, out)

    def _owned_here(self, record: RawRecord, key: bytes, officer_id: str) -> bool:
        return (
            self.copartitioned
            and record.key == key
            and partition_for(officer_id, self.partitions) == record.partition
        )

    def _apply_rekeyed(self, record: RawRecord, out: FoldedBatch) -> None:
        try:
            self._check_size(record)
            ping = GpsPing.model_validate_json(record.value or b"")
        except Exception as exc:
            self._dead(record, invalid_event(exc), out)
            return
        self._apply(record, ping, out)

    def _apply(self, record: RawRecord, ping: GpsPing, out: FoldedBatch) -> None:
        try:
            written = self.keeper.on_ping(ping)
        except Exception as exc:  # kept with its reason; the batch goes on
            self._dead(record, invalid_event(exc), out)
            return
        if written is not None:
            out.positions[ping.officer_id] = written
