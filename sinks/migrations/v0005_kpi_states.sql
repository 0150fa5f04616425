-- Version 5: the per station and hour KPIs are kept pre-aggregated on insert, so a dashboard
-- reads a few thousand rows instead of joining every alert of the range with its lifecycle.
-- dispatch_events is rebuilt with its alert's station, time, category and priority and whether
-- it is the alert's first event of its kind (the loader stamps new events:
-- sinks/alert_stamps.py; stored rows are stamped here from alerts). kpi_station_hour_states
-- holds, per station and hour of the alerts' times, category and priority, quantile states of
-- the time to the first assignment, acknowledgement and arrival, the arrivals per whole second
-- (for any on-scene target) and the counts; kpi_station_hour is its finalised view per station
-- and hour, with the same columns as version 3's view. events_quality_minute holds, per
-- station, minute, source and time format, the events, inferred times and ingest lag the
-- data-quality dashboard shows (it read every ping of the range before).
-- Tables fed by materialized views keep a deduplication window too: a retried insert that its
-- source table drops as a repeat still reaches the views, and only a window on their target
-- drops it there (version 3's alert_lifecycle and load_h3_minute counted such a batch twice).
-- Steps and their order are in sinks/migrations/__init__.py (_kpi_states); {db} is the database.

ALTER TABLE {db}.alert_lifecycle MODIFY SETTING non_replicated_deduplication_window = 1000;

ALTER TABLE {db}.load_h3_minute MODIFY SETTING non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.dispatch_events__next (
    kind LowCardinality(String),
    alert_id String,
    officer_id String,
    assignment_id String DEFAULT '',
    detail String,
    at_utc_ms Int64,
    radius_m Nullable(Float64),
    waited_ms Nullable(Int64),
    station_id LowCardinality(String),
    alert_utc_ms Int64,
    category LowCardinality(String),
    priority UInt8,
    first_of_kind UInt8,
    kafka_partition Int32,
    kafka_offset Int64,
    loaded_at DateTime('UTC'),
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(at_utc_ms),
    INDEX ts_range ts TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(loaded_at)
ORDER BY (alert_id, at_utc_ms, kind, officer_id)
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO {db}.dispatch_events__next (kind, alert_id, officer_id, assignment_id, detail,
    at_utc_ms, radius_m, waited_ms, station_id, alert_utc_ms, category, priority, first_of_kind,
    kafka_partition, kafka_offset, loaded_at)
SELECT
    e.kind,
    e.alert_id,
    e.officer_id,
    e.assignment_id,
    e.detail,
    e.at_utc_ms,
    e.radius_m,
    e.waited_ms,
    a.station_id,
    a.utc_ms,
    a.category,
    a.priority,
    row_number() OVER (
        PARTITION BY e.alert_id, e.kind ORDER BY e.at_utc_ms, e.kafka_partition, e.kafka_offset
    ) = 1,
    e.kafka_partition,
    e.kafka_offset,
    e.loaded_at
FROM (SELECT * FROM {db}.dispatch_events FINAL) AS e
LEFT JOIN (
    SELECT
        alert_id,
        any(station_id) AS station_id,
        min(event_utc_ms) AS utc_ms,
        any(category) AS category,
        any(priority) AS priority
    FROM {db}.alerts
    GROUP BY alert_id
) AS a ON a.alert_id = e.alert_id;

CREATE TABLE IF NOT EXISTS {db}.kpi_station_hour_states (
    station_id LowCardinality(String),
    hour DateTime('UTC'),
    category LowCardinality(String),
    priority UInt8,
    alerts SimpleAggregateFunction(sum, UInt64),
    assigned SimpleAggregateFunction(sum, UInt64),
    assign_s AggregateFunction(quantilesIf(0.5, 0.9, 0.99), Float64, UInt8),
    acknowledge_s AggregateFunction(quantilesIf(0.5, 0.9, 0.99), Float64, UInt8),
    arrive_s AggregateFunction(quantilesIf(0.5, 0.9, 0.99), Float64, UInt8),
    arrivals_by_s SimpleAggregateFunction(sumMap, Tuple(Array(UInt32), Array(UInt64))),
    longest_assign_ms SimpleAggregateFunction(max, Int64),
    longest_waited_ms SimpleAggregateFunction(max, Int64),
    ack_timeouts SimpleAggregateFunction(sum, UInt64),
    withdrawals SimpleAggregateFunction(sum, UInt64),
    escalations SimpleAggregateFunction(sum, UInt64),
    backups SimpleAggregateFunction(sum, UInt64),
    unassigned SimpleAggregateFunction(sum, UInt64)
) ENGINE = AggregatingMergeTree
ORDER BY (station_id, hour, category, priority)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.kpi_events_mv TO {db}.kpi_station_hour_states AS
SELECT
    station_id,
    toStartOfHour(fromUnixTimestamp64Milli(alert_utc_ms)) AS hour,
    category,
    priority,
    countIf(kind = 'assigned' AND first_of_kind = 1) AS assigned,
    quantilesStateIf(0.5, 0.9, 0.99)(
        toFloat64((at_utc_ms - alert_utc_ms) / 1000), toUInt8(kind = 'assigned' AND first_of_kind = 1)
    ) AS assign_s,
    quantilesStateIf(0.5, 0.9, 0.99)(
        toFloat64((at_utc_ms - alert_utc_ms) / 1000),
        toUInt8(kind = 'acknowledged' AND first_of_kind = 1)
    ) AS acknowledge_s,
    quantilesStateIf(0.5, 0.9, 0.99)(
        toFloat64((at_utc_ms - alert_utc_ms) / 1000), toUInt8(kind = 'arrived' AND first_of_kind = 1)
    ) AS arrive_s,
    sumMap(
        if(kind = 'arrived' AND first_of_kind = 1,
           [toUInt32(greatest(0, ceil((at_utc_ms - alert_utc_ms) / 1000)))], []),
        if(kind = 'arrived' AND first_of_kind = 1, [toUInt64(1)], [])
    ) AS arrivals_by_s,
    maxIf(at_utc_ms - alert_utc_ms, kind = 'assigned' AND first_of_kind = 1) AS longest_assign_ms,
    max(ifNull(waited_ms, 0)) AS longest_waited_ms,
    countIf(kind = 'ack_timeout') AS ack_timeouts,
    countIf(kind = 'withdrawn') AS withdrawals,
    countIf(kind = 'escalated') AS escalations,
    countIf(kind = 'backup_requested') AS backups,
    countIf(kind = 'unassigned') AS unassigned
FROM {db}.dispatch_events
WHERE alert_utc_ms > 0
GROUP BY station_id, hour, category, priority;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.kpi_alerts_mv TO {db}.kpi_station_hour_states AS
SELECT
    station_id,
    toStartOfHour(fromUnixTimestamp64Milli(event_utc_ms)) AS hour,
    category,
    priority,
    count() AS alerts
FROM {db}.alerts
GROUP BY station_id, hour, category, priority;

CREATE TABLE IF NOT EXISTS {db}.events_quality_minute (
    station_id LowCardinality(String),
    minute DateTime('UTC'),
    source LowCardinality(String),
    time_format LowCardinality(String),
    events SimpleAggregateFunction(sum, UInt64),
    inferred SimpleAggregateFunction(sum, UInt64),
    lag_s AggregateFunction(quantiles(0.5, 0.9), Float64),
    lag_max_s SimpleAggregateFunction(max, Float64)
) ENGINE = AggregatingMergeTree
ORDER BY (station_id, minute, source, time_format)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.quality_pings_mv TO {db}.events_quality_minute AS
SELECT
    station_id,
    toStartOfMinute(fromUnixTimestamp64Milli(event_utc_ms)) AS minute,
    'gps' AS source,
    time_format,
    count() AS events,
    sum(time_inferred) AS inferred,
    quantilesState(0.5, 0.9)(toFloat64((ingest_utc_ms - event_utc_ms) / 1000)) AS lag_s,
    max(toFloat64((ingest_utc_ms - event_utc_ms) / 1000)) AS lag_max_s
FROM {db}.gps_pings
GROUP BY station_id, minute, time_format;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.quality_alerts_mv TO {db}.events_quality_minute AS
SELECT
    station_id,
    toStartOfMinute(fromUnixTimestamp64Milli(event_utc_ms)) AS minute,
    'alert' AS source,
    time_format,
    count() AS events,
    sum(time_inferred) AS inferred,
    quantilesState(0.5, 0.9)(toFloat64((ingest_utc_ms - event_utc_ms) / 1000)) AS lag_s,
    max(toFloat64((ingest_utc_ms - event_utc_ms) / 1000)) AS lag_max_s
FROM {db}.alerts
GROUP BY station_id, minute, time_format;

CREATE VIEW IF NOT EXISTS {db}.kpi_station_hour AS
SELECT
    station_id,
    hour,
    alerts,
    assign_s,
    acknowledge_s,
    arrive_s,
    arraySum(arrayMap((s, n) -> if(s <= 180, n, 0), arrivals.1, arrivals.2)) / greatest(alerts, 1)
        AS on_scene_within_3min,
    greatest(toInt64(alerts) - toInt64(assigned), 0) AS never_assigned,
    ack_timeouts,
    withdrawals,
    escalations,
    backups
FROM (
    SELECT
        station_id,
        hour,
        sum(alerts) AS alerts,
        sum(assigned) AS assigned,
        quantilesIfMerge(0.5, 0.9, 0.99)(assign_s) AS assign_s,
        quantilesIfMerge(0.5, 0.9, 0.99)(acknowledge_s) AS acknowledge_s,
        quantilesIfMerge(0.5, 0.9, 0.99)(arrive_s) AS arrive_s,
        sumMap(arrivals_by_s) AS arrivals,
        sum(ack_timeouts) AS ack_timeouts,
        sum(withdrawals) AS withdrawals,
        sum(escalations) AS escalations,
        sum(backups) AS backups
    FROM {db}.kpi_station_hour_states
    GROUP BY station_id, hour
)
