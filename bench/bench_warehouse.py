"""Benchmarks of the embedded warehouse (chDB), each against a peer in the same run.

    .venv/bin/python bench/bench_warehouse.py writer [--rows 200000] [--batch 5000] [--runs 3]
    .venv/bin/python bench/bench_warehouse.py panels [--pings 10000000] [--alerts 1000000]
    .venv/bin/python bench/bench_warehouse.py storage [--pings 2000000] (alerts: a tenth)

writer:  GPS pings through the loader's writer path (message -> row -> Warehouse.add -> flush:
         one Arrow table per batch, deduplication token, insert), rows/s in one process per
         wall second and per CPU second, against a raw chDB insert of the same row dicts
         (orjson + JSONEachRow; the floor is 80 % of it), a raw Arrow insert of them (no token),
         the raw JSON insert with a token, and a one-row-per-insert loop.
storage: the tables with LowCardinality or codecs (gps_pings, alerts, assignments,
         dead_letters) against copies of them without (same ORDER BY, LZ4): compressed bytes
         per column over the panels' generated data.
panels:  every dashboard panel's SQL (macros expanded like the plugin, the last 24 h, all
         stations) over generated pings, alerts, assignments and dispatch events: p50/p99 of 5
         runs each after one warm-up; the floor is every panel under 1 s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.build import build_dashboards
from dashboards.macros import TimeRange, expand
from sinks.callers import PhoneProtector
from sinks.migrations import migrate
from sinks.rows import gps_row
from sinks.warehouse import ChdbWarehouse

NOW_MS = int(time.time() * 1000)
PROTECTOR = PhoneProtector(b"bench-key-0123456789")


def machine() -> str:
    return f"{platform.python_version()}, {os.cpu_count()} cores, {platform.platform()}"


def ping_message(i: int) -> dict[str, Any]:
    return {
        "event_id": f"ev-{i}",
        "officer_id": f"OFF-{i % 2000:04d}",
        "station_id": f"ST-{i % 20:02d}",
        "lat": 29.5 + (i % 1000) / 10_000,
        "lon": 106.5 + (i % 777) / 10_000,
        "h3_cell": f"8840c8a4{i % 300:03x}ffff",
        "event_time": "2026-11-27T10:00:00+08:00",
        "event_utc_ms": NOW_MS + i,
        "ingest_utc_ms": NOW_MS + i + 40,
        "accuracy_m": 5.0,
        "time_quality": {"source_format": "iso8601", "inferred": False},
    }


def fresh(store: ChdbWarehouse, name: str) -> ChdbWarehouse:
    warehouse = ChdbWarehouse(store.path, name)
    warehouse.execute(f"DROP DATABASE IF EXISTS {name}")
    migrate(warehouse, PROTECTOR)
    return warehouse


# -- writer ---------------------------------------------------------------------------------------


class Clock:
    """Wall and CPU time (all threads of this process) of one timed path."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def writer(store: ChdbWarehouse, rows: int, batch: int, runs: int) -> None:
    messages = [ping_message(i) for i in range(rows)]
    paths = ("writer", "full", "raw", "raw_arrow", "tokened", "single")
    wall: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}

    def timed(path: str, clock: Clock, count: int = rows) -> None:
        wall[path].append(count / clock.wall)
        cpu[path].append(count / clock.cpu)

    for run in range(runs):
        flat = []
        for offset, message in enumerate(messages):
            row = gps_row(message)
            row.update(kafka_partition=0, kafka_offset=offset, loaded_at=NOW_MS // 1000)
            flat.append(row)
        warehouse = fresh(store, f"bench_writer_{run}")
        with Clock() as clock:
            for row in flat:
                warehouse.add("gps_pings", row)
                if warehouse.pending_rows >= batch:
                    warehouse.flush()
            warehouse.flush()
        timed("writer", clock)

        full = fresh(store, f"bench_full_{run}")
        with Clock() as clock:
            for offset, message in enumerate(messages):
                row = gps_row(message)
                row.update(kafka_partition=0, kafka_offset=offset, loaded_at=NOW_MS // 1000)
                full.add("gps_pings", row)
                if full.pending_rows >= batch:
                    full.flush()
            full.flush()
        timed("full", clock)

        raw = fresh(store, f"bench_raw_{run}")
        with Clock() as clock:
            for i in range(0, rows, batch):
                chunk = orjson.dumps(flat[i : i + batch]).decode()
                raw._session.query(
                    f"INSERT INTO {raw.database}.gps_pings FORMAT JSONEachRow {chunk}"
                )
        timed("raw", clock)

        raw_arrow = fresh(store, f"bench_raw_arrow_{run}")
        with Clock() as clock:
            for i in range(0, rows, batch):
                columns = pa.Table.from_pylist(flat[i : i + batch])
                names = ", ".join(columns.column_names)
                raw_arrow._session.query(
                    f"INSERT INTO {raw_arrow.database}.gps_pings ({names}) "
                    "SELECT * FROM Python(columns)"
                )
        timed("raw_arrow", clock)

        tokened = fresh(store, f"bench_tokened_{run}")
        with Clock() as clock:
            for i in range(0, rows, batch):
                data = orjson.dumps(flat[i : i + batch])
                token = hashlib.blake2b(data, digest_size=16).hexdigest()
                tokened._session.query(
                    f"INSERT INTO {tokened.database}.gps_pings SETTINGS "
                    f"insert_deduplication_token = '{token}' FORMAT JSONEachRow {data.decode()}"
                )
        timed("tokened", clock)

        single = fresh(store, f"bench_single_{run}")
        few = [orjson.dumps(row).decode() for row in flat[:1000]]
        with Clock() as clock:
            for line in few:
                single._session.query(
                    f"INSERT INTO {single.database}.gps_pings FORMAT JSONEachRow\n{line}"
                )
        timed("single", clock, len(few))
        for name in (warehouse, full, raw, raw_arrow, tokened, single):
            store.execute(f"DROP DATABASE {name.database}")
    w = {k: statistics.median(v) for k, v in wall.items()}
    c = {k: statistics.median(v) for k, v in cpu.items()}
    load = os.getloadavg()[0]
    print(f"machine: {machine()}; load {load:.1f}; {rows:,} pings, batches of {batch:,}, "
          f"{runs} runs (median); rows/s per wall second and per CPU second")  # fmt: skip
    print(f"{'path':<40}{'wall rows/s':>14}{'CPU rows/s':>14}")
    labels = {
        "writer": "writer: add + flush (Arrow, token)",
        "full": "writer from messages (+ gps_row)",
        "raw": "raw chDB insert (orjson, JSONEachRow)",
        "raw_arrow": "raw chDB insert (Arrow, no token)",
        "tokened": "raw JSONEachRow + dedup token",
        "single": "one row per insert (1,000 rows)",
    }
    for key, label in labels.items():
        print(f"{label:<40}{w[key]:>14,.0f}{c[key]:>14,.0f}")
    for peer in ("raw", "raw_arrow", "tokened"):
        print(f"writer / {labels[peer]}: wall {w['writer'] / w[peer]:.0%}, "
              f"CPU {c['writer'] / c[peer]:.0%}")  # fmt: skip
    print(f"writer / one-row loop: {w['writer'] / w['single']:.0f}x (floor: writer >= 80 % of raw)")


# -- storage --------------------------------------------------------------------------------------


CODEC_TABLES = ("gps_pings", "alerts", "assignments", "dead_letters")


def plain_copy(warehouse: ChdbWarehouse, table: str) -> str:
    """`table` again with every LowCardinality and codec taken out (same ORDER BY), filled with
    its rows: the 'without' of each choice, column by column."""
    db = warehouse.database
    columns = warehouse.query(
        f"SELECT name, type, default_kind FROM system.columns WHERE database = '{db}' "
        f"AND table = '{table}' ORDER BY position"
    )
    stored = [c for c in columns if c["default_kind"] not in ("MATERIALIZED", "ALIAS")]
    types = [re.sub(r"LowCardinality\((.*)\)", r"\1", c["type"]) for c in stored]
    [key] = warehouse.query(
        f"SELECT sorting_key FROM system.tables WHERE database = '{db}' AND name = '{table}'"
    )
    body = ", ".join(f"{c['name']} {t}" for c, t in zip(stored, types, strict=True))
    warehouse.execute(
        f"CREATE TABLE {db}.{table}_plain ({body}) ENGINE = MergeTree "
        f"ORDER BY ({key['sorting_key']}) SETTINGS min_bytes_for_wide_part = 0"
    )
    names = ", ".join(c["name"] for c in stored)
    warehouse.execute(f"INSERT INTO {db}.{table}_plain ({names}) SELECT {names} FROM {db}.{table}")
    return f"{table}_plain"


def storage(store: ChdbWarehouse, pings: int) -> None:
    """Compressed bytes per column of the tables with LowCardinality or codecs, with and
    without them, over the panels' generated data (pings and a tenth as many alerts)."""
    warehouse = fresh(store, "bench_storage")
    db = warehouse.database
    fill_pings(warehouse, pings)
    fill_rest(warehouse, pings // 10)
    pairs = {table: plain_copy(warehouse, table) for table in CODEC_TABLES}
    for table in (*pairs, *pairs.values()):  # wide parts: sizes per column (compact: none)
        warehouse.execute(f"ALTER TABLE {db}.{table} MODIFY SETTING min_bytes_for_wide_part = 0")
        warehouse.execute(f"OPTIMIZE TABLE {db}.{table} FINAL")
    print(f"machine: {machine()}; {pings:,} generated pings, {pings // 10:,} alerts; "
          "after OPTIMIZE FINAL; LZ4 is the default codec")  # fmt: skip
    print(f"{'table.column':<32}{'type and codec':<44}{'bytes':>12}{'without':>12}{'saved':>7}")
    for table, plain in pairs.items():
        rows = warehouse.query(
            f"SELECT c.name AS name, c.type AS type, c.compression_codec AS codec, "
            f"c.data_compressed_bytes AS bytes, p.data_compressed_bytes AS plain "
            f"FROM system.columns AS c JOIN system.columns AS p ON p.name = c.name "
            f"WHERE c.database = '{db}' AND p.database = '{db}' AND c.table = '{table}' "
            f"AND p.table = '{plain}' ORDER BY c.position"
        )
        total = [0, 0]
        for row in rows:
            total[0] += int(row["bytes"])
            total[1] += int(row["plain"])
            chosen = "LowCardinality" in row["type"] or row["codec"]
            if not chosen:
                continue
            what = f"{row['type'][:24]} {row['codec'].removeprefix('CODEC')}"
            saved = 1 - int(row["bytes"]) / max(int(row["plain"]), 1)
            print(f"{table + '.' + row['name']:<32}{what:<44}{int(row['bytes']):>12,}"
                  f"{int(row['plain']):>12,}{saved:>7.0%}")  # fmt: skip
        print(f"{table + ' (all columns)':<32}{'':<44}{total[0]:>12,}{total[1]:>12,}"
              f"{1 - total[0] / max(total[1], 1):>7.0%}")  # fmt: skip
    store.execute(f"DROP DATABASE {db}")


# -- panels ---------------------------------------------------------------------------------------


def fill_pings(warehouse: ChdbWarehouse, pings: int) -> None:
    """Pings of 2,000 officers in 20 stations over the last 24 h, generated inside chDB: each
    officer stays in an H3 cell for 40 pings, times jitter, a load second per 5 s batch."""
    start = NOW_MS - 86_400_000
    warehouse.execute(
        f"INSERT INTO {warehouse.database}.gps_pings (event_id, officer_id, station_id, lat, "
        "lon, h3_cell, event_time, event_utc_ms, ingest_utc_ms, accuracy_m, time_format, "
        "time_inferred, kafka_partition, kafka_offset, loaded_at) "
        "SELECT concat('ev-', toString(number)), concat('OFF-', toString(number % 2000)), "
        "concat('ST-', leftPad(toString(number % 2000 % 20), 2, '0')), "
        "29.4 + (cityHash64(number) % 3000) / 10000, 106.4 + (cityHash64(number, 1) % 3000) "
        "/ 10000, concat('8840c8a4', hex((number % 2000 * 2 + intDiv(number, 80000)) % 4000)), "
        "'', "
        f"{start} + intDiv(number * 86400000, {pings}) + cityHash64(number, 3) % 1000, "
        f"{start} + intDiv(number * 86400000, {pings}) + 50 + cityHash64(number, 4) % 3000, "
        "5.0, ['iso8601', 'epoch_ms', 'cn_12h'][1 + number % 3], number % 50 = 0, 0, number, "
        f"toDateTime(intDiv({start} + intDiv(number * 86400000, {pings}), 5000) * 5) "
        f"FROM numbers({pings})"
    )


def fill_rest(warehouse: ChdbWarehouse, alerts: int) -> None:
    db, start = warehouse.database, NOW_MS - 86_400_000
    at = f"({start} + intDiv(number * 86400000, {alerts}))"
    warehouse.execute(
        f"INSERT INTO {db}.alerts (alert_id, station_id, category, priority, lat, lon, h3_cell, "
        "address, description, caller_phone_masked, caller_phone_hmac, event_time, "
        "event_utc_ms, ingest_utc_ms, time_format, time_inferred, text_repaired, text_lossy, "
        "kafka_partition, kafka_offset, loaded_at) "
        "SELECT concat('AL-', toString(number)), concat('ST-', leftPad(toString(number % 20), "
        "2, '0')), ['theft', 'dispute', 'traffic', 'robbery'][1 + number % 4], 1 + number % 5, "
        "29.4 + (cityHash64(number) % 3000) / 10000, 106.4 + (cityHash64(number, 2) % 3000) / "
        "10000, concat('8840c8a4', hex(number % 4000)), 'addr', '', '*******1234', "
        "hex(cityHash64(number % 50000)), '', "
        f"{at}, {at} + 80, ['iso8601', 'cn_12h'][1 + number % 2], number % 40 = 0, "
        f"number % 30 = 0, 0, 0, number, toDateTime(intDiv({at}, 1000)) FROM numbers({alerts})"
    )
    served = "number % 25 != 0"  # one alert in 25 never gets an officer
    warehouse.execute(
        f"INSERT INTO {db}.assignments (assignment_id, alert_id, officer_id, station_id, "
        "category, priority, reason, units_needed, alert_lat, alert_lon, officer_lat, "
        "officer_lon, distance_m, eta_s, alert_utc_ms, assigned_utc_ms, assigned_time, "
        "caller_phone_masked, caller_phone_hmac, payload, kafka_partition, kafka_offset, "
        "loaded_at) SELECT concat('AL-', toString(number), ':OFF-', toString(number % 2000)), "
        "concat('AL-', toString(number)), concat('OFF-', toString(number % 2000)), "
        "concat('ST-', leftPad(toString(number % 20), 2, '0')), 'theft', 1 + number % 5, "
        "if(number % 17 = 0, 'reassignment', 'dispatch'), 1, 29.5, 106.5, 29.51, 106.51, "
        f"100 + number % 4000, 20 + number % 500, {at}, {at} + 2000 + number % 30000, '', "
        "'*******1234', '', toJSONString(map('assignment_id', concat('AL-', toString(number), "
        "':OFF-', toString(number % 2000), ':1'), 'category', 'theft', 'lat', "
        "toString(29.4 + (cityHash64(number) % 3000) / 10000), 'address', "
        "concat('解放碑步行街', toString(number % 500), '号'), 'caller_phone', "
        "concat('*******', leftPad(toString(number % 10000), 4, '0')), 'caller_phone_hmac', "
        "hex(cityHash64(number % 50000)))), "
        f"0, number, toDateTime(intDiv({at}, 1000)) "
        f"FROM numbers({alerts}) WHERE {served}"
    )
    steps = [
        ("unassigned", 1000, "number % 25 = 0 OR number % 11 = 0"),  # queued first
        ("assigned", 2000, served),
        ("acknowledged", 40_000, served),
        ("arrived", 200_000, f"{served} AND number % 7 != 0"),
        ("ack_timeout", 60_000, "number % 23 = 0"),
        ("backup_requested", 300_000, "number % 50 = 0"),
    ]
    for kind, after_ms, where in steps:
        warehouse.execute(  # stamped with the alert's station and time, as the loader does
            f"INSERT INTO {db}.dispatch_events (kind, alert_id, officer_id, detail, at_utc_ms, "
            "station_id, alert_utc_ms, first_of_kind, kafka_partition, kafka_offset, loaded_at) "
            f"SELECT '{kind}', concat('AL-', toString(number)), '', '', "
            f"{at} + {after_ms} + number % 60000, concat('ST-', leftPad(toString(number % 20), "
            f"2, '0')), {at}, 1, 0, number, toDateTime(intDiv({at}, 1000)) "
            f"FROM numbers({alerts}) WHERE {where}"
        )
    warehouse.execute(
        f"INSERT INTO {db}.officer_status_changes (officer_id, status, alert_id, event_time, "
        "event_utc_ms, time_format, time_inferred, kafka_partition, kafka_offset, loaded_at) "
        "SELECT concat('OFF-', toString(number % 2000)), ['available', 'en_route', "
        f"'on_scene'][1 + number % 3], '', '', {at}, 'iso8601', 0, 0, number, "
        f"toDateTime(intDiv({at}, 1000)) FROM numbers({alerts})"
    )
    warehouse.execute(
        f"INSERT INTO {db}.dead_letters (source_topic, source_partition, source_offset, reason, "
        "message, station_id, original_b64, dead_utc_ms, kafka_partition, kafka_offset, "
        "loaded_at) SELECT 'gps.pings', 0, number, ['invalid_time', 'invalid_json'][1 + number "
        "% 2], '', concat('ST-', leftPad(toString(number % 20), 2, '0')), "
        "base64Encode(toJSONString(map('alert_id', concat('D', toString(number)), 'tel', "
        "concat('*******', "
        "leftPad(toString(number % 10000), 4, '0')), 'time', concat('32/13/2022 ', "
        f"toString(number % 86400))))), {at}, 0, number, "
        f"toDateTime(intDiv({at}, 1000)) FROM numbers({alerts // 100})"
    )
    now_ms = NOW_MS
    warehouse.execute(
        f"INSERT INTO {db}.loader_batches SELECT {now_ms} - number * 1000, 'loader', "
        "['gps_pings', 'alerts'][1 + number % 2], 5000, 300, 12.5 FROM numbers(86400)"
    )
    warehouse.execute(
        f"INSERT INTO {db}.consumer_lag SELECT {now_ms} - intDiv(number, 8) * 10000, "
        "['smart-station', 'smart-station-warehouse'][1 + number % 2], 'gps.pings', number % 4, "
        "number % 100 FROM numbers(8640 * 8)"
    )


def panels(store: ChdbWarehouse, pings: int, alerts: int, runs: int) -> None:
    warehouse = fresh(store, "bench_panels")
    started = time.perf_counter()
    fill_pings(warehouse, pings)
    fill_rest(warehouse, alerts)
    filled_s = time.perf_counter() - started
    now = datetime.now(UTC)
    window = TimeRange(now - timedelta(hours=24), now + timedelta(minutes=1), 60_000)
    stations = [f"ST-{i:02d}" for i in range(20)]
    variables = {"station": stations, "fresh": "15", "target_s": "180"}
    print(
        f"machine: {machine()}; {pings:,} pings, {alerts:,} alerts (+ assignments, events, "
        f"status changes) generated in {filled_s:.0f}s; last 24 h, all stations; "
        f"{runs} runs per panel after a warm-up"
    )
    print(f"{'dashboard / panel / query':<72}{'p50 ms':>9}{'p99 ms':>9}")
    worst = 0.0
    for dashboard in build_dashboards(warehouse.database):
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                sql = expand(target["rawSql"], window, variables)
                warehouse.query_text(sql, "Null")
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    warehouse.query_text(sql, "Null")
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
                worst = max(worst, p99)
                name = f"{dashboard['uid'].removeprefix('smart-station-')} / {panel['title']}"
                print(f"{name[:64] + ' / ' + target['refId']:<72}"
                      f"{statistics.median(times):>9.0f}{p99:>9.0f}")  # fmt: skip
    print(f"slowest panel p99: {worst:.0f} ms (floor: every panel under 1,000 ms)")
    store.execute(f"DROP DATABASE {warehouse.database}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["writer", "storage", "panels"])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pings", type=int, default=10_000_000)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="chDB folder (default: a temp)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-warehouse-"))
    store = ChdbWarehouse(folder, "bench")
    if args.what == "writer":
        writer(store, args.rows, args.batch, args.runs)
    elif args.what == "storage":
        storage(store, args.pings)
    else:
        panels(store, args.pings, args.alerts, max(args.runs, 5))


if __name__ == "__main__":
    main()
