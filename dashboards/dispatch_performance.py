"""Dispatch performance: the KPIs per station and hour (time to assign, acknowledge and arrive
at p50/p90/p99, share of alerts with an officer on scene within the target, ack timeouts,
reassignments, backups: from `kpi_station_hour_states`, fed on insert), how far officers are
sent and how long they need, per category and priority, and which alerts still wait. An assignment's
station is its officer's station; a KPI's station is its alert's.

Quantiles and histograms read without FINAL: the loader writes each Kafka record once, so a
repeat is a record the dispatcher sent twice (a booking announced again after a take-over),
rare enough not to move a percentile, and FINAL costs a merge at every read."""

from __future__ import annotations

from dashboards.model import Dashboard, Variable, barchart, histogram, stat, table, timeseries
from dashboards.variables import DATASOURCE, STATION

TARGET = Variable("target_s", "On-scene target (s)", "custom", "120,180,300,600", current="180")

# The KPI states (kept on insert, per station and hour of the alerts' times) of every hour that
# overlaps the time range: whole hours, a few hundred rows for a day of 20 stations.
STATES = """{db}.kpi_station_hour_states
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
  AND station_id IN (${station:singlequote})"""

LEVELS = (0.5, 0.9, 0.99)
STEP_STATES = {"assigned": "assign_s", "acknowledged": "acknowledge_s", "arrived": "arrive_s"}


def step_quantile(step: str, level: float) -> str:
    """p50/p90/p99 of the time from an alert to its first step (assigned, acknowledged,
    arrived), merged from the states of the range's station-hours."""
    column, index = STEP_STATES[step], LEVELS.index(level) + 1
    return f"""
SELECT round(quantilesIfMerge(0.5, 0.9, 0.99)({column})[{index}], 1)
    AS {step}_p{round(level * 100)}_s
FROM {STATES}
"""


def within_target(arrivals: str, alerts: str) -> str:
    """Share of alerts whose first arrival came within the target (arrivals per whole second)."""
    return (
        f"arraySum(arrayMap((s, n) -> if(s <= ${{target_s}}, n, 0), {arrivals}.1, {arrivals}.2))"
        f" / greatest({alerts}, 1)"
    )


ON_SCENE_SHARE = f"""
SELECT {within_target("arrivals", "alerts")} AS on_scene_within_target
FROM (SELECT sumMap(arrivals_by_s) AS arrivals, sum(alerts) AS alerts FROM {STATES})
"""

ACK_TIMEOUTS = f"SELECT sum(ack_timeouts) AS ack_timeouts FROM {STATES}"
BACKUPS = f"SELECT sum(backups) AS backups FROM {STATES}"

REASSIGNMENTS = """
SELECT countIf(reason = 'reassignment') AS reassignments
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

KPI_PER_STATION_HOUR = (
    """
SELECT
    station,
    hour,
    alerts,
    round(assign[1], 1) AS assign_p50_s,
    round(assign[2], 1) AS assign_p90_s,
    round(assign[3], 1) AS assign_p99_s,
    round(acknowledge[1], 1) AS acknowledge_p50_s,
    round(acknowledge[2], 1) AS acknowledge_p90_s,
    round(arrive[1], 1) AS arrive_p50_s,
    round(arrive[2], 1) AS arrive_p90_s,
    """
    + within_target("arrivals", "alerts")
    + """ AS on_scene_within_target,
    ack_timeouts,
    withdrawals,
    escalations,
    backups
FROM (
    SELECT
        station_id AS station,
        hour,
        sum(alerts) AS alerts,
        quantilesIfMerge(0.5, 0.9, 0.99)(assign_s) AS assign,
        quantilesIfMerge(0.5, 0.9, 0.99)(acknowledge_s) AS acknowledge,
        quantilesIfMerge(0.5, 0.9, 0.99)(arrive_s) AS arrive,
        sumMap(arrivals_by_s) AS arrivals,
        sum(ack_timeouts) AS ack_timeouts,
        sum(withdrawals) AS withdrawals,
        sum(escalations) AS escalations,
        sum(backups) AS backups
    FROM """
    + STATES
    + """
    GROUP BY station, hour
)
ORDER BY hour DESC, station
"""
)

UID = "smart-station-dispatch"

ASSIGNMENTS = """
SELECT count() AS assignments
FROM {db}.assignments FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

