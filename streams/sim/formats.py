"""How each simulated station writes: its legacy time format, GBK mojibake in its text, and the
malformed events some of its systems produce. Every time format here is one the time standard
reads (tests/sim/test_formats.py holds it to that)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")
FULL_WIDTH = str.maketrans("0123456789:", "０１２３４５６７８９：")


class TimeFormat(StrEnum):
    ISO = "iso"  # 2026-11-27T20:15:30.123+08:00
    CLOCK12 = "clock12"  # 2026-11-27 08:15:30 PM
    ZH_WORDS = "zh_words"  # 2026年11月27日晚上8点15分30秒
    EPOCH_S = "epoch_s"  # 1795781730
    EPOCH_MS = "epoch_ms"  # 1795781730123
    FULL_WIDTH = "full_width"  # ２０２６-１１-２７ ２０：１５：３０


def _iso(local: datetime, epoch_ms: int) -> object:
    return local.isoformat(timespec="milliseconds")


def _clock12(local: datetime, epoch_ms: int) -> object:
    return local.strftime("%Y-%m-%d %I:%M:%S %p")


def _zh_words(local: datetime, epoch_ms: int) -> object:
    hour = local.hour
    period = (
        ("凌晨" if hour < 6 else "上午" if hour < 12 else "中午" if hour == 12 else "下午")
        if hour < 18
        else "晚上"
    )
    clock = hour if hour <= 12 else hour - 12
    return (
        f"{local.year}年{local.month}月{local.day}日{period}"
        f"{clock}点{local.minute}分{local.second}秒"
    )


def _epoch_s(local: datetime, epoch_ms: int) -> object:
    return epoch_ms // 1000


def _epoch_ms(local: datetime, epoch_ms: int) -> object:
    return epoch_ms


def _full_width(local: datetime, epoch_ms: int) -> object:
    return local.strftime("%Y-%m-%d %H:%M:%S").translate(FULL_WIDTH)


RENDER: dict[TimeFormat, Callable[[datetime, int], object]] = {
    TimeFormat.ISO: _iso,
    TimeFormat.CLOCK12: _clock12,
    TimeFormat.ZH_WORDS: _zh_words,
    TimeFormat.EPOCH_S: _epoch_s,
    TimeFormat.EPOCH_MS: _epoch_ms,
    TimeFormat.FULL_WIDTH: _full_width,
}


def render_time(epoch_ms: int, form: TimeFormat) -> object:
    """The instant as a station of that format writes it (local time, Asia/Shanghai)."""
    local = datetime.fromtimestamp(epoch_ms / 1000, tz=ZONE)
    return RENDER[form](local, epoch_ms)


def format_of_station(index: int) -> TimeFormat:
    """Stations take the formats in turn, so a district of six or more shows them all."""
    forms = list(TimeFormat)
    return forms[index % len(forms)]


def gbk_mojibake(text: str) -> str:
    """Text a legacy system stored as GBK and a later one read as Latin-1 (repairable)."""
    return text.encode("gbk").decode("latin-1")


# What broken feeds send, each kind dead-lettered for its own reason.
MALFORMED_KINDS = ("not_json", "missing_id", "lat_out_of_range", "impossible_date", "not_object")


def malformed(kind: str, station_id: str, epoch_ms: int) -> dict[str, Any] | str:
    """A malformed raw event of that kind: a JSON object, or a string for bytes that are not one
    (written as is to Kafka, as a JSON string to JSON Lines)."""
    when = render_time(epoch_ms, TimeFormat.ISO)
    if kind == "not_json":
        return '{"officer_id": "JB-truncated", "lat": 29.5'
    if kind == "missing_id":
        return {"station_id": station_id, "lat": 29.58, "lon": 106.55, "ts": when}
    if kind == "lat_out_of_range":
        return {
            "officer_id": "P-BROKEN",
            "station_id": station_id,
            "lat": 95.0,
            "lon": 106.5,
            "ts": when,
        }
    if kind == "impossible_date":
        return {
            "officer_id": "P-BROKEN",
            "station_id": station_id,
            "lat": 29.58,
            "lon": 106.55,
            "ts": "2026-02-30 25:61:00",
        }
    return "[1, 2, 3]"
