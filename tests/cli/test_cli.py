"""The `smart-station` command as a user runs it: up/down lifecycle, fail-fast configuration
errors (one line, non-zero exit), and the demo end to end."""

from __future__ import annotations

import signal
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
    short = ("--minutes", "0.3", "--speedup", "20", "--stations", "2")
    night = (*short, "--officers-per-station", "6", "--calls-per-hour", "60")
    result = run_cli("--state-dir", str(state), "demo", *night, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = next(line for line in result.stdout.splitlines() if line.startswith("  alerts "))
    alerts = int(report.split()[1].rstrip(":"))
    assigned = int(report.split(": ")[1].split(" assigned")[0])
    assert alerts >= 1 and assigned >= 1, result.stdout
    assert "mismatch" not in result.stderr
    assert not (state / "kafka" / "broker.pid").exists(), "the demo stops the broker it started"
    assert len(list((state / "nights").glob("*.png"))) == 1


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found |= {int(child)} | descendants(int(child))
    return found


def test_ctrl_c_stops_the_demo_and_everything_it_started(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    env = {
        **env_without_settings(),
        "SMART_STATION_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SMART_STATION_TOPIC_PREFIX": f"ctrl-c-{tmp_path.name}.",
    }
    night = ("--minutes", "5", "--stations", "2", "--officers-per-station", "4", "--plain")
    demo = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "--state-dir", str(tmp_path), "demo", *night],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    said = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            said.append(line)
            if "the night starts" in line:
                break
        started = descendants(demo.pid)
        assert started, "".join(said)  # the workers
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 130, "".join(said) + rest
    assert "everything it started is stopped" in rest
    assert not [pid for pid in started if pid_alive(pid)]


@pytest.mark.parametrize("command", ["demo", "simulate"])
def test_help_fits_80_columns_without_losing_words(command: str) -> None:
    # Before: rich cut `--calls-per-station-hour` to `--calls-per-statio…` at 80 columns.
    result = run_cli(command, "--help", env={"COLUMNS": "80", "TERM": "dumb"})
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "…" not in result.stdout
    shown = set(result.stdout.replace("│", " ").split())
    assert {"--stations", "--officers-per-station", "--calls-per-hour", "--speedup"} <= shown
    if command == "demo":
        words = "Wall-clock minutes; the night lasts minutes x speedup. (2/3 patrol)."
        assert set(words.split()) <= shown, set(words.split()) - shown


def test_cluster_ids_never_start_with_a_dash() -> None:
    from infra.broker import base64_uuid

    ids = [base64_uuid() for _ in range(5000)]  # ~78 would start with '-' without the guard
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0, (
        result.stderr
    )
    return result.stderr


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http://[::1:8123", "Invalid IPv6 URL"),
        ("http://user:s3cret@[::1:8123", "Invalid IPv6 URL"),
        ("ftp://127.0.0.1:8123", "expected http"),
    ],
)
def test_a_bad_clickhouse_url_is_one_line_and_exit_2(tmp_path: Path, url: str, why: str) -> None:
    # Before: 57-85 lines of traceback from urllib/clickhouse-connect, exit 1.
    result = run_cli("--state-dir", str(tmp_path), "--clickhouse-url", url, "sink", timeout=60)
    stderr = one_line_error(result, 2)
    assert "clickhouse_url" in stderr and why in stderr
    assert "s3cret" not in stderr


@pytest.mark.parametrize("bootstrap", ["127.0.0.1:99999", "127.0.0.1:0", "localhost", "[::1:9092"])
def test_an_invalid_kafka_address_is_reported_as_invalid_not_refused(
    tmp_path: Path, bootstrap: str
) -> None:
    # Before: port 99999 was "Kafka is unreachable ... (Connection refused)".
    result = run_cli(
        "--state-dir", str(tmp_path), "--kafka-bootstrap", bootstrap, "worker", timeout=60
    )
    stderr = one_line_error(result, 2)
    assert "invalid setting kafka_bootstrap" in stderr and "unreachable" not in stderr


@pytest.mark.parametrize("url", ["notaurl", "http://127.0.0.1:99999", "http://[::1:3000"])
def test_a_bad_grafana_url_is_one_line_and_exit_2(url: str) -> None:
    # Before: "Grafana at ://None: refused ..." or a ValueError traceback.
    result = run_cli("dashboards", "push", "--token", "t0ken", "--grafana-url", url, timeout=60)
    stderr = one_line_error(result, 2)
    assert "invalid --grafana-url" in stderr and "t0ken" not in stderr


def test_replay_out_at_a_folder_or_unwritable_path_is_one_line_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"topic": "alerts.calls", "message": {"alert_id": "AL-1", "lat": 29.5, "lon": 106.5, '
        '"time": "2026-11-27T10:00:00+08:00", "category": "dispute"}}\n'
    )
    folder = tmp_path / "out"
    folder.mkdir()
    for out, why in (
        (folder, "it is a folder"),
        (tmp_path / "missing" / "d.jsonl", "No such file or directory"),
        (events / "d.jsonl", "Not a directory"),  # unwritable, even for root
    ):
        result = run_cli("dispatch", "replay", str(events), "--out", str(out), timeout=60)
        stderr = one_line_error(result, 1)
        assert f"cannot write {out}" in stderr and why in stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["events.jsonl", "out"]


def test_harmonise_and_demo_into_a_warehouse_another_process_holds_are_one_line(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    # Before: chDB's 95-line BAD_ARGUMENTS report. chDB allows one process per data folder.
    state = tmp_path / "state"
    env = {"SMART_STATION_STATE_DIR": str(state)}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from base.settings import Settings\n"
            "from streams.pipeline.stack import warehouse_for\n"
            "warehouse_for(Settings())\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        env={**env_without_settings(), **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        export = tmp_path / "alerts.csv"
        export.write_text("alert_id,lat,lon,time,category\nAL-1,29.5,106.5,2026-11-27 10:00,x\n")
        harmonise = run_cli("harmonise", str(export), "--out", "warehouse:alerts", env=env)
        demo = run_cli("--kafka-bootstrap", kafka_bootstrap, "demo", env=env, timeout=60)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    for result in (harmonise, demo):
        stderr = one_line_error(result, 1)
        assert "is in use by another process" in stderr and f"PID: {holder.pid}" in stderr


def test_sql_passes_binary_results_through_unchanged(tmp_path: Path) -> None:
    # Before: `SELECT *` of a table of quantile states (binary columns) ended in a
    # UnicodeDecodeError traceback; the output is the warehouse's bytes, whatever they are.
    env = {**env_without_settings(), "SMART_STATION_STATE_DIR": str(tmp_path / "state")}
    query = "SELECT 1 AS n, quantilesState(0.5)(number) AS q FROM numbers(1000)"
    for fmt in ("JSONEachRow", "TabSeparatedWithNames"):
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", "sql", query, "--format", fmt],
            capture_output=True,
            timeout=180,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        with pytest.raises(UnicodeDecodeError):  # the states' bytes, as the warehouse gave them
            done.stdout.decode()
        assert done.stdout.startswith(b'{"n":1,"q":' if fmt == "JSONEachRow" else b"n\tq\n1\t")
