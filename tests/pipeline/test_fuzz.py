"""Hostile input through the real broker: malformed messages of every kind on every input topic.
No agent crashes or stalls, and every message ends somewhere exactly once: normalised +
dead-lettered = produced, per topic. CI runs a bounded share (`FUZZ_PER_TOPIC`)."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from base.settings import Settings
from base.topics import TopicNames
from streams.pipeline.worker import WorkerProcess
from tests.support.clients import consume_all, now_iso

pytestmark = pytest.mark.broker

FUZZ_PER_TOPIC = int(os.environ.get("SMART_STATION_FUZZ_PER_TOPIC", "2000"))
BATCH = 20  # messages per topic per hypothesis example

FIELDS = {
    "gps_raw": ("officer_id", "lat", "lon", "ts"),
    "alerts_raw": ("alert_id", "lat", "lon", "time", "category", "address"),
    "status_raw": ("officer_id", "status", "ts"),
    "cameras_raw": ("camera_id", "lat", "lon", "heading", "fov", "ts"),
    "backup": ("alert_id", "officer_id", "units", "reason"),
}

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what JSON libraries write
wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.lists(ints, max_size=3),
    st.dictionaries(st.text(max_size=3), ints, max_size=2),
    st.floats(allow_nan=False, allow_infinity=False, min_value=1e6),
    st.text(max_size=30),
)
far_times = st.one_of(
    st.integers(min_value=4_000_000_000, max_value=10**13),  # 2096 on, seconds or ms
    st.integers(min_value=-(10**12), max_value=100_000_000),  # before 1973
    st.sampled_from(["2099-01-01 00:00", "1900-01-01T00:00:00Z", "0000-00-00", "9999-99-99"]),
)


def wrong_types(fields: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    return st.fixed_dictionaries({name: wrong_values for name in fields}).map(orjson.dumps)


def out_of_range(fields: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    """Plausible events but for one thing: coordinates off the globe or a time far from now."""

    def event(lat: float, ts: Any, far: bool) -> bytes:
        value: dict[str, Any] = {
            name: f"X-{i}" for i, name in enumerate(fields) if name not in ("lat", "lon")
        }
        if "lat" in fields:
            value.update(lat=lat if not far else 29.5, lon=106.5)
        for time_field in ("ts", "time"):
            if time_field in fields:
                value[time_field] = ts if far else now_iso()
        if "units" in fields:
            value["units"] = -5
        return orjson.dumps(value)

    coordinates = st.one_of(st.floats(min_value=91, max_value=1e9), st.just(-90.0001))
    return st.builds(event, coordinates, far_times, st.booleans())


def truncated(fields: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    whole = orjson.dumps({name: "x" for name in fields})
    return st.integers(min_value=1, max_value=len(whole) - 1).map(lambda n: whole[:n])


def malformed(fields: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=120),  # random bytes
        st.binary(min_size=1, max_size=60).map(lambda b: b"\xff\xfe" + b),  # not UTF-8
        st.just(b""),
        truncated(fields),
        st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),  # deep
        st.integers(min_value=1, max_value=200).map(
            lambda n: orjson.dumps({fields[0]: "x"})[:-1] + b',"deep":' + b"[" * n + b"]" * n + b"}"
        ),
        st.sampled_from([b'{"lat": NaN}', b'{"lat": Infinity, "lon": -Infinity}', b"null"]),
        st.text(max_size=40).map(lambda t: t.encode("utf-8").decode("latin-1").encode("utf-8")),
        wrong_types(fields),
        out_of_range(fields),
    )


def test_fuzzed_malformed_messages_all_end_somewhere_exactly_once(
    settings: Settings,
    topics: TopicNames,
    kafka_bootstrap: str,
    producer: KafkaProducer,
    tmp_path: Path,
) -> None:
    produced: Counter[str] = Counter()
    batches = {
        field: st.lists(malformed(fields), min_size=BATCH, max_size=BATCH)
        for field, fields in FIELDS.items()
    }
    keys = st.one_of(st.none(), st.just(b""), st.binary(max_size=8))

    @hypothesis_settings(
        max_examples=max(1, FUZZ_PER_TOPIC // BATCH),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.fixed_dictionaries(batches), keys)
    def send(batch: dict[str, list[bytes]], key: bytes | None) -> None:
        for field, values in batch.items():
            for value in values:
                producer.send(getattr(topics, field), key=key, value=value)
                produced[getattr(topics, field)] += 1

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        send()
        for field, fields in FIELDS.items():  # a few oversized ones (a draw would be too many)
            for size in (300_000, 600_000, 1_000_000):
                producer.send(getattr(topics, field), value=orjson.dumps({fields[0]: "x" * size}))
                produced[getattr(topics, field)] += 1
        good = orjson.dumps({"officer_id": "OFF-LAST", "lat": 29.5, "lon": 106.5, "ts": now_iso()})
        producer.send(topics.gps_raw, value=good)
        producer.flush()
        deadline = time.monotonic() + 300
        while True:
            dead, normalised = outcomes(kafka_bootstrap, topics)
            done = normalised["OFF-LAST"] > 0 and all(
                normalised[topic] + len(dead.get(topic, [])) >= count
                for topic, count in produced.items()
            )
            if done or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert worker.alive(), f"worker died; see {worker.log_path}"
    finally:
        worker.stop()

    assert min(produced.values()) >= FUZZ_PER_TOPIC
    assert normalised.pop("OFF-LAST") == 1, "the normaliser stalled"
    assert {t: normalised[t] + len(dead.get(t, [])) for t in produced} == dict(produced)
    for topic, places in dead.items():
        assert len(places) == len(set(places)), f"{topic}: a message dead-lettered twice"
    reasons = {key.partition(":")[2] for key in normalised if key.startswith("reasons:")}
    assert {"invalid_json", "invalid_encoding", "empty", "oversized", "out_of_range"} <= reasons


def outcomes(bootstrap: str, topics: TopicNames) -> tuple[dict[str, list[Any]], Counter[str]]:
    """Dead letters by source topic (their partition and offset), and how many events each raw
    topic's normaliser published (with "OFF-LAST": the closing ping, and the reasons seen)."""
    records = consume_all(bootstrap, topics.deadletter, raw=True)
    dead: dict[str, list[Any]] = {}
    counts: Counter[str] = Counter()
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        dead.setdefault(headers["source_topic"], []).append(
            (headers["source_partition"], headers["source_offset"])
        )
        counts["reasons:" + headers["reason"]] += 1
    pings = consume_all(bootstrap, topics.gps)
    counts["OFF-LAST"] = sum(p["officer_id"] == "OFF-LAST" for p in pings)
    counts[topics.gps_raw] = len(pings) - counts["OFF-LAST"]
    for raw, normalised in (
        (topics.alerts_raw, topics.alerts),
        (topics.status_raw, topics.status),
        (topics.cameras_raw, topics.cameras),
    ):
        counts[raw] = len(consume_all(bootstrap, normalised))
    counts[topics.backup] = 0  # handled, not normalised: no fuzzed request is valid
    return dead, counts
