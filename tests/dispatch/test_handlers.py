"""Dispatch behaviour through the same handlers the Faust agents run, driven by the
broker-free replay (deterministic event time). The broker tests cover the wiring."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.dispatch.replay import RecordedEvent, read_events, replay
from streams.dispatch.rules import DispatchPolicy
from streams.ingest.stations import StationBook

T0 = 1_700_000_000_000
INCIDENT = (29.5630, 106.5516)
NEAR = (29.5640, 106.5520)  # ~120 m
MID = (29.5700, 106.5600)  # ~1.1 km
FAR = (29.5900, 106.5900)  # ~4.8 km
POLICY = DispatchPolicy(radius_m=5000, max_position_age_ms=300_000, ack_timeout_ms=60_000)


def ping(officer: str, where: tuple[float, float], t: int) -> dict[str, Any]:
    return {
        "topic": "gps.pings",
        "message": {"officer_id": officer, "lat": where[0], "lon": where[1], "ts": t},
    }


def alert(
    alert_id: str,
    t: int,
    category: str = "theft",
    where: tuple[float, float] = INCIDENT,
    **extra: Any,
) -> dict[str, Any]:
    message = {
        "alert_id": alert_id,
        "category": category,
        "lat": where[0],
        "lon": where[1],
        "time": t,
        **extra,
    }
    return {"topic": "alerts.calls", "message": message}


def status(officer: str, value: str, t: int) -> dict[str, Any]:
    return {"topic": "officer.status", "message": {"officer_id": officer, "status": value, "ts": t}}


def run(
    records: list[dict[str, Any]], tail_ms: int = 0, policy: DispatchPolicy = POLICY
) -> list[dict[str, Any]]:
    lines = [orjson.dumps(r) for r in records]
    return replay(
        read_events(lines, stations=StationBook()), policy=policy, tail_ms=tail_ms
    ).outputs


def assignments(outputs: list[dict[str, Any]], alert_id: str | None = None) -> list[dict[str, Any]]:
    return [
        o["message"]
        for o in outputs
        if o["topic"] == "dispatch.assignments"
        and alert_id in (None, o["message"]["alert"]["alert_id"])
    ]


def officers_of(outputs: list[dict[str, Any]], alert_id: str) -> list[str]:
    return [a["officer"]["officer_id"] for a in assignments(outputs, alert_id)]


def events(outputs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        o["message"]
        for o in outputs
        if o["topic"] == "dispatch.events" and o["message"]["kind"] == kind
    ]


def test_nearest_available_officer_is_assigned_with_distance_and_eta() -> None:
    out = run([ping("A", MID, T0), ping("B", NEAR, T0), ping("C", FAR, T0), alert("AL", T0 + 1000)])
    [assignment] = assignments(out)
    assert assignment["officer"]["officer_id"] == "B"
    assert 100 < assignment["distance_m"] < 150 and assignment["eta_s"] > 0
    assert assignment["assignment_id"] == "AL:B"


def test_late_ping_does_not_move_officer_back() -> None:
    out = run(
        [
            ping("A", FAR, T0 + 10_000),
            ping("A", NEAR, T0 + 5_000),  # arrives later, happened earlier
            ping("B", MID, T0 + 10_000),
            alert("AL", T0 + 20_000),
        ]
    )
    # replay orders by event time, so also send the late ping after the alert's decision point:
    assert officers_of(out, "AL") == ["B"]


def test_late_ping_in_arrival_order_is_ignored_by_the_officer_state() -> None:
    from streams.dispatch.positions import advance
    from streams.ingest.officers import ping_from_raw

    kwargs = {"stations": StationBook(), "resolution": 8, "reference_ms": T0, "ingest_ms": T0}
    newer = ping_from_raw(ping("A", FAR, T0 + 10_000)["message"], **kwargs)
    older = ping_from_raw(ping("A", NEAR, T0 + 5_000)["message"], **kwargs)
    position = advance(None, newer)
    assert position is not None and position.lat == FAR[0]
    assert advance(position, older) is None
    assert advance(position, newer) is None  # a duplicate changes nothing either


def test_stale_officer_is_skipped() -> None:
    out = run([ping("A", NEAR, T0), ping("B", MID, T0 + 400_000), alert("AL", T0 + 400_000)])
    assert officers_of(out, "AL") == ["B"]  # A's position is 400 s old, over the 300 s limit


def test_officer_without_ack_is_released_and_next_nearest_assigned() -> None:
    out = run([ping("A", NEAR, T0), ping("B", MID, T0), alert("AL", T0 + 1000)], tail_ms=70_000)
    assert officers_of(out, "AL") == ["A", "B"]
    [timeout] = events(out, "ack_timeout")
    assert timeout["officer_id"] == "A" and timeout["alert_id"] == "AL"
    second = assignments(out, "AL")[1]
    assert second["reason"] == "reassignment"


def test_acknowledged_officer_keeps_the_alert() -> None:
    out = run(
        [
            ping("A", NEAR, T0),
            ping("B", MID, T0),
            alert("AL", T0 + 1000),
            status("A", "en_route", T0 + 20_000),
        ],
        tail_ms=120_000,
    )
    assert officers_of(out, "AL") == ["A"]
    assert events(out, "ack_timeout") == []


def test_backup_request_sends_next_nearest_unit() -> None:
    out = run(
        [
            ping("A", NEAR, T0),
            ping("B", MID, T0),
            ping("C", FAR, T0),
            alert("AL", T0 + 1000, category="dispute"),
            status("A", "on_scene", T0 + 2000),
            {
                "topic": "dispatch.backup",
                "message": {
                    "alert_id": "AL",
                    "officer_id": "A",
                    "units": 1,
                    "reason": "knife seen",
                },
                "timestamp_ms": T0 + 3000,
            },
        ]
    )
    assert officers_of(out, "AL") == ["A", "B"]
    assert assignments(out, "AL")[1]["reason"] == "backup"
    assert assignments(out, "AL")[1]["units_needed"] == 2
    assert events(out, "backup_requested")[0]["officer_id"] == "A"


def test_weapon_alert_gets_two_units_and_a_supervisor_notice() -> None:
    out = run(
        [
            ping("A", NEAR, T0),
            ping("B", MID, T0),
            ping("C", FAR, T0),
            alert("AL", T0 + 1000, "weapon"),
        ]
    )
    assert officers_of(out, "AL") == ["A", "B"]
    assert all(a["supervisor_notice"] and a["units_needed"] == 2 for a in assignments(out, "AL"))


def test_no_officer_is_booked_twice_and_unassigned_alert_waits_then_drains() -> None:
    out = run(
        [
            ping("A", NEAR, T0),
            alert("AL1", T0 + 1000),
            alert("AL2", T0 + 2000),  # A is taken: nobody else within the radius
            status("A", "en_route", T0 + 3000),
            status("A", "on_scene", T0 + 20_000),
            status("A", "available", T0 + 30_000),  # cleared AL1
            ping("A", NEAR, T0 + 30_000),
        ],
        tail_ms=5000,
    )
    assert officers_of(out, "AL1") == ["A"]
    waiting = [o for o in out if o["topic"] == "dispatch.unassigned"]
    assert [w["message"]["alert"]["alert_id"] for w in waiting] == ["AL2"]
    assert waiting[0]["message"]["reason"] == "no_available_officer_within_radius"
    assert officers_of(out, "AL2") == ["A"]  # drained once A was free again
    first, second = assignments(out)
    assert first["assigned_utc_ms"] < T0 + 30_000 <= second["assigned_utc_ms"]


def test_waiting_queue_serves_priority_before_age() -> None:
    out = run(
        [
            ping("A", NEAR, T0),
            status("A", "busy", T0 + 100),
            alert("NOISE", T0 + 1000, "noise"),  # priority 4, older
            alert("THEFT", T0 + 2000, "theft"),  # priority 3, newer
            status("A", "available", T0 + 10_000),
            ping("A", NEAR, T0 + 10_000),
        ],
        tail_ms=3000,
    )
    assert officers_of(out, "THEFT") == ["A"]
    assert officers_of(out, "NOISE") == []


def test_off_duty_officer_is_not_a_candidate() -> None:
    out = run(
        [
            ping("A", NEAR, T0),
            ping("B", MID, T0),
            status("A", "off_duty", T0 + 10),
            alert("AL", T0 + 1000),
        ]
    )
    assert officers_of(out, "AL") == ["B"]


def test_cameras_are_chosen_by_field_of_view_and_body_cameras_follow_officers() -> None:
    facing = {
        "camera_id": "CAM-FACING",
        "lat": 29.5620,
        "lon": 106.5516,
        "heading_deg": 0,
        "fov_deg": 60,
        "range_m": 200,
        "ts": T0,
    }
    away = {**facing, "camera_id": "CAM-AWAY", "heading_deg": 180}
    offline = {**facing, "camera_id": "CAM-OFF", "online": False}
    body = {"camera_id": "BWC-A", "officer_id": "A", "kind": "body", "ts": T0}
    out = run(
        [
            *({"topic": "cameras.meta", "message": m} for m in (facing, away, offline, body)),
            ping("A", NEAR, T0),
            alert("AL", T0 + 1000),
        ]
    )
    [assignment] = assignments(out)
    assert [c["camera_id"] for c in assignment["cameras"]] == ["CAM-FACING"]
    assert assignment["cameras"][0]["bearing_deg"] == pytest.approx(0.0, abs=1.0)
    assert assignment["body_cameras"] == [{"camera_id": "BWC-A", "officer_id": "A", "online": True}]


def test_background_lists_earlier_alerts_at_the_address_and_from_the_caller() -> None:
    out = run(
        [
            ping("A", NEAR, T0),
            ping("B", MID, T0),
            ping("C", FAR, T0),
            alert("OLD1", T0 + 1000, address="解放碑 8 号", caller_phone="13800000001"),
            alert(
                "OLD2", T0 + 2000, where=FAR, address="elsewhere", caller_phone="+86 138 0000 0002"
            ),
            alert("NEW", T0 + 3000, address="解放碑8号", caller_phone="13800000002"),
        ]
    )
    [assignment] = assignments(out, "NEW")
    background = {b["alert_id"]: b["matched_on"] for b in assignment["background"]}
    assert background == {"OLD2": ["caller"], "OLD1": ["address", "cell"]}


def test_malformed_recorded_event_becomes_a_dead_letter_and_the_rest_goes_on() -> None:
    out = run(
        [
            {
                "topic": "gps.pings",
                "message": {"officer_id": "A", "lat": 95, "lon": 106.5, "ts": T0},
            },
            ping("B", MID, T0),
            alert("AL", T0 + 1000),
        ]
    )
    [dead] = [o for o in out if o["topic"] == "deadletter"]
    assert dead["reason"] == "out_of_range"
    assert officers_of(out, "AL") == ["B"]


def test_replay_is_deterministic() -> None:
    records = [ping(f"O{i}", (29.55 + i * 0.002, 106.54 + i * 0.001), T0) for i in range(20)]
    records += [
        alert(
            f"AL{i}",
            T0 + 1000 + i,
            "weapon" if i % 3 == 0 else "theft",
            where=(29.55 + i * 0.003, 106.55),
        )
        for i in range(10)
    ]
    assert run(records, tail_ms=90_000) == run(list(reversed(records)), tail_ms=90_000)


def test_tighter_radius_leaves_far_alert_unassigned() -> None:
    records = [ping("A", FAR, T0), alert("AL", T0 + 1000)]
    assert officers_of(run(records), "AL") == ["A"]
    tight = DispatchPolicy(radius_m=1000, max_position_age_ms=300_000)
    assert officers_of(run(records, policy=tight), "AL") == []


def replay_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "streams.cli", "dispatch", "replay", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_replay_command_writes_decisions_and_rejects_bad_arguments(tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(
        b"\n".join(orjson.dumps(r) for r in [ping("A", NEAR, T0), alert("AL", T0 + 5)])
    )
    out_file = tmp_path / "out.jsonl"
    result = replay_cli(str(events_file), "--out", str(out_file))
    assert result.returncode == 0, result.stderr
    assert "1 assignments" in result.stdout
    lines = [orjson.loads(line) for line in out_file.read_bytes().splitlines()]
    assert [line["topic"] for line in lines] == ["dispatch.assignments", "dispatch.events"]
    missing = replay_cli(str(tmp_path / "nope"), "--out", str(out_file))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    events_file.write_text('{"topic": "nonsense", "message": {}}\n')
    bad = replay_cli(str(events_file), "--out", str(out_file))
    assert bad.returncode == 1 and "unknown topic" in bad.stderr and bad.stderr.count("\n") == 1


def test_recorded_events_are_ordered_by_event_time() -> None:
    lines = [orjson.dumps(ping("A", NEAR, T0 + 5)), orjson.dumps(ping("B", NEAR, T0))]
    ordered = read_events(lines, stations=StationBook())
    assert [e.message["officer_id"] for e in ordered] == ["B", "A"]
    assert isinstance(ordered[0], RecordedEvent)


def gps_ping(officer_id: str, t: int, lat: float, lon: float) -> Any:
    import h3

    from schemas.events import GpsPing, TimeQuality

    return GpsPing(
        event_id=f"{officer_id}@{t}",
        officer_id=officer_id,
        station_id="",
        lat=lat,
        lon=lon,
        h3_cell=h3.latlng_to_cell(lat, lon, 8),
        event_time="x",
        event_utc_ms=t,
        ingest_utc_ms=t,
        time_quality=TimeQuality(source_format="epoch_ms"),
    )


def test_same_cell_positions_are_replicated_only_every_interval() -> None:
    from streams.dispatch.positions import PositionKeeper

    table: dict[str, Any] = {}
    keeper = PositionKeeper(table, interval_ms=10_000)
    assert keeper.on_ping(gps_ping("A", T0, *NEAR)) is not None  # first position: written
    assert table["A"]["position_utc_ms"] == T0
    assert keeper.on_ping(gps_ping("A", T0 + 3000, NEAR[0] + 0.0001, NEAR[1])) is None
    assert table["A"]["position_utc_ms"] == T0  # same cell, 3 s later: not replicated yet
    # a late ping is ignored against the unwritten newer position too (even in another cell)
    assert keeper.on_ping(gps_ping("A", T0 + 2000, *FAR)) is None
    written = keeper.on_ping(gps_ping("A", T0 + 11_000, NEAR[0] + 0.0002, NEAR[1]))
    assert written is not None and table["A"]["position_utc_ms"] == T0 + 11_000  # interval passed
    assert keeper.on_ping(gps_ping("A", T0 + 12_000, *MID)) is not None  # another cell: at once
    assert table["A"]["lat"] == MID[0]


def test_a_partition_back_from_another_worker_orders_pings_by_the_table() -> None:
    from streams.dispatch.positions import PositionKeeper

    table: dict[str, Any] = {}
    keeper = PositionKeeper(table, interval_ms=10_000)
    keeper.on_ping(gps_ping("A", T0, *NEAR))
    keeper.on_ping(gps_ping("A", T0 + 3000, NEAR[0] + 0.0001, NEAR[1]))  # kept unwritten
    # meanwhile another worker owned the partition and wrote a newer position elsewhere
    table["A"] = {**table["A"], "lat": MID[0], "lon": MID[1], "position_utc_ms": T0 + 60_000}
    assert keeper.on_ping(gps_ping("A", T0 + 30_000, *FAR)) is None  # older than the table
    assert table["A"]["lat"] == MID[0]


def test_the_view_merges_status_and_the_newer_position() -> None:
    from schemas.events import OfficerPosition, OfficerState, OfficerStatusValue
    from streams.dispatch.officer_view import OfficerView

    view = OfficerView(8)
    position = OfficerPosition(
        officer_id="A", lat=NEAR[0], lon=NEAR[1], h3_cell="x", position_utc_ms=T0 + 5000
    )
    view.apply_position(position)
    assert view.get("A").status is OfficerStatusValue.AVAILABLE  # known by position only
    # a status written with an older position keeps the newer one
    busy = OfficerState(
        officer_id="A", lat=FAR[0], lon=FAR[1], position_utc_ms=T0, status=OfficerStatusValue.BUSY
    )
    view.apply("A", busy)
    state = view.get("A")
    assert (state.status, state.lat, state.position_utc_ms) == (
        OfficerStatusValue.BUSY,
        NEAR[0],
        T0 + 5000,
    )
    view.apply_position(position.model_copy(update={"lat": MID[0], "position_utc_ms": T0}))
    assert view.get("A").lat == NEAR[0]  # an older replicated position changes nothing
    assert [c.point_id for c in view.index.nearest(*NEAR, k=1, radius_m=100)] == ["A"]


def test_history_past_the_window_is_forgotten_by_the_owning_partition() -> None:
    from schemas.events import Tick
    from streams.dispatch.replay import ReplaySession
    from streams.ingest.alerts import alert_from_raw

    policy = DispatchPolicy(radius_m=5000, history_window_ms=3_600_000)
    d = ReplaySession(policy=policy).dispatcher
    for record in (alert("OLD", T0), alert("RECENT", T0 + 3_000_000)):
        parsed = alert_from_raw(
            record["message"], stations=StationBook(), resolution=8, reference_ms=T0, ingest_ms=T0
        )
        d.on_alert(parsed, parsed.event_utc_ms)
    d.on_alert_tick(Tick(now_utc_ms=T0 + 3_700_000), partition=0)
    assert set(d.history_store) == {"RECENT"} and set(d.history.entries) == {"RECENT"}


def test_replay_reads_times_with_each_station_s_conventions() -> None:
    from base.settings import Settings

    stations = StationBook(
        "Asia/Shanghai",
        Settings(stations={"ST-US": {"zone": "America/New_York", "day_first": False}}).stations,
    )
    records = [
        ping("A", NEAR, T0 - 60_000),
        alert("AL", T0, station_id="ST-US", time="11/14/2023 5:13 PM"),  # T0 - 20 s, in New York
    ]
    lines = [orjson.dumps(r) for r in records]
    out = replay(read_events(lines, stations=stations), policy=POLICY, stations=stations).outputs
    [assignment] = assignments(out)
    assert assignment["alert"]["event_time"] == "2023-11-14T17:13:00-05:00"


# -- regressions from the outside check (each failed before the dispatch-core rework) ---------
def session(policy: DispatchPolicy = POLICY) -> Any:
    from streams.dispatch.replay import ReplaySession

    return ReplaySession(policy=policy)


def feed_all(s: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for record in records:
        out.extend(s.feed(record["topic"], record["message"], record.get("timestamp_ms")))
    return out


def clear(officer: str, alert_id: str, t: int) -> list[dict[str, Any]]:
    """The officer's app: acknowledged, on scene, done."""
    arrived = status(officer, "on_scene", t + 1000)
    arrived["message"]["alert_id"] = alert_id
    return [status(officer, "en_route", t), arrived, status(officer, "available", t + 2000)]


