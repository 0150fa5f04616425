"""Launches a real Apache Kafka broker (KRaft, single node) from the official jars, which Maven
resolves from infra/kafka/pom.xml into the state folder. Binds 127.0.0.1 only.

Plaintext by default; `secure` starts it with a SASL_SSL listener instead (SCRAM users, a
certificate of the state folder's own CA) and a controller listener that takes only the broker's
own certificate, so no local process reaches it without a password. ACLs decide what each
user may do (StandardAuthorizer; nothing without an ACL)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from base.errors import StackError
from infra.folders import PRIVATE_UMASK, ensure_writable_folder, make_private_folder, private_files
from infra.kafka_security import SCRAM_MECHANISMS, KafkaSecurity
from infra.tls import BROKER_CN, BrokerTls

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

    @property
    def tls(self) -> BrokerTls:
        return BrokerTls(self.root / "tls")

    @property
    def users(self) -> Path:
        """One `<user>.password` file per SCRAM user (600, in a 700 folder)."""
        return self.root / "users"

    @property
    def scram_marker(self) -> Path:
        """Written when the storage was formatted with the admin's SCRAM credential."""
        return self.root / "data" / ".scram-admin"


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


ADMIN_USER = "admin"  # the broker's own SCRAM user (its inter-broker connections), a super user


@dataclass(frozen=True, slots=True)
class Secure:
    """What a secure broker's properties need: its certificates and the admin's password."""

    tls: BrokerTls
    admin_password: SecretStr


def listener_properties(broker_port: int, controller_port: int, secure: Secure | None) -> list[str]:
    if secure is None:
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ]
    password = secure.admin_password.get_secret_value()
    key, chain = _split_keystore(secure.tls.keystore.read_text())
    return [
        f"listeners=SASL_SSL://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=SASL_SSL://127.0.0.1:{broker_port}",
        # The controller takes TLS connections with the broker's own certificate only.
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "listener.name.controller.ssl.client.auth=required",
        "inter.broker.listener.name=SASL_SSL",
        f"sasl.enabled.mechanisms={','.join(SCRAM_MECHANISMS)}",
        f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISMS[0]}",
        *(
            f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN_USER}" password="{password}";'
            for mechanism in SCRAM_MECHANISMS
        ),
        "ssl.keystore.type=PEM",
        f"ssl.keystore.key={_escaped(key)}",
        f"ssl.keystore.certificate.chain={_escaped(chain)}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={secure.tls.ca_file}",
        # No ACL, no access: each user gets only what streams/pipeline/access.py grants.
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN_USER};User:CN={BROKER_CN},O=smart-station",
    ]


def server_properties(
    broker_port: int, controller_port: int, data_dir: Path, secure: Secure | None = None
) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            *listener_properties(broker_port, controller_port, secure),
            "controller.listener.names=CONTROLLER",
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


def _split_keystore(pem: str) -> tuple[str, str]:
    """The private key block and the certificate chain of a PEM keystore file."""
    end = "-----END PRIVATE KEY-----"
    key, _, chain = pem.partition(end)
    return key + end + "\n", chain.lstrip()


def _escaped(pem: str) -> str:
    """A PEM block as one properties value (`\\n` reads back as a line break)."""
    return pem.strip().replace("\n", "\\n")


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
    <!-- failed authentications (who, from where), one line each -->
    <Logger name="org.apache.kafka.common.network.Selector" level="INFO"/>
    <Root level="WARN"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


