"""The JSON Schema files are generated from the models and describe what is really published."""

from __future__ import annotations

import json

import jsonschema
import pytest

from schemas.events import AlertCall, OfficerState, TimeQuality
from schemas.export import SCHEMA_DIR, check_schema_files
from streams.dispatch.rules import DispatchPolicy, build_assignment


def test_checked_in_schema_files_match_the_models() -> None:
    assert check_schema_files() == []


def test_published_assignment_validates_against_its_schema() -> None:
    alert = AlertCall(
        alert_id="AL-1",
        station_id="ST-1",
        category="theft",
        priority=3,
        lat=29.56,
        lon=106.55,
        h3_cell="8840a8ad4dfffff",
        event_time="2022-10-15T15:05:00+08:00",
        event_utc_ms=1665817500000,
        ingest_utc_ms=1665817500100,
        time_quality=TimeQuality(source_format="iso8601"),
    )
    officer = OfficerState(officer_id="OFF-1", lat=29.57, lon=106.56, position_utc_ms=1665817490000)
    message = build_assignment(
        alert,
        officer,
        1234.5,
        policy=DispatchPolicy(),
        assigned_utc_ms=1665817501000,
        zone="Asia/Shanghai",
    ).model_dump(mode="json")
    schema = json.loads((SCHEMA_DIR / "assignment.schema.json").read_text())
    jsonschema.validate(message, schema)
    broken = {**message, "distance_m": -1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
