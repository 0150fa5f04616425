"""Data quality per station: how many events each station sends, which time formats they use
and how often the time had to be inferred, repaired text, ingest lag, and what was rejected to
the dead-letter topic and why."""

from __future__ import annotations

from dashboards.model import Dashboard, barchart, stat, table, timeseries
from dashboards.variables import DATASOURCE, STATION

UID = "smart-station-data-quality"

# Normalised events of both kinds as one relation, `{events}` in the queries below.
EVENTS = """(
    SELECT 'gps' AS source, station_id, time_format, time_inferred, ts FROM {db}.gps_pings
    UNION ALL
    SELECT 'alert' AS source, station_id, time_format, time_inferred, ts FROM {db}.alerts
)"""


def with_events(sql: str) -> str:
    return sql.replace("{events}", EVENTS)


EVENT_COUNT = with_events(
    """
SELECT count() AS events
FROM {events}
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""
)

DEAD_LETTER_COUNT = """
SELECT count() AS dead_letters
FROM {db}.dead_letters
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote}, '')
"""

INFERRED_SHARE = with_events(
    """
SELECT avg(time_inferred) AS inferred_share
FROM {events}
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
"""
)

DEAD_LETTER_SHARE = with_events(
    """
SELECT dead / greatest(dead + events, 1) AS dead_letter_share
FROM (
    SELECT count() AS dead
    FROM {db}.dead_letters
    WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote}, '')
) AS d
CROSS JOIN (
    SELECT count() AS events
    FROM {events}
    WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
) AS e
"""
)

EVENTS_PER_STATION = with_events(
    """
SELECT $__timeInterval(ts) AS time, station_id AS station, count() AS events
FROM {events}
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY time, station
ORDER BY time
"""
)

DEAD_LETTERS_OVER_TIME = """
SELECT $__timeInterval(ts) AS time, reason, count() AS dead_letters
FROM {db}.dead_letters
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote}, '')
GROUP BY time, reason
ORDER BY time
"""

TIME_FORMATS = with_events(
    """
SELECT
    station_id AS station,
    source,
    time_format,
    count() AS events,
    sum(time_inferred) AS inferred,
    avg(time_inferred) AS inferred_share
FROM {events}
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY station, source, time_format
ORDER BY station, source, events DESC
"""
)

INFERRED_PER_STATION = with_events(
    """
SELECT station_id AS station, avg(time_inferred) AS inferred_share
FROM {events}
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY station
ORDER BY station
"""
)

DEAD_LETTERS = """
SELECT
    reason,
    if(station_id = '', '(unknown)', station_id) AS station,
    source_topic,
    count() AS dead_letters,
    any(message) AS example
FROM {db}.dead_letters
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote}, '')
GROUP BY reason, station, source_topic
ORDER BY dead_letters DESC
"""

TEXT_REPAIR = """
SELECT
    station_id AS station,
    count() AS alerts,
    sum(text_repaired) AS repaired,
    sum(text_lossy) AS lossy
FROM {db}.alerts FINAL
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY station
ORDER BY station
"""

INGEST_LAG = """
SELECT
    station_id AS station,
    count() AS pings,
    quantile(0.5)((ingest_utc_ms - event_utc_ms) / 1000) AS lag_p50_s,
    quantile(0.9)((ingest_utc_ms - event_utc_ms) / 1000) AS lag_p90_s,
    max((ingest_utc_ms - event_utc_ms) / 1000) AS lag_max_s
FROM {db}.gps_pings
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY station
ORDER BY station
"""


def data_quality() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="Data quality per station",
        description="Events, time formats, inferred times, text repair and dead letters.",
        time_from="now-24h",
        variables=[DATASOURCE, STATION],
        rows=[
            [
                stat("Events", EVENT_COUNT, desc="Normalised GPS pings and alerts."),
                stat(
                    "Dead letters",
                    DEAD_LETTER_COUNT,
                    desc="Rejected events (also those whose station is unknown).",
                ),
                stat(
                    "Times inferred",
                    INFERRED_SHARE,
                    unit="percentunit",
                    desc="Share of events whose time needed a guess (no zone, 12-hour clock…).",
                ),
                stat("Dead-letter share", DEAD_LETTER_SHARE, unit="percentunit"),
            ],
            [
                timeseries("Events per station", EVENTS_PER_STATION),
                timeseries("Dead letters by reason", DEAD_LETTERS_OVER_TIME),
            ],
            [
                table("Time formats per station", TIME_FORMATS, width=16),
                barchart(
                    "Inferred time share",
                    INFERRED_PER_STATION,
                    x_field="station",
                    unit="percentunit",
                    width=8,
                ),
            ],
            [table("Dead letters by reason and station", DEAD_LETTERS)],
            [
                table("Alert text repair per station", TEXT_REPAIR, width=12),
                table("GPS ingest lag per station", INGEST_LAG, width=12),
            ],
        ],
    )
