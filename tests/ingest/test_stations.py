"""streams.stations: a station's configured encoding decides how its raw bytes are read; UTF-8
stays the default and bytes nothing reads are `invalid_encoding`."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from base.errors import InvalidEvent, Reason
from base.settings import StationSettings
from streams.ingest.fields import decode_json_object
from streams.ingest.stations import StationBook

ALERT = {"alert_id": "AL-1", "station_id": "ST-GBK", "address": "解放碑步行街8号"}
BOOK = StationBook(
    stations={
        "ST-GBK": StationSettings(encoding="GBK"),
        "ST-BIG5": StationSettings(encoding="big5"),
        "ST-UTF": StationSettings(zone="Asia/Shanghai"),
    }
)


def encoded(event: dict[str, str], encoding: str) -> bytes:
    return orjson.dumps(event).decode().encode(encoding)


def test_gbk_bytes_of_a_gbk_station_are_decoded() -> None:
    assert BOOK.decode_event(encoded(ALERT, "gbk")) == ALERT


def test_big5_bytes_of_a_big5_station_are_decoded() -> None:
    event = {**ALERT, "station_id": "ST-BIG5", "address": "臺北市中正區"}
    assert BOOK.decode_event(encoded(event, "big5")) == event


def test_gbk_bytes_whose_trail_byte_is_a_backslash_are_decoded() -> None:
    event = {**ALERT, "address": "乗昞"}  # 81 5C, 95 5C: trail byte '\'
    assert b"\\" in encoded(event, "gbk")
    assert BOOK.decode_event(encoded(event, "gbk")) == event


@pytest.mark.parametrize("station", ["ST-UTF", "ST-UNKNOWN"])
def test_gbk_bytes_of_another_station_are_invalid_encoding(station: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        BOOK.decode_event(encoded({**ALERT, "station_id": station}, "gbk"))
    assert caught.value.reason is Reason.INVALID_ENCODING


def test_utf8_stays_the_default() -> None:
    event = {**ALERT, "station_id": "ST-UTF"}
    assert BOOK.decode_event(encoded(event, "utf-8")) == event


def test_a_gbk_station_is_read_as_gbk_even_when_its_bytes_are_valid_utf8() -> None:
    event = {**ALERT, "address": "鏉庡洓"}  # whose GBK bytes happen to be UTF-8 ('李四')
    data = encoded(event, "gbk")
    data.decode("utf-8")
    assert BOOK.decode_event(data) == event


def test_bytes_that_are_not_utf8_without_any_encoding_configured_are_invalid_encoding() -> None:
    # Regression: these were dead-lettered `invalid_json`, not the documented `invalid_encoding`.
    with pytest.raises(InvalidEvent) as caught:
        StationBook().decode_event(encoded(ALERT, "gbk"))
    assert caught.value.reason is Reason.INVALID_ENCODING


def test_bad_json_in_the_right_encoding_is_still_invalid_json() -> None:
    with pytest.raises(InvalidEvent) as caught:
        BOOK.decode_event(b'{"station_id": "ST-UTF", ')
    assert caught.value.reason is Reason.INVALID_JSON


@pytest.mark.parametrize("name", ["klingon", "utf-16", "cp037"])
def test_unknown_or_non_ascii_compatible_encodings_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        StationSettings(encoding=name)


def test_utf8_named_as_an_encoding_means_the_default() -> None:
    assert StationSettings(encoding="UTF8").encoding is None
    assert StationSettings(encoding="cp936").encoding == "gbk"


def test_raw_json_that_is_not_utf8_is_invalid_encoding_not_invalid_json() -> None:
    # Regression: orjson's "not valid UTF-8" was reported as `invalid_json`.
    with pytest.raises(InvalidEvent) as caught:
        decode_json_object('{"officer_id": "坏"'.encode("gbk"))
    assert caught.value.reason is Reason.INVALID_ENCODING


@pytest.mark.parametrize("payload", [b"", b" \r\n\t "])
def test_empty_or_blank_bytes_are_empty_not_invalid_json(payload: bytes) -> None:
    # Regression: these were dead-lettered `invalid_json`; the README documents `empty`.
    with pytest.raises(InvalidEvent) as caught:
        StationBook().decode_event(payload)
    assert caught.value.reason is Reason.EMPTY
    with pytest.raises(InvalidEvent) as caught:
        BOOK.decode_event(payload)
    assert caught.value.reason is Reason.EMPTY
