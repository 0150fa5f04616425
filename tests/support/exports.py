"""Export files the harmonise tests share."""

from __future__ import annotations

import csv
from pathlib import Path

ALERTS_CSV = Path(__file__).resolve().parents[1] / "data" / "harmonise" / "alerts.csv"


def unreadable_csv(directory: Path) -> Path:
    """The alerts export, then a row whose quoted field is longer than the csv module reads: a
    job fails on this file after the chunks before it were harmonised and written."""
    path = directory / "unreadable.csv"
    directory.mkdir(parents=True, exist_ok=True)
    export = ALERTS_CSV.read_bytes()
    width = export.splitlines()[0].count(b",")
    long_field = b'"' + b"x" * (csv.field_size_limit() + 1) + b'"'
    path.write_bytes(export + long_field + b"," * width + b"\n")
    return path
