"""streams.sim.night: a simulated night is the same for the same seed, moves officers at the
speeds people move, follows the evening profile, and run through `dispatch replay` accounts for
every alert it sent."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from streams.cli.app import cli
from streams.sim.district import JIANGBEI, distance_m
from streams.sim.formats import ZONE
from streams.sim.night import Night, NightConfig, Record
from streams.timestd import parse_instant

SMALL = NightConfig(stations=3, officers_per_station=8, duration_s=900, calls_per_station_hour=12)


def records(config: NightConfig) -> list[Record]:
    return list(Night.of(config).records())


def test_same_seed_gives_the_same_night_and_another_seed_another() -> None:
    first = records(SMALL)
    assert first == records(SMALL)
    other = records(NightConfig(**{**_fields(SMALL), "seed": 8}))
    assert other != first


def _fields(config: NightConfig) -> dict[str, object]:
    return {name: getattr(config, name) for name in config.__slots__}  # type: ignore[attr-defined]


def test_default_district_is_jiangbei_with_two_thirds_of_its_officers_on_patrol() -> None:
    night = Night.of(NightConfig(duration_s=1))
    stations = night.district.stations
    assert len(stations) == 18
    assert all(JIANGBEI.contains(s.lat, s.lon) for s in stations)
    assert len(night.officers) == 18 * 30
    on_patrol = sum(o.on_patrol for o in night.officers.values())
    assert on_patrol == 18 * 20
    # spread across the district: the stations span most of its width
    assert max(s.lon for s in stations) - min(s.lon for s in stations) > 0.2


def test_other_sizes_spread_stations_over_the_area() -> None:
    night = Night.of(NightConfig(stations=169, officers_per_station=2, duration_s=1))
    assert len({(s.lat, s.lon) for s in night.district.stations}) == 169
    assert all(JIANGBEI.contains(s.lat, s.lon) for s in night.district.stations)


def test_officers_move_no_faster_than_on_foot_or_by_car() -> None:
    clean = NightConfig(
        **{**_fields(SMALL), "gps_noise_m": 0.0, "late_share": 0.0, "duplicate_share": 0.0,
           "out_of_order_share": 0.0, "far_off_share": 0.0, "malformed_share": 0.0},
    )  # fmt: skip
    night = Night.of(clean)
    tracks: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for record in night.records():
        if record.topic == "gps.pings":
            m = record.message
            assert isinstance(m, dict)
            when = parse_instant(m.get("ts", m.get("时间")), zone="Asia/Shanghai").utc_ms
            tracks[m["officer_id"]].append((when, m["lat"], m["lon"]))
    moved = 0
    for officer_id, track in tracks.items():
        limit = 12.0 if night.officers[officer_id].in_car else 2.2
        for (t1, lat1, lon1), (t2, lat2, lon2) in itertools.pairwise(track):
            metres = distance_m(lat1, lon1, lat2, lon2)
            moved += metres > 1
            # one second of rounding in the formats without milliseconds, 0.2 m of rounding
            assert metres <= limit * (t2 - t1 + 1000) / 1000 + 0.2, officer_id
    assert moved > 100


def test_calls_follow_the_evening_profile() -> None:
    def calls_from(hour: int) -> int:
        start = int(datetime(2026, 11, 27, hour, tzinfo=ZONE).timestamp() * 1000)
        config = NightConfig(
            officers_per_station=1, duration_s=7200, calls_per_station_hour=10, start_ms=start
        )
        night = Night.of(config)
        for _ in night.records():
            pass
        return len(night.ledger.alerts)

    evening, small_hours = calls_from(19), calls_from(3)
    # peak 1.0 vs 0.28/0.22: about 360 against 90 calls in two hours
    assert 280 < evening < 440
    assert evening > 2.5 * small_hours


def test_some_callers_call_again_about_the_same_address() -> None:
    night = Night.of(NightConfig(**{**_fields(SMALL), "duration_s": 3600}))
    for _ in night.records():
        pass
    phones = Counter(call["caller_phone"] for call in night.ledger.alerts.values())
    assert night.ledger.counts["repeat_caller"] > 0
    assert any(n > 1 for n in phones.values())


def test_a_night_through_dispatch_replay_accounts_for_every_alert(tmp_path: Path) -> None:
    night_file, decisions = tmp_path / "night.jsonl", tmp_path / "decisions.jsonl"
    runner = CliRunner()
    made = runner.invoke(
        cli,
        ["simulate", "--out", str(night_file), "--stations", "3", "--officers-per-station",
         "10", "--minutes", "40", "--malformed-share", "0.01", "--seed", "3",
         "--calls-per-hour", "12"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    sent = [orjson.loads(line) for line in night_file.read_bytes().splitlines()]
    alert_ids = {
        r["message"]["alert_id"]
        for r in sent
        if r["topic"] == "alerts.calls" and isinstance(r["message"], dict)
        and "alert_id" in r["message"]
    }  # fmt: skip
    malformed = sum(1 for r in sent if _malformed(r["message"]))
    replayed = runner.invoke(cli, ["dispatch", "replay", str(night_file), "--out", str(decisions)])
    assert replayed.exit_code == 0, replayed.output
    out = [orjson.loads(line) for line in decisions.read_bytes().splitlines()]
    events = [o["message"] for o in out if o["topic"] == "dispatch.events"]
    accounted = {e["alert_id"] for e in events if e["kind"] in ("assigned", "unassigned")}
    dead = [o for o in out if o["topic"] == "deadletter"]
    assert len(alert_ids) >= 5
    assert alert_ids <= accounted, f"unaccounted: {sorted(alert_ids - accounted)}"
    assert len(dead) == malformed > 0
    # the officers answered what replay decides: they acknowledge, arrive and clear
    kinds = Counter(e["kind"] for e in events)
    assert kinds["acknowledged"] > 0 and kinds["arrived"] > 0 and kinds["cleared"] > 0
    assigned = sum(1 for o in out if o["topic"] == "dispatch.assignments")
    assert f"{assigned} assignments answered" in made.output


def _malformed(message: object) -> bool:
    if isinstance(message, str):
        return True
    assert isinstance(message, dict)
    return message.get("officer_id") == "P-BROKEN" or (
        "officer_id" not in message and "alert_id" not in message and "camera_id" not in message
    )


@pytest.mark.parametrize(
    "bad",
    [
        ["--out", "n.jsonl", "--area", "1,2,3"],
        ["--out", "n.jsonl", "--start", "2026-11-27T18:00"],
        # to Kafka, a 2 h night at 10x ends 108 min ahead of the clock: its last hour would be
        # dead letters (out_of_range); it used to start anyway
        ["--minutes", "120", "--speedup", "10"],
    ],
)
def test_bad_options_fail_with_one_line(
    bad: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["simulate", *bad])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error:")
