"""`harmonise --out warehouse:TABLE` (sinks/harmonised.py): file rows into a chDB table, input
columns as String and `<time>_utc_ms` as Int64; a re-run replaces the rows, a failed run leaves
the table as it was; a topic range lands the same way. chDB; the topic test needs the broker."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from base.errors import ConfigError, HarmoniseError
from base.settings import Settings
from infra.topics import ensure_topics
from sinks.warehouse import ChdbWarehouse
from streams.bulk.jobs import harmonise_files, harmonise_topic
from tests.support.clients import send_json
from tests.support.exports import unreadable_csv

ROOT = Path(__file__).resolve().parents[2]
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


def test_a_failed_run_leaves_the_table_as_it_was(store: ChdbWarehouse, tmp_path: Path) -> None:
    target = Path("warehouse:alerts")
    harmonise_files([ALERTS_CSV], target, rejects=tmp_path / "r.jsonl", warehouse=store)
    before = table_rows(store, "alerts")
    broken = unreadable_csv(tmp_path / "unreadable")

    with pytest.raises(HarmoniseError, match="unreadable CSV"):
        harmonise_files(
            [ALERTS_CSV, broken],
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


@pytest.mark.broker
def test_a_topic_range_lands_in_a_table_named_by_its_first_object(
    store: ChdbWarehouse,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    settings: Settings,
    tmp_path: Path,
) -> None:
    source = settings.topic("raw.calls")
    ensure_topics(kafka_bootstrap, [source], 2)
    producer.send(source, key=b"junk", value=b"{not json")  # first: no columns to take
    for n in range(4):
        value = {"alert_id": f"AL-{n}", "ts": f"2022-10-15 15:0{n}:00", "address": "ÓåÖÐÇø"}
        send_json(producer, source, value, key=f"AL-{n}")
    send_json(producer, source, {"alert_id": "AL-x", "ts": "2022-10-15", "extra": 1}, key="AL-x")
    producer.flush()

    summary = harmonise_topic(
        kafka_bootstrap,
        source,
        out=Path("warehouse:calls"),
        rejects=tmp_path / "r.jsonl",
        warehouse=store,
        workers=1,
    )

    rows = table_rows(store, "calls")
    assert [r["alert_id"] for r in rows] == [f"AL-{n}" for n in range(4)]
    assert rows[2]["ts"] == "2022-10-15T15:02:00+08:00"
    assert rows[2]["ts_utc_ms"] == 1665817320000
    assert rows[2]["address"] == "渝中区"
    rejected = [orjson.loads(line) for line in (tmp_path / "r.jsonl").read_bytes().splitlines()]
    assert sorted(r["reason"] for r in rejected) == ["invalid_field", "invalid_json"]
    assert (summary.counts.rows_out, summary.rows_rejected) == (4, 2)
