"""Running the pipeline's Faust workers: the dispatch app and the positions app (see
streams/pipeline/apps.py), each in its own process."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import faust

from base.logs import limit_repeats
from base.settings import Settings, settings_env
from base.topics import TopicNames
from infra.folders import (
    PRIVATE_UMASK,
    ensure_writable_folder,
    keep_state_private,
    make_private_folder,
)
from infra.kafka_security import KafkaSecurity
from infra.topics import check_partitions, ensure_topics, partition_count
from streams.pipeline.apps import build_dispatch_app
from streams.pipeline.positions_worker import positions_changelog, run_positions_worker
from streams.pipeline.stack import bootstrap_for, kafka_security, prepare_topics

PR_SET_PDEATHSIG = 1  # linux/prctl.h
# How much lower the positions worker of an `all` worker runs: under CPU contention the kernel
# then favours dispatch (alerts, milliseconds matter) over pings (throughput; a short backlog
# is harmless: positions are replicated every few seconds anyway).
POSITIONS_NICENESS = 10


class Role(StrEnum):
    ALL = "all"  # dispatch here, positions in a child process that dies with this one
    DISPATCH = "dispatch"
    POSITIONS = "positions"


def run_worker(settings: Settings, role: Role = Role.ALL) -> None:
    bootstrap = bootstrap_for(settings)
    # Each app connects as its own user (an `all` worker's positions child as `positions`).
    user = Role.POSITIONS if role is Role.POSITIONS else Role.DISPATCH
    security = kafka_security(settings, user.value)
    names = prepare_topics(settings, bootstrap, security)
    keep_state_private()  # Faust's data folders and the logs of the worker's children
    ensure_writable_folder(settings.state_dir / "faust", "state folder")
    if role is Role.POSITIONS:
        ensure_topics(
            bootstrap,
            [positions_changelog(settings)],
            settings.topic_partitions,
            config={"cleanup.policy": "compact"},
            security=security,
        )
        check_partitions(
            bootstrap,
            [*copartitioned(names), positions_changelog(settings)],
            settings.topic_partitions,
            security=security,
        )
        logging.getLogger().setLevel(_log_level(settings.log_level))
        run_positions_worker(
            settings,
            bootstrap,
            partition_count(bootstrap, names.gps_raw, security=security),
            security=security,
        )
        return
    positions = None
    if role is Role.ALL:
        log_path = settings.state_dir / "logs" / f"positions-worker-{os.getpid()}.log"
        positions = WorkerProcess(settings, log_path, Role.POSITIONS).start(
            die_with_parent=True, niceness=POSITIONS_NICENESS
        )
    try:
        app = build_dispatch_app(
            settings,
            bootstrap,
            raw_alert_partitions=partition_count(bootstrap, names.alerts_raw, security=security),
            security=security,
        )
        _run(app, settings, bootstrap, security)
    finally:
        if positions is not None:
            positions.stop()


def _log_level(name: str) -> int:
    level = getattr(logging, name.upper().replace("CRIT", "CRITICAL").replace("WARN", "WARNING"))
    return level if isinstance(level, int) else logging.WARNING


class PipelineWorker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        limit_repeats(logger)  # a broker outage: one line per kind per window, with a count

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        # Everything built so far (Faust's services, recovered tables and views) lives as long
        # as the worker: out of the collector's reach, full collections stop walking it, which
        # shortens the pauses an alert can land in.
        gc.freeze()


def _run(app: faust.App, settings: Settings, bootstrap: str, security: KafkaSecurity) -> None:
    # Tables' changelogs exist before the app starts: Faust creates missing ones itself, but a
    # consumer that has not seen a new topic's metadata yet reads it as 0 partitions, and the
    # first write to a table from a stream then fails its partition check.
    changelogs = [table.changelog_topic.get_topic_name() for table in app.tables.values()]
    ensure_topics(
        bootstrap,
        changelogs,
        settings.topic_partitions,
        config={"cleanup.policy": "compact"},
        security=security,
    )
    check_partitions(
        bootstrap,
        [*copartitioned(TopicNames.with_prefix(settings.topic_prefix)), *changelogs],
        settings.topic_partitions,
        security=security,
    )
    worker = PipelineWorker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG so that every record turns it:
    # aiokafka then builds a log record per fetch and send (~8 % of a busy worker's CPU).
    worker.spinner = None
    worker.execute_from_commandline()


def copartitioned(names: TopicNames) -> list[str]:
    """Topics whose partition p must be table partition p: all but the stations' raw inputs
    (re-keyed where they arrive when their count differs) and the dead letters (never read)."""
    free = {names.gps_raw, names.alerts_raw, names.status_raw, names.cameras_raw, names.deadletter}
    return [t for t in names.all() if t not in free]


def _child_setup(die_with_parent: bool, niceness: int) -> Callable[[], None]:
    def setup() -> None:
        """In the child before exec. With `die_with_parent` the kernel sends SIGTERM when the
        parent dies, even by SIGKILL, so an `all` worker never leaves an orphaned positions
        worker behind."""
        if die_with_parent:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if niceness:
            os.nice(niceness)

    return setup


class WorkerProcess:
    """A worker in a child process (the demo, the benchmarks and the integration tests run
    several). Role `all` is itself two processes: dispatch, and positions as its child."""

    def __init__(self, settings: Settings, log_path: Path, role: Role = Role.ALL) -> None:
        self.settings = settings
        self.log_path = log_path
        self.role = role
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, die_with_parent: bool = False, niceness: int = 0) -> WorkerProcess:
        make_private_folder(self.log_path.parent)
        env = {**os.environ, **settings_env(self.settings)}
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        with os.fdopen(os.open(self.log_path, flags, 0o600), "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--role", self.role.value],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(die_with_parent, niceness),
                umask=PRIVATE_UMASK,
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
