"""What a harmonise job is asked to do and what it reports: formats, options, topic ranges,
counts and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

from streams.timestd import DEFAULT_ZONE, SourceConvention

Format = Literal["csv", "jsonl", "parquet"]
M = TypeVar("M")
SIBLING_SUFFIX = "_utc_ms"
WAREHOUSE_PREFIX = "warehouse:"  # --out warehouse:TABLE
CHUNK_BYTES = 1 << 20  # ~6k rows of a typical export: amortises the hand-off, fits a cache
CHUNK_RECORDS = 5_000  # Kafka messages per chunk
MAX_RECORD_BYTES = 64 << 20  # a CSV "record" this long means unbalanced quotes, not data
MEMO_SIZE = 1 << 16  # distinct values remembered per worker (parsed times, repaired texts)
REPEAT_SAMPLE = 512  # values looked at to tell a column of few distinct values
FORMAT_BY_SUFFIX: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}


@dataclass(frozen=True, slots=True)
class HarmoniseOptions:
    """What to harmonise and how; None means 'decide from the column names'."""

    zone: str = DEFAULT_ZONE
    convention: SourceConvention | None = None
    time_columns: tuple[str, ...] | None = None
    text_columns: tuple[str, ...] | None = None
    reference_column: str | None = None
    encoding: str = "utf-8"  # of CSV / JSON Lines input files; outputs are always UTF-8


@dataclass(frozen=True, slots=True)
class TopicRange:
    """Which messages of a topic: offsets [start, end) of every partition, or the messages
    timestamped in [since_ms, until_ms). An unset end is the end captured when the job starts."""

    start_offset: int | None = None
    end_offset: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None


@dataclass(slots=True)
class Counts:
    rows_in: int = 0
    rows_out: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # by reason code
    formats: dict[str, int] = field(default_factory=dict)  # time cells by Instant.source_format
    inferred: int = 0  # time cells settled by the reference column
    text_repaired: int = 0
    identifiers_folded: int = 0

    def add(self, more: Counts) -> None:
        self.rows_in += more.rows_in
        self.rows_out += more.rows_out
        self.inferred += more.inferred
        self.text_repaired += more.text_repaired
        self.identifiers_folded += more.identifiers_folded
        for total, part in ((self.rejected, more.rejected), (self.formats, more.formats)):
            for key, n in part.items():
                total[key] = total.get(key, 0) + n


@dataclass(slots=True)
class HarmoniseSummary:
    inputs: list[str]
    output: str
    rejects: str
    workers: int
    counts: Counts = field(default_factory=Counts)
    seconds: float = 0.0

    @property
    def rows_rejected(self) -> int:
        return sum(self.counts.rejected.values())

    def lines(self) -> list[str]:
        c = self.counts
        rate = c.rows_in / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"harmonised {c.rows_in:,} rows from {len(self.inputs)} input(s) in "
            f"{self.seconds:.1f} s ({rate:,.0f} rows/s, {self.workers} worker(s)): "
            f"{c.rows_out:,} -> {self.output}, {self.rows_rejected:,} rejected -> {self.rejects}"
        ]
        if c.rejected:
            lines.append(f"rejected: {_counts_text(c.rejected)}")
        if c.formats:
            lines.append(f"time formats: {_counts_text(c.formats)}; inferred {c.inferred:,}")
        lines.append(
            f"text: {c.text_repaired:,} cells repaired, {c.identifiers_folded:,} identifiers folded"
        )
        return lines


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