def holders(out: list[dict[str, Any]]) -> dict[str, str]:
    """Officer -> the alert they hold, from the published assignments and events alone."""
    held: dict[str, str] = {}
    for o in out:
        m = o["message"]
        if o["topic"] == "dispatch.assignments":
            oid = m["officer"]["officer_id"]
            assert oid not in held, f"{oid} booked for {m['alert']['alert_id']} holding {held}"
            held[oid] = m["alert"]["alert_id"]
        elif o["topic"] == "dispatch.events" and m["kind"] in (
            "cleared",
            "withdrawn",
            "ack_timeout",
        ):
            assert held.pop(m["officer_id"], None) == m["alert_id"]
    return held


def test_a_status_event_handled_again_announces_what_it_did_again() -> None:
    """Faust is at-least-once: a worker killed after writing an officer's clear to its table and
    before the notice went out handles the same status event again after the restart. The
    replay changed nothing and announced nothing, so the alert never heard its officer had
    cleared: a unit missing, and the officer seen holding two alerts (kill -9 night bench)."""
    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), alert("AL1", T0 + 1000, "theft")])
    steps = clear("A", "AL1", T0 + 5000)
    out += feed_all(s, steps)
    assert [e["alert_id"] for e in events(out, "cleared")] == ["AL1"]
    again = feed_all(s, steps[-1:])  # the `available` that cleared them, handled again
    assert [(e["kind"], e["at_utc_ms"]) for e in events(again, "cleared")] == [
        ("cleared", events(out, "cleared")[0]["at_utc_ms"])  # the same event: dropped by key
    ]
    again += feed_all(s, steps[1:2])  # `on_scene`, older than the clear: stale, nothing
    assert not events(again, "arrived") and not assignments(again)
    # a decline handled again: the withdrawal is announced again, the alert answers it once
    out = feed_all(s, [alert("AL2", T0 + 10_000, "theft")])
    declined = status("A", "declined", T0 + 11_000)
    declined["message"]["alert_id"] = "AL2"
    first = feed_all(s, [declined])
    repeat = feed_all(s, [declined])
    assert len(events(first, "withdrawn")) == len(events(repeat, "withdrawn")) == 1
    assert not assignments(repeat)


