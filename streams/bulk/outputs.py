"""Writing: atomic files (`.<name>.partial-<pid>` renamed into place), or a topic."""

from __future__ import annotations

import csv
import glob
import io
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from infra.broker import pid_alive
from streams.bulk.render import Spec
from streams.bulk.roles import column_roles, reject_keys

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, data: bytes, records: Sequence[Any] | None) -> None: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...


def partial_path(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.partial-{pid}")


def remove_stale_partials(path: Path) -> None:
    """Partial files of `path` whose job is gone (killed): never those of a running job."""
    name = glob.escape(path.name)
    for stale in [*path.parent.glob(f".{name}.partial-*"), *path.parent.glob(f".{name}.parts-*")]:
        pid = stale.name.rpartition("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            log.info("removed partial=%s of a job that is gone", stale)


class FileSink:
    """Writes to `.<name>.partial-<pid>`; only `commit` makes `path` appear, whole."""

    def __init__(self, path: Path, header: bytes) -> None:
        remove_stale_partials(path)
        self.path = path
        self.temp = partial_path(path, os.getpid())
        self.file = self.temp.open("wb")
        self.file.write(header)

    def write(self, data: bytes, records: Sequence[Any] | None) -> None:
        self.file.write(data)

    def append(self, part: Path) -> None:
        """A part file a worker wrote, appended and removed; the kernel copies the bytes."""
        with part.open("rb") as source:
            self.file.flush()
            _copy(source, self.file, part.stat().st_size)
        part.unlink()

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)


def _copy(source: IO[bytes], target: IO[bytes], size: int) -> None:
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is None:
        shutil.copyfileobj(source, target)
        return
    while size > 0:
        copied = copy_file_range(source.fileno(), target.fileno(), size)
        if copied == 0:
            raise OSError(f"{source.name}: shorter than its size")
        size -= copied


def parts_folder(path: Path, pid: int) -> Path:
    """Where a job's workers write their chunks' output and rejects (beside `path`, so that the
    parent appends them within one file system)."""
    return path.with_name(f".{path.name}.parts-{pid}")


class TopicSink:
    """One message per output line, keyed like the message it came from."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def write(self, data: bytes, records: Sequence[Any] | None) -> None:
        for k, line in enumerate(data.split(b"\n")[:-1]):
            key = records[k].key if records is not None else None
            self.producer.send(self.topic, key=key, value=line)

    def commit(self) -> None:
        self.producer.flush()

    def discard(self) -> None:
        self.producer.flush()  # what was sent is sent: topics are at-least-once


def _csv_line(values: Sequence[str]) -> bytes:
    if not values:
        return b""
    text = io.StringIO()
    csv.writer(text).writerow(values)
    return text.getvalue().encode()


def output_headers(spec: Spec) -> tuple[bytes, bytes]:
    """The first lines of the output and rejects files (CSV: the column names)."""
    columns = spec.columns or ()
    out = _csv_line(column_roles(columns, spec.options).output) if spec.out_format == "csv" else b""
    rejects = _csv_line([*columns, *reject_keys(columns)]) if columns else b""
    return out, rejects if spec.rejects_format == "csv" else b""
