"""The dispatch core against an independent oracle (tests/dispatch_oracle.py): random nasty
nights through the broker-free ReplaySession, every tick and every input checked against the
dispatch contract, plus hand-written scarcity scenarios.

ORACLE_SEEDS (default 300) sets how many random nights run, from ORACLE_SEED_START (default 0).
ORACLE_RELAX (comma-separated names from dispatch_oracle.RELAXABLE) switches off known
deviations to look past them; it is empty by default."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.dispatch_oracle import (
    FAR_FUTURE_MS,
    FAR_PAST_MS,
    RELAXABLE,
    T0_MS,
    Night,
    OracleViolation,
    PolicyConfig,
    Script,
)

SEEDS = int(os.environ.get("ORACLE_SEEDS", "300"))
SEED_START = int(os.environ.get("ORACLE_SEED_START", "0"))
# Readings of the contract the pipeline settles otherwise, on purpose (docs/ARCHITECTURE.md, "The
# waiting queue"): a waiting alert is announced on dispatch.unassigned at the radius it waits at
# (an urgent alert widening step by step at once is announced once, at the last), again when it
# waits anew after a withdrawal.
DESIGN = frozenset({"notice_each_widening", "notice_once_per_radius"})
RELAXED = DESIGN | frozenset(n for n in os.environ.get("ORACLE_RELAX", "").split(",") if n)
_UNKNOWN = sorted(RELAXED - set(RELAXABLE))
assert not _UNKNOWN, f"ORACLE_RELAX: unknown {_UNKNOWN}, known: {RELAXABLE}"
ONE_UNIT = ((1, 1), (2, 1), (3, 1), (4, 1), (5, 1))


def s(seconds: float) -> int:
    """T0 + seconds, in epoch ms."""
    return T0_MS + round(seconds * 1000)


def serve(after_ms: int = 0) -> list[tuple[int, str]]:
    """An officer who acknowledges, arrives and clears promptly."""
    return [
        (after_ms + 3000, "en_route"),
        (after_ms + 6000, "on_scene"),
        (after_ms + 9000, "available"),
    ]


def script(cfg: PolicyConfig | None = None, label: str = "scenario") -> Script:
    sc = Script(cfg, label=label)
    sc.oracle.relaxed = RELAXED
    if "served_excluded" in RELAXED:
        sc.oracle.model.served_mode = "excluded"
    return sc


# --- random nights -------------------------------------------------------------------------------


# Seeds beyond the default range that found a bug, kept as regressions: 333 (an officer offered
# in the tick an older alert lost its officer), 484 (an officer handed back and forth forever
# between two alerts whose board entries kept a stale open unit), 1114 (an alert served at once
# had no board entry, so an ack timeout on it could not put it back), 1308 and 1512.
FOUND = (333, 484, 1114, 1308, 1512)


@pytest.mark.parametrize(
    "seed",
    sorted(set(range(SEED_START, SEED_START + SEEDS)) | set(FOUND)),
    ids=lambda n: f"seed{n}",
)
def test_night(seed: int) -> None:
    result = Night(seed, relaxed=RELAXED).run()
    assert result.alerts > 0 and result.kinds["assigned"] > 0


def _outputs(seed: int, restart: str) -> tuple[list[dict[str, object]], str]:
    night = Night(seed, restart=restart, relaxed=RELAXED)
    try:
        night.run()
    except OracleViolation as exc:
        assert night.oracle is not None
        return night.oracle.outputs, str(exc).split("\n")[0].split(": ", 1)[1]
    assert night.oracle is not None
    return night.oracle.outputs, ""


def _as_consumed(outputs: list[dict[str, object]]) -> list[dict[str, object]]:
    """What a consumer keeps (README): an assignment announced again while its officer still
    holds it (a restarted worker tells booked, unacknowledged officers once more, same
    assignment_id) is dropped by that key, with its `assigned` event. Waiting announcements
    (`dispatch.unassigned`, `unassigned` events) are left out of the comparison: a restarted
    worker announces its waiting alerts again, not knowing whether the first announcement got
    out; the oracle's own checks judge every announcement in the restarted night."""
    holding: dict[str, str] = {}
    repeats: set[tuple[str, str]] = set()
    kept = []
    for output in outputs:
        message: Any = output["message"]
        if output["topic"] == "dispatch.unassigned":
            continue
        if output["topic"] == "dispatch.assignments":
            officer, alert = message["officer"]["officer_id"], message["alert"]["alert_id"]
            if holding.get(officer) == alert:
                repeats.add((officer, alert))
                continue
            holding[officer] = alert
        elif output["topic"] == "dispatch.events":
            key = (message["officer_id"], message["alert_id"])
            if message["kind"] == "unassigned":
                continue
            if message["kind"] == "assigned" and key in repeats:
                repeats.discard(key)
                continue
            if message["kind"] in ("cleared", "withdrawn", "ack_timeout"):
                holding.pop(message["officer_id"], None)
        kept.append(output)
    return kept