def test_waiting_alerts_are_served_each_time_officers_clear() -> None:
    """Defect 1: an officer once tried for a waiting alert was never proposed to it again, so
    after two rounds the last two alerts waited forever while both officers were free."""
    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), ping("B", MID, T0)])
    out += feed_all(s, [alert(f"AL{i}", T0 + 1000 * (i + 1), "theft") for i in range(6)])
    for round_start in (T0 + 20_000, T0 + 60_000, T0 + 100_000):
        for officer in ("A", "B"):
            alert_id = holders(out)[officer]
            out += feed_all(
                s, [ping(officer, NEAR, round_start), *clear(officer, alert_id, round_start)]
            )
    out += s.advance(T0 + 110_000)
    served = [a["alert"]["alert_id"] for a in assignments(out)]
    assert served == [f"AL{i}" for i in range(6)]  # all six, oldest first
    assert {a["reason"] for a in assignments(out)} == {"dispatch"}  # never "reassignment"
    assert not holders(out)


def test_an_officer_sent_to_the_same_alert_again_gets_a_new_assignment_id() -> None:
    """A two-unit alert and one officer: they serve, clear and are sent again. The second
    assignment had the first one's id, so the officers' app dropped it as a repeat, nobody came
    and the alert missed its second unit (seen in the kill -9 night bench)."""
    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), alert("AL1", T0 + 1000, "weapon")])
    out += feed_all(s, [ping("A", NEAR, T0 + 20_000), *clear("A", "AL1", T0 + 20_000)])
    out += s.advance(T0 + 30_000)
    ids = [a["assignment_id"] for a in assignments(out, "AL1")]
    assert ids == ["AL1:A", "AL1:A:2"]
    # recovery announces the booking again under the same id (the app drops the repeat)
    s.restart()
    again = s.advance(T0 + 32_000)
    assert [a["assignment_id"] for a in assignments(again, "AL1")] == ["AL1:A:2"]


