"""A dispatch worker killed (-9) in the middle of a burst of alerts and restarted, several times
over, through the real broker: every alert is still normalised (or dead-lettered) and accounted
for (assigned, or noticed as waiting), and the group never commits past an alert it dropped.

The restarted worker starts on a backlog; Faust's recovery used to let records fetched while
it sought the stream partitions to their committed offsets reach a stream's buffer and be
cleared from it unacknowledged, then commit past them (see streams/transport.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from base.settings import Settings
from base.topics import TopicNames
from infra.broker import child_pids, pid_alive
from infra.topics import ensure_topics
from streams.pipeline.worker import WorkerProcess
from tests.support.dispatch_night import end_offsets, read_records

pytestmark = pytest.mark.broker

# The race this guards against is timing-dependent: each restart starts on a backlog that is
# still growing (the burst outlasts the dead member's session), over 8 partitions (a longer seek
# for a fetch to land in). Before the fix 5 of 6 runs failed, most in their first cycle.
CYCLES = 4  # kill -9 + restart, each in the middle of its own burst
ALERTS_PER_CYCLE = 600
BURST_S = 9.0
KILL_AT_S = 1.0  # into the burst
RESTART_AFTER_S = 1.0  # after the kill: the dead member still holds its session (6 s)
SETTLE_S = 30.0  # per cycle: rejoin after the session timeout (6 s), recover, catch up
COMMIT_LAG_S = 5.0  # then the group commits the raw topic to its end (commits every 0.5 s)


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600))


def raw_alert(alert_id: str) -> bytes:
    return orjson.dumps(
        {"alert_id": alert_id, "category": "theft", "lat": 29.56, "lon": 106.552, "time": iso_now()}
    )


def outcomes(bootstrap: str, names: TopicNames) -> dict[str, set[str]]:
    return {
        "normalised": {
            orjson.loads(r.value)["alert_id"] for r in read_records(bootstrap, names.alerts)
        },
        "dead-lettered": {
            (r.key or b"").decode() for r in read_records(bootstrap, names.deadletter)
        },
        "accounted": {
            orjson.loads(r.value)["alert"]["alert_id"]
            for r in read_records(bootstrap, names.assignments)
        }
        | {(r.key or b"").decode() for r in read_records(bootstrap, names.unassigned)},
    }


def unhandled(bootstrap: str, names: TopicNames, ids: set[str]) -> set[str]:
    """Alerts neither dead-lettered nor both normalised and accounted for."""
    seen = outcomes(bootstrap, names)
    return ids - seen["dead-lettered"] - (seen["normalised"] & seen["accounted"])


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def lost_report(bootstrap: str, names: TopicNames, group: str, missing: set[str]) -> str:
    """What became of each missing alert, and where it sits on the raw topic against the group's
    committed offsets (committed past it and never normalised: the consumer skipped it)."""
    where = {
        (r.key or b"").decode(): (r.partition, r.offset)
        for r in read_records(bootstrap, names.alerts_raw)
    }
    seen = outcomes(bootstrap, names)
    committed = committed_offsets(bootstrap, group, names.alerts_raw)
    lines = [f"committed on {names.alerts_raw}: {dict(sorted(committed.items()))}"]
    for alert_id in sorted(missing):
        partition, offset = where[alert_id]
        past = committed.get(partition, -1) > offset
        flags = ", ".join(f"{what} {alert_id in ids}" for what, ids in seen.items())
        lines.append(
            f"{alert_id} at {partition}/{offset}: {'committed past it' if past else 'pending'}; "
            + flags
        )
    return "\n".join(lines)


@pytest.fixture
def crash_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"topic_partitions": 8, "session_timeout_s": 6.0})


def test_alerts_survive_repeated_kill9_mid_burst(
    crash_settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = TopicNames.with_prefix(crash_settings.topic_prefix)
    ensure_topics(kafka_bootstrap, names.all(), crash_settings.topic_partitions)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=2, acks="all")
    workers: list[WorkerProcess] = []
    children: set[int] = set()

    def start() -> WorkerProcess:
        worker = WorkerProcess(crash_settings, tmp_path / f"worker-{len(workers)}.log").start()
        workers.append(worker)
        return worker

    def commit_lag(ends: dict[int, int]) -> dict[int, tuple[int, int]]:
        """Partition -> (committed, end) where the group's commit is short of the end."""
        group, topic = crash_settings.app_id, names.alerts_raw
        committed = committed_offsets(kafka_bootstrap, group, topic)
        return {
            p: (committed.get(p, 0), end) for p, end in ends.items() if committed.get(p, 0) != end
        }

    def await_handled(ids: set[str], what: str) -> None:
        deadline = time.monotonic() + SETTLE_S
        missing = unhandled(kafka_bootstrap, names, ids)
        while missing and time.monotonic() < deadline:
            assert worker.alive(), f"worker exited, see {worker.log_path}"
            time.sleep(1)
            missing = unhandled(kafka_bootstrap, names, ids)
        if missing:  # the report says where the group's commit went
            pytest.fail(
                f"{what}: {len(missing)} alerts lost\n"
                + lost_report(kafka_bootstrap, names, crash_settings.app_id, missing)
            )
        # Each raw alert handled once and committed: no hole, no replayed twice-acked record
        # holding the commit back (the next crash would replay all after it).
        ends = end_offsets(kafka_bootstrap, names.alerts_raw)
        deadline = time.monotonic() + COMMIT_LAG_S
        while (lagging := commit_lag(ends)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not lagging, f"{what}: committed behind the raw topic's end: {lagging}"

    try:
        worker = start()
        producer.send(names.alerts_raw, key=b"WARM", value=raw_alert("WARM"))
        producer.flush()
        await_handled({"WARM"}, "warm-up")
        sent: set[str] = set()
        for cycle in range(CYCLES):
            children |= child_pids(worker.pid)
            period = BURST_S / ALERTS_PER_CYCLE
            killed = restarted = False
            started = time.monotonic()
            for i in range(ALERTS_PER_CYCLE):
                while (now := time.monotonic() - started) < i * period:
                    time.sleep(min(0.005, i * period - now))
                if not killed and now >= KILL_AT_S:
                    worker.kill()
                    killed = True
                if killed and not restarted and now >= KILL_AT_S + RESTART_AFTER_S:
                    worker = start()
                    restarted = True
                alert_id = f"AL-{cycle}-{i:03d}"
                producer.send(names.alerts_raw, key=alert_id.encode(), value=raw_alert(alert_id))
                sent.add(alert_id)
            producer.flush()
            assert killed and restarted
            await_handled(sent, f"cycle {cycle + 1} of {CYCLES}")
    finally:
        producer.close()
        for each in workers:
            if each.alive():
                children |= child_pids(each.pid)
            each.stop()
    # the kernel told each killed worker's positions child (PR_SET_PDEATHSIG): none left behind
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in children):
        time.sleep(0.2)
    leftovers = {pid for pid in children if pid_alive(pid)}
    for pid in leftovers:  # ours: started by the workers this test started
        os.kill(pid, signal.SIGKILL)
    assert not leftovers
