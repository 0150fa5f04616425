"""Dispatch performance: how fast alerts get an officer (latency from the alert's time to the
assignment), how far officers are sent and how long they need, per category and priority, and
which alerts still wait. An assignment's station is its officer's station."""

from __future__ import annotations

from dashboards.model import Dashboard, barchart, histogram, stat, table, timeseries
from dashboards.variables import DATASOURCE, STATION

UID = "smart-station-dispatch"

ASSIGNMENTS = """
SELECT count() AS assignments
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

LATENCY_P50 = """
SELECT quantile(0.5)((assigned_utc_ms - alert_utc_ms) / 1000) AS latency_p50_s
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

LATENCY_P90 = """
SELECT quantile(0.9)((assigned_utc_ms - alert_utc_ms) / 1000) AS latency_p90_s
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

DISTANCE_P50 = """
SELECT quantile(0.5)(distance_m) AS distance_p50_m
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

ETA_P50 = """
SELECT quantile(0.5)(eta_s) AS eta_p50_s
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

WAITING = """
SELECT countIf(alert_id NOT IN (SELECT alert_id FROM {db}.assignments)) AS waiting
FROM {db}.alerts FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

LATENCY_OVER_TIME = """
SELECT
    $__timeInterval(ts) AS time,
    quantile(0.5)((assigned_utc_ms - alert_utc_ms) / 1000) AS p50,
    quantile(0.9)((assigned_utc_ms - alert_utc_ms) / 1000) AS p90,
    quantile(0.99)((assigned_utc_ms - alert_utc_ms) / 1000) AS p99
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY time
ORDER BY time
"""

ALERTS_OVER_TIME = """
SELECT $__timeInterval(ts) AS time, category, count() AS alerts
FROM {db}.alerts FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY time, category
ORDER BY time
"""

DISTANCES = """
SELECT distance_m
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

ETAS = """
SELECT eta_s / 60 AS eta_min
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

PER_CATEGORY = """
SELECT
    category,
    count() AS alerts,
    countIf(alert_id IN (SELECT alert_id FROM {db}.assignments)) AS assigned
FROM {db}.alerts FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY category
ORDER BY alerts DESC
"""

PER_PRIORITY = """
SELECT
    concat('P', toString(priority)) AS priority_level,
    count() AS alerts,
    countIf(alert_id IN (SELECT alert_id FROM {db}.assignments)) AS assigned
FROM {db}.alerts FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY priority_level
ORDER BY priority_level
"""

PER_STATION = """
SELECT
    station_id AS station,
    count() AS assignments,
    uniqExact(alert_id) AS alerts,
    quantile(0.5)((assigned_utc_ms - alert_utc_ms) / 1000) AS latency_p50_s,
    quantile(0.9)((assigned_utc_ms - alert_utc_ms) / 1000) AS latency_p90_s,
    quantile(0.5)(distance_m) AS distance_p50_m,
    quantile(0.5)(eta_s) AS eta_p50_s
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY station
ORDER BY station
"""

WAITING_ALERTS = """
SELECT
    alert_id,
    ts AS alert_time,
    station_id AS station,
    category,
    priority,
    address,
    dateDiff('second', ts, $__toTime) AS waiting_s
FROM {db}.alerts FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
  AND alert_id NOT IN (SELECT alert_id FROM {db}.assignments)
ORDER BY priority, alert_time
"""


def dispatch_performance() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="Dispatch performance",
        description="Assignment latency, distances and ETAs, alerts per category and priority.",
        time_from="now-24h",
        variables=[DATASOURCE, STATION],
        rows=[
            [
                stat("Assignments", ASSIGNMENTS, width=4),
                stat("Latency p50", LATENCY_P50, unit="s", width=4),
                stat("Latency p90", LATENCY_P90, unit="s", width=4),
                stat("Distance p50", DISTANCE_P50, unit="lengthm", width=4),
                stat("ETA p50", ETA_P50, unit="s", width=4),
                stat("Alerts waiting", WAITING, width=4, desc="Alerts without any assignment."),
            ],
            [
                timeseries(
                    "Assignment latency",
                    LATENCY_OVER_TIME,
                    unit="s",
                    desc="From the alert's time to the assignment, per assignment.",
                ),
                timeseries("Alerts per category", ALERTS_OVER_TIME),
            ],
            [
                histogram("Distance to incident", DISTANCES, bucket_size=250, unit="lengthm"),
                histogram("ETA", ETAS, bucket_size=1, unit="m"),
            ],
            [
                barchart("Alerts per category", PER_CATEGORY, x_field="category"),
                barchart("Alerts per priority", PER_PRIORITY, x_field="priority_level"),
            ],
            [table("Per station (officer's station)", PER_STATION)],
            [table("Alerts without an assignment", WAITING_ALERTS)],
        ],
    )