def test_freed_officer_goes_to_the_most_urgent_waiting_alert() -> None:
    """Defect 1: a priority 1 alert waited while a priority 3 alert got the freed officer."""
    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), alert("FIRST", T0 + 1000, "theft")])
    out += feed_all(
        s,
        [
            alert("THEFT", T0 + 2000, "theft"),  # priority 3, older
            alert("WEAPON", T0 + 3000, "weapon", where=MID),  # priority 1, newer, farther
        ],
    )
    out += feed_all(s, clear("A", "FIRST", T0 + 10_000))
    assert officers_of(out, "WEAPON") == ["A"] and officers_of(out, "THEFT") == []
    assert assignments(out, "WEAPON")[0]["reason"] == "dispatch"


def test_available_before_arriving_withdraws_and_the_alert_hears_it() -> None:
    """Defect 2: a later `available` freed a booked officer silently; the next alert booked them
    too (OFF-1 held AL-1 and AL-2) and AL-1 never learned its unit went away."""
    s = session()
    out = feed_all(
        s,
        [
            ping("OFF-1", NEAR, T0),
            status("OFF-1", "available", T0 + 500),
            alert("AL-1", T0 + 1000),
            status("OFF-1", "available", T0 + 5000),
            alert("AL-2", T0 + 6000),
        ],
    )
    assert officers_of(out, "AL-1") == ["OFF-1"] and officers_of(out, "AL-2") == ["OFF-1"]
    [withdrawn] = events(out, "withdrawn")
    assert withdrawn["alert_id"] == "AL-1" and withdrawn["officer_id"] == "OFF-1"
    assert holders(out) == {"OFF-1": "AL-2"}  # raises if OFF-1 was ever booked twice
    assert [
        w["message"]["alert"]["alert_id"] for w in out if w["topic"] == "dispatch.unassigned"
    ] == ["AL-1"]


