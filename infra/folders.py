"""Checking a state folder up front, so an unwritable path fails in one line, not mid-start."""

from __future__ import annotations

from pathlib import Path

from base.errors import StackError


def ensure_writable_folder(path: Path, what: str) -> None:
    """Create `path` if needed and prove a file can be written there; StackError otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StackError(f"{what} {path} is not writable: {exc.strerror}") from exc
