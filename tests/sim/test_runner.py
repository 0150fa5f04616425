"""streams.sim.runner through the real broker: a short simulated night sent to the raw topics,
dispatched by a real worker, answered by the simulated officers' app."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from base.settings import Settings
from base.topics import TopicNames
from streams.pipeline.worker import WorkerProcess
from streams.sim.formats import ZONE
from streams.sim.night import EVENING_PROFILE, Night, NightConfig
from streams.sim.runner import run_to_kafka
from tests.support.clients import consume
from tests.support.dispatch_night import NightPlan, await_positions

BEIJING = (39.9, 116.4)  # a probe officer far from the district, never a candidate

pytestmark = pytest.mark.broker


def test_a_short_night_through_the_broker_has_every_alert_dispatched_and_answered(
    settings: Settings, topics: TopicNames, kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        await_positions(kafka_bootstrap, settings, NightPlan({"PROBE": BEIJING}, [], 0.0))
        start_ms = int(time.time()) * 1000
        config = NightConfig(
            stations=1,
            officers_per_station=9,
            duration_s=600,
            # ten calls expected whatever the hour: at 03:00 in Chongqing the evening profile
            # thins a fixed rate to a quarter (the test failed in CI run at that hour)
            calls_per_station_hour=60 / min(profile(start_ms), profile(start_ms + 600_000)),
            start_ms=start_ms,
            malformed_share=0.01,
        )
        night = Night.of(config)
        result = run_to_kafka(night, kafka_bootstrap, topics, speedup=15)
        alerts = set(night.ledger.alerts)
        assert len(alerts) >= 3

        def settled(events: list[dict[str, object]]) -> bool:
            seen = {e["alert_id"] for e in events if e["kind"] in ("assigned", "unassigned")}
            return alerts <= seen and any(e["kind"] == "arrived" for e in events)

        events = consume(kafka_bootstrap, topics.events, until=settled, timeout_s=90)
    finally:
        worker.stop()
    accounted = {e["alert_id"] for e in events if e["kind"] in ("assigned", "unassigned")}
    assert alerts <= accounted, f"unaccounted: {sorted(alerts - accounted)}"
    assert result.assignments_heard > 0
    kinds = {e["kind"] for e in events}
    assert {"acknowledged", "arrived"} <= kinds  # the app's answers reached the dispatcher
    malformed = sum(n for kind, n in night.ledger.counts.items() if kind.startswith("malformed:"))
    dead = consume(
        kafka_bootstrap, topics.deadletter, until=lambda r: len(r) >= malformed, raw=True
    )
    assert len(dead) >= malformed


def profile(at_ms: int) -> float:
    """The evening profile's relative call rate at `at_ms`, in the district's local time."""
    return EVENING_PROFILE[datetime.fromtimestamp(at_ms / 1000, tz=ZONE).hour]
