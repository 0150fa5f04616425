"""Reading fields out of raw input JSON whose names and types differ from station to station."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from base.errors import InvalidEvent, Reason

RawEvent = Mapping[str, Any]


def decode_json_object(payload: bytes | str) -> RawEvent:
    """One JSON object; bytes must be UTF-8 (`StationBook.decode_event` reads other encodings).
    Nothing but whitespace (a tombstone, an empty send) is `empty`."""
    if not payload.strip():
        raise InvalidEvent(Reason.EMPTY, "no bytes but whitespace")
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if isinstance(payload, bytes) and not _is_utf8(payload):
            raise InvalidEvent(Reason.INVALID_ENCODING, f"not UTF-8: {exc}") from exc
        raise InvalidEvent(Reason.INVALID_JSON, f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidEvent(
            Reason.INVALID_JSON, f"expected a JSON object, got {type(value).__name__}"
        )
    return value


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def first_present(raw: RawEvent, names: Sequence[str]) -> Any:
    """The value of the first of `names` present and non-empty in `raw`, else None."""
    for name in names:
        value = raw.get(name)
        if value is not None and value != "":
            return value
    return None


def required_text(raw: RawEvent, names: Sequence[str]) -> str:
    value = first_present(raw, names)
    if value is None:
        raise InvalidEvent(
            Reason.MISSING_FIELD, f"missing {names[0]} (also tried {list(names[1:])})"
        )
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidEvent(Reason.INVALID_FIELD, f"{names[0]} must be a string, got {value!r}")
    return str(value).strip()


def optional_text(raw: RawEvent, names: Sequence[str]) -> str:
    value = first_present(raw, names)
    return "" if value is None else str(value)


def required_float(raw: RawEvent, names: Sequence[str], low: float, high: float) -> float:
    value = first_present(raw, names)
    if value is None:
        raise InvalidEvent(
            Reason.MISSING_FIELD, f"missing {names[0]} (also tried {list(names[1:])})"
        )
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(Reason.INVALID_FIELD, f"{names[0]} is not a number: {value!r}") from exc
    if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high:
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"{names[0]}={value!r} outside [{low}, {high}]")
    return number


LAT_NAMES = ("lat", "latitude", "y", "纬度")
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度")
TIME_NAMES = ("event_time", "ts", "time", "timestamp", "reported_at", "occurred_at", "at", "时间")
STATION_NAMES = ("station_id", "station", "stationId", "派出所")