def test_a_status_sent_before_the_booking_does_not_free_the_officer() -> None:
    """Defect 2: the booking is stamped with the time it was decided, so an `available` the app
    sent before it (arriving late) is stale."""
    s = session()
    out = feed_all(s, [ping("OFF-1", NEAR, T0), alert("AL-1", T0 + 10_000)])
    out += feed_all(s, [status("OFF-1", "available", T0 + 9_000), alert("AL-2", T0 + 11_000)])
    assert officers_of(out, "AL-1") == ["OFF-1"] and officers_of(out, "AL-2") == []
    assert events(out, "withdrawn") == []


def test_ping_dated_far_ahead_is_dead_lettered_and_does_not_pin_the_officer() -> None:
    """Defect 4: a ping dated 2099 pinned an officer 10 km away; later real pings were older."""
    year_2099 = 4_070_908_800_000
    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), ping("B", FAR, T0)])
    out += feed_all(s, [ping("A", (29.65, 106.65), year_2099), ping("A", NEAR, T0 + 5000)])
    out += feed_all(s, [alert("AL", T0 + 6000)])
    [dead] = [o for o in out if o["topic"] == "deadletter"]
    assert dead["reason"] == "out_of_range" and "ahead" in dead["error"]
    assert officers_of(out, "AL") == ["A"]
    assert s.now_ms < T0 + 10_000  # the replay clock stayed in this night


