-- Version 2: every table the dashboards read, partitioned by the day it was loaded (one part per
-- insert, so an insert is all or nothing: the loader's exactly-once resume relies on it), with
-- the Kafka partition and offset each row came from, ORDER BY keys for the dashboards' filters
-- (station first, then time) and a min-max index on event time for the time picker.
-- Callers' numbers are stored masked plus a keyed hash, never in full.
-- Tables that existed in version 1 are created as `<name>__next` and swapped in after their
-- rows are copied (sinks/migrations/__init__.py); {db} is the configured database.

CREATE TABLE IF NOT EXISTS {db}.gps_pings__next (
    event_id String,
    officer_id String,
    station_id LowCardinality(String),
    lat Float64,
    lon Float64,
    h3_cell LowCardinality(String),
    event_time String,
    event_utc_ms Int64 CODEC(Delta, ZSTD(1)),
    ingest_utc_ms Int64 CODEC(Delta, ZSTD(1)),
    accuracy_m Nullable(Float32),
    time_format LowCardinality(String),
    time_inferred UInt8,
    kafka_partition Int32,
    kafka_offset Int64 CODEC(Delta, ZSTD(1)),
    loaded_at DateTime('UTC') CODEC(Delta, ZSTD(1)),
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(event_utc_ms),
    INDEX ts_range ts TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(loaded_at)
ORDER BY (station_id, officer_id, event_utc_ms, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.alerts__next (
    alert_id String,
    station_id LowCardinality(String),
    category LowCardinality(String),
    priority UInt8,
    lat Float64,
    lon Float64,
    h3_cell LowCardinality(String),
    address String,
    description String,
    caller_phone_masked String,
    caller_phone_hmac String,
    event_time String,
    event_utc_ms Int64,
    ingest_utc_ms Int64,
    time_format LowCardinality(String),
    time_inferred UInt8,
    text_repaired UInt8,
    text_lossy UInt8,
    kafka_partition Int32,
    kafka_offset Int64,
    loaded_at DateTime('UTC'),
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(event_utc_ms),
    INDEX ts_range ts TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(loaded_at)
ORDER BY (station_id, event_utc_ms, alert_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.assignments__next (
    assignment_id String,
    alert_id String,
    officer_id String,
    station_id LowCardinality(String),
    category LowCardinality(String),
    priority UInt8,
    reason LowCardinality(String),
    units_needed UInt8,
    alert_lat Float64,
    alert_lon Float64,
    officer_lat Float64,
    officer_lon Float64,
    distance_m Float64,
    eta_s Float64,
    alert_utc_ms Int64,
    assigned_utc_ms Int64,
    assigned_time String,
    caller_phone_masked String,
    caller_phone_hmac String,
    payload String CODEC(ZSTD(3)),
    kafka_partition Int32,
    kafka_offset Int64,
    loaded_at DateTime('UTC'),
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(assigned_utc_ms),
    INDEX ts_range ts TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(loaded_at)
ORDER BY (station_id, assignment_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.dispatch_events__next (
    kind LowCardinality(String),
    alert_id String,
    officer_id String,
    detail String,
    at_utc_ms Int64,
    radius_m Nullable(Float64),
    waited_ms Nullable(Int64),
    kafka_partition Int32,
    kafka_offset Int64,
    loaded_at DateTime('UTC'),
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(at_utc_ms),
    INDEX ts_range ts TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(loaded_at)
ORDER BY (alert_id, at_utc_ms, kind, officer_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.dead_letters__next (
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    reason LowCardinality(String),
    message String,
    station_id LowCardinality(String),
    original_b64 String CODEC(ZSTD(3)),
    phone_hmacs Array(String),
    dead_utc_ms Int64,
    kafka_partition Int32,
    kafka_offset Int64,
    loaded_at DateTime('UTC'),
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(dead_utc_ms),
    INDEX ts_range ts TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(loaded_at)
ORDER BY (source_topic, source_partition, source_offset)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.officer_status_changes (
    officer_id String,
    status LowCardinality(String),
    alert_id String,
    event_time String,
    event_utc_ms Int64,
    time_format LowCardinality(String),
    time_inferred UInt8,
    kafka_partition Int32,
    kafka_offset Int64,
    loaded_at DateTime('UTC'),
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(event_utc_ms),
    INDEX ts_range ts TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(loaded_at)
ORDER BY (officer_id, event_utc_ms, status)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.cameras (
    camera_id String,
    kind LowCardinality(String),
    station_id LowCardinality(String),
    officer_id String,
    lat Nullable(Float64),
    lon Nullable(Float64),
    heading_deg Float32,
    fov_deg Float32,
    range_m Float32,
    online UInt8,
    event_time String,
    event_utc_ms Int64,
    kafka_partition Int32,
    kafka_offset Int64,
    loaded_at DateTime('UTC'),
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(event_utc_ms)
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(loaded_at)
ORDER BY (camera_id, event_utc_ms)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.backup_requests (
    alert_id String,
    officer_id String,
    units UInt8,
    reason String,
    requested_utc_ms Int64,
    kafka_partition Int32,
    kafka_offset Int64,
    loaded_at DateTime('UTC'),
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(requested_utc_ms),
    INDEX ts_range ts TYPE minmax GRANULARITY 1
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(loaded_at)
ORDER BY (alert_id, requested_utc_ms, officer_id, kafka_partition, kafka_offset)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.loader_batches (
    at_utc_ms Int64,
    loader_id LowCardinality(String),
    table_name LowCardinality(String),
    rows UInt32,
    oldest_wait_ms Int64,
    write_ms Float32,
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(at_utc_ms)
) ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (table_name, at_utc_ms);

CREATE TABLE IF NOT EXISTS {db}.consumer_lag (
    at_utc_ms Int64,
    group_id LowCardinality(String),
    topic LowCardinality(String),
    partition Int32,
    lag Int64,
    ts DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(at_utc_ms)
) ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (group_id, topic, partition, at_utc_ms)
