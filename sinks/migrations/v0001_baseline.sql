-- One DDL for chDB and ClickHouse server. {db} is replaced by the configured database name.
-- ReplacingMergeTree + a natural key makes the at-least-once loader idempotent (replays collapse).
CREATE DATABASE IF NOT EXISTS {db};

CREATE TABLE IF NOT EXISTS {db}.gps_pings (
    event_id String,
    officer_id String,
    station_id LowCardinality(String),
    lat Float64,
    lon Float64,
    h3_cell String,
    event_time String,
    event_utc_ms Int64,
    ingest_utc_ms Int64,
    accuracy_m Nullable(Float64),
    time_format LowCardinality(String),
    time_inferred UInt8,
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(event_utc_ms)
) ENGINE = ReplacingMergeTree
ORDER BY (officer_id, event_utc_ms, event_id);

CREATE TABLE IF NOT EXISTS {db}.alerts (
    alert_id String,
    station_id LowCardinality(String),
    category LowCardinality(String),
    priority UInt8,
    lat Float64,
    lon Float64,
    h3_cell String,
    address String,
    description String,
    caller_phone String,
    event_time String,
    event_utc_ms Int64,
    ingest_utc_ms Int64,
    time_format LowCardinality(String),
    time_inferred UInt8,
    text_repaired UInt8,
    text_lossy UInt8,
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(event_utc_ms)
) ENGINE = ReplacingMergeTree
ORDER BY (alert_id);

CREATE TABLE IF NOT EXISTS {db}.assignments (
    assignment_id String,
    alert_id String,
    officer_id String,
    station_id LowCardinality(String),
    category LowCardinality(String),
    priority UInt8,
    alert_lat Float64,
    alert_lon Float64,
    officer_lat Float64,
    officer_lon Float64,
    distance_m Float64,
    eta_s Float64,
    alert_utc_ms Int64,
    assigned_utc_ms Int64,
    assigned_time String,
    payload String,
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(assigned_utc_ms)
) ENGINE = ReplacingMergeTree
ORDER BY (assignment_id);

CREATE TABLE IF NOT EXISTS {db}.dispatch_events (
    kind LowCardinality(String),
    alert_id String,
    officer_id String,
    detail String,
    at_utc_ms Int64,
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(at_utc_ms)
) ENGINE = ReplacingMergeTree
ORDER BY (alert_id, at_utc_ms, kind, officer_id);

CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    reason LowCardinality(String),
    message String,
    station_id LowCardinality(String),
    original_b64 String,
    dead_utc_ms Int64,
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(dead_utc_ms)
) ENGINE = ReplacingMergeTree
ORDER BY (source_topic, source_partition, source_offset);
