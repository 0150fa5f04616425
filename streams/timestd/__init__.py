"""The time standard: 24-hour ISO 8601 with the station's UTC offset plus UTC epoch ms, read from
any accepted form one value at a time (`parse_instant`) or a column at a time (`read_column`).

Modules by form: `instant` (the types and bounds), `zones` (offsets, formatting), `readings`
(epochs, candidate readings and their resolution), `freeform` (ISO and every other text form),
`shapes` (the common shapes, read without regular expressions), `parse` (the entry point),
`columns` (whole columns)."""

from streams.timestd.columns import read_column
from streams.timestd.instant import (
    DEFAULT_TOLERANCE_MS,
    DEFAULT_ZONE,
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    Instant,
    SourceConvention,
)
from streams.timestd.parse import parse_instant
from streams.timestd.zones import format_iso, zone_offsets

__all__ = [
    "DEFAULT_TOLERANCE_MS",
    "DEFAULT_ZONE",
    "MAX_EPOCH_MS",
    "MIN_EPOCH_MS",
    "Instant",
    "SourceConvention",
    "format_iso",
    "parse_instant",
    "read_column",
    "zone_offsets",
]
