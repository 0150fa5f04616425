"""`schemas`: write or check the JSON Schema files generated from the models."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli.context import fail


def schemas(
    check: Annotated[bool, typer.Option(help="Fail if the files differ from the models.")] = False,
) -> None:
    """Write (or --check) the JSON Schema files generated from the typed models."""
    from schemas.export import check_schema_files, write_schema_files

    if check:
        stale = check_schema_files()
        if stale:
            fail(f"schema files out of date: {', '.join(stale)}; run `smart-station schemas`")
        typer.echo("schema files up to date")
        return
    for path in write_schema_files():
        typer.echo(f"wrote {path}")
