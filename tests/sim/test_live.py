"""streams.sim.live: the board the demo keeps from the pipeline's outputs, and how it is drawn."""

from __future__ import annotations

from rich.console import Console

from streams.sim.live import Board, progress_line, render


def assignment(alert_id: str, officer_id: str, reason: str = "dispatch") -> dict[str, object]:
    return {
        "alert": {"alert_id": alert_id, "category": "theft"},
        "officer": {"officer_id": officer_id},
        "distance_m": 1234.0,
        "eta_s": 150.0,
        "reason": reason,
    }


def board_of_a_short_night() -> Board:
    board = Board()
    board.roster([("P1", True), ("P2", True), ("D1", False)])
    board.sent("alerts.calls", {"alert_id": "A1"}, 1_000, now_s=100.0)
    board.sent("alerts.calls", {"alert_id": "A2"}, 2_000, now_s=101.0)
    board.sent("gps.pings", "{broken", 3_000, now_s=101.5)
    board.event({"kind": "unassigned", "alert_id": "A2", "officer_id": "", "detail": "no one"})
    board.assignment(assignment("A1", "P1"), now_s=100.25)
    board.event({"kind": "assigned", "alert_id": "A1", "officer_id": "P1"})
    board.event({"kind": "acknowledged", "alert_id": "A1", "officer_id": "P1"})
    board.dead_letter("invalid_json")
    board.set_rates({"demo-x.gps.pings": 720.0})
    return board


def test_time_to_assign_runs_from_the_alert_sent_to_its_first_assignment_heard() -> None:
    board = board_of_a_short_night()
    board.assignment(assignment("A1", "P2", "backup"), now_s=130.0)  # a later unit: not counted
    assert board.assign_ms() == [250.0]


def test_an_alert_waits_until_it_is_assigned_and_officers_follow_their_events() -> None:
    board = board_of_a_short_night()
    assert board.waiting == {"A2": "no one"} and board.accounted() == {"A1", "A2"}
    assert board.officers == {"P1": "en route", "P2": "available", "D1": "desk duty"}
    board.assignment(assignment("A2", "P2"), now_s=140.0)
    assert board.waiting == {}
    board.event({"kind": "cleared", "alert_id": "A1", "officer_id": "P1"})
    assert board.officers["P1"] == "available" and board.open_alerts() == 1


def test_the_view_shows_the_night_in_80_columns() -> None:
    console = Console(width=80, record=True, color_system=None)
    console.print(render(board_of_a_short_night(), 12.0, "18:05", "demo-x."))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for shown in ("en route", "desk duty", "A1", "P1", "1,234 m", "2.5 min", "invalid_json"):
        assert shown in text, text
    assert "gps.pings" in text and "demo-x." not in text
    line = progress_line(board_of_a_short_night(), 12.0, "18:05")
    assert "2 alerts, 1 assigned, 1 waiting, 1 officers busy" in line and "1 dead letters" in line
