"""The normalising agents through the real broker: every input topic's valid events come out
in the one time standard with repaired text; invalid ones land on the dead-letter topic with
their original bytes and a reason, and the next good event still goes through."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from base.settings import Settings, StationSettings
from base.topics import TopicNames
from streams.pipeline.plumbing import OVERSIZED_KEEP_BYTES
from streams.pipeline.worker import WorkerProcess
from tests.support.clients import consume, now_iso

pytestmark = pytest.mark.broker

GBK_MOJIBAKE = "解放碑步行街8号".encode("gbk").decode("latin-1")


def test_malformed_events_go_to_dead_letters_and_good_ones_are_normalised(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    tmp_path: Path,
) -> None:
    bad_bytes = '{"officer_id": "坏"'.encode("gbk")  # truncated JSON, and not even UTF-8
    impossible = orjson.dumps(
        {"officer_id": "OFF-1", "lat": 29.5, "lon": 106.5, "ts": "2023-02-29 10:00"}
    )
    ambiguous = orjson.dumps(
        {"officer_id": "OFF-1", "lat": 29.5, "lon": 106.5, "ts": "05/10/2022 15:05"}
    )
    good_ping = orjson.dumps(
        {"badge": "ＯＦＦ－１", "latitude": 29.5, "lng": 106.5, "时间": "2022年10月15日 下午3:05"}
    )
    alert = orjson.dumps(
        {
            "alert_id": "AL-1",
            "lat": 29.56,
            "lon": 106.55,
            "time": "Oct 15, 2022 3:05 PM",
            "address": GBK_MOJIBAKE,
            "category": "dispute",
        }
    )
    status = orjson.dumps({"officer_id": "OFF-1", "status": "出警", "ts": "20221015150600"})
    camera = orjson.dumps(
        {
            "camera_id": "CAM-1",
            "lat": 29.56,
            "lon": 106.55,
            "heading": 90,
            "fov": 60,
            "ts": 1665817500,
        }
    )
    bad_status = orjson.dumps({"officer_id": "OFF-1", "status": "napping", "ts": 1665817500})
    from_2099 = orjson.dumps({"officer_id": "OFF-2", "lat": 29.5, "lon": 106.5, "ts": 4070908800})
    # The legacy samples are from 2022: let the bound on event times reach back that far (a
    # ping dated 2099 is still far ahead of it).
    settings = settings.model_copy(update={"event_max_behind_s": 10 * 365 * 86400.0})
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        for value in (bad_bytes, impossible, ambiguous, from_2099, good_ping):
            producer.send(topics.gps_raw, value=value)
        producer.send(topics.alerts_raw, value=alert)
        producer.send(topics.status_raw, value=bad_status)
        producer.send(topics.status_raw, value=b"")
        producer.send(topics.status_raw, value=status)
        producer.send(topics.cameras_raw, value=camera)
        producer.send(topics.backup, key=b"AL-404", value=b"not a backup request")
        producer.flush()
        pings = consume(kafka_bootstrap, topics.gps, until=lambda r: len(r) >= 1)
        alerts = consume(kafka_bootstrap, topics.alerts, until=lambda r: len(r) >= 1)
        statuses = consume(kafka_bootstrap, topics.status, until=lambda r: len(r) >= 1)
        cameras = consume(kafka_bootstrap, topics.cameras, until=lambda r: len(r) >= 1)
        dead = consume(kafka_bootstrap, topics.deadletter, until=lambda r: len(r) >= 7, raw=True)
    finally:
        worker.stop()

    [ping] = pings
    assert ping["officer_id"] == "OFF-1"  # full-width folded
    assert ping["event_time"] == "2022-10-15T15:05:00+08:00"
    assert ping["event_utc_ms"] == 1665817500000
    assert ping["time_quality"] == {"source_format": "zh", "inferred": False}
    [normalised_alert] = alerts
    assert normalised_alert["address"] == "解放碑步行街8号" and normalised_alert["text_repaired"]
    assert normalised_alert["event_time"] == "2022-10-15T15:05:00+08:00"
    assert statuses[0]["status"] == "en_route"
    assert statuses[0]["event_time"] == "2022-10-15T15:06:00+08:00"
    assert (
        cameras[0]["heading_deg"] == 90 and cameras[0]["event_time"] == "2022-10-15T15:05:00+08:00"
    )

    by_value = {record.value: record for record in dead}
    assert set(by_value) == {
        b"not a backup request",
        bad_bytes,
        impossible,
        ambiguous,
        from_2099,
        bad_status,
        b"",
    }  # original bytes, untouched
    reasons = {value: dict(record.headers)["reason"].decode() for value, record in by_value.items()}
    assert reasons == {
        bad_bytes: "invalid_encoding",  # not UTF-8 comes first
        impossible: "invalid_time",
        ambiguous: "ambiguous_time",
        from_2099: "out_of_range",
        bad_status: "invalid_field",
        b"": "empty",
        b"not a backup request": "invalid_field",  # the dispatch agent keeps going too
    }
    headers = dict(by_value[impossible].headers)
    assert headers["source_topic"].decode() == topics.gps_raw
    assert int(headers["source_offset"]) >= 0 and headers["message"]


def test_gbk_bytes_flow_on_a_gbk_station_and_are_dead_lettered_elsewhere(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    tmp_path: Path,
) -> None:
    def alert(alert_id: str, station: str) -> bytes:
        event = {
            "alert_id": alert_id,
            "station_id": station,
            "lat": 29.56,
            "lon": 106.55,
            "time": "2022-10-15 15:05",
            "address": "解放碑步行街8号",
            "description": "有人打架",
        }
        return orjson.dumps(event).decode().encode("gbk")

    on_gbk, on_utf8 = alert("AL-GBK", "ST-GBK"), alert("AL-UTF", "ST-UTF")
    settings = settings.model_copy(
        update={
            "event_max_behind_s": 10 * 365 * 86400.0,
            "stations": {
                "ST-GBK": StationSettings(encoding="gbk"),
                "ST-UTF": StationSettings(zone="Asia/Shanghai"),
            },
        }
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        producer.send(topics.alerts_raw, value=on_utf8)
        producer.send(topics.alerts_raw, value=on_gbk)
        producer.flush()
        alerts = consume(kafka_bootstrap, topics.alerts, until=lambda r: len(r) >= 1)
        dead = consume(kafka_bootstrap, topics.deadletter, until=lambda r: len(r) >= 1, raw=True)
    finally:
        worker.stop()

    [normalised] = alerts
    assert normalised["alert_id"] == "AL-GBK"
    assert normalised["address"] == "解放碑步行街8号" and normalised["description"] == "有人打架"
    assert not normalised["text_repaired"]  # decoded, not repaired
    [letter] = dead
    assert letter.value == on_utf8  # the original bytes
    assert dict(letter.headers)["reason"] == b"invalid_encoding"


def test_message_near_a_megabyte_is_dead_lettered_oversized_with_size_and_hash(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    tmp_path: Path,
) -> None:
    # Close to the broker's limit: whole, plus dead-letter headers, it is over what the
    # workers' producer may send (before: the send failed, the agent restarted, the offset was
    # committed, and the message ended nowhere).
    garbage = bytes(range(256)) * 3980  # 1,018,880 bytes, not UTF-8
    huge_alert = orjson.dumps(
        {
            "alert_id": "AL-HUGE",
            "lat": 29.56,
            "lon": 106.55,
            "time": now_iso(),
            "category": "dispute",
            "description": "x" * 990_000,
        }
    )
    mid_sized = orjson.dumps({"officer_id": "OFF-9", "pad": "y" * 300_000})
    good_ping = orjson.dumps({"officer_id": "OFF-1", "lat": 29.5, "lon": 106.5, "ts": now_iso()})
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        producer.send(topics.gps_raw, value=garbage)
        producer.send(topics.alerts_raw, value=huge_alert)
        producer.send(topics.gps_raw, value=mid_sized)
        producer.send(topics.gps_raw, value=good_ping)
        producer.flush()
        pings = consume(kafka_bootstrap, topics.gps, until=lambda r: len(r) >= 1)
        dead = consume(kafka_bootstrap, topics.deadletter, until=lambda r: len(r) >= 3, raw=True)
    finally:
        worker.stop()

    assert [p["officer_id"] for p in pings] == ["OFF-1"]
    assert len(dead) == 3, "every input ends somewhere"
    by_topic_size = {
        (dict(r.headers)["source_topic"].decode(), len(r.value)): dict(r.headers) for r in dead
    }
    truncated = by_topic_size[(topics.gps_raw, OVERSIZED_KEEP_BYTES)]
    assert truncated["reason"] == b"oversized"
    assert int(truncated["original_bytes"]) == len(garbage)
    assert truncated["original_sha256"].decode() == hashlib.sha256(garbage).hexdigest()
    assert b"was oversized" in truncated["message"]
    # Over event_max_bytes but small enough to keep whole: refused before it is parsed (before:
    # the alert was normalised into a message too large to send, and lost).
    for topic, original in ((topics.alerts_raw, huge_alert), (topics.gps_raw, mid_sized)):
        whole = by_topic_size[(topic, len(original))]
        assert whole["reason"] == b"oversized" and "original_bytes" not in whole
    assert garbage[:OVERSIZED_KEEP_BYTES] in {r.value for r in dead}