def test_replay_of_a_file_with_far_off_times_finishes_and_refuses_them(tmp_path: Path) -> None:
    """Defect 4: replay ticked every second up to a 2099 event: hours for one bad line."""
    records = [
        ping("A", NEAR, T0),
        ping("A", NEAR, 4_070_908_800_000),  # 2099
        ping("B", MID, 946_684_800_000),  # 2000
        alert("AL", T0 + 1000),
    ]
    source, out_path = tmp_path / "night.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    command = [sys.executable, "-m", "streams.cli", "dispatch", "replay", str(source)]
    done = subprocess.run([*command, "--out", str(out_path)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = [orjson.loads(line) for line in out_path.read_bytes().splitlines()]
    assert sorted(o["reason"] for o in out if o["topic"] == "deadletter") == ["out_of_range"] * 2
    assert officers_of(out, "AL") == ["A"]


class CountingDict(dict[str, Any]):
    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        CountingDict.reads += 1
        return super().get(key, default)


def test_waiting_alerts_cost_nothing_per_tick_while_nothing_changes() -> None:
    """Defect 5: every tick re-proposed every waiting alert (~1,000 waiting: a whole core)."""
    s = session()
    s.dispatcher.alerts_open = CountingDict()
    feed_all(s, [ping("A", FAR, T0), status("A", "busy", T0)])
    for i in range(1000):
        s.feed("alerts.calls", alert(f"AL{i:04d}", T0 + 1000)["message"])
    s.advance(T0 + 5000)  # every newly waiting alert looks once more, one tick later
    CountingDict.reads = 0
    s.advance(T0 + 50_000)
    assert CountingDict.reads == 0
    out = feed_all(s, [ping("B", NEAR, T0 + 50_500)])  # one officer appears: one alert served
    out += s.advance(T0 + 52_000)
    assert len(assignments(out)) == 1 and CountingDict.reads < 10


def test_restart_sends_again_what_a_crash_may_have_left_unsent() -> None:
    """After a crash the tables hold the booking but the assignment may not have gone out: the
    restarted worker tells officers booked and not yet acknowledged again (same assignment id),
    and leaves acknowledged ones alone."""
    s = session()
    feed_all(s, [ping("A", NEAR, T0), ping("B", MID, T0), alert("AL1", T0 + 1000)])
    feed_all(s, [alert("AL2", T0 + 2000), status("B", "en_route", T0 + 3000)])
    s.restart()
    out = s.advance(T0 + 5000)
    assert [(a["assignment_id"], a["reason"]) for a in assignments(out)] == [("AL1:A", "dispatch")]
    out = s.advance(T0 + 10_000)
    assert assignments(out) == []  # once, not at every tick


def test_restart_announces_a_waiting_alert_again() -> None:
    """A crash can lose the notice of an alert that started waiting (its tables say it was
    noticed): the restarted worker announces it again (found by the kill -9 crash test)."""
    s = session()
    out = feed_all(s, [ping("A", FAR, T0), status("A", "busy", T0), alert("AL", T0 + 1000)])
    assert [o["message"]["alert"]["alert_id"] for o in out if o["topic"] == "dispatch.unassigned"]
    s.restart()
    out = s.advance(T0 + 3000)
    assert [
        o["message"]["alert"]["alert_id"] for o in out if o["topic"] == "dispatch.unassigned"
    ] == ["AL"]
    assert [e["alert_id"] for e in events(out, "unassigned")] == ["AL"]


def test_a_worker_does_not_announce_again_what_it_decided_itself() -> None:
    """Recovery at a partition's first tick is for what a crash left unsent: an alert this
    worker dispatched before that tick is not announced twice (the kcat contract test saw two)."""
    from streams.dispatch.replay import ReplaySession

    s = ReplaySession(policy=POLICY)
    s.dispatcher = s._recovered_dispatcher(fresh=False)  # a live worker: it recovers on start
    out = feed_all(s, [ping("A", NEAR, T0), alert("AL", T0 + 200)])
    out += s.advance(T0 + 5000)
    assert [a["assignment_id"] for a in assignments(out)] == ["AL:A"]


def test_an_acceptance_handled_again_after_the_officer_left_does_not_book_them_again() -> None:
    """Faust is at-least-once: after a `kill -9` the alert's partition handles an officer's
    `accepted` again (claim results replayed from the last commit, or a claim asked again by
    recovery). Officer A served their part of a two-unit alert and went to another alert; the
    second unit withdrew; the old acceptance, handled again, took A back as if new: A assigned
    to AL1 while holding AL2, with no release between (found reading the claim protocol for
    the kill -9 night's unexplained double booking)."""
    from schemas.events import Claim

    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), ping("B", MID, T0), alert("AL1", T0 + 1000, "weapon")])
    assert sorted(officers_of(out, "AL1")) == ["A", "B"]
    # the officer's partition answers a claim asked again (recovery) as it answered the first
    asked_again = Claim(kind="claim", alert_id="AL1", officer_id="A", alert_utc_ms=T0 + 1000)
    [answer] = s.dispatcher.on_claim(asked_again, T0 + 1500)
    accepted = answer.message
    out += feed_all(s, [ping("A", NEAR, T0 + 5000), *clear("A", "AL1", T0 + 5000)])
    out += feed_all(s, [alert("AL2", T0 + 9000, "theft")])
    declined = status("B", "declined", T0 + 10_000)
    declined["message"]["alert_id"] = "AL1"
    out += feed_all(s, [declined])
    assert holders(out) == {"A": "AL2"}
    again = s.dispatcher.on_claim_result(accepted, T0 + 10_500)
    assert [o for o in again if o.topic in ("assignments", "claims")] == []
    assert s.dispatcher.progress("AL1").assigned == ()  # type: ignore[union-attr]


