"""Who may do what on a secure broker: the ACLs of each SCRAM user of the pipeline, derived from
the topics and consumer groups of one deployment (topic prefix, app id), and granting them.
Everything not granted is denied (StandardAuthorizer, no ACL: no access); `admin` is a super
user. docs/RELIABILITY.md ("Access") lists the set."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
)
from kafka.errors import KafkaError

from base.errors import StackError
from base.settings import Settings
from base.topics import TopicNames
from infra.kafka_security import KafkaSecurity
from sinks.loader import table_router


class User(StrEnum):
    DISPATCH = "dispatch"  # the dispatch worker
    POSITIONS = "positions"  # the positions worker
    LOADER = "loader"  # the warehouse loader (`sink`)
    STATION = "station"  # stations' systems: they send raw events, read nothing
    DISPATCH_READER = "dispatch-reader"  # the officers' app: reads assignments, nothing else


@dataclass(frozen=True, slots=True)
class Grant:
    user: User
    resource: ResourceType
    name: str
    operations: tuple[ACLOperation, ...]
    prefixed: bool = False


READ = (ACLOperation.READ, ACLOperation.DESCRIBE)
WRITE = (ACLOperation.WRITE, ACLOperation.DESCRIBE)
READ_WRITE = (ACLOperation.READ, ACLOperation.WRITE, ACLOperation.DESCRIBE)


def _topics(user: User, names: list[str], operations: tuple[ACLOperation, ...]) -> list[Grant]:
    return [Grant(user, ResourceType.TOPIC, name, operations) for name in names]


def grants(settings: Settings) -> list[Grant]:
    """The pipeline's ACLs for this deployment's topics and groups."""
    n = TopicNames.with_prefix(settings.topic_prefix)
    app = settings.app_id
    dispatch_in = [n.alerts_raw, n.status_raw, n.cameras_raw, n.backup]
    dispatch_both = [n.alerts, n.status, n.cameras, n.claims, n.claim_results, n.ticks]
    dispatch_out = [n.assignments, n.unassigned, n.events, n.deadletter]
    dispatch_seen = [n.gps_raw, n.gps, n.gps_by_officer]  # listed when topics are checked
    result = [
        *_topics(User.DISPATCH, dispatch_in, READ),
        *_topics(User.DISPATCH, dispatch_both, READ_WRITE),
        *_topics(User.DISPATCH, dispatch_out, WRITE),
        *_topics(User.DISPATCH, dispatch_seen, (ACLOperation.DESCRIBE,)),
        # its tables' changelogs and Faust's own topics (and, by the prefix, the positions
        # table's changelog, which every dispatch worker mirrors)
        Grant(User.DISPATCH, ResourceType.TOPIC, f"{app}-", (ACLOperation.ALL,), prefixed=True),
        Grant(User.DISPATCH, ResourceType.GROUP, app, (ACLOperation.READ,)),
        *_topics(User.POSITIONS, [n.gps_raw], READ),
        *_topics(User.POSITIONS, [n.gps_by_officer], READ_WRITE),
        *_topics(User.POSITIONS, [n.gps, n.deadletter], WRITE),
        *_topics(
            User.POSITIONS,
            [t for t in n.all() if t not in (n.gps_raw, n.gps_by_officer, n.gps, n.deadletter)],
            (ACLOperation.DESCRIBE,),
        ),
        Grant(
            User.POSITIONS,
            ResourceType.TOPIC,
            f"{app}-positions-",
            (ACLOperation.ALL,),
            prefixed=True,
        ),
        Grant(User.POSITIONS, ResourceType.GROUP, f"{app}-positions", (ACLOperation.READ,)),
        *_topics(User.LOADER, list(table_router(n)), READ),
        *_topics(User.LOADER, [t for t in n.all() if t not in table_router(n)], READ[1:]),
        Grant(User.LOADER, ResourceType.GROUP, f"{app}-warehouse", (ACLOperation.READ,)),
        *(
            Grant(User.LOADER, ResourceType.GROUP, group, (ACLOperation.DESCRIBE,))
            for group in (app, f"{app}-positions")  # their lag, recorded by the loader
        ),
        *_topics(User.STATION, [n.gps_raw, n.alerts_raw, n.status_raw, n.cameras_raw], WRITE),
        *_topics(User.DISPATCH_READER, [n.assignments], READ),
        Grant(
            User.DISPATCH_READER,
            ResourceType.GROUP,
            f"{app}-officers",
            (ACLOperation.READ,),
            prefixed=True,
        ),
    ]
    return result


def acls(granted: list[Grant]) -> list[ACL]:
    return [
        ACL(
            principal=f"User:{grant.user.value}",
            host="*",
            operation=operation,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                grant.resource,
                grant.name,
                ACLResourcePatternType.PREFIXED
                if grant.prefixed
                else ACLResourcePatternType.LITERAL,
            ),
        )
        for grant in granted
        for operation in grant.operations
    ]


def grant_access(bootstrap: str, admin: KafkaSecurity, granted: list[Grant]) -> None:
    """Create the ACLs (as a super user); creating one that exists is a no-op for Kafka."""
    try:
        client = KafkaAdminClient(bootstrap_servers=bootstrap, **admin.kafka_python())
    except KafkaError as exc:
        raise StackError(f"Kafka at {bootstrap} is unreachable: {type(exc).__name__}") from exc
    try:
        answer = client.create_acls(acls(granted))
    finally:
        client.close()
    failed = answer.get("failed", [])
    if failed:
        raise StackError(f"{len(failed)} ACLs not created, the first: {failed[0]}")
