"""一图通览, the one-map command view: every officer's latest position, the incidents and the
dispatches on one map, with the few numbers a command room watches.

Positions and "last hour" are relative to the end of the dashboard's time range, so the wall
screen shows now and an analyst can replay any past moment."""

from __future__ import annotations

from dashboards.dispatch_performance import STATES, WAITING
from dashboards.model import Dashboard, MapLayer, Query, geomap, stat, table
from dashboards.variables import DATASOURCE, FRESH, STATION

UID = "smart-station-command-map"

OFFICERS_REPORTING = """
SELECT uniqExact(officer_id) AS officers
FROM {db}.gps_pings
WHERE ts > $__toTime - INTERVAL ${fresh} MINUTE AND ts <= $__toTime
  AND station_id IN (${station:singlequote})
"""

ALERTS_LAST_HOUR = """
SELECT count() AS alerts
FROM {db}.alerts FINAL
WHERE ts > $__toTime - INTERVAL 1 HOUR AND ts <= $__toTime
  AND station_id IN (${station:singlequote})
"""

ASSIGNED_SHARE = f"""
SELECT sum(assigned) / greatest(sum(alerts), 1) AS assigned_share
FROM {STATES}
"""

# A map layer shows at most this many marks: the latest of the time range.
MAP_MARKS = 500

# The latest position per officer: one argMax over a tuple keeps lat/lon/station together and
# avoids aliases shadowing columns (older ClickHouse servers reject that).
OFFICER_POSITIONS = """
SELECT
    officer_id,
    latest.1 AS lat,
    latest.2 AS lon,
    latest.3 AS station,
    latest.4 AS last_seen,
    officer_id IN (
        SELECT officer_id FROM {db}.assignments
        WHERE ts > $__toTime - INTERVAL 1 HOUR AND ts <= $__toTime
    ) AS dispatched_last_hour
FROM (
    SELECT officer_id, argMax((lat, lon, station_id, ts), event_utc_ms) AS latest
    FROM {db}.gps_pings
    WHERE ts > $__toTime - INTERVAL ${fresh} MINUTE AND ts <= $__toTime
      AND station_id IN (${station:singlequote})
    GROUP BY officer_id
)
"""

# The latest alerts of the range, `{latest}` below, capped at `{marks}` (a top-N read: only the
# kept rows' other columns are read; an alert the pipeline stored twice may show twice).
LATEST_ALERTS = """(
    SELECT alert_id, ts, station_id, category, priority, lat, lon, address
    FROM {db}.alerts
    WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
    ORDER BY ts DESC
    LIMIT {marks}
)"""


def latest_alerts(sql: str, marks: int) -> str:
    return sql.replace("{latest}", LATEST_ALERTS).replace("{marks}", str(marks))


INCIDENTS = latest_alerts(
    """
SELECT
    a.alert_id AS alert_id,
    a.ts AS alert_time,
    a.station_id AS station,
    a.category AS category,
    a.priority AS priority,
    a.lat AS lat,
    a.lon AS lon,
    a.address AS address,
    dispatched.units_assigned AS units_assigned
FROM {latest} AS a
LEFT JOIN (
    SELECT alert_id, uniqExact(officer_id) AS units_assigned
    FROM {db}.assignments
    WHERE ts >= $__fromTime AND alert_id IN (SELECT alert_id FROM {latest})
    GROUP BY alert_id
) AS dispatched ON dispatched.alert_id = a.alert_id
ORDER BY alert_time DESC
""",
    MAP_MARKS,
)

DISPATCHED_OFFICERS = """
SELECT
    assignment_id,
    alert_id,
    officer_id,
    officer_lat AS lat,
    officer_lon AS lon,
    distance_m,
    eta_s,
    ts AS assigned_at
FROM {db}.assignments
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
ORDER BY assigned_at DESC
LIMIT """ + str(MAP_MARKS)

# Every camera's latest record up to the end of the range: fixed cameras where they stand, body
# cameras at their own position if they sent one, else at their officer's latest ping.
CAMERAS = """
SELECT
    c.camera_id AS camera_id,
    c.kind AS kind,
    c.online AS online,
    c.heading_deg AS heading_deg,
    if(c.lat IS NULL, p.position.1, c.lat) AS lat,
    if(c.lon IS NULL, p.position.2, c.lon) AS lon
FROM (
    SELECT
        camera_id,
        argMax(kind, event_utc_ms) AS kind,
        argMax(officer_id, event_utc_ms) AS officer_id,
        argMax(lat, event_utc_ms) AS lat,
        argMax(lon, event_utc_ms) AS lon,
        argMax(heading_deg, event_utc_ms) AS heading_deg,
        argMax(online, event_utc_ms) AS online
    FROM {db}.cameras
    WHERE ts <= $__toTime AND station_id IN (${station:singlequote}, '')
    GROUP BY camera_id
) AS c
LEFT JOIN (
    SELECT officer_id, argMax((lat, lon), event_utc_ms) AS position
    FROM {db}.gps_pings
    WHERE ts > $__toTime - INTERVAL ${fresh} MINUTE AND ts <= $__toTime
    GROUP BY officer_id
) AS p ON p.officer_id = c.officer_id
WHERE c.lat IS NOT NULL OR p.officer_id != ''
ORDER BY camera_id
LIMIT """ + str(MAP_MARKS)

