"""The same migrations, writer and read-only user on a ClickHouse server. Runs only when
SMART_STATION_CLICKHOUSE_URL names one (these machines have none): everything else is tested on
chDB, which runs the same SQL."""

from __future__ import annotations

import os
import uuid

import pytest

from sinks.migrations import CODE_VERSION, current_version, ensure_grafana_reader, migrate
from sinks.warehouse import ClickHouseWarehouse
from tests.support.clients import TEST_PROTECTOR

URL = os.environ.get("SMART_STATION_CLICKHOUSE_URL") or os.environ.get("CLICKHOUSE_URL")
pytestmark = pytest.mark.skipif(
    not URL, reason="no ClickHouse server: set SMART_STATION_CLICKHOUSE_URL to run these"
)


def test_server_migrates_writes_once_and_has_a_read_only_reader() -> None:
    assert URL is not None
    database = f"t_{uuid.uuid4().hex[:10]}"
    warehouse = ClickHouseWarehouse(URL, database)
    try:
        migrate(warehouse, TEST_PROTECTOR)
        assert current_version(warehouse) == CODE_VERSION
        row = {"kind": "assigned", "alert_id": "A1", "at_utc_ms": 1, "loaded_at": 0}
        for _ in range(2):  # the same batch retried: one insert stored
            warehouse.add("dispatch_events", row)
            warehouse.flush()
        n = warehouse.query("SELECT count() AS n FROM {db}.dispatch_events")[0]["n"]
        assert n == 1
        ensure_grafana_reader(warehouse, "reader-" + uuid.uuid4().hex)
        grants = warehouse.query_text("SHOW GRANTS FOR grafana_reader", "TSV").decode()
        assert f"GRANT SELECT ON {database}.*" in grants
    finally:
        warehouse.execute(f"DROP DATABASE IF EXISTS {database}")
        warehouse.close()
