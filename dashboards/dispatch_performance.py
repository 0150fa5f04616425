"""Dispatch performance: the KPIs per station and hour (time to assign, acknowledge and arrive
at p50/p90/p99, share of alerts with an officer on scene within the target, ack timeouts,
reassignments, backups: from `alert_lifecycle`, fed on insert), how far officers are sent and
how long they need, per category and priority, and which alerts still wait. An assignment's
station is its officer's station; a KPI's station is its alert's."""

from __future__ import annotations

from dashboards.model import Dashboard, Variable, barchart, histogram, stat, table, timeseries
from dashboards.variables import DATASOURCE, STATION

TARGET = Variable("target_s", "On-scene target (s)", "custom", "120,180,300,600", current="180")

# Each alert of the time range with its first steps (NULL: not reached), `{lifecycle}` below.
LIFECYCLE = """(
    SELECT
        a.alert_id AS alert_id,
        a.station_id AS station_id,
        a.ts AS ts,
        a.event_utc_ms AS alert_ms,
        l.assigned_ms AS assigned_ms,
        l.acknowledged_ms AS acknowledged_ms,
        l.arrived_ms AS arrived_ms,
        l.waited_ms AS waited_ms,
        l.ack_timeouts AS ack_timeouts,
        l.withdrawals AS withdrawals,
        l.escalations AS escalations,
        l.backups AS backups
    FROM {db}.alerts AS a FINAL
    LEFT JOIN (
        SELECT
            alert_id,
            min(assigned_ms) AS assigned_ms,
            min(acknowledged_ms) AS acknowledged_ms,
            min(arrived_ms) AS arrived_ms,
            max(waited_ms) AS waited_ms,
            sum(ack_timeouts) AS ack_timeouts,
            sum(withdrawals) AS withdrawals,
            sum(escalations) AS escalations,
            sum(backups) AS backups
        FROM {db}.alert_lifecycle
        GROUP BY alert_id
    ) AS l ON l.alert_id = a.alert_id
    WHERE $__timeFilter(a.ts) AND a.station_id IN (${station:singlequote})
)"""


def with_lifecycle(sql: str) -> str:
    return sql.replace("{lifecycle}", LIFECYCLE)


def step_quantile(step: str, level: float) -> str:
    return with_lifecycle(
        f"""
SELECT round(quantileIf({level})(({step}_ms - alert_ms) / 1000, {step}_ms IS NOT NULL), 1)
    AS {step}_p{round(level * 100)}_s
FROM {{lifecycle}}
"""
    )


ON_SCENE_SHARE = with_lifecycle(
    """
SELECT countIf(arrived_ms - alert_ms <= ${target_s} * 1000) / greatest(count(), 1)
    AS on_scene_within_target
FROM {lifecycle}
"""
)

ACK_TIMEOUTS = with_lifecycle("SELECT sum(ack_timeouts) AS ack_timeouts FROM {lifecycle}")
BACKUPS = with_lifecycle("SELECT sum(backups) AS backups FROM {lifecycle}")

REASSIGNMENTS = """
SELECT countIf(reason = 'reassignment') AS reassignments
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

KPI_PER_STATION_HOUR = with_lifecycle(
    """
SELECT
    station_id AS station,
    toStartOfHour(ts) AS hour,
    count() AS alerts,
    round(quantileIf(0.5)((assigned_ms - alert_ms) / 1000, assigned_ms IS NOT NULL), 1)
        AS assign_p50_s,
    round(quantileIf(0.9)((assigned_ms - alert_ms) / 1000, assigned_ms IS NOT NULL), 1)
        AS assign_p90_s,
    round(quantileIf(0.99)((assigned_ms - alert_ms) / 1000, assigned_ms IS NOT NULL), 1)
        AS assign_p99_s,
    round(quantileIf(0.5)((acknowledged_ms - alert_ms) / 1000, acknowledged_ms IS NOT NULL), 1)
        AS acknowledge_p50_s,
    round(quantileIf(0.9)((acknowledged_ms - alert_ms) / 1000, acknowledged_ms IS NOT NULL), 1)
        AS acknowledge_p90_s,
    round(quantileIf(0.5)((arrived_ms - alert_ms) / 1000, arrived_ms IS NOT NULL), 1)
        AS arrive_p50_s,
    round(quantileIf(0.9)((arrived_ms - alert_ms) / 1000, arrived_ms IS NOT NULL), 1)
        AS arrive_p90_s,
    countIf(arrived_ms - alert_ms <= ${target_s} * 1000) / count() AS on_scene_within_target,
    sum(ack_timeouts) AS ack_timeouts,
    sum(withdrawals) AS withdrawals,
    sum(escalations) AS escalations,
    sum(backups) AS backups
FROM {lifecycle}
GROUP BY station, hour
ORDER BY hour DESC, station
"""
)

UID = "smart-station-dispatch"

ASSIGNMENTS = """
SELECT count() AS assignments
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

LONGEST_WAIT = with_lifecycle(
    """
SELECT max(ifNull(assigned_ms, toUnixTimestamp64Milli($__toTime_ms)) - alert_ms) / 1000
    AS longest_wait_s
FROM {lifecycle}
"""
)

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
        variables=[DATASOURCE, STATION, TARGET],
        rows=[
            [
                stat("Assign p50", step_quantile("assigned", 0.5), unit="s", width=3),
                stat("Assign p90", step_quantile("assigned", 0.9), unit="s", width=3),
                stat("Assign p99", step_quantile("assigned", 0.99), unit="s", width=3),
                stat("Acknowledge p50", step_quantile("acknowledged", 0.5), unit="s", width=3),
                stat("Acknowledge p90", step_quantile("acknowledged", 0.9), unit="s", width=3),
                stat("Acknowledge p99", step_quantile("acknowledged", 0.99), unit="s", width=3),
                stat("Arrive p50", step_quantile("arrived", 0.5), unit="s", width=3),
                stat("Arrive p90", step_quantile("arrived", 0.9), unit="s", width=3),
            ],
            [
                stat("Arrive p99", step_quantile("arrived", 0.99), unit="s", width=4),
                stat(
                    "On scene within target",
                    ON_SCENE_SHARE,
                    unit="percentunit",
                    width=4,
                    desc="Share of the alerts with an officer on scene within ${target_s} s.",
                ),
                stat("Ack timeouts", ACK_TIMEOUTS, width=4),
                stat("Reassignments", REASSIGNMENTS, width=4),
                stat("Backups requested", BACKUPS, width=4),
                stat("Assignments", ASSIGNMENTS, width=4),
            ],
            [table("KPIs per station and hour", KPI_PER_STATION_HOUR)],
            [
                stat("Distance p50", DISTANCE_P50, unit="lengthm", width=4),
                stat("ETA p50", ETA_P50, unit="s", width=4),
                stat("Alerts waiting", WAITING, width=4, desc="Alerts without any assignment."),
                stat("Longest wait", LONGEST_WAIT, unit="s", width=4),
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
