"""The error tree, in one module: every error the project raises on purpose, and the one mapping
from an exception to the reason a dead letter (or a rejects row) carries.

    SmartStationError               base of every error raised on purpose
    ├── InvalidEvent(reason)        an input event or bulk row that cannot be normalised:
    │                               dead-letter topic (original bytes) or rejects file
    ├── ConfigError                 bad configuration or arguments: one line, non-zero exit
    │   └── MacroError              a dashboard macro or variable that cannot be expanded
    ├── StackError                  the broker or warehouse cannot be started, reached or stopped
    │   └── SinkBackpressure        more rows pending than a sink may hold: flush first
    └── HarmoniseError              a bulk job cannot go on (unreadable or unwritable file,
        │                           missing topic)
        └── UnreadableCsv(rows)     the csv module gave up after `rows` records of a chunk

`invalid_event(exc)` turns whatever handling an event raised into the `InvalidEvent` whose reason
the dead letter carries: the live workers and replay both call it."""

from __future__ import annotations

import csv
import logging
from enum import StrEnum

import orjson
from pydantic import ValidationError

log = logging.getLogger(__name__)


class Reason(StrEnum):
    """Reason codes carried by dead letters, rejects files and data-quality counters."""

    INVALID_JSON = "invalid_json"
    INVALID_ENCODING = "invalid_encoding"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_TIME = "invalid_time"
    AMBIGUOUS_TIME = "ambiguous_time"
    OUT_OF_RANGE = "out_of_range"
    EMPTY = "empty"
    OVERSIZED = "oversized"
    INTERNAL_ERROR = "internal_error"


class SmartStationError(Exception):
    """Base of every error the project raises on purpose."""


class InvalidEvent(SmartStationError):
    """An input event (or bulk row) that cannot be normalised; it goes to the dead-letter topic."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class ConfigError(SmartStationError):
    """Bad configuration: reported as one line and a non-zero exit."""


class MacroError(ConfigError):
    """A macro or variable that cannot be expanded (unknown, wrong arguments, missing value)."""


class StackError(SmartStationError):
    """The embedded stack (broker, warehouse) could not be started, reached or stopped."""


class SinkBackpressure(StackError):
    """More rows are pending than the sink may hold: flush before adding more."""


class HarmoniseError(SmartStationError):
    """The job cannot go on: an unreadable or unwritable file, a broken CSV, a missing topic."""


class UnreadableCsv(HarmoniseError):
    """The csv module gave up (a field over csv.field_size_limit()) after `rows` records."""

    def __init__(self, rows: int, problem: csv.Error) -> None:
        super().__init__(str(problem))
        self.rows = rows


def invalid_event(exc: Exception) -> InvalidEvent:
    """The reason an event that raised `exc` is dead-lettered with: its own when it is an
    InvalidEvent, `invalid_field` for a model that does not validate, `invalid_json` for bytes
    that are not JSON, else `internal_error` (logged: a defect, not bad input)."""
    if isinstance(exc, InvalidEvent):
        return exc
    if isinstance(exc, ValidationError):
        detail = exc.errors()[0]
        where = ".".join(str(p) for p in detail["loc"])
        return InvalidEvent(Reason.INVALID_FIELD, f"{where}: {detail['msg']}")
    if isinstance(exc, orjson.JSONDecodeError):
        return InvalidEvent(Reason.INVALID_JSON, str(exc))
    log.error("unexpected error handling an event: %r", exc)
    return InvalidEvent(Reason.INTERNAL_ERROR, repr(exc))
