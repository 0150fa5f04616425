"""Flattening published messages into warehouse rows (one function per table)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import orjson


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


def alert_row(msg: Mapping[str, Any]) -> dict[str, Any]:
    quality = msg["time_quality"]
    keep = (
        "alert_id",
        "station_id",
        "category",
        "priority",
        "lat",
        "lon",
        "h3_cell",
        "address",
        "description",
        "caller_phone",
        "event_time",
        "event_utc_ms",
        "ingest_utc_ms",
    )
    row = {name: msg[name] for name in keep}
    row["time_format"] = quality["source_format"]
    row["time_inferred"] = int(quality["inferred"])
    row["text_repaired"] = int(msg.get("text_repaired", False))
    row["text_lossy"] = int(msg.get("text_lossy", False))
    return row


def assignment_row(msg: Mapping[str, Any], payload: bytes) -> dict[str, Any]:
    alert, officer = msg["alert"], msg["officer"]
    return {
        "assignment_id": msg["assignment_id"],
        "alert_id": alert["alert_id"],
        "officer_id": officer["officer_id"],
        "station_id": officer["station_id"],
        "category": alert["category"],
        "priority": alert["priority"],
        "alert_lat": alert["lat"],
        "alert_lon": alert["lon"],
        "officer_lat": officer["lat"],
        "officer_lon": officer["lon"],
        "distance_m": msg["distance_m"],
        "eta_s": msg["eta_s"],
        "alert_utc_ms": alert["event_utc_ms"],
        "assigned_utc_ms": msg["assigned_utc_ms"],
        "assigned_time": msg["assigned_time"],
        "payload": payload.decode(),
    }


def dispatch_event_row(msg: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("kind", "alert_id", "officer_id", "detail", "at_utc_ms")
    return {name: msg[name] for name in keep}


def dead_letter_row(value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    meta = {k: v.decode(errors="replace") for k, v in headers}
    return {
        "source_topic": meta.get("source_topic", ""),
        "source_partition": int(meta.get("source_partition", "-1")),
        "source_offset": int(meta.get("source_offset", "-1")),
        "reason": meta.get("reason", ""),
        "message": meta.get("message", ""),
        "station_id": meta.get("station_id", ""),
        "original_b64": base64.b64encode(value or b"").decode(),
        "dead_utc_ms": int(meta.get("dead_utc_ms", "0")),
    }


def decode(payload: bytes) -> Any:
    return orjson.loads(payload)
