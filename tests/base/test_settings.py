"""One settings object: defaults, SMART_STATION_* environment, flags on top; secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from base.settings import Settings, settings_env
from streams.ingest.officers import ping_from_raw
from streams.ingest.stations import StationBook


def test_environment_overrides_defaults_and_arguments_override_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMART_STATION_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("SMART_STATION_ZONE", "Europe/Berlin")
    assert Settings().topic_partitions == 12
    assert Settings(topic_partitions=3).topic_partitions == 3
    assert Settings().zone == "Europe/Berlin"
    assert Settings().h3_resolution == 8  # default


def test_clickhouse_url_is_read_from_either_variable_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLICKHOUSE_URL", "https://ingest:s3cret@ch.example:8443")
    conf = Settings()
    assert conf.clickhouse_url is not None
    assert conf.clickhouse_url.get_secret_value().endswith("@ch.example:8443")
    assert "s3cret" not in repr(conf) and "s3cret" not in str(conf.model_dump())


def test_station_conventions_come_from_json_and_reach_the_child_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "SMART_STATION_STATIONS", '{"ST-07": {"zone": "Asia/Urumqi", "day_first": false}}'
    )
    conf = Settings(state_dir=tmp_path)
    assert conf.stations["ST-07"].zone == "Asia/Urumqi"
    env = settings_env(conf)
    monkeypatch.setenv("SMART_STATION_STATIONS", env["SMART_STATION_STATIONS"])
    assert Settings().stations == conf.stations


def test_station_zone_and_date_order_decide_a_ping_time() -> None:
    book = StationBook(
        "Asia/Shanghai",
        Settings(stations={"ST-US": {"zone": "America/New_York", "day_first": False}}).stations,
    )
    raw = {
        "officer_id": "A",
        "station_id": "ST-US",
        "lat": 40.7,
        "lon": -74.0,
        "ts": "05/10/2022 3:05 PM",
    }
    ping = ping_from_raw(raw, stations=book, resolution=8, reference_ms=0, ingest_ms=0)
    assert ping.event_time == "2022-05-10T15:05:00-04:00"  # month first, New York summer time
    other = ping_from_raw(
        {**raw, "station_id": "ST-XX", "ts": "2022-05-10 15:05"},
        stations=book,
        resolution=8,
        reference_ms=0,
        ingest_ms=0,
    )
    assert other.event_time == "2022-05-10T15:05:00+08:00"  # unknown station: default zone


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]