# The longest an alert of the range waited: to its first assignment, or, for one still waiting,
# as far as the last time the dispatcher reported its wait (when its search widened).
LONGEST_WAIT = f"""
SELECT greatest(max(longest_assign_ms), max(longest_waited_ms)) / 1000 AS longest_wait_s
FROM {STATES}
"""

DISTANCE_P50 = """
SELECT quantile(0.5)(distance_m) AS distance_p50_m
FROM {db}.assignments
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

ETA_P50 = """
SELECT quantile(0.5)(eta_s) AS eta_p50_s
FROM {db}.assignments
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

WAITING = f"""
SELECT greatest(toInt64(sum(alerts)) - toInt64(sum(assigned)), 0) AS waiting
FROM {STATES}
"""

LATENCY_OVER_TIME = """
SELECT
    $__timeInterval(ts) AS time,
    quantile(0.5)((assigned_utc_ms - alert_utc_ms) / 1000) AS p50,
    quantile(0.9)((assigned_utc_ms - alert_utc_ms) / 1000) AS p90,
    quantile(0.99)((assigned_utc_ms - alert_utc_ms) / 1000) AS p99
FROM {db}.assignments
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
FROM {db}.assignments
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

ETAS = """
SELECT eta_s / 60 AS eta_min
FROM {db}.assignments
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""

PER_CATEGORY = f"""
SELECT category, sum(alerts) AS alerts, sum(assigned) AS assigned
FROM {STATES}
GROUP BY category
ORDER BY alerts DESC
"""

PER_PRIORITY = f"""
SELECT concat('P', toString(priority)) AS priority_level, sum(alerts) AS alerts,
    sum(assigned) AS assigned
FROM {STATES}
GROUP BY priority_level
ORDER BY priority_level
"""

# uniq (adaptive sampling, exact up to 65,536 alerts per station) rather than uniqExact: over a
# day of a busy district the exact count doubled the panel's time.
PER_STATION = """
SELECT
    station,
    assignments,
    alerts,
    round(latency[1], 1) AS latency_p50_s,
    round(latency[2], 1) AS latency_p90_s,
    distance_p50_m,
    eta_p50_s
FROM (
    SELECT
        station_id AS station,
        count() AS assignments,
        uniq(alert_id) AS alerts,
        quantiles(0.5, 0.9)((assigned_utc_ms - alert_utc_ms) / 1000) AS latency,
        quantile(0.5)(distance_m) AS distance_p50_m,
        quantile(0.5)(eta_s) AS eta_p50_s
    FROM {db}.assignments
    WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
    GROUP BY station
)
ORDER BY station
"""

# Alerts the dispatcher put in the waiting queue (an `unassigned` event: no free officer within
# reach) that no officer has been assigned to since: the queue is small, so the range's alerts
# are only matched against it, and its assignments are looked up by alert id (the table's key).
WAITING_QUEUE = """(
    SELECT alert_id
    FROM {db}.dispatch_events
    WHERE kind = 'unassigned' AND first_of_kind = 1
      AND alert_utc_ms >= toUnixTimestamp64Milli($__fromTime_ms)
      AND station_id IN (${station:singlequote})
)"""

WAITING_ALERTS = (
    """
SELECT
    alert_id,
    ts AS alert_time,
    station_id AS station,
    category,
    priority,
    address,
    dateDiff('second', ts, $__toTime) AS waiting_s
FROM {db}.alerts
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
  AND alert_id IN {queue}
  AND alert_id NOT IN (
      SELECT alert_id FROM {db}.dispatch_events
      WHERE kind = 'assigned' AND alert_id IN {queue}
  )
ORDER BY priority, alert_time
LIMIT 1 BY alert_id
LIMIT 500
"""
).replace("{queue}", WAITING_QUEUE)


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
            [
                table(
                    "Alerts waiting for an officer",
                    WAITING_ALERTS,
                    desc="Alerts the dispatcher queued (no free officer within reach) that "
                    "no officer has been assigned to since; the 500 most urgent.",
                )
            ],
        ],
    )
