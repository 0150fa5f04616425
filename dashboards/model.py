"""A small builder for Grafana dashboards over the ClickHouse datasource plugin: SQL queries,
panels laid out in rows on Grafana's 24-column grid, template variables, rendered to plain JSON.

SQL is written with `{db}` for the warehouse database (as in sinks/migrations/); it is replaced
when a dashboard is rendered, so one definition serves every deployment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE_REF = {"type": PLUGIN, "uid": "${datasource}"}
GRID_COLUMNS = 24
SCHEMA_VERSION = 39


class Format(IntEnum):
    """The plugin's result format: a time series (time column + values) or a table."""

    TIME_SERIES = 0
    TABLE = 1


@dataclass(slots=True)
class Query:
    sql: str
    format: Format = Format.TABLE
    ref_id: str = "A"

    def to_json(self, database: str) -> dict[str, Any]:
        return {
            "refId": self.ref_id,
            "datasource": dict(DATASOURCE_REF),
            "editorType": "sql",
            "queryType": "timeSeries" if self.format is Format.TIME_SERIES else "table",
            "format": int(self.format),
            "rawSql": with_database(self.sql, database),
        }


@dataclass(slots=True)
class Panel:
    type: str
    title: str
    queries: Sequence[Query]
    width: int
    height: int
    description: str = ""
    unit: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)

    def to_json(self, database: str, panel_id: int, x: int, y: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {"color": {"mode": "palette-classic"}}
        if self.unit:
            defaults["unit"] = self.unit
        if self.custom:
            defaults["custom"] = self.custom
        return {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "datasource": dict(DATASOURCE_REF),
            "targets": [query.to_json(database) for query in self.queries],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": self.options,
        }


@dataclass(slots=True)
class Variable:
    """A template variable: `datasource` (pick the ClickHouse datasource), `query` (values from
    SQL) or `custom` (a fixed list)."""

    name: str
    label: str
    kind: str
    query: str
    multi: bool = False
    include_all: bool = False
    current: str | None = None

    def to_json(self, database: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.kind,
            "query": with_database(self.query, database),
            "hide": 0,
            "multi": self.multi,
            "includeAll": self.include_all,
            "options": [],
            "current": self._current(),
        }
        if self.kind == "query":
            out |= {
                "datasource": dict(DATASOURCE_REF),
                "definition": out["query"],
                "refresh": 2,  # on time range change: stations appear as they report
                "sort": 1,
            }
        if self.kind == "datasource":
            out["refresh"] = 1
        return out

    def _current(self) -> dict[str, Any]:
        if self.include_all:
            return {"selected": True, "text": ["All"], "value": ["$__all"]}
        if self.current is None:
            return {}
        return {"selected": True, "text": self.current, "value": self.current}


@dataclass(slots=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: Sequence[Sequence[Panel]]
    variables: Sequence[Variable]
    time_from: str = "now-6h"
    refresh: str = "1m"
    tags: Sequence[str] = ("smart-station",)

    def to_json(self, database: str) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "timezone": "browser",
            "time": {"from": self.time_from, "to": "now"},
            "refresh": self.refresh,
            "templating": {"list": [v.to_json(database) for v in self.variables]},
            "annotations": {"list": []},
            "links": [],
            "panels": self._layout(database),
        }

    def _layout(self, database: str) -> list[dict[str, Any]]:
        """Panels left to right within a row, rows top to bottom; ids in reading order."""
        panels: list[dict[str, Any]] = []
        y = 0
        for row in self.rows:
            width = sum(panel.width for panel in row)
            if width > GRID_COLUMNS:
                titles = ", ".join(panel.title for panel in row)
                raise ValueError(f"row [{titles}] is {width} columns wide (max {GRID_COLUMNS})")
            x = 0
            for panel in row:
                panels.append(panel.to_json(database, len(panels) + 1, x, y))
                x += panel.width
            y += max((panel.height for panel in row), default=0)
        return panels


def with_database(sql: str, database: str) -> str:
    return sql.replace("{db}", database)


# -- panel kinds ---------------------------------------------------------------------------------


def stat(title: str, sql: str, *, unit: str | None = None, width: int = 6, desc: str = "") -> Panel:
    return Panel(
        "stat",
        title,
        [Query(sql)],
        width,
        4,
        description=desc,
        unit=unit,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "value",
        },
    )


def timeseries(
    title: str, sql: str, *, unit: str | None = None, width: int = 12, desc: str = ""
) -> Panel:
    """`sql` returns a `time` column and either value columns (wide) or one label column and
    one value column (long; the plugin pivots it into one series per label)."""
    return Panel(
        "timeseries",
        title,
        [Query(sql, Format.TIME_SERIES)],
        width,
        8,
        description=desc,
        unit=unit,
        options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        custom={"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "spanNulls": True},
    )


def table(title: str, sql: str, *, width: int = 24, height: int = 8, desc: str = "") -> Panel:
    return Panel(
        "table",
        title,
        [Query(sql)],
        width,
        height,
        description=desc,
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    )


def barchart(
    title: str, sql: str, *, x_field: str, unit: str | None = None, width: int = 12, desc: str = ""
) -> Panel:
    return Panel(
        "barchart",
        title,
        [Query(sql)],
        width,
        8,
        description=desc,
        unit=unit,
        options={
            "xField": x_field,
            "orientation": "auto",
            "stacking": "none",
            "showValue": "auto",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        },
    )


def histogram(
    title: str, sql: str, *, bucket_size: float, unit: str | None = None, width: int = 12
) -> Panel:
    """`sql` returns one numeric column of raw values; Grafana buckets them."""
    return Panel(
        "histogram",
        title,
        [Query(sql)],
        width,
        8,
        unit=unit,
        options={
            "bucketSize": bucket_size,
            "combine": False,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        },
    )


@dataclass(slots=True)
class MapLayer:
    """Markers for the rows of one query, placed by its `lat`/`lon` columns."""

    name: str
    query: Query
    color: str
    symbol: str = "circle"
    size: int = 6
    label_field: str | None = None

    def to_json(self) -> dict[str, Any]:
        style: dict[str, Any] = {
            "color": {"fixed": self.color},
            "opacity": 0.8,
            "size": {"fixed": self.size, "min": 2, "max": 15},
            "symbol": {"fixed": f"img/icons/marker/{self.symbol}.svg", "mode": "fixed"},
        }
        if self.label_field:
            style["text"] = {"field": self.label_field, "fixed": "", "mode": "field"}
            style["textConfig"] = {"fontSize": 10, "offsetX": 0, "offsetY": -12}
        return {
            "type": "markers",
            "name": self.name,
            "config": {"showLegend": True, "style": style},
            "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
            "filterData": {"id": "byRefId", "options": self.query.ref_id},
            "tooltip": True,
        }


def geomap(title: str, layers: Sequence[MapLayer], *, height: int = 16, desc: str = "") -> Panel:
    return Panel(
        "geomap",
        title,
        [layer.query for layer in layers],
        GRID_COLUMNS,
        height,
        description=desc,
        options={
            "view": {"id": "fit", "allLayers": True, "padding": 10, "maxZoom": 16},
            "controls": {
                "showZoom": True,
                "mouseWheelZoom": True,
                "showAttribution": True,
                "showScale": True,
            },
            "basemap": {"type": "default", "name": "Basemap", "config": {}},
            "layers": [layer.to_json() for layer in layers],
            "tooltip": {"mode": "details"},
        },
    )