RECENT_INCIDENTS = latest_alerts(
    """
SELECT
    a.alert_id AS alert_id,
    a.ts AS alert_time,
    a.station_id AS station,
    a.category AS category,
    a.priority AS priority,
    a.address AS address,
    dispatched.officers AS officers,
    dispatched.first_assigned_s AS first_assigned_s
FROM {latest} AS a
LEFT JOIN (
    SELECT
        alert_id,
        arrayStringConcat(groupUniqArray(officer_id), ', ') AS officers,
        min(assigned_utc_ms - alert_utc_ms) / 1000 AS first_assigned_s
    FROM {db}.assignments
    WHERE ts >= $__fromTime AND alert_id IN (SELECT alert_id FROM {latest})
    GROUP BY alert_id
) AS dispatched ON dispatched.alert_id = a.alert_id
ORDER BY alert_time DESC
""",
    200,
)


# Each officer's latest status change in the time range (an officer without one is not counted).
OFFICER_STATUS = """(
    SELECT officer_id, argMax(status, event_utc_ms) AS status
    FROM {db}.officer_status_changes
    WHERE $__timeFilter(ts)
    GROUP BY officer_id
)"""

OFFICERS_AVAILABLE = "SELECT countIf(status = 'available') AS available FROM " + OFFICER_STATUS
OFFICERS_BUSY = (
    "SELECT countIf(status IN ('en_route', 'on_scene', 'busy')) AS busy FROM " + OFFICER_STATUS
)

H3_LOAD = """
SELECT h3_cell, sum(alerts) AS alerts, max(minute) AS last_alert_minute
FROM {db}.load_h3_minute
WHERE $__timeFilter(minute) AND station_id IN (${station:singlequote})
GROUP BY h3_cell
ORDER BY alerts DESC
LIMIT 20
"""


def command_map() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="一图通览 · One-map command view",
        description="Live officer positions, incidents and dispatches on one map.",
        time_from="now-1h",
        refresh="10s",
        variables=[DATASOURCE, STATION, FRESH],
        rows=[
            [
                stat(
                    "Officers reporting",
                    OFFICERS_REPORTING,
                    desc="Officers with a position in the last ${fresh} minutes.",
                ),
                stat("Alerts, last hour", ALERTS_LAST_HOUR),
                stat(
                    "Alerts assigned",
                    ASSIGNED_SHARE,
                    unit="percentunit",
                    desc="Share of the time range's alerts with at least one officer assigned.",
                ),
                stat(
                    "Alerts waiting",
                    WAITING,
                    desc="Alerts in the time range without any assignment.",
                ),
            ],
            [
                geomap(
                    "District map",
                    [
                        MapLayer(
                            "Officers",
                            Query(OFFICER_POSITIONS, ref_id="officers"),
                            color="blue",
                            label_field="officer_id",
                        ),
                        MapLayer(
                            "Incidents",
                            Query(INCIDENTS, ref_id="incidents"),
                            color="red",
                            symbol="triangle",
                            size=10,
                            label_field="category",
                        ),
                        MapLayer(
                            "Cameras",
                            Query(CAMERAS, ref_id="cameras"),
                            color="green",
                            symbol="square",
                            size=6,
                            label_field="camera_id",
                        ),
                        MapLayer(
                            "Dispatched officers",
                            Query(DISPATCHED_OFFICERS, ref_id="dispatched"),
                            color="orange",
                            symbol="star",
                            size=8,
                            label_field="alert_id",
                        ),
                    ],
                    desc="Blue: latest position of every officer reporting in the last "
                    "${fresh} minutes. Red: the latest 500 incidents in the time range. Green: "
                    "cameras (body cameras at their officer). Orange: where officers were when "
                    "dispatched (label: the alert).",
                )
            ],
            [
                stat(
                    "Officers available",
                    OFFICERS_AVAILABLE,
                    desc="Officers whose latest status in the time range is available.",
                ),
                stat(
                    "Officers busy",
                    OFFICERS_BUSY,
                    desc="Latest status en route, on scene or busy.",
                ),
                table("Load per H3 cell", H3_LOAD, width=12, height=8),
            ],
            [table("Incidents", RECENT_INCIDENTS, height=10)],
        ],
    )
