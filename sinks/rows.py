"""Flattening published messages into warehouse rows (one function per table). Callers' numbers
are masked and hashed here, before anything reaches a table."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from schemas.events import BackupRequest
from sinks.callers import PhoneProtector


def gps_row(msg: Mapping[str, Any]) -> dict[str, Any]:
    quality = msg["time_quality"]
    return {
        "event_id": msg["event_id"],
        "officer_id": msg["officer_id"],
        "station_id": msg["station_id"],
        "lat": msg["lat"],
        "lon": msg["lon"],
        "h3_cell": msg["h3_cell"],
        "event_time": msg["event_time"],
        "event_utc_ms": msg["event_utc_ms"],
        "ingest_utc_ms": msg["ingest_utc_ms"],
        "accuracy_m": msg.get("accuracy_m"),
        "time_format": quality["source_format"],
        "time_inferred": int(quality["inferred"]),
    }


ALERT_COLUMNS = (
    "alert_id",
    "station_id",
    "category",
    "priority",
    "lat",
    "lon",
    "h3_cell",
    "address",
    "description",
    "event_time",
    "event_utc_ms",
    "ingest_utc_ms",
)


def alert_row(msg: Mapping[str, Any], protector: PhoneProtector) -> dict[str, Any]:
    quality = msg["time_quality"]
    row = {name: msg[name] for name in ALERT_COLUMNS}
    phone = protector.protect(msg.get("caller_phone", ""))
    row["caller_phone_masked"] = phone.masked
    row["caller_phone_hmac"] = phone.hmac
    row["time_format"] = quality["source_format"]
    row["time_inferred"] = int(quality["inferred"])
    row["text_repaired"] = int(msg.get("text_repaired", False))
    row["text_lossy"] = int(msg.get("text_lossy", False))
    return row


def assignment_row(msg: Mapping[str, Any], protector: PhoneProtector) -> dict[str, Any]:
    alert, officer = msg["alert"], msg["officer"]
    protected = protector.message(msg)
    return {
        "assignment_id": msg["assignment_id"],
        "alert_id": alert["alert_id"],
        "officer_id": officer["officer_id"],
        "station_id": officer["station_id"],
        "category": alert["category"],
        "priority": alert["priority"],
        "reason": msg.get("reason", "dispatch"),
        "units_needed": msg.get("units_needed", 1),
        "alert_lat": alert["lat"],
        "alert_lon": alert["lon"],
        "officer_lat": officer["lat"],
        "officer_lon": officer["lon"],
        "distance_m": msg["distance_m"],
        "eta_s": msg["eta_s"],
        "alert_utc_ms": alert["event_utc_ms"],
        "assigned_utc_ms": msg["assigned_utc_ms"],
        "assigned_time": msg["assigned_time"],
        "caller_phone_masked": protected["caller_phone"],
        "caller_phone_hmac": protected["caller_phone_hmac"],
        "payload": orjson.dumps(protected).decode(),
    }


def dispatch_event_row(msg: Mapping[str, Any]) -> dict[str, Any]:
    row = {name: msg[name] for name in ("kind", "alert_id", "at_utc_ms")}
    row["officer_id"] = msg.get("officer_id", "")
    row["detail"] = msg.get("detail", "")
    row["assignment_id"] = msg.get("assignment_id", "")
    row["radius_m"] = msg.get("radius_m")
    row["waited_ms"] = msg.get("waited_ms")
    return row


def status_change_row(msg: Mapping[str, Any]) -> dict[str, Any]:
    quality = msg["time_quality"]
    return {
        "officer_id": msg["officer_id"],
        "status": msg["status"],
        "alert_id": msg.get("alert_id") or "",
        "event_time": msg["event_time"],
        "event_utc_ms": msg["event_utc_ms"],
        "time_format": quality["source_format"],
        "time_inferred": int(quality["inferred"]),
    }


def camera_row(msg: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("camera_id", "kind", "station_id", "lat", "lon", "heading_deg", "fov_deg", "range_m")
    row = {name: msg.get(name) for name in keep}
    row["station_id"] = row["station_id"] or ""
    row["officer_id"] = msg.get("officer_id") or ""
    row["online"] = int(msg.get("online", True))
    row["event_time"] = msg["event_time"]
    row["event_utc_ms"] = msg["event_utc_ms"]
    return row


def backup_row(value: bytes, record_utc_ms: int) -> dict[str, Any]:
    """A backup request from the field (a raw topic: the worker dead-letters what fails this)."""
    request = BackupRequest.model_validate_json(value)
    return {
        "alert_id": request.alert_id,
        "officer_id": request.officer_id,
        "units": request.units,
        "reason": request.reason,
        "requested_utc_ms": record_utc_ms,
    }


def dead_letter_row(
    value: bytes | None, headers: Sequence[tuple[str, bytes]], protector: PhoneProtector
) -> dict[str, Any]:
    meta = {k: v.decode(errors="replace") for k, v in headers}
    original, phone_hmacs = protector.raw_bytes(value or b"")
    return {
        "source_topic": meta.get("source_topic", ""),
        "source_partition": int(meta.get("source_partition", "-1")),
        "source_offset": int(meta.get("source_offset", "-1")),
        "reason": meta.get("reason", ""),
        "message": meta.get("message", ""),
        "station_id": meta.get("station_id", ""),
        "original_b64": base64.b64encode(original).decode(),
        "phone_hmacs": phone_hmacs,
        "dead_utc_ms": int(meta.get("dead_utc_ms", "0")),
    }


def decode(payload: bytes) -> Any:
    return orjson.loads(payload)