def test_a_booking_announced_again_keeps_its_assignment_time() -> None:
    """Recovery announces a booking again at a partition's first tick, and that tick may be an
    old one from the backlog: the copy was stamped with the tick's time, seconds before the
    officer was even free, and a consumer keeping the first copy by time saw the officer on two
    alerts at once (kill -9 night bench, seed 4: OFF-06 'assigned' AL-4-013 8 s early)."""
    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), alert("AL1", T0 + 1000)])
    [first] = assignments(out)
    s.restart()
    [again] = assignments(s.advance(T0 + 5000))
    assert again == first
    [event] = [e for e in events(out, "assigned")]
    assert event["at_utc_ms"] == first["assigned_utc_ms"] == T0 + 1000


def test_a_clear_handled_again_is_announced_after_the_officer_went_on_to_the_next_alert() -> None:
    """A clear that frees an officer for a waiting alert books them for it in the same event.
    After a kill -9 between the tables' writes and the notices, the same `available` handled
    again found the officer booked elsewhere, took it for a stale status and said nothing: the
    first alert never heard its unit had cleared (kill -9 night bench, seeds 3 and 4: an alert
    served by 0 units)."""
    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), alert("AL1", T0 + 1000), alert("AL2", T0 + 2000)])
    assert officers_of(out, "AL1") == ["A"] and officers_of(out, "AL2") == []
    steps = clear("A", "AL1", T0 + 5000)
    out = feed_all(s, steps)
    assert [e["alert_id"] for e in events(out, "cleared")] == ["AL1"]
    assert officers_of(out, "AL2") == ["A"]  # offered at once
    again = feed_all(s, steps[-1:])
    assert [(e["alert_id"], e["at_utc_ms"]) for e in events(again, "cleared")] == [
        ("AL1", events(out, "cleared")[0]["at_utc_ms"])
    ]
    assert not assignments(again) and s.dispatcher.officer("A").alert_id == "AL2"  # type: ignore[union-attr]


