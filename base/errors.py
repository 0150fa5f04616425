"""The error hierarchy. `InvalidEvent.reason` is the one place deciding dead-letter reason codes."""

from __future__ import annotations

from enum import StrEnum


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


class StackError(SmartStationError):
    """The embedded stack (broker, warehouse) could not be started, reached or stopped."""
