"""Pushing the dashboards to a Grafana (HTTP API, through grafana-client): each is created or
replaced by its uid, optionally inside a folder."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from base.errors import ConfigError, StackError
from dashboards.build import DEFAULT_DATABASE, build_dashboards
from dashboards.validate import dashboard_errors

log = logging.getLogger(__name__)


def dashboard_payload(
    dashboard: Mapping[str, Any], folder_uid: str | None = None
) -> dict[str, Any]:
    """The body of `POST /api/dashboards/db`: matched by uid (`id` null) and overwritten, so
    pushing twice is harmless."""
    payload: dict[str, Any] = {
        "dashboard": {**dashboard, "id": None},
        "overwrite": True,
        "message": "smart-station dashboards push",
    }
    if folder_uid:
        payload["folderUid"] = folder_uid
    return payload


def push_dashboards(
    url: str,
    token: str,
    folder_uid: str | None = None,
    *,
    database: str = DEFAULT_DATABASE,
    timeout_s: float = 10.0,
) -> list[str]:
    """Push every dashboard (reading `database`); returns their Grafana URLs."""
    from grafana_client import GrafanaApi  # imported late: only `push` needs an HTTP client

    dashboards = build_dashboards(database)
    for dashboard in dashboards:
        if errors := dashboard_errors(dashboard):
            raise ConfigError(f"dashboard {dashboard['uid']} is invalid: {errors[0]}")
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    urls = []
    for dashboard in dashboards:
        try:
            result = api.dashboard.update_dashboard(dashboard_payload(dashboard, folder_uid))
        except Exception as exc:  # the client raises many types; one line, never the token
            parts = urlsplit(url)
            raise StackError(
                f"Grafana at {parts.scheme}://{parts.hostname}:{parts.port or ''} refused "
                f"dashboard {dashboard['uid']}: {type(exc).__name__}"
            ) from exc
        log.info("dashboard pushed uid=%s version=%s", dashboard["uid"], result.get("version"))
        urls.append(str(result.get("url", dashboard["uid"])))
    return urls