def test_an_offer_lost_in_a_crash_is_made_again_on_recovery() -> None:
    """A freed officer booked for a waiting alert by their partition: if the worker dies before
    the word reaches the alert, the alert never assigns them and the officer sits booked until
    the ack timeout (kill -9 night bench: a minute idle). Recovery tells the alert again."""
    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), alert("AL1", T0 + 1000), alert("AL2", T0 + 2000)])
    before = dict(s.dispatcher.alerts_open["AL2"]), dict(s.dispatcher.waiting_store["AL2"])
    out = feed_all(s, clear("A", "AL1", T0 + 5000))
    assert officers_of(out, "AL2") == ["A"]
    # the crash: the alert's partition never heard the offer (its tables as before it)
    s.dispatcher.alerts_open["AL2"], s.dispatcher.waiting_store["AL2"] = before
    s.restart()
    again = s.advance(T0 + 10_000)
    assert officers_of(again, "AL2") == ["A"]
    assert [a["assignment_id"] for a in assignments(again)] == ["AL2:A"]


def test_a_clear_heard_again_does_not_count_as_the_next_turn_s_clear() -> None:
    """A two-unit alert and one officer: A serves, clears and is sent again (turn 2). The
    `available` that cleared turn 1, handled again (a crash), re-sends its `cleared` notice;
    it reached the alert while A held it again and counted as turn 2's clear: the alert thought
    itself served twice while A was still on the way."""
    s = session()
    out = feed_all(s, [ping("A", NEAR, T0), alert("AL1", T0 + 1000, "weapon")])
    steps = clear("A", "AL1", T0 + 20_000)
    out += feed_all(s, [ping("A", NEAR, T0 + 20_000), *steps])
    out += s.advance(T0 + 30_000)
    assert [a["assignment_id"] for a in assignments(out, "AL1")] == ["AL1:A", "AL1:A:2"]
    again = feed_all(s, steps[-1:])  # turn 1's clear, handled again
    assert [e["at_utc_ms"] for e in events(again, "cleared")] == [T0 + 22_000]  # a repeat
    progress = s.dispatcher.progress("AL1")
    assert progress is not None
    assert (progress.assigned, progress.served) == (("A",), ("A",))
    assert s.dispatcher.officer("A").alert_id == "AL1"  # type: ignore[union-attr]
