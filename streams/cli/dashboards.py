"""`dashboards build | check | push`: Grafana dashboards kept as code."""

from __future__ import annotations

from typing import Annotated

import typer

from base.addresses import check_http_url
from streams.cli.context import fail, settings

dashboards_cli = typer.Typer(no_args_is_help=True, help="Grafana dashboards kept as code.")


@dashboards_cli.command("build")
def dashboards_build() -> None:
    """Write the dashboard JSON files from their Python definitions."""
    from dashboards.build import write_dashboards

    for path in write_dashboards(settings().warehouse_database):
        typer.echo(f"wrote {path}")


@dashboards_cli.command("check")
def dashboards_check() -> None:
    """Fail if a dashboard file is stale or invalid."""
    from dashboards.build import check_dashboards

    problems = check_dashboards(settings().warehouse_database)
    if problems:
        fail("; ".join(problems))
    typer.echo("dashboards up to date and valid")


@dashboards_cli.command("push")
def dashboards_push(
    grafana_url: Annotated[str, typer.Option(envvar="SMART_STATION_GRAFANA_URL")],
    token: Annotated[
        str, typer.Option(envvar="SMART_STATION_GRAFANA_TOKEN", help="API token (never printed).")
    ],
    folder_uid: Annotated[str | None, typer.Option(help="Grafana folder uid.")] = None,
) -> None:
    """Create or update the dashboards in a Grafana (needs the ClickHouse datasource plugin)."""
    from dashboards.publish import push_dashboards

    try:
        check_http_url(grafana_url)
    except ValueError as exc:
        fail(f"invalid --grafana-url: {exc}", 2)

    for url in push_dashboards(
        grafana_url, token, folder_uid, database=settings().warehouse_database
    ):
        typer.echo(f"pushed {url}")
