"""Parquet in and out of `smart-station harmonise` (streams/bulk/parquet_files.py): a Parquet
input harmonises exactly like the same CSV, a Parquet output holds what the CSV output holds
(input columns as strings, `<time>_utc_ms` as int64), read and written a batch at a time."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from base.errors import ConfigError
from streams.bulk.jobs import harmonise_files

ROOT = Path(__file__).resolve().parents[2]
ALERTS_CSV = ROOT / "tests" / "data" / "harmonise" / "alerts.csv"
ALERTS_JSONL = ROOT / "tests" / "data" / "harmonise" / "alerts.jsonl"


def csv_as_parquet(source: Path, target: Path, row_group_size: int = 3) -> None:
    with source.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    table = pa.table({name: [row[k] for row in rows[1:]] for k, name in enumerate(rows[0])})
    pq.write_table(table, target, row_group_size=row_group_size)


def test_parquet_input_harmonises_like_the_same_csv(tmp_path: Path) -> None:
    csv_as_parquet(ALERTS_CSV, tmp_path / "alerts.parquet")

    from_csv = harmonise_files([ALERTS_CSV], tmp_path / "a.csv", workers=1)
    from_parquet = harmonise_files(
        [tmp_path / "alerts.parquet"], tmp_path / "b.csv", workers=1, batch_rows=2
    )  # several batches, in order

    assert from_csv.counts == from_parquet.counts
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.rejects.csv").read_bytes() == (tmp_path / "b.rejects.csv").read_bytes()


def test_non_text_parquet_columns_are_read_as_their_text(tmp_path: Path) -> None:
    table = pa.table(
        {
            "call_id": pa.array([1, 2, None], pa.int64()),
            "reported_at": pa.array([1_665_817_440_000, 1_665_817_500_000, None], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "calls.parquet")

    summary = harmonise_files([tmp_path / "calls.parquet"], tmp_path / "o.csv", workers=1)

    with (tmp_path / "o.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["call_id"], r["reported_at"]) for r in rows] == [
        ("1", "2022-10-15T15:04:00+08:00"),
        ("2", "2022-10-15T15:05:00+08:00"),
    ]
    assert summary.counts.rejected == {"empty": 1}  # a null time is an empty one


def test_parquet_output_holds_the_csv_outputs_values_with_typed_instants(tmp_path: Path) -> None:
    harmonise_files([ALERTS_CSV], tmp_path / "o.csv", workers=1)

    summary = harmonise_files([ALERTS_CSV], tmp_path / "o.parquet", workers=2)

    table = pq.read_table(tmp_path / "o.parquet")
    with (tmp_path / "o.csv").open(newline="", encoding="utf-8") as file:
        expected = list(csv.DictReader(file))
    assert table.schema.field("reported_at").type == pa.string()
    assert table.schema.field("reported_at_utc_ms").type == pa.int64()
    typed = [{k: int(v) if k.endswith("_utc_ms") else v for k, v in r.items()} for r in expected]
    assert table.to_pylist() == typed
    assert summary.counts.rows_out == len(typed)
    assert (tmp_path / "o.rejects.jsonl").exists()  # original values, any type: JSON Lines
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_json_lines_into_parquet_keeps_the_first_objects_columns(tmp_path: Path) -> None:
    summary = harmonise_files([ALERTS_JSONL], tmp_path / "o.parquet", workers=1)

    table = pq.read_table(tmp_path / "o.parquet")
    assert table.num_rows == summary.counts.rows_out > 0
    assert all(isinstance(ms, int) for ms in table.column("reportedAt_utc_ms").to_pylist())


def test_rejects_cannot_be_parquet(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not Parquet"):
        harmonise_files([ALERTS_CSV], tmp_path / "o.csv", rejects=tmp_path / "r.parquet")


def test_nested_values_are_read_as_json_and_non_utf8_bytes_rejected(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "ts": ["2022-10-15 15:00", "2022-10-15 16:00", "2022-10-15 17:00"],
            "tags": [[1, 2], None, [3]],
            "blob": pa.array([b"ok", b"\xff\xfe", "渝中".encode()], type=pa.binary()),
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")

    summary = harmonise_files(
        [tmp_path / "in.parquet"], tmp_path / "out.csv", rejects=tmp_path / "r.csv", workers=1
    )

    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["id"], r["tags"], r["blob"]) for r in rows] == [
        ("a", "[1,2]", "ok"),
        ("c", "[3]", "渝中"),
    ]
    assert summary.rows_rejected == 1
    reject = (tmp_path / "r.csv").read_bytes().splitlines()[1]
    assert reject.startswith(b"b,2022-10-15 16:00,,\xff\xfe,invalid_encoding,")  # bytes kept
