"""State folders: private (they hold caller data: folders 700, files 600) and checked up front,
so an unwritable path fails in one line, not mid-start."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from base.errors import StackError

PRIVATE_UMASK = 0o077  # what state writers create: folders 700, files 600
PRIVATE_FOLDER_MODE = 0o700


def ensure_writable_folder(path: Path, what: str) -> None:
    """Create `path` if needed (it and every folder created on the way: 700) and prove a file can
    be written there; StackError otherwise. An existing folder keeps its mode."""
    try:
        make_private_folder(path)
        # A probe of its own: two workers sharing a state folder start at once, and with one
        # fixed name the first to finish removed the other's probe ("not writable: No such file").
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise StackError(f"{what} {path} is not writable: {exc.strerror}") from exc


def make_private_folder(path: Path) -> None:
    """`mkdir -p` whose new folders are 700 whatever the umask."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=PRIVATE_FOLDER_MODE)
            folder.chmod(PRIVATE_FOLDER_MODE)


def keep_state_private() -> None:
    """From now on this process creates private files and folders: for the processes that own
    state (broker, workers, the embedded warehouse), whose files a library creates itself."""
    os.umask(PRIVATE_UMASK)


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files and folders created inside are private; the umask is restored after."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)
