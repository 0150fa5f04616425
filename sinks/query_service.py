"""Reading the embedded warehouse while the loader writes it. chDB holds its data folder for one
process only, so the loader serves read-only queries on 127.0.0.1 (a port chosen at start,
written with its pid to `<state_dir>/loader.json`); `smart-station sql` and `status` ask it, and
open chDB themselves only when no loader runs."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from base.errors import ConfigError, StackError
from infra.broker import pid_alive
from sinks.warehouse import Warehouse

log = logging.getLogger(__name__)

STATE_FILE = "loader.json"
READ_ONLY_START = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b", re.I)
HAS_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*$", re.I)
HAS_SETTINGS = re.compile(r"\bSETTINGS\b[^()]*$", re.I)
OUTPUT_FORMATS = ("PrettyCompactMonoBlock", "TabSeparatedWithNames", "JSONEachRow", "CSVWithNames")


def read_only_sql(sql: str) -> str:
    """The statement with `readonly = 1` added, or ConfigError for anything but a read."""
    statement = sql.strip().rstrip(";").strip()
    if not statement:
        raise ConfigError("empty query")
    if ";" in statement:
        raise ConfigError("one statement at a time")
    if not READ_ONLY_START.match(statement):
        raise ConfigError("only SELECT, WITH, SHOW, DESCRIBE, EXPLAIN and EXISTS are allowed")
    if HAS_FORMAT.search(statement):
        raise ConfigError("leave FORMAT out; use --format")
    if HAS_SETTINGS.search(statement):
        return f"{statement}, readonly = 1"
    return f"{statement} SETTINGS readonly = 1"


def run_read_only(warehouse: Warehouse, sql: str, fmt: str) -> bytes:
    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"format {fmt!r}: one of {', '.join(OUTPUT_FORMATS)}")
    return warehouse.query_text(read_only_sql(sql).replace("{db}", warehouse.database), fmt)


@dataclass(frozen=True, slots=True)
class LoaderEndpoint:
    pid: int
    port: int
    group_id: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def find_loader(state_dir: Path) -> LoaderEndpoint | None:
    """The loader serving this state folder's warehouse, if one runs."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text())
        endpoint = LoaderEndpoint(int(data["pid"]), int(data["port"]), str(data["group_id"]))
    except (OSError, ValueError, KeyError):
        return None
    return endpoint if pid_alive(endpoint.pid) else None


def ask_loader(endpoint: LoaderEndpoint, path: str, body: bytes | None = None) -> bytes:
    method = "POST" if body else "GET"
    request = urllib.request.Request(endpoint.url + path, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise ConfigError(exc.read().decode(errors="replace").strip()) from exc
    except OSError as exc:
        raise StackError(f"the loader (pid {endpoint.pid}) does not answer: {exc}") from exc


class QueryService:
    """The loader's read-only query endpoint and its status, on 127.0.0.1."""

    def __init__(
        self, warehouse: Warehouse, state_dir: Path, group_id: str, status: Callable[[], Any]
    ) -> None:
        self.warehouse, self.status = warehouse, status
        self.file = state_dir / STATE_FILE
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/status":
                    self._reply(404, b"not found")
                    return
                self._reply(200, json.dumps(service.status()).encode())

            def do_POST(self) -> None:
                fmt = self.path.removeprefix("/query?format=") if "?" in self.path else ""
                sql = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                try:
                    body = run_read_only(service.warehouse, sql, fmt or OUTPUT_FORMATS[0])
                except ConfigError as exc:
                    self._reply(400, str(exc).encode())
                    return
                except Exception as exc:  # the engine's own message is what the user needs
                    self._reply(400, str(exc).splitlines()[0].encode())
                    return
                self._reply(200, body)

            def _reply(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("query service: " + format, *args)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.group_id = group_id

    def __enter__(self) -> QueryService:
        self.thread.start()
        self.file.parent.mkdir(parents=True, exist_ok=True)
        port = self.server.server_address[1]
        record = {"pid": os.getpid(), "port": port, "group_id": self.group_id}
        self.file.write_text(json.dumps(record))
        log.info("query service on 127.0.0.1:%d", port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.file.unlink(missing_ok=True)
