"""streams.sim.demo end to end in a short mode: the real session broker, a real worker and the
warehouse loader; the night report is checked against the warehouse and the simulator."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from base.settings import Settings
from sinks.migrations import migrate
from sinks.warehouse import ChdbWarehouse, Warehouse
from streams.sim.demo import DemoOptions, night_settings, run_demo
from tests.support.clients import TEST_PROTECTOR


def test_each_run_is_its_own_night_with_its_own_topics_groups_and_database(
    tmp_path: Path,
) -> None:
    base = Settings(state_dir=tmp_path)
    first, second = night_settings(base, "a"), night_settings(base, "b")
    assert first.topic_prefix != second.topic_prefix
    assert first.app_id != second.app_id
    assert first.warehouse_database != second.warehouse_database


@pytest.mark.broker
def test_a_short_demo_reports_the_night_as_the_warehouse_holds_it_and_as_it_was_sent(
    settings: Settings, kafka_bootstrap: str, warehouse_path: Path, tmp_path: Path
) -> None:
    def open_store(conf: Settings) -> Warehouse:
        store = ChdbWarehouse(warehouse_path, conf.warehouse_database)
        migrate(store, TEST_PROTECTOR)
        return store

    options = DemoOptions(
        minutes=0.5,
        speedup=20,
        stations=2,
        officers_per_station=6,
        calls_per_station_hour=60,
        malformed_share=0.01,
        seed=11,
        picture=tmp_path / "night.html",
        live=False,
        drain_s=90,
    )
    said: list[str] = []
    outcome = run_demo(settings, options, open_store=open_store, echo=said.append)
    report = outcome.report
    assert report is not None and not outcome.stopped
    assert report.unaccounted == [], report.unaccounted
    sent = outcome.sent
    assert len(sent.alerts) >= 3 and sent.malformed >= 1

    store = ChdbWarehouse(warehouse_path, outcome.database)
    db = outcome.database
    loaded = {r["alert_id"] for r in store.query(f"SELECT alert_id FROM {db}.alerts FINAL")}
    assert loaded == sent.alerts == report.warehouse_alert_ids
    assigned = {
        r["alert_id"] for r in store.query(f"SELECT DISTINCT alert_id FROM {db}.assignments")
    }
    assert len(assigned) == report.assigned >= 1
    assert assigned | set(report.still_waiting) == sent.alerts
    (dead,) = store.query(f"SELECT count() AS n FROM {db}.dead_letters FINAL")
    assert int(dead["n"]) == sum(report.dead_letters.values()) == sent.malformed
    assert report.time_formats and sum(report.time_formats.values()) > sent.records["gps.pings"] / 2
    assert 0 < report.assign_s[0] <= report.assign_s[2]
    # arrivals are in night time: never later than the night plus its drain (it read 6,168 s
    # of a 600 s night when the officers' answer times were taken for wall time)
    night_s = options.minutes * 60 * options.speedup
    assert math.isnan(report.arrive_s[2]) or 0 < report.arrive_s[2] <= night_s
    # what the live board heard agrees with the warehouse
    assert outcome.board.accounted() >= sent.alerts
    assert any(line.startswith("[") for line in said)  # plain progress lines, no terminal
    html, png = outcome.picture or (None, None)
    assert html is not None and html.exists() and png is not None and png.stat().st_size > 0
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        left = [t for t in admin.list_topics() if "demo-" + outcome.run_id in t]
    finally:
        admin.close()
    assert left == [], "the demo removes its night's topics"