class EmbeddedBroker:
    """Start, find and stop the embedded broker whose state lives under `root`."""

    def __init__(
        self, root: Path, *, port: int = 0, heap: str = "1g", secure: bool = False
    ) -> None:
        self.paths = BrokerPaths(root.resolve())
        self.requested_port = port
        self.heap = heap
        self.secure = secure

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
    def running_secure(self) -> bool:
        """Whether the running broker was started with the SASL_SSL listener."""
        try:
            return "SASL_SSL://" in self.paths.properties.read_text()
        except OSError:
            return False

    def start(self) -> str:
        """Start (or reuse) the broker; returns its bootstrap address once it accepts clients."""
        if self.running():
            if self.running_secure() != self.secure:
                raise StackError(
                    f"the embedded broker runs {'with' if self.running_secure() else 'without'} "
                    "SASL/TLS, unlike these settings (kafka_secure); stop it with `down` first"
                )
            return self.bootstrap
        ensure_writable_folder(self.paths.root, "state folder")
        self._resolve_jars()  # Maven's cache is not ours to make private
        with private_files():
            return self._start()

    def _start(self) -> str:
        broker_port, controller_port = self._choose_ports()
        formatted = (self.paths.data / "meta.properties").exists()
        secure = self._secure_material(formatted) if self.secure else None
        self.paths.properties.write_text(
            server_properties(broker_port, controller_port, self.paths.data, secure)
        )
        self.paths.log4j.write_text(LOG4J2_XML.format(log=self.paths.log_file))
        if not formatted:
            self._format_storage(secure)
        log_offset = _log_size(self.paths.log_file)
        self._launch()
        self._await_ready(broker_port, log_offset)
        return f"127.0.0.1:{broker_port}"

    # -- SCRAM users -----------------------------------------------------------------------
    def _secure_material(self, formatted: bool) -> Secure:
        if formatted and not self.paths.scram_marker.exists():
            raise StackError(
                f"the embedded broker's state {self.paths.data} was made without SCRAM users; "
                "start it without kafka_secure, or use a fresh state folder"
            )
        self.paths.tls.ensure()
        return Secure(self.paths.tls, self._password_of(ADMIN_USER, create=True))

    def _password_of(self, user: str, *, create: bool = False) -> SecretStr:
        path = self.paths.users / f"{user}.password"
        if path.exists():
            return SecretStr(path.read_text().strip())
        if not create:
            raise StackError(f"the embedded broker has no SCRAM user {user!r} (no {path})")
        make_private_folder(self.paths.users)
        password = secrets.token_urlsafe(24)
        with private_files():
            path.write_text(password + "\n")
        return SecretStr(password)

    def client_security(self, user: str = ADMIN_USER) -> KafkaSecurity:
        """How `user` connects to this (secure) broker: its password file and the CA."""
        return KafkaSecurity(
            username=user,
            password=self._password_of(user),
            mechanism=SCRAM_MECHANISMS[0],
            ca_file=self.paths.tls.ca_file,
        )

    def add_users(self, users: list[str], passwords: dict[str, SecretStr] | None = None) -> None:
        """Create (or reset) SCRAM users through the admin API, as the admin; a user without a
        given password gets a generated one, kept in the state folder's `users/`."""
        from kafka.admin import KafkaAdminClient, UserScramCredentialUpsertion

        given = passwords or {}
        chosen = {}
        for user in users:
            if user in given:
                make_private_folder(self.paths.users)
                with private_files():
                    path = self.paths.users / f"{user}.password"
                    path.write_text(given[user].get_secret_value() + "\n")
            chosen[user] = self._password_of(user, create=True).get_secret_value()
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap, **self.client_security().kafka_python()
        )
        failed: dict[str, str] = {}
        try:
            for mechanism in SCRAM_MECHANISMS:  # a request alters a user's credential once
                upserts = [UserScramCredentialUpsertion(u, mechanism, p) for u, p in chosen.items()]
                answer = admin.alter_user_scram_credentials(upserts)
                failed.update({u: e for u, e in answer.items() if e})
        finally:
            admin.close()
        if failed:
            raise StackError(f"SCRAM users not created: {failed}")

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

    def _format_storage(self, secure: Secure | None) -> None:
        cluster_id = base64_uuid()
        scram = []
        if secure is not None:
            password = secure.admin_password.get_secret_value()
            scram = [
                "--add-scram",
                f"{SCRAM_MECHANISMS[0]}=[name={ADMIN_USER},password={password}]",
            ]
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
                *scram,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            said = (result.stdout + result.stderr).strip()
            if secure is not None:  # the tool may echo its arguments
                said = said.replace(secure.admin_password.get_secret_value(), "***")
            raise StackError(f"formatting broker storage failed: {said[:500]}")
        if secure is not None:
            self.paths.scram_marker.write_text(f"{ADMIN_USER}\n")

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
