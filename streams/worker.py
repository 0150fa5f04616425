"""Running one Faust worker of the topology in this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import faust

from infra.stack import bootstrap_for, prepare_topics
from streams.app import build_app
from streams.settings import Settings, settings_env
from streams.topics import partition_count


def run_worker(settings: Settings) -> None:
    bootstrap = bootstrap_for(settings)
    names = prepare_topics(settings, bootstrap)
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = build_app(
        settings, bootstrap, raw_ping_partitions=partition_count(bootstrap, names.gps_raw)
    )
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


class WorkerProcess:
    """A worker in a child process (the demo and the integration tests run several)."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **settings_env(self.settings)}
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit, no flush (the crash case)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