@pytest.mark.parametrize("seed", range(SEED_START, SEED_START + max(3, SEEDS // 100)))
def test_night_is_deterministic(seed: int) -> None:
    assert _outputs(seed, "random") == _outputs(seed, "random")


@pytest.mark.parametrize("seed", range(SEED_START, SEED_START + max(5, SEEDS // 15)))
def test_restart_changes_nothing(seed: int) -> None:
    """A worker restart (no re-feed) mid-night publishes exactly what an unbroken night does
    (violations, if any, are compared too: the same one must be hit at the same point)."""
    plain, plain_violation = _outputs(seed, "none")
    restarted, restarted_violation = _outputs(seed, "plain")
    assert _as_consumed(restarted) == _as_consumed(plain)
    assert restarted_violation == plain_violation


# --- scarcity scenarios --------------------------------------------------------------------------


def test_two_officers_six_alerts_served_in_priority_then_age_order() -> None:
    """Two officers, six one-unit alerts a second apart: two are served at once, the other four
    wait and go to the officers as they clear, most urgent first, then oldest; not nearest."""
    sc = script(label="six-alerts")
    sc.officer("OFF-A", 0, 0, s(0))
    sc.officer("OFF-B", 0, 200, s(0.5))
    sc.react("OFF-A", serve())
    sc.react("OFF-B", serve())
    sc.alert("AL-1", 3, 100, 0, s(10))
    sc.alert("AL-2", 4, 100, 200, s(11))
    sc.alert("AL-3", 5, 0, 50, s(12))  # the nearest to both, the least urgent
    sc.alert("AL-4", 2, 800, 0, s(13))
    sc.alert("AL-5", 3, 50, 100, s(14))
    sc.alert("AL-6", 2, 900, 100, s(15))
    sc.run_until(s(90))
    sc.oracle.final_check()
    booked = sc.booked()
    assert [(aid, oid) for aid, oid, _, _ in booked[:2]] == [("AL-1", "OFF-A"), ("AL-2", "OFF-B")]
    assert [aid for aid, *_ in booked[2:]] == ["AL-4", "AL-6", "AL-5", "AL-3"]
    assert {reason for _, _, reason, _ in booked} == {"dispatch"}
    assert len(sc.events("cleared")) == 6


def test_withdrawal_before_arriving_frees_the_officer_and_replaces_them() -> None:
    """OFF-A, booked for AL-1, says `available` before arriving: AL-1 gets a `withdrawn` event
    and later a replacement (reason reassignment); OFF-A, who now refuses AL-1, takes the
    waiting AL-2. Nobody ever holds two alerts (the oracle checks every step)."""
    sc = script(label="withdrawal")
    sc.officer("OFF-A", 0, 0, s(0))
    sc.officer("OFF-B", 0, 300, s(0.5))
    sc.status("OFF-B", "busy", s(1))
    sc.alert("AL-1", 2, 100, 0, s(10))
    sc.alert("AL-2", 3, 200, 0, s(12))
    sc.react("OFF-A", serve())
    sc.react("OFF-B", serve())
    sc.status("OFF-A", "available", s(20), alert_id="AL-1")
    sc.status("OFF-B", "available", s(30))
    sc.run_until(s(80))
    sc.oracle.final_check()
    withdrawn = [(e["alert_id"], e["officer_id"], e["at_utc_ms"]) for e in sc.events("withdrawn")]
    assert withdrawn == [("AL-1", "OFF-A", s(20))]
    booked = sc.booked()
    assert [(aid, oid, reason) for aid, oid, reason, _ in booked] == [
        ("AL-1", "OFF-A", "dispatch"),
        ("AL-2", "OFF-A", "dispatch"),
        ("AL-1", "OFF-B", "reassignment"),
    ]
    assert booked[1][3] <= s(21) and booked[2][3] <= s(31)


def test_ack_timeout_then_refusal_hold_then_the_same_officer_again() -> None:
    cfg = PolicyConfig(ack_timeout_ms=20_000, refusal_hold_ms=30_000)
    sc = script(cfg, label="ack-timeout")
    sc.officer("OFF-A", 0, 0, s(0))
    sc.alert("AL-1", 3, 100, 0, s(5))  # OFF-A never answers this booking
    sc.run_until(s(40))
    sc.react("OFF-A", serve())
    sc.run_until(s(90))
    sc.oracle.final_check()
    (timeout,) = sc.events("ack_timeout")
    assert s(25) <= timeout["at_utc_ms"] <= s(26)
    booked = sc.booked()
    assert [(aid, oid, reason) for aid, oid, reason, _ in booked] == [
        ("AL-1", "OFF-A", "dispatch"),
        ("AL-1", "OFF-A", "reassignment"),
    ]
    expires = timeout["at_utc_ms"] + cfg.refusal_hold_ms
    assert expires <= booked[1][3] <= expires + 1000


def test_stale_status_is_ignored_and_late_ack_naming_the_alert_counts() -> None:
    sc = script(label="stale-status")
    sc.officer("OFF-A", 0, 0, s(0))
    sc.alert("AL-1", 3, 100, 0, s(10))
    sc.run_until(s(12))
    # dated before the booking (which counts as a status at +10 s): stale
    sc.oracle.feed("officer.status", {"officer_id": "OFF-A", "status": "available", "ts": s(8)})
    sc.run_until(s(13))
    # also dated before the booking, but naming the alert held: accepted
    ack = {"officer_id": "OFF-A", "status": "en_route", "alert_id": "AL-1", "ts": s(9)}
    sc.oracle.feed("officer.status", ack)
    sc.status("OFF-A", "on_scene", s(20), alert_id="AL-1")
    sc.status("OFF-A", "available", s(25), alert_id="AL-1")
    sc.run_until(s(30))
    sc.oracle.final_check()
    assert not sc.events("withdrawn")
    assert [e["officer_id"] for e in sc.events("acknowledged")] == ["OFF-A"]
    assert [e["alert_id"] for e in sc.events("cleared")] == ["AL-1"]


def test_out_of_range_pings_are_dead_lettered_and_change_nothing() -> None:
    sc = script(label="out-of-range")
    sc.officer("OFF-A", 0, 0, s(0))
    for ts in (FAR_FUTURE_MS, FAR_PAST_MS):
        outs = sc.oracle.feed(
            "gps.pings", {"officer_id": "OFF-A", "lat": 30.5, "lon": 104.0, "ts": ts}
        )
        assert [(o["topic"], o["reason"]) for o in outs] == [("deadletter", "out_of_range")]
    assert sc.oracle.clock < s(1)
    sc.alert("AL-1", 3, 100, 0, s(2))  # OFF-A is still where the last real ping put them
    (assignment,) = sc.oracle.assignments
    assert assignment["officer"]["position_utc_ms"] == s(0)


def test_urgent_alert_widens_at_once_as_far_as_needed() -> None:
    """A priority-1 alert (two units) with nobody within 5 km widens at once: to 10 km, where
    one officer is, then to 20 km for the second."""
    sc = script(label="at-once")
    sc.officer("OFF-A", 0, 7000, s(0))
    sc.officer("OFF-B", 0, -15000, s(0.5))
    sc.alert("AL-1", 1, 0, 0, s(2))
    radii = [e["radius_m"] for e in sc.events("escalated")]
    assert radii == [10_000, 20_000]
    assert {oid for _, oid, _, t in sc.booked() if t == s(2)} == {"OFF-A", "OFF-B"}


def test_urgent_alert_widens_no_further_than_needed() -> None:
    sc = script(label="at-once-once")
    sc.officer("OFF-A", 0, 7000, s(0))
    sc.officer("OFF-B", 0, -8000, s(0.5))
    sc.alert("AL-1", 1, 0, 0, s(2))
    assert [e["radius_m"] for e in sc.events("escalated")] == [10_000]
    assert len(sc.booked()) == 2


def test_multi_unit_alert_gets_its_second_unit_after_the_first_one_cleared() -> None:
    """AL-1 (priority 1, two units) finds one free officer; OFF-A serves and clears; OFF-B comes
    back from busy: AL-1 still misses a unit, so it must get one (OFF-A again, which the
    contract allows, or OFF-B; the check is neutral on that)."""
    sc = script(PolicyConfig(escalate_at_once_priority=0), label="second-unit")
    sc.oracle.model.served_mode = "either"
    sc.officer("OFF-A", 0, 0, s(0))
    sc.officer("OFF-B", 0, 300, s(0.5))
    sc.status("OFF-B", "busy", s(1))
    sc.react("OFF-A", [(2000, "en_route"), (4000, "on_scene"), (6000, "available")])
    sc.react("OFF-B", serve())
    sc.alert("AL-1", 1, 100, 0, s(5))
    sc.run_until(s(20))
    sc.status("OFF-B", "available", s(20))
    sc.run_until(s(60))
    sc.oracle.final_check()
    assert len(sc.booked()) == 2


def test_two_officers_released_in_one_tick_go_to_the_oldest_urgent_alerts() -> None:
    """OFF-X and OFF-Y time out in the same tick (from AL-A and AL-B, both priority 1 and the
    oldest); AL-C (priority 1, younger) and AL-D (priority 2) also wait. Each officer refuses
    only the alert they timed out on, so OFF-X must go to AL-B and OFF-Y to AL-A."""
    cfg = PolicyConfig(
        ack_timeout_ms=20_000,
        refusal_hold_ms=60_000,
        units_by_priority=ONE_UNIT,
        escalation_radii_m=(10_000.0,),
    )
    sc = script(cfg, label="double-timeout")
    sc.officer("OFF-X", 0, 0, s(0))
    sc.officer("OFF-Y", 0, 500, s(0.2))
    sc.alert("AL-A", 1, 100, 0, s(1))
    sc.alert("AL-B", 1, 0, 600, s(1))
    sc.alert("AL-C", 1, 200, 0, s(3))
    sc.alert("AL-D", 2, 150, 100, s(4))
    sc.run_until(s(23))
    second = {oid: aid for aid, oid, _, t in sc.booked() if t > s(1)}
    assert second == {"OFF-X": "AL-B", "OFF-Y": "AL-A"}


def test_officer_who_cleared_is_eligible_for_the_same_alert_again() -> None:
    """The contract's eligibility (available, free, fresh, within reach, not refusing) does not
    exclude an officer who already cleared a unit of the alert: a lone officer serves both units
    of a priority-1 alert in turn. (If the contract means otherwise, relax `served_excluded`.)"""
    if "served_excluded" in RELAXED:
        pytest.skip("ORACLE_RELAX=served_excluded")
    sc = script(PolicyConfig(escalate_at_once_priority=0), label="serve-again")
    sc.officer("OFF-A", 0, 0, s(0))
    sc.react("OFF-A", serve())
    sc.alert("AL-1", 1, 100, 0, s(5))
    sc.run_until(s(60))
    sc.oracle.final_check()
    assert [(aid, oid) for aid, oid, *_ in sc.booked()] == [("AL-1", "OFF-A")] * 2


def test_restart_right_after_a_booking_changes_nothing() -> None:
    sc = script(label="restart-after-booking")
    sc.officer("OFF-A", 0, 0, s(0))
    sc.alert("AL-1", 3, 100, 0, s(2))
    sc.run_until(s(4))
    sc.oracle.restart(refeed=True)
    sc.react("OFF-A", serve())
    sc.run_until(s(10))
    sc.status("OFF-A", "en_route", s(10), alert_id="AL-1")
    sc.status("OFF-A", "on_scene", s(15), alert_id="AL-1")
    sc.status("OFF-A", "available", s(20), alert_id="AL-1")
    sc.run_until(s(25))
    sc.oracle.final_check()
    # One booking; the restart may announce it once more (same assignment id, dropped by it).
    assert {(aid, oid) for aid, oid, *_ in sc.booked()} == {("AL-1", "OFF-A")}


def test_alerts_widening_in_one_tick_fall_back_to_their_next_nearest_officer() -> None:
    """Three alerts of the same time widen together (1.5 -> 3 km), bringing OFF-X and OFF-Y
    into reach. AL-2 (priority 2) takes OFF-X, also the nearest for AL-3 (priority 3), so AL-3
    must take OFF-Y rather than leave them to AL-4 (priority 4)."""
    cfg = PolicyConfig(
        radius_m=1500.0,
        escalation_radii_m=(3000.0,),
        escalate_after_ms=30_000,
        units_by_priority=ONE_UNIT,
    )
    sc = script(cfg, label="widen-fallback")
    sc.officer("OFF-X", 2000, 200, s(0))
    sc.officer("OFF-Y", -2100, 100, s(0.3))
    sc.alert("AL-2", 2, 0, 0, s(5))
    sc.alert("AL-3", 3, 0, 200, s(5))
    sc.alert("AL-4", 4, -500, 0, s(5))
    sc.run_until(s(37))
    assert {(aid, oid) for aid, oid, *_ in sc.booked()} == {("AL-2", "OFF-X"), ("AL-3", "OFF-Y")}
