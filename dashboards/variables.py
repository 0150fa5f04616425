"""Template variables the dashboards share. Queries filter with `station_id IN
(${station:singlequote})` (every value quoted, so "All" works too)."""

from __future__ import annotations

from dashboards.model import PLUGIN, Variable

DATASOURCE = Variable("datasource", "ClickHouse", "datasource", PLUGIN)
STATION = Variable(
    "station",
    "Station",
    "query",
    "SELECT DISTINCT station_id FROM {db}.gps_pings ORDER BY station_id",
    multi=True,
    include_all=True,
)
FRESH = Variable("fresh", "Position age (min)", "custom", "5,15,60,240", current="15")
