"""infra.folders: state is private. Folders the project creates are 700 and the files its state
writers create (broker, workers, embedded warehouse) 600, whatever the caller's umask; before,
they were 755/644 though they hold caller data."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from base.settings import Settings, settings_env
from base.topics import TopicNames
from infra.folders import ensure_writable_folder, make_private_folder
from streams.pipeline.worker import WorkerProcess
from tests.support.clients import consume, env_without_settings, now_iso, send_json


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def shared_with_others(root: Path, public: str | None = None) -> list[str]:
    """Every path under `root` (but `root/public`) that its group or others may read, write or
    enter."""
    exposed = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink() or (public and (root / public) in (path, *path.parents)):
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            exposed.append(f"{path.relative_to(root.parent)} {mode:o}")
    return exposed


def test_folders_created_on_the_way_are_private(tmp_path: Path, open_umask: None) -> None:
    make_private_folder(tmp_path / "state" / "faust" / "app")
    for folder in ("state", "state/faust", "state/faust/app"):
        assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o700, folder
    ensure_writable_folder(tmp_path / "warehouse", "warehouse folder")
    assert stat.S_IMODE((tmp_path / "warehouse").stat().st_mode) == 0o700


def test_an_existing_folder_keeps_its_mode(tmp_path: Path, open_umask: None) -> None:
    (tmp_path / "shared").mkdir(mode=0o755)
    ensure_writable_folder(tmp_path / "shared", "state folder")
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o755


@pytest.mark.broker
def test_the_embedded_broker_state_is_private(kafka_bootstrap: str, session_dir: Path) -> None:
    # The jars are Kafka's own, copied by Maven (behind the 700 state folder all the same).
    assert shared_with_others(session_dir / "kafka", public="jars") == []


def test_the_embedded_warehouse_files_are_private(tmp_path: Path) -> None:
    # chDB allows one data path per process: the warehouse is opened in a process of its own,
    # with the usual umask 022.
    settings = Settings(state_dir=tmp_path / "state", warehouse_database="private_check")
    script = (
        "import os; os.umask(0o022)\n"
        "from base.settings import Settings\n"
        "from streams.pipeline.stack import warehouse_for\n"
        "warehouse_for(Settings()).close()\n"
    )
    env = {**env_without_settings(), **settings_env(settings)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    assert any((tmp_path / "state").rglob("*")), "the warehouse wrote nothing"
    assert shared_with_others(tmp_path / "state") == []


@pytest.mark.broker
def test_a_workers_state_and_logs_are_private(
    settings: Settings, topics: TopicNames, kafka_bootstrap: str, producer: KafkaProducer
) -> None:
    worker = WorkerProcess(settings, settings.state_dir / "logs" / "worker.log").start()
    try:
        ping = {"officer_id": "OFF-1", "lat": 29.5, "lon": 106.5, "ts": now_iso()}
        send_json(producer, topics.gps_raw, ping)
        producer.flush()
        assert consume(kafka_bootstrap, topics.gps, until=lambda r: len(r) >= 1)
    finally:
        worker.stop()
    assert (settings.state_dir / "faust").is_dir()
    assert shared_with_others(settings.state_dir) == []


def test_two_processes_checking_one_state_folder_at_once_both_succeed(tmp_path: Path) -> None:
    """Two workers sharing a state folder start together. With one fixed probe name, the first
    to finish removed the other's probe and that worker exited with "is not writable: No such
    file or directory" (seen in CI)."""
    from concurrent.futures import ThreadPoolExecutor

    from infra.folders import ensure_writable_folder

    folder = tmp_path / "state" / "faust"

    def check_often(_: int) -> None:
        for _ in range(300):
            ensure_writable_folder(folder, "state folder")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(check_often, range(4)))  # re-raises a StackError from any of them
    assert not list(folder.iterdir())  # no probe left behind
