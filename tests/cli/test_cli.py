"""The `smart-station` command as a user runs it: up/down lifecycle, fail-fast configuration
errors (one line, non-zero exit), and the demo end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.broker import pid_alive, port_open
from tests.support.clients import env_without_settings

pytestmark = pytest.mark.broker


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env_without_settings(), "SMART_STATION_KAFKA_HEAP": "512m", **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_up_then_down_leaves_no_process_and_second_up_reuses_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = run_cli("--state-dir", str(state), "up")
    assert first.returncode == 0, first.stderr
    pid = int((state / "kafka" / "broker.pid").read_text())
    port = int((state / "kafka" / "ports").read_text().split()[0])
    meta = (state / "kafka" / "data" / "meta.properties").read_text()
    assert pid_alive(pid) and port_open(port)
    assert f"127.0.0.1:{port}" in first.stdout

    down = run_cli("--state-dir", str(state), "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not pid_alive(pid) and not port_open(port)
    assert not (state / "kafka" / "broker.pid").exists()

    second = run_cli("--state-dir", str(state), "up")
    try:
        assert second.returncode == 0, second.stderr
        assert f"127.0.0.1:{port}" in second.stdout  # same port, same data folder, same cluster
        assert (state / "kafka" / "data" / "meta.properties").read_text() == meta
        topics = run_cli("--state-dir", str(state), "status")
        assert "running" in topics.stdout
    finally:
        new_pid = int((state / "kafka" / "broker.pid").read_text())
        assert run_cli("--state-dir", str(state), "down").returncode == 0
    assert not pid_alive(new_pid)


def test_unreachable_broker_fails_fast_with_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "--state-dir", str(tmp_path), "--kafka-bootstrap", "127.0.0.1:1", "worker", timeout=30
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: Kafka is unreachable at 127.0.0.1:1")


def test_unwritable_warehouse_fails_fast_with_one_line(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli(
        "--state-dir",
        str(blocker / "state"),
        "--kafka-bootstrap",
        kafka_bootstrap,
        "up",
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "warehouse folder" in result.stderr and "not writable" in result.stderr


def test_unwritable_state_folder_fails_before_starting_a_broker(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli("--state-dir", str(blocker / "state"), "up", timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "state folder" in result.stderr and "not writable" in result.stderr


def test_unknown_worker_role_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("--state-dir", str(tmp_path), "worker", "--role", "pings", timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --role 'pings': one of all, dispatch, positions"


def test_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("--partitions", "0", "status", timeout=30)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: invalid setting topic_partitions: Input should be greater than or equal to 1"
    )


def test_bad_environment_setting_is_reported_by_name(tmp_path: Path) -> None:
    result = run_cli("status", env={"SMART_STATION_H3_RESOLUTION": "99"}, timeout=30)
    assert result.returncode == 2
    assert "h3_resolution" in result.stderr


def test_demo_runs_end_to_end_on_its_own_embedded_stack(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = run_cli(
        "--state-dir", str(state), "demo", "--officers", "40", "--alerts", "8", timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dispatch:" in result.stdout and "warehouse rows:" in result.stdout
    dispatch_line = next(
        line for line in result.stdout.splitlines() if line.startswith("dispatch:")
    )
    covered = int(dispatch_line.split("covering ")[1].split(" alerts")[0])
    waiting = int(dispatch_line.split("; ")[1].split(" waiting")[0])
    assert covered + waiting == 8 and covered >= 6
    assert not (state / "kafka" / "broker.pid").exists(), "the demo stops the broker it started"
    assert os.path.isdir(state / "warehouse")


def test_cluster_ids_never_start_with_a_dash() -> None:
    from infra.broker import base64_uuid

    ids = [base64_uuid() for _ in range(5000)]  # ~78 would start with '-' without the guard
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)
