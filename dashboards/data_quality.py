"""Data quality per station: how many events each station sends, which time formats they use
and how often the time had to be inferred, repaired text, ingest lag, and what was rejected to
the dead-letter topic and why."""

from __future__ import annotations

from dashboards.model import Dashboard, barchart, stat, table, timeseries
from dashboards.variables import DATASOURCE, STATION

UID = "smart-station-data-quality"

# Normalised events of both kinds, counted per station, minute, source and time format on insert
# (`events_quality_minute`), `{events}` in the queries below: `ts` is the minute.
EVENTS = """(
    SELECT source, station_id, time_format, minute AS ts, events AS n_events,
        inferred AS n_inferred
    FROM {db}.events_quality_minute
)"""


def with_events(sql: str) -> str:
    return sql.replace("{events}", EVENTS)


EVENT_COUNT = with_events(
    """
SELECT sum(n_events) AS events
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
SELECT sum(n_inferred) / greatest(sum(n_events), 1) AS inferred_share
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
    SELECT sum(n_events) AS events
    FROM {events}
    WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
) AS e
"""
)

EVENTS_PER_STATION = with_events(
    """
SELECT $__timeInterval(ts) AS time, station_id AS station, sum(n_events) AS events
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
    sum(n_events) AS events,
    sum(n_inferred) AS inferred,
    sum(n_inferred) / greatest(sum(n_events), 1) AS inferred_share
FROM {events}
WHERE $__timeFilter(ts) AND station_id IN (${station:singlequote})
GROUP BY station, source, time_format
ORDER BY station, source, events DESC
"""
)

INFERRED_PER_STATION = with_events(
    """
SELECT station_id AS station, sum(n_inferred) / greatest(sum(n_events), 1) AS inferred_share
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
SELECT station, pings, round(lag[1], 3) AS lag_p50_s, round(lag[2], 3) AS lag_p90_s, lag_max_s
FROM (
    SELECT
        station_id AS station,
        sum(events) AS pings,
        quantilesMerge(0.5, 0.9)(lag_s) AS lag,
        max(lag_max_s) AS lag_max_s
    FROM {db}.events_quality_minute
    WHERE source = 'gps' AND $__timeFilter(minute) AND station_id IN (${station:singlequote})
    GROUP BY station
)
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
