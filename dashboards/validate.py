"""Structural checks of a dashboard's JSON model: a JSON Schema for the subset of Grafana's
dashboard model we use (ClickHouse SQL targets only), then what a schema cannot say: unique
panel ids, panels inside the 24-column grid and not overlapping, defined variables, known
macros, formats that fit the panel type, map layers bound to existing queries."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from dashboards.macros import MACROS, macros_used, variables_used
from dashboards.model import DATASOURCE_REF, GRID_COLUMNS, PLUGIN, Format

PANEL_TYPES = ("geomap", "stat", "timeseries", "table", "barchart", "histogram", "bargauge")

DASHBOARD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "tags": {"type": "array", "items": {"type": "string"}},
        "refresh": {"type": "string"},
        "time": {
            "type": "object",
            "required": ["from", "to"],
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
        },
        "templating": {
            "type": "object",
            "required": ["list"],
            "properties": {"list": {"type": "array", "items": {"$ref": "#/$defs/variable"}}},
        },
        "panels": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/panel"}},
    },
    "$defs": {
        "datasource": {
            "type": "object",
            "required": ["type", "uid"],
            "properties": {
                "type": {"const": DATASOURCE_REF["type"]},
                "uid": {"const": DATASOURCE_REF["uid"]},
            },
        },
        "gridPos": {
            "type": "object",
            "required": ["x", "y", "w", "h"],
            "properties": {
                "x": {"type": "integer", "minimum": 0, "maximum": GRID_COLUMNS - 1},
                "y": {"type": "integer", "minimum": 0},
                "w": {"type": "integer", "minimum": 1, "maximum": GRID_COLUMNS},
                "h": {"type": "integer", "minimum": 1},
            },
        },
        "target": {
            "type": "object",
            "required": ["refId", "datasource", "editorType", "format", "rawSql"],
            "properties": {
                "refId": {"type": "string", "minLength": 1},
                "datasource": {"$ref": "#/$defs/datasource"},
                "editorType": {"const": "sql"},
                "queryType": {"enum": ["table", "timeSeries"]},
                "format": {"enum": [int(f) for f in Format]},
                "rawSql": {"type": "string", "pattern": "\\S"},
            },
        },
        "panel": {
            "type": "object",
            "required": ["id", "type", "title", "gridPos", "targets"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "type": {"enum": list(PANEL_TYPES)},
                "title": {"type": "string", "minLength": 1},
                "gridPos": {"$ref": "#/$defs/gridPos"},
                "datasource": {"$ref": "#/$defs/datasource"},
                "targets": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/target"}},
            },
        },
        "variable": {
            "type": "object",
            "required": ["name", "type", "query"],
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                "type": {"enum": ["datasource", "query", "custom", "constant", "interval"]},
                "query": {"type": "string"},
            },
        },
    },
}

_SCHEMA = Draft202012Validator(DASHBOARD_SCHEMA)


def dashboard_errors(dashboard: Mapping[str, Any]) -> list[str]:
    """Everything wrong with `dashboard`, one line each; empty when it is valid."""
    schema_errors = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(_SCHEMA.iter_errors(dashboard), key=lambda e: list(e.absolute_path))
    ]
    if schema_errors:
        return schema_errors  # the checks below rely on the structure
    panels = dashboard["panels"]
    variables = dashboard["templating"]["list"]
    return [
        *_panel_id_errors(panels),
        *_grid_errors(panels),
        *_variable_errors(variables),
        *(error for panel in panels for error in _panel_errors(panel, variables)),
    ]


def file_errors(path: Path) -> list[str]:
    try:
        dashboard = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        return [f"cannot read {path.name}: {exc}"]
    if not isinstance(dashboard, dict):
        return [f"{path.name}: not a JSON object"]
    return dashboard_errors(dashboard)


def _panel_id_errors(panels: list[dict[str, Any]]) -> list[str]:
    seen: set[int] = set()
    errors = []
    for panel in panels:
        if panel["id"] in seen:
            errors.append(f"panel id {panel['id']} is used twice")
        seen.add(panel["id"])
    return errors


def _grid_errors(panels: list[dict[str, Any]]) -> list[str]:
    errors = []
    for panel in panels:
        pos = panel["gridPos"]
        if pos["x"] + pos["w"] > GRID_COLUMNS:
            errors.append(f"panel {panel['id']} ends at column {pos['x'] + pos['w']} (max 24)")
    for a, b in itertools.combinations(panels, 2):
        if _overlap(a["gridPos"], b["gridPos"]):
            errors.append(f"panels {a['id']} and {b['id']} overlap")
    return errors


def _overlap(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def _variable_errors(variables: list[dict[str, Any]]) -> list[str]:
    names = [v["name"] for v in variables]
    errors = [f"variable ${n} is defined twice" for n in sorted(set(names)) if names.count(n) > 1]
    if not any(v["name"] == "datasource" and v.get("query") == PLUGIN for v in variables):
        errors.append(f"no `datasource` variable of type {PLUGIN}")
    for variable in variables:
        if variable["type"] == "query":
            errors.extend(_sql_errors(f"variable ${variable['name']}", variable["query"], names))
    return errors


def _panel_errors(panel: dict[str, Any], variables: list[dict[str, Any]]) -> list[str]:
    where = f"panel {panel['id']} ({panel['title']})"
    names = [v["name"] for v in variables]
    errors = []
    ref_ids = [t["refId"] for t in panel["targets"]]
    if len(set(ref_ids)) != len(ref_ids):
        errors.append(f"{where}: refIds are not unique: {ref_ids}")
    wanted = Format.TIME_SERIES if panel["type"] == "timeseries" else Format.TABLE
    for target in panel["targets"]:
        if target["format"] != wanted:
            errors.append(f"{where}/{target['refId']}: format {target['format']}, want {wanted}")
        errors.extend(_sql_errors(f"{where}/{target['refId']}", target["rawSql"], names))
    if panel["type"] == "geomap":
        for layer in panel.get("options", {}).get("layers", []):
            bound = layer.get("filterData", {}).get("options")
            if bound not in ref_ids:
                errors.append(f"{where}: map layer {layer.get('name')!r} shows no query's data")
    return errors


def _sql_errors(where: str, sql: str, variable_names: list[str]) -> list[str]:
    errors = [
        f"{where}: undefined variable ${name}"
        for name in sorted(variables_used(sql) - set(variable_names))
    ]
    errors.extend(f"{where}: unknown macro $__{m}" for m in sorted(macros_used(sql) - set(MACROS)))
    return errors
