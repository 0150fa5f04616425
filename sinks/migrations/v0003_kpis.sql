-- Version 3: what the dispatch KPIs read, kept up to date on insert.
-- alert_lifecycle: one row per alert (after merges) with the first time it was assigned,
-- acknowledged and reached, and how often it timed out, was reassigned, widened or asked for
-- backup; fed by a materialized view on dispatch_events (a dispatch event carries no station,
-- so the station and hour roll-up, kpi_station_hour, joins it with alerts when read).
-- load_h3_minute: alerts per station, H3 cell and minute, fed by a view on alerts.

CREATE TABLE IF NOT EXISTS {db}.alert_lifecycle (
    alert_id String,
    assigned_ms SimpleAggregateFunction(min, Nullable(Int64)),
    acknowledged_ms SimpleAggregateFunction(min, Nullable(Int64)),
    arrived_ms SimpleAggregateFunction(min, Nullable(Int64)),
    cleared_ms SimpleAggregateFunction(max, Nullable(Int64)),
    waited_ms SimpleAggregateFunction(max, Nullable(Int64)),
    assignments SimpleAggregateFunction(sum, UInt64),
    ack_timeouts SimpleAggregateFunction(sum, UInt64),
    withdrawals SimpleAggregateFunction(sum, UInt64),
    escalations SimpleAggregateFunction(sum, UInt64),
    backups SimpleAggregateFunction(sum, UInt64),
    unassigned SimpleAggregateFunction(sum, UInt64)
) ENGINE = AggregatingMergeTree
ORDER BY alert_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.alert_lifecycle_mv TO {db}.alert_lifecycle AS
SELECT
    alert_id,
    if(kind = 'assigned', at_utc_ms, NULL) AS assigned_ms,
    if(kind = 'acknowledged', at_utc_ms, NULL) AS acknowledged_ms,
    if(kind = 'arrived', at_utc_ms, NULL) AS arrived_ms,
    if(kind = 'cleared', at_utc_ms, NULL) AS cleared_ms,
    waited_ms,
    toUInt64(kind = 'assigned') AS assignments,
    toUInt64(kind = 'ack_timeout') AS ack_timeouts,
    toUInt64(kind = 'withdrawn') AS withdrawals,
    toUInt64(kind = 'escalated') AS escalations,
    toUInt64(kind = 'backup_requested') AS backups,
    toUInt64(kind = 'unassigned') AS unassigned
FROM {db}.dispatch_events;

CREATE TABLE IF NOT EXISTS {db}.load_h3_minute (
    station_id LowCardinality(String),
    h3_cell LowCardinality(String),
    minute DateTime('UTC'),
    alerts UInt64
) ENGINE = SummingMergeTree
ORDER BY (station_id, minute, h3_cell);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.load_h3_minute_mv TO {db}.load_h3_minute AS
SELECT
    station_id,
    h3_cell,
    toStartOfMinute(fromUnixTimestamp64Milli(event_utc_ms)) AS minute,
    toUInt64(1) AS alerts
FROM {db}.alerts;

CREATE VIEW IF NOT EXISTS {db}.kpi_station_hour AS
SELECT
    a.station_id AS station_id,
    toStartOfHour(fromUnixTimestamp64Milli(a.event_utc_ms)) AS hour,
    count() AS alerts,
    quantilesIf(0.5, 0.9, 0.99)((l.assigned_ms - a.event_utc_ms) / 1000, l.assigned_ms IS NOT NULL)
        AS assign_s,
    quantilesIf(0.5, 0.9, 0.99)(
        (l.acknowledged_ms - a.event_utc_ms) / 1000, l.acknowledged_ms IS NOT NULL) AS acknowledge_s,
    quantilesIf(0.5, 0.9, 0.99)((l.arrived_ms - a.event_utc_ms) / 1000, l.arrived_ms IS NOT NULL)
        AS arrive_s,
    countIf(l.arrived_ms IS NOT NULL AND l.arrived_ms - a.event_utc_ms <= 180000) / count()
        AS on_scene_within_3min,
    countIf(l.assigned_ms IS NULL) AS never_assigned,
    sum(l.ack_timeouts) AS ack_timeouts,
    sum(l.withdrawals) AS withdrawals,
    sum(l.escalations) AS escalations,
    sum(l.backups) AS backups
FROM (SELECT * FROM {db}.alerts FINAL) AS a
LEFT JOIN (
    SELECT
        alert_id,
        min(assigned_ms) AS assigned_ms,
        min(acknowledged_ms) AS acknowledged_ms,
        min(arrived_ms) AS arrived_ms,
        sum(ack_timeouts) AS ack_timeouts,
        sum(withdrawals) AS withdrawals,
        sum(escalations) AS escalations,
        sum(backups) AS backups
    FROM {db}.alert_lifecycle
    GROUP BY alert_id
) AS l ON l.alert_id = a.alert_id
GROUP BY station_id, hour
