"""The dashboards as code: render every dashboard to `dashboards/<uid>.json` (checked in, shipped
as package data) and check that the files are current and valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from dashboards.command_map import command_map
from dashboards.data_quality import data_quality
from dashboards.dispatch_performance import dispatch_performance
from dashboards.model import Dashboard
from dashboards.pipeline_health import pipeline_health
from dashboards.validate import dashboard_errors

DEFAULT_DATABASE = "smart_station"
DASHBOARD_DIR = Path(__file__).parent
DASHBOARDS: tuple[Callable[[], Dashboard], ...] = (
    command_map,
    dispatch_performance,
    data_quality,
    pipeline_health,
)


def build_dashboards(database: str = DEFAULT_DATABASE) -> list[dict[str, Any]]:
    """Every dashboard's JSON model, its queries reading `database`."""
    return [define().to_json(database) for define in DASHBOARDS]


def render(dashboard: dict[str, Any]) -> bytes:
    return orjson.dumps(dashboard, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def rendered_files(database: str = DEFAULT_DATABASE) -> dict[str, bytes]:
    return {f"{d['uid']}.json": render(d) for d in build_dashboards(database)}


def write_dashboards(
    database: str = DEFAULT_DATABASE, directory: Path = DASHBOARD_DIR
) -> list[Path]:
    written = []
    for filename, content in rendered_files(database).items():
        path = directory / filename
        path.write_bytes(content)
        written.append(path)
    return written


def check_dashboards(
    database: str = DEFAULT_DATABASE, directory: Path = DASHBOARD_DIR
) -> list[str]:
    """Problems, one line each: files missing or different from the builder's output, and
    validation errors of the built dashboards. Empty when all is well."""
    problems = []
    for filename, content in rendered_files(database).items():
        path = directory / filename
        if not path.exists():
            problems.append(f"{filename}: missing; run `smart-station dashboards build`")
        elif path.read_bytes() != content:
            problems.append(f"{filename}: out of date; run `smart-station dashboards build`")
    for dashboard in build_dashboards(database):
        problems.extend(f"{dashboard['uid']}.json: {e}" for e in dashboard_errors(dashboard))
    return problems
