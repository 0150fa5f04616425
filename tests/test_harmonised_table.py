"""`harmonise --out warehouse:TABLE` (sinks/harmonised.py): file rows into a chDB table, input
columns as String and `<time>_utc_ms` as Int64; a re-run replaces the rows, a failed run leaves
the table as it was. chDB only, no broker."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest

from sinks.warehouse import ChdbWarehouse
from streams import harmonise as harmonise_module
from streams.errors import ConfigError
from streams.harmonise import HarmoniseError, harmonise_files

ROOT = Path(__file__).resolve().parent.parent
ALERTS_CSV = ROOT / "tests" / "data" / "harmonise" / "alerts.csv"


@pytest.fixture
def store(warehouse_path: Path) -> ChdbWarehouse:
    return ChdbWarehouse(warehouse_path, f"h_{uuid.uuid4().hex[:10]}")


def table_rows(store: ChdbWarehouse, table: str) -> list[dict[str, object]]:
    return store.query(f"SELECT * FROM {{db}}.{table} ORDER BY alert_id")


def test_rows_land_in_a_table_of_strings_and_int64_instants(
    store: ChdbWarehouse, tmp_path: Path
) -> None:
    harmonise_files([ALERTS_CSV], tmp_path / "o.csv", workers=1)

    summary = harmonise_files(
        [ALERTS_CSV],
        Path("warehouse:alerts"),
        rejects=tmp_path / "r.jsonl",
        warehouse=store,
        workers=1,
    )

    with (tmp_path / "o.csv").open(newline="", encoding="utf-8") as file:
        expected = sorted(csv.DictReader(file), key=lambda r: r["alert_id"])
    types = store.query(
        "SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'alerts'"
    )
    assert {t["name"]: t["type"] for t in types}["reported_at_utc_ms"] == "Int64"
    assert {t["name"]: t["type"] for t in types}["reported_at"] == "String"
    typed = [{k: int(v) if k.endswith("_utc_ms") else v for k, v in r.items()} for r in expected]
    assert table_rows(store, "alerts") == typed
    assert summary.counts.rows_out == len(typed)
    assert len((tmp_path / "r.jsonl").read_bytes().splitlines()) == summary.rows_rejected


def test_a_rerun_replaces_the_rows_instead_of_adding_them(
    store: ChdbWarehouse, tmp_path: Path
) -> None:
    target = Path("warehouse:alerts")
    first = harmonise_files([ALERTS_CSV], target, rejects=tmp_path / "r.jsonl", warehouse=store)

    harmonise_files([ALERTS_CSV, ALERTS_CSV], target, rejects=tmp_path / "r.jsonl", warehouse=store)
    twice = len(table_rows(store, "alerts"))
    harmonise_files([ALERTS_CSV], target, rejects=tmp_path / "r.jsonl", warehouse=store)

    assert twice == 2 * first.counts.rows_out
    assert len(table_rows(store, "alerts")) == first.counts.rows_out
    tables = store.query("SELECT name FROM system.tables WHERE database = '{db}'")
    assert [t["name"] for t in tables] == ["alerts"]


def test_a_failed_run_leaves_the_table_as_it_was(
    store: ChdbWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = Path("warehouse:alerts")
    harmonise_files([ALERTS_CSV], target, rejects=tmp_path / "r.jsonl", warehouse=store)
    before = table_rows(store, "alerts")
    real_run_task = harmonise_module._run_task
    calls = []

    def fail_on_second_chunk(task: object) -> object:
        calls.append(task)
        if len(calls) == 2:
            raise HarmoniseError("disk full")
        return real_run_task(task)  # type: ignore[arg-type]

    monkeypatch.setattr(harmonise_module, "_run_task", fail_on_second_chunk)

    with pytest.raises(HarmoniseError, match="disk full"):
        harmonise_files(
            [ALERTS_CSV, ALERTS_CSV],
            target,
            rejects=tmp_path / "r.jsonl",
            warehouse=store,
            workers=1,
        )

    assert table_rows(store, "alerts") == before
    tables = store.query("SELECT name FROM system.tables WHERE database = '{db}'")
    assert [t["name"] for t in tables] == ["alerts"]


def test_table_names_are_plain_identifiers(store: ChdbWarehouse, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="letters, digits and _"):
        harmonise_files(
            [ALERTS_CSV], Path("warehouse:a;DROP"), rejects=tmp_path / "r.jsonl", warehouse=store
        )
