"""Consumer groups as Kafka sees them: members, state and lag (end offset minus committed) per
partition. Read by `status` and recorded by the loader into the warehouse."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from base.errors import StackError
from infra.kafka_security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


def reachable(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """Whether any bootstrap server accepts a TCP connection."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


@dataclass(slots=True)
class GroupLag:
    group_id: str
    state: str
    members: int
    lag: dict[TopicPartition, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.lag.values())


def _described(admin: KafkaAdminClient, groups: Sequence[str]) -> dict[str, Any]:
    """Group states and members; a group whose members' metadata this client cannot decode
    (Faust's assignor writes its own) counts as unknown instead of failing the lag."""
    found: dict[str, Any] = {}
    for group in groups:
        try:
            found.update(admin.describe_groups([group]))
        except KafkaError:
            raise
        except Exception as exc:  # decoding of a foreign assignor's metadata
            log.debug("group %s not described: %s", group, exc)
            found[group] = {"group_state": "unknown", "members": None}
    return found


def group_lags(
    bootstrap: str,
    groups: Sequence[str],
    *,
    timeout_s: float = 5.0,
    security: KafkaSecurity = PLAINTEXT,
) -> list[GroupLag]:
    """Lag of each group over the partitions it has committed offsets for."""
    timeout_ms = int(timeout_s * 1000)
    auth = security.kafka_python()
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, **auth)
    except KafkaError as exc:
        raise StackError(f"Kafka at {bootstrap} is unreachable: {type(exc).__name__}") from exc
    consumer = None
    try:
        described = _described(admin, groups)
        committed = {g: admin.list_group_offsets(g).get(g, {}) for g in groups}
        partitions = {tp for offsets in committed.values() for tp in offsets}
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms + 1, **auth
        )
        ends = consumer.end_offsets(list(partitions), timeout_ms=timeout_ms) if partitions else {}
    except KafkaError as exc:
        raise StackError(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from exc
    finally:
        admin.close()
        if consumer is not None:
            with contextlib.suppress(KafkaError):
                consumer.close()
    result = []
    for group in groups:
        if group not in described:
            described[group] = {"group_state": "unknown", "members": []}
        info = described.get(group, {})
        lag = {
            tp: max(0, ends.get(tp, meta.offset) - meta.offset)
            for tp, meta in committed[group].items()
            if meta.offset >= 0
        }
        members = -1 if info.get("members") is None else len(info["members"])
        result.append(GroupLag(group, str(info.get("group_state", "unknown")), members, lag))
    return result
