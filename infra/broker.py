"""Launches a real Apache Kafka broker (KRaft, single node) from the official jars, which Maven
resolves from infra/kafka/pom.xml into the state folder. Binds 127.0.0.1 only."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from base.errors import StackError
from infra.folders import PRIVATE_UMASK, ensure_writable_folder, private_files

log = logging.getLogger(__name__)

POM = Path(__file__).parent / "kafka" / "pom.xml"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class BrokerPaths:
    root: Path

    @property
    def jars(self) -> Path:
        return self.root / "jars"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def stdout_file(self) -> Path:
        return self.root / "broker.out"

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j2.xml"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))


def child_pids(parent: int) -> set[int]:
    """Live (not zombie) processes whose parent is `parent`, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def server_properties(broker_port: int, controller_port: int, data_dir: Path) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=4",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # Consumers joining an empty group start at once (tests and the demo start many).
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=168",
            "log.segment.bytes=67108864",
            "num.network.threads=2",
            "num.io.threads=4",
            "",
        ]
    )


LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="{log}" filePattern="{log}.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


class EmbeddedBroker:
    """Start, find and stop the embedded broker whose state lives under `root`."""

    def __init__(self, root: Path, *, port: int = 0, heap: str = "1g") -> None:
        self.paths = BrokerPaths(root.resolve())
        self.requested_port = port
        self.heap = heap

    # -- discovery -------------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.paths.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def ports(self) -> tuple[int, int] | None:
        try:
            broker, controller = self.paths.ports_file.read_text().split()
            return int(broker), int(controller)
        except (OSError, ValueError):
            return None

    @property
    def bootstrap(self) -> str:
        ports = self.ports()
        if ports is None:
            raise StackError("the embedded broker has never been started (no ports file)")
        return f"127.0.0.1:{ports[0]}"

    def running(self) -> bool:
        ports = self.ports()
        return self.pid() is not None and ports is not None and port_open(ports[0])

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> str:
        """Start (or reuse) the broker; returns its bootstrap address once it accepts clients."""
        if self.running():
            return self.bootstrap
        ensure_writable_folder(self.paths.root, "state folder")
        self._resolve_jars()  # Maven's cache is not ours to make private
        with private_files():
            return self._start()

    def _start(self) -> str:
        broker_port, controller_port = self._choose_ports()
        self.paths.properties.write_text(
            server_properties(broker_port, controller_port, self.paths.data)
        )
        self.paths.log4j.write_text(LOG4J2_XML.format(log=self.paths.log_file))
        if not (self.paths.data / "meta.properties").exists():
            self._format_storage()
        log_offset = _log_size(self.paths.log_file)
        self._launch()
        self._await_ready(broker_port, log_offset)
        return f"127.0.0.1:{broker_port}"

    def stop(self) -> bool:
        """Stop the broker if it runs; True when a process was stopped."""
        pid = self.pid()
        if pid is None:
            self.paths.pid_file.unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and pid_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if pid_alive(pid):
            log.warning("broker pid=%s ignored SIGTERM for %ss; killing", pid, STOP_TIMEOUT_S)
            os.killpg(pid, signal.SIGKILL)
            _reap(pid)
        self.paths.pid_file.unlink(missing_ok=True)
        return True

    # -- steps -----------------------------------------------------------------------------
    def _resolve_jars(self) -> None:
        stamp = self.paths.jars / ".pom-sha256"
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == digest:
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError("Maven (mvn) is needed to fetch the Kafka jars; install it first")
        shutil.rmtree(self.paths.jars, ignore_errors=True)
        log.info("resolving Kafka jars with Maven into %s", self.paths.jars)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.paths.jars}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise StackError(f"Maven could not resolve the Kafka jars: {' | '.join(tail)}")
        stamp.write_text(digest)

    def _choose_ports(self) -> tuple[int, int]:
        known = self.ports()
        reusable = known is not None and self.requested_port in (0, known[0])
        if known is not None and reusable and not (port_open(known[0]) or port_open(known[1])):
            return known
        broker = self.requested_port or free_port()
        controller = free_port()
        while controller == broker:
            controller = free_port()
        self.paths.ports_file.write_text(f"{broker} {controller}\n")
        return broker, controller

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java:
            raise StackError("Java 17+ is needed to run the Kafka broker; install it first")
        return java

    def _classpath(self) -> str:
        return f"{self.paths.jars}/*"

    def _format_storage(self) -> None:
        cluster_id = base64_uuid()
        result = subprocess.run(
            [
                self._java(),
                "-cp",
                self._classpath(),
                f"-Dlog4j2.configurationFile={self.paths.log4j}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.paths.properties),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"formatting broker storage failed: {result.stdout}{result.stderr}")

    def _launch(self) -> None:
        command = [
            self._java(),
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.paths.log4j}",
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.paths.properties),
        ]
        with self.paths.stdout_file.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI; stopped by `down` via its group
                umask=PRIVATE_UMASK,  # its logs and segments hold caller data
            )
        self.paths.pid_file.write_text(f"{process.pid}\n")

    def _await_ready(self, port: int, log_offset: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            pid = self.pid()
            if pid is None:
                raise StackError(f"the broker exited while starting; see {self.paths.stdout_file}")
            if port_open(port) and _server_started(self.paths.log_file, log_offset):
                return
            time.sleep(0.2)
        self.stop()
        raise StackError(f"the broker did not become ready in {READY_TIMEOUT_S:.0f}s")


def _log_size(log_file: Path) -> int:
    try:
        return log_file.stat().st_size
    except FileNotFoundError:
        return 0


def _server_started(log_file: Path, since: int) -> bool:
    """Whether the broker logged its start after byte `since` (earlier runs share the file)."""
    try:
        with log_file.open("rb") as handle:
            handle.seek(since if _log_size(log_file) >= since else 0)
            return b"Kafka Server started" in handle.read()
    except FileNotFoundError:
        return False


def _reap(pid: int) -> None:
    """Collect the exit status when the broker is our own child (the test fixtures' case)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def base64_uuid() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding. Like Kafka's own
    Uuid.randomUuid, never one starting with '-', which the storage tool would read as a flag."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
