"""What every command shares: the settings (environment, then the global flags on top) and a
one-line failure with an exit code."""

from __future__ import annotations

from typing import Any, ClassVar

import typer
from pydantic import ValidationError

from base.settings import Settings


class State:
    overrides: ClassVar[dict[str, Any]] = {}


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return Settings(**State.overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        fail(f"invalid setting {where}: {first['msg']}", 2)
        raise AssertionError("unreachable") from exc
