"""What waiting alerts cost a dispatch worker while nothing changes, and what a fresh alert costs
next to them: the dispatch handlers (ReplaySession, no broker) with N alerts waiting (no free
officer within reach) against the same with none waiting, in the same run.

    .venv/bin/python bench/bench_waiting_queue.py [--waiting 1000] [--seconds 60] [--runs 3]

Prints per run: CPU per tick (officer + alert side, one partition) and per fresh alert with a
free officer, waiting vs. none, and their ratio (1.0: waiting costs nothing)."""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.dispatch.replay import ReplaySession
from streams.dispatch.rules import DispatchPolicy

T0 = 1_700_000_000_000
INCIDENT = {"lat": 29.5630, "lon": 106.5516}
FAR_AWAY = {"lat": 29.90, "lon": 106.90}  # ~50 km: out of every radius
# The waiting alerts are spread over another district ~15 km away (nobody free there), so the
# fresh alerts' background lookup (earlier alerts in their cell) is what a normal night gives.


def session_with_waiting(waiting: int) -> ReplaySession:
    session = ReplaySession(policy=DispatchPolicy(escalation_radii_m=()))
    session.feed("gps.pings", {"officer_id": "FAR", **FAR_AWAY, "ts": T0})
    rng = random.Random(waiting)
    for i in range(waiting):
        place = {"lat": 29.70 + rng.uniform(0, 0.09), "lon": 106.55 + rng.uniform(0, 0.1)}
        session.feed(
            "alerts.calls",
            {"alert_id": f"W{i:06d}", "category": "theft", **place, "time": T0 + 1000},
        )
    session.advance(T0 + 5000)  # each waiting alert's one re-check is done
    return session


def tick_cost_us(session: ReplaySession, seconds: int) -> float:
    assert session.now_ms is not None
    start_ms = session.now_ms
    started = time.process_time()
    session.advance(start_ms + seconds * 1000)
    return (time.process_time() - started) / seconds * 1e6


def fresh_alert_cost_us(session: ReplaySession, alerts: int) -> float:
    assert session.now_ms is not None
    now = session.now_ms
    total = 0.0
    for i in range(alerts):
        officer = f"NEAR{i:04d}"
        session.feed("gps.pings", {"officer_id": officer, **INCIDENT, "ts": now})
        started = time.process_time()
        out = session.feed(
            "alerts.calls",
            {"alert_id": f"F{i:04d}", "category": "weapon", "priority": 2, **INCIDENT, "time": now},
        )
        total += time.process_time() - started
        assert any(o["topic"] == "dispatch.assignments" for o in out), "fresh alert unassigned"
    return total / alerts * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=60, help="ticks measured per run")
    parser.add_argument("--alerts", type=int, default=200, help="fresh alerts measured per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if min(args.waiting, args.seconds, args.alerts, args.runs) < 1:
        parser.error("every count must be at least 1")
    ticks: dict[int, list[float]] = {0: [], args.waiting: []}
    fresh: dict[int, list[float]] = {0: [], args.waiting: []}
    for run in range(args.runs):
        for waiting in ticks:
            session = session_with_waiting(waiting)
            ticks[waiting].append(tick_cost_us(session, args.seconds))
            fresh[waiting].append(fresh_alert_cost_us(session, args.alerts))
        print(
            f"run {run + 1}/{args.runs}: tick {ticks[args.waiting][-1]:.0f} us with "
            f"{args.waiting} waiting vs {ticks[0][-1]:.0f} us with none; fresh alert "
            f"{fresh[args.waiting][-1]:.0f} us vs {fresh[0][-1]:.0f} us",
            flush=True,
        )
    tick_ratio = statistics.median(ticks[args.waiting]) / statistics.median(ticks[0])
    fresh_ratio = statistics.median(fresh[args.waiting]) / statistics.median(fresh[0])
    print(
        f"median of {args.runs}: a tick costs {tick_ratio:.2f}x and a fresh alert "
        f"{fresh_ratio:.2f}x with {args.waiting} alerts waiting (1.00: waiting costs nothing)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
