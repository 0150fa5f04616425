"""Pipeline health: what the loader wrote per table and second, its batch sizes and write
latency, how old a batch's oldest event was when written, and the consumer lag of every group
(workers and loader) as the loader measured it. The loader records all of it in the warehouse
(`loader_batches`, `consumer_lag`), so this dashboard needs nothing but the warehouse."""

from __future__ import annotations

from dashboards.model import Dashboard, stat, table, timeseries
from dashboards.variables import DATASOURCE

UID = "smart-station-pipeline-health"

ROWS_PER_SECOND = """
SELECT $__timeInterval(ts) AS time, table_name, sum(rows) / $__interval_s AS rows_per_s
FROM {db}.loader_batches
WHERE $__timeFilter(ts)
GROUP BY time, table_name
ORDER BY time
"""

BATCH_SIZES = """
SELECT $__timeInterval(ts) AS time, avg(rows) AS avg_rows, max(rows) AS max_rows
FROM {db}.loader_batches
WHERE $__timeFilter(ts)
GROUP BY time
ORDER BY time
"""

WRITE_LATENCY = """
SELECT
    $__timeInterval(ts) AS time,
    quantile(0.5)(write_ms) AS write_p50_ms,
    quantile(0.99)(write_ms) AS write_p99_ms,
    quantile(0.5)(oldest_wait_ms) AS oldest_event_age_p50_ms
FROM {db}.loader_batches
WHERE $__timeFilter(ts)
GROUP BY time
ORDER BY time
"""

LAG_PER_GROUP = """
SELECT time, group_id, sum(lag) AS lag
FROM (
    SELECT $__timeInterval(ts) AS time, group_id, topic, partition, argMax(lag, ts) AS lag
    FROM {db}.consumer_lag
    WHERE $__timeFilter(ts)
    GROUP BY time, group_id, topic, partition
)
GROUP BY time, group_id
ORDER BY time
"""

ROWS_LOADED = """
SELECT sum(rows) AS rows_loaded
FROM {db}.loader_batches
WHERE $__timeFilter(ts)
"""

LAST_BATCH_AGE = """
SELECT dateDiff('second', max(ts), now64(3)) AS last_batch_age_s
FROM {db}.loader_batches
"""

CURRENT_LAG = """
SELECT sum(lag) AS lag
FROM (
    SELECT group_id, topic, partition, argMax(lag, ts) AS lag
    FROM {db}.consumer_lag
    WHERE $__timeFilter(ts)
    GROUP BY group_id, topic, partition
)
"""

PER_TABLE = """
SELECT
    table_name,
    count() AS batches,
    sum(rows) AS rows_total,
    round(avg(rows), 1) AS avg_batch_rows,
    round(quantile(0.99)(write_ms), 1) AS write_p99_ms,
    max(ts) AS last_batch
FROM {db}.loader_batches
WHERE $__timeFilter(ts)
GROUP BY table_name
ORDER BY rows_total DESC
"""


def pipeline_health() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="Pipeline health",
        description="Loader throughput, batches, write latency and consumer lag per group.",
        time_from="now-1h",
        refresh="10s",
        variables=[DATASOURCE],
        rows=[
            [
                stat("Rows loaded", ROWS_LOADED, width=8),
                stat("Last batch", LAST_BATCH_AGE, unit="s", width=8),
                stat(
                    "Consumer lag",
                    CURRENT_LAG,
                    width=8,
                    desc="Records not yet processed, all groups, at the latest measure.",
                ),
            ],
            [
                timeseries("Rows written per second", ROWS_PER_SECOND),
                timeseries("Consumer lag per group", LAG_PER_GROUP),
            ],
            [
                timeseries("Batch size", BATCH_SIZES),
                timeseries("Write latency and event age", WRITE_LATENCY, unit="ms"),
            ],
            [table("Per table", PER_TABLE)],
        ],
    )
