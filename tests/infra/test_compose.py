"""The compose file and Grafana provisioning stay consistent with what is tested: every
SMART_STATION_* name they set is a setting, the datasource is the plugin the dashboards use,
and the mounted dashboards folder holds the built dashboards."""

from __future__ import annotations

import re
from pathlib import Path

from base.settings import ENV_PREFIX, Settings
from dashboards.build import DASHBOARD_DIR, build_dashboards
from dashboards.model import PLUGIN

INFRA = Path(__file__).parents[2] / "infra"
COMPOSE = (INFRA / "compose.yaml").read_text()
DATASOURCE = (INFRA / "grafana/provisioning/datasources/clickhouse.yaml").read_text()


def test_every_setting_name_in_the_deployment_is_a_setting() -> None:
    names = set(re.findall(rf"{ENV_PREFIX}([A-Z0-9_]+)", COMPOSE + DATASOURCE))
    assert names, "no settings found"
    assert {n.lower() for n in names} <= set(Settings.model_fields)


def test_datasource_is_the_dashboards_plugin_as_the_read_only_user() -> None:
    assert f"type: {PLUGIN}" in DATASOURCE
    assert "username: grafana_reader" in DATASOURCE
    assert all(
        t["datasource"]["type"] == PLUGIN
        for d in build_dashboards()
        for p in d["panels"]
        for t in p["targets"]
    )


def test_mounted_dashboards_folder_holds_the_four_dashboards() -> None:
    assert "../dashboards:/var/lib/grafana/dashboards/smart-station" in COMPOSE
    provider = (INFRA / "grafana/provisioning/dashboards/smart-station.yaml").read_text()
    assert "path: /var/lib/grafana/dashboards/smart-station" in provider
    assert len(list(DASHBOARD_DIR.glob("*.json"))) == len(build_dashboards()) == 4
