"""Every published schema holds for a real message read back from the broker: a worker runs one
small night on two dispatch workers, so that claims and answers cross between them (officers, a
camera, alerts served, an alert out of reach, a backup request, an acknowledgement, a bad ping),
and each topic's records are validated against schemas/json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from kafka import KafkaProducer

from base.settings import Settings
from base.topics import TopicNames
from schemas.events import PUBLISHED_MODELS
from schemas.export import SCHEMA_DIR
from streams.pipeline.apps import positions_changelog
from streams.pipeline.worker import Role, WorkerProcess
from tests.support.clients import consume, now_iso, send_json

pytestmark = pytest.mark.broker

INCIDENT = (29.5633, 106.5519)
OUT_OF_REACH = (39.9042, 116.4074)  # Beijing: no officer within any radius
OFFICERS = ("OFF-A", "OFF-B", "OFF-C", "OFF-D")


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def first_records(bootstrap: str, topic: str, worker: WorkerProcess, n: int = 1) -> list[Any]:
    found = consume(
        bootstrap, topic, until=lambda r: len(r) >= n or not worker.alive(), timeout_s=90
    )
    assert worker.alive(), f"worker died; see {worker.log_path}"
    assert len(found) >= n, f"{topic}: {len(found)} records, wanted {n}"
    return found


def header_document(headers: list[tuple[str, bytes]], shape: dict[str, Any]) -> dict[str, Any]:
    """Kafka headers are text: integer properties of the schema are read as integers."""
    properties = shape["properties"]
    document: dict[str, Any] = {}
    for name, raw in headers:
        text = raw.decode()
        integer = properties.get(name, {}).get("type") == "integer"
        document[name] = int(text) if integer else text
    return document


def test_a_real_message_of_every_published_topic_matches_its_schema(
    settings: Settings,
    topics: TopicNames,
    producer: KafkaProducer,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    second = WorkerProcess(settings, tmp_path / "second.log", Role.DISPATCH).start()
    try:
        for officer_id in OFFICERS:
            send_json(
                producer,
                topics.gps_raw,
                {"officer_id": officer_id, "station_id": "ST-01", "ts": now_iso()}
                | {"lat": INCIDENT[0], "lon": INCIDENT[1]},
            )
        send_json(
            producer,
            topics.cameras_raw,
            {"camera_id": "CAM-1", "kind": "fixed", "lat": 29.5634, "lon": 106.5520}
            | {"heading_deg": 180, "fov_deg": 360, "range_m": 200, "time": now_iso()},
        )
        send_json(
            producer,
            topics.gps_raw,  # dead-lettered out of range, with its station in the headers
            {"officer_id": "OFF-X", "station_id": "ST-09", "lat": 999, "lon": 0, "ts": now_iso()},
        )
        producer.flush()
        first_records(kafka_bootstrap, positions_changelog(settings), worker, len(OFFICERS))
        first_records(kafka_bootstrap, topics.cameras, worker)
        time.sleep(3)  # both dispatch workers in the group, one partition each
        alerts = {f"A-NEAR-{n}": INCIDENT for n in range(len(OFFICERS))} | {"A-FAR": OUT_OF_REACH}
        for alert_id, (lat, lon) in alerts.items():
            send_json(
                producer,
                topics.alerts_raw,
                {"alert_id": alert_id, "category": "theft", "lat": lat, "lon": lon}
                | {"address": "解放碑步行街 8 号", "time": now_iso()},
                key=alert_id,
            )
        producer.flush()
        first_records(kafka_bootstrap, topics.assignments, worker)
        send_json(
            producer,
            topics.backup,
            {"alert_id": "A-NEAR-0", "officer_id": "OFF-A", "units": 1, "reason": "crowd"},
            key="A-NEAR-0",
        )
        send_json(
            producer,
            topics.status_raw,
            {"officer_id": "OFF-A", "status": "en_route", "ts": now_iso()},
        )
        producer.flush()

        by_schema = {
            "gps_ping": topics.gps,
            "alert_call": topics.alerts,
            "officer_state": f"{settings.app_id}-officers-changelog",
            "officer_position": positions_changelog(settings),
            "assignment": topics.assignments,
            "officer_status_change": topics.status,
            "camera_meta": topics.cameras,
            "backup_request": topics.backup,
            "dispatch_event": topics.events,
            "unassigned_notice": topics.unassigned,
            "claim": topics.claims,
            "claim_result": topics.claim_results,
        }
        assert set(by_schema) | {"dead_letter_headers"} == set(PUBLISHED_MODELS)
        assert second.alive(), f"second worker died; see {second.log_path}"
        for name, topic in by_schema.items():
            values = [r for r in first_records(kafka_bootstrap, topic, worker) if r is not None]
            assert values, f"{topic}: only deletions"
            for value in values:
                jsonschema.validate(value, schema(name))

        dead = consume(kafka_bootstrap, topics.deadletter, until=lambda r: bool(r), raw=True)
        shape = schema("dead_letter_headers")
        document = header_document(dead[0].headers, shape)
        jsonschema.validate(document, shape)
        assert document["station_id"] == "ST-09"
        assert document["reason"] in ("invalid_field", "out_of_range")
        assert orjson.loads(dead[0].value)["lat"] == 999  # the original bytes
    finally:
        second.stop()
        worker.stop()
