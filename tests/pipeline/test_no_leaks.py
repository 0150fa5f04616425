"""Secrets and callers' numbers never leak: a small night on the secure embedded stack, run as a
user runs it (`up --secure`, `worker`, `sink`, `simulate`, `status`, `settings`, `sql`, a few
errors), with known passwords, HMAC key and caller numbers; then every log, every output and
every warehouse table is searched for them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from base.settings import Settings
from base.topics import TopicNames
from streams.pipeline.stack import kafka_security
from tests.pipeline.test_pipeline import INCIDENT, OFFICERS
from tests.support.clients import env_without_settings, now_iso, wait_for

pytestmark = pytest.mark.broker

HMAC_KEY = "hmac-key-known-to-the-test-5b1e9c"
GRAFANA_PASSWORD = "grafana-pw-known-to-the-test-0d4"
WRONG_PASSWORD = "wrong-pw-known-to-the-test-77aa"
BAD_KEY = "short-k3y-1a"  # under 16 bytes: refused
CALLERS = ["13912345678", "+86 139 8765 4321", "0086-138-1111-2222"]
CALLER_DIGITS = ["13912345678", "13987654321", "13811112222"]


class Stack:
    """The CLI run in subprocesses on one state folder; every output kept for the search."""

    def __init__(self, state_dir: Path, out_dir: Path) -> None:
        self.state_dir, self.out_dir = state_dir, out_dir
        self.env = {
            **env_without_settings(),
            "SMART_STATION_STATE_DIR": str(state_dir),
            "SMART_STATION_KAFKA_SECURE": "true",
            "SMART_STATION_KAFKA_HEAP": "384m",
            "SMART_STATION_TOPIC_PARTITIONS": "2",
            "SMART_STATION_PHONE_HMAC_KEY": HMAC_KEY,
            "SMART_STATION_GRAFANA_READER_PASSWORD": GRAFANA_PASSWORD,
            "SMART_STATION_LOG_LEVEL": "info",  # more said, more to search
            "SMART_STATION_SINK_FLUSH_INTERVAL_S": "0.5",
        }
        self.outputs: list[str] = []
        self.background: list[subprocess.Popen[bytes]] = []

    def run(self, *args: str, env: dict[str, str] | None = None, ok: bool = True) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            timeout=240,
            check=False,
        )
        # bytes: a table of aggregate states dumps binary columns (searched like the files)
        said = (done.stdout + done.stderr).decode("utf-8", "replace")
        self.outputs.append(said)
        assert (done.returncode == 0) == ok, f"{args}: exit {done.returncode}: {said[-2000:]}"
        return said

    def start(self, name: str, *args: str) -> None:
        log = (self.out_dir / f"{name}.log").open("wb")
        self.background.append(
            subprocess.Popen(
                [sys.executable, "-m", "streams.cli", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )

    def stop_all(self) -> None:
        for process in self.background:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.background:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path / "state", tmp_path / "out")
    running.out_dir.mkdir()
    try:
        yield running
    finally:
        running.stop_all()
        subprocess.run(
            [sys.executable, "-m", "streams.cli", "down"],
            env=running.env,
            capture_output=True,
            timeout=60,
            check=False,
        )


def send_known_events(stack: Stack) -> None:
    conf = Settings(state_dir=stack.state_dir, kafka_secure=True)
    station = kafka_security(conf, "station")
    names = TopicNames()
    bootstrap = (stack.state_dir / "kafka" / "ports").read_text().split()[0]
    producer = KafkaProducer(
        bootstrap_servers=f"127.0.0.1:{bootstrap}", linger_ms=2, **station.kafka_python()
    )
    for officer_id, (lat, lon) in OFFICERS.items():
        ping = {"officer_id": officer_id, "station_id": "ST-01", "lat": lat, "lon": lon}
        producer.send(names.gps_raw, orjson.dumps({**ping, "ts": now_iso()}))
    producer.flush()
    time.sleep(3)  # the officers indexed before the calls
    for n, phone in enumerate(CALLERS):
        alert = {
            "alert_id": f"AL-LEAK-{n}",
            "category": "theft",
            "lat": INCIDENT[0],
            "lon": INCIDENT[1],
            "address": "解放碑步行街 8 号",
            "caller_phone": phone,
            "time": now_iso(),
        }
        producer.send(names.alerts_raw, orjson.dumps(alert), key=alert["alert_id"].encode())
    # a call the reader refuses (no position): dead-lettered, its number masked there too
    producer.send(
        names.alerts_raw, orjson.dumps({"alert_id": "AL-LEAK-X", "caller_phone": CALLERS[0]})
    )
    producer.flush()
    producer.close()


def warehouse_count(stack: Stack, table: str) -> int:
    said = stack.run("sql", f"SELECT count() AS n FROM {{db}}.{table}", "--format", "JSONEachRow")
    rows = [orjson.loads(line) for line in said.splitlines() if line.startswith("{")]
    return int(rows[0]["n"]) if rows else 0


def searched_files(state_dir: Path, out_dir: Path) -> list[Path]:
    """Every log and output; not the files that hold a secret by design (password files, the
    broker's properties, the HMAC key file, certificates) nor data (topic segments, chDB parts:
    the warehouse is searched through SQL)."""
    kept_out = [
        state_dir / "kafka" / "users",
        state_dir / "kafka" / "tls",
        state_dir / "kafka" / "data",
        state_dir / "kafka" / "jars",
        state_dir / "kafka" / "server.properties",
        state_dir / "secrets",
        state_dir / "warehouse",
    ]
    found = [p for p in out_dir.rglob("*") if p.is_file()]
    for path in state_dir.rglob("*"):
        if path.is_file() and not any(path == k or k in path.parents for k in kept_out):
            found.append(path)
    return found


def test_no_secret_or_caller_number_in_any_log_output_or_table(stack: Stack) -> None:
    stack.run("up", "--secure")
    stack.start("worker", "worker")
    stack.start("sink", "sink")
    send_known_events(stack)
    stack.run(
        "simulate", "--stations", "2", "--officers-per-station", "4", "--minutes", "1",
        "--speedup", "6", "--calls-per-hour", "120",
    )  # fmt: skip
    wait_for(lambda: warehouse_count(stack, "alerts") >= len(CALLERS), 120, "alerts loaded")
    wait_for(lambda: warehouse_count(stack, "assignments") >= 1, 120, "an assignment loaded")
    wait_for(lambda: warehouse_count(stack, "dead_letters") >= 1, 120, "a dead letter loaded")
    stack.run("status")
    stack.run("settings")
    # errors: a wrong password, a short HMAC key, a ClickHouse URL with a password and a bad port
    stack.run(
        "status",
        env={
            "SMART_STATION_KAFKA_USERNAME": "loader",
            "SMART_STATION_KAFKA_PASSWORD": WRONG_PASSWORD,
        },
    )
    stack.run(
        "warehouse",
        "migrate",
        env={"SMART_STATION_PHONE_HMAC_KEY": BAD_KEY},
        ok=False,
    )
    stack.run(
        "status",
        env={"SMART_STATION_CLICKHOUSE_URL": f"http://u:{WRONG_PASSWORD}@h:99999"},
        ok=False,
    )
    stack.stop_all()
    tables = stack.run("sql", "SHOW TABLES FROM {db}", "--format", "JSONEachRow")
    dumps = [
        stack.run(
            "sql", f"SELECT * FROM {{db}}.{orjson.loads(line)['name']}", "--format", "JSONEachRow"
        )
        for line in tables.splitlines()
        if line.startswith("{")
    ]
    warehouse_text = "\n".join(dumps)
    assert "5678" in warehouse_text and "caller_phone_hmac" in warehouse_text  # it was searched

    users = stack.state_dir / "kafka" / "users"
    passwords = [p.read_text().strip() for p in users.glob("*.password")]
    assert len(passwords) == 6
    secrets = [*passwords, HMAC_KEY, GRAFANA_PASSWORD, WRONG_PASSWORD, BAD_KEY]
    texts = {f"output {i}": said for i, said in enumerate(stack.outputs)}
    for path in searched_files(stack.state_dir, stack.out_dir):
        texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any(name.endswith("kafka/server.log") for name in texts)  # the broker's log too
    leaks = [
        f"{name}: {'a secret' if s in secrets else 'a caller number'} ({s[:4]}...)"
        for name, text in texts.items()
        for s in (*secrets, *CALLER_DIGITS, *CALLERS)
        if s in text or s in text.replace(" ", "").replace("-", "")
    ]
    assert not leaks, leaks
    # the control: the same search finds the numbers where they are kept on purpose (the raw
    # topic's segments, as the stations sent them)
    segments = (stack.state_dir / "kafka" / "data").rglob("*.log")
    raw = b"".join(p.read_bytes() for p in segments).decode("utf-8", "replace")
    assert all(phone in raw for phone in CALLERS)
