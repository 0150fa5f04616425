"""`smart-station harmonise`: the CLI end to end on files with bad rows, atomic output, chunking
and workers, column detection, a round-trip property, and the Kafka range mode on the real
broker."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from base.errors import HarmoniseError, InvalidEvent
from base.settings import Settings
from infra.topics import ensure_topics
from streams.bulk.jobs import harmonise_files, harmonise_topic
from streams.bulk.options import HarmoniseOptions, HarmoniseSummary, TopicRange
from streams.bulk.roles import is_identifier_column, is_time_column
from streams.text.repair import fold_fullwidth, repair_record, repair_text
from streams.timestd import SourceConvention, format_iso, parse_instant
from tests.support.clients import consume, env_without_settings, send_json
from tests.support.exports import unreadable_csv

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "harmonise"
ALERTS_CSV = DATA / "alerts.csv"
ALERTS_JSONL = DATA / "alerts.jsonl"


def run_cli(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env_without_settings(),
        stdin=subprocess.DEVNULL,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def partials(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.partial-*"))


# --- the CLI on files --------------------------------------------------------------------------


def test_csv_with_bad_rows_keeps_columns_and_order_and_exits_3(tmp_path: Path) -> None:
    out = tmp_path / "alerts.out.csv"
    result = run_cli("harmonise", ALERTS_CSV, "--out", out, "--no-progress", "--workers", "1")

    assert result.returncode == 3, result.stderr
    assert "7 rows" in result.stdout and "3 rejected" in result.stdout
    with out.open(newline="", encoding="utf-8") as file:
        header = next(csv.reader(file))
    assert header == [
        "alert_id",
        "station_id",
        "reported_at",
        "reported_at_utc_ms",
        "received_time",
        "received_time_utc_ms",
        "address",
        "description",
        "caller_phone",
    ]
    rows = read_csv(out)
    assert [r["alert_id"] for r in rows] == ["AL-1", "AL-2", "AL-5", "AL-7"]
    first = rows[0]
    assert first["reported_at"] == "2022-10-15T15:04:00+08:00"
    assert first["reported_at_utc_ms"] == "1665817440000"
    assert first["received_time"] == "2022-10-15T15:04:05.120+08:00"
    assert first["address"] == "渝中区解放碑8号"  # GBK mojibake repaired
    assert first["description"] == "两人争吵"
    assert first["caller_phone"] == "13800138000"  # full-width digits folded
    assert rows[1]["reported_at"] == "2022-10-15T15:10:00+08:00"  # 下午3点10分
    assert rows[1]["description"] == 'caller says "help"\nthen hangs up, twice'
    assert rows[3]["caller_phone"] == "ST-10"
    assert rows[3]["received_time_utc_ms"] == "1665819960000"  # epoch seconds

    rejects = read_csv(tmp_path / "alerts.out.rejects.csv")
    originals = {r["alert_id"]: r for r in read_csv(ALERTS_CSV)}
    assert [(r["alert_id"], r["reason"]) for r in rejects] == [
        ("AL-3", "invalid_time"),
        ("AL-4", "empty"),
        ("AL-6", "invalid_time"),
    ]
    for reject in rejects:
        assert reject["message"]
        original = originals[reject["alert_id"]]
        assert {k: reject[k] for k in original} == original  # untouched, every column
    assert partials(tmp_path) == []


def test_clean_file_exits_0_with_a_header_only_rejects_file(tmp_path: Path) -> None:
    source = tmp_path / "clean.csv"
    source.write_text("id,ts,note\n1,2022-10-15 15:04:00,ok\n2,1665817440000,fine\n")
    out = tmp_path / "clean.out.csv"

    result = run_cli("harmonise", source, "--out", out, "--no-progress")

    assert result.returncode == 0, result.stderr
    assert [r["ts_utc_ms"] for r in read_csv(out)] == ["1665817440000"] * 2
    assert (tmp_path / "clean.out.rejects.csv").read_bytes() == b"id,ts,note,reason,message\r\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([ALERTS_CSV], "give --out"),
        ([ALERTS_CSV, "--out", "x.csv", "--format", "xml"], "unknown format"),
        (["--out", "x.csv"], "give input files or --from-topic"),
        (["no-such-file.csv", "--out", "x.csv"], "no such file"),
        ([ALERTS_CSV, "--out", "x.csv", "--zone", "Mars/Olympus"], "unknown time zone"),
        ([ALERTS_CSV, "--out", "x.csv", "--time-columns", "nope"], "no column 'nope'"),
        ([ALERTS_CSV, "--out", "x.csv", "--to-topic", "t"], "need --from-topic"),
        (["alerts.xml", "--out", "x.csv"], "cannot tell CSV, JSON Lines or Parquet"),
        ([ALERTS_CSV, "--out", "x.txt"], "--format csv, jsonl or parquet"),
        ([ALERTS_CSV, "--out", "x.csv", "--rejects", "r.parquet"], "not Parquet"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    args: list[str | Path], message: str, tmp_path: Path
) -> None:
    args = [tmp_path / a if a in ("x.csv", "x.txt") else a for a in args]
    result = run_cli("harmonise", *args)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_option_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("harmonise", ALERTS_CSV, "--out", tmp_path / "x.csv", "--workers", "0")

    assert result.returncode == 2 and "--workers" in result.stderr


def test_jsonl_in_and_out(tmp_path: Path) -> None:
    out = tmp_path / "alerts.out.jsonl"
    result = run_cli("harmonise", ALERTS_JSONL, "--out", out, "--no-progress")

    assert result.returncode == 3, result.stderr
    rows = read_jsonl(out)
    assert [r["alert_id"] for r in rows] == ["AL-11", "AL-12", "AL-14"]
    assert list(rows[0]) == [
        "alert_id",
        "reportedAt",
        "reportedAt_utc_ms",
        "address",
        "caller_phone",
        "units",
    ]
    assert rows[0]["address"] == "渝中区解放碑8号" and rows[0]["units"] == 2
    assert rows[0]["caller_phone"] == "13800138011"
    assert rows[1]["reportedAt"] == "2022-10-15T16:05:00+08:00" and rows[1]["tags"] == ["noise"]
    rejects = read_jsonl(tmp_path / "alerts.out.rejects.jsonl")
    assert rejects[0] == {
        "alert_id": "AL-13",
        "reportedAt": None,
        "address": "南岸区",
        "reason": "empty",
        "message": "no timestamp",
    }
    assert rejects[1]["line"] == "not json at all" and rejects[1]["reason"] == "invalid_json"


def test_several_inputs_go_in_order_into_one_csv_with_the_first_inputs_columns(
    tmp_path: Path,
) -> None:
    second = tmp_path / "more.csv"
    second.write_text(  # same columns, another order
        "caller_phone,description,address,received_time,reported_at,station_id,alert_id\n"
        "13800138999,late,x,2022-10-16 09:00:00,2022-10-16 08:59:00,ST-01,AL-99\n"
    )
    out = tmp_path / "all.csv"

    result = run_cli(
        "harmonise", ALERTS_CSV, second, "--out", out, "--workers", "2", "--no-progress"
    )

    assert result.returncode == 3, result.stderr
    rows = read_csv(out)
    assert [r["alert_id"] for r in rows] == ["AL-1", "AL-2", "AL-5", "AL-7", "AL-99"]
    assert rows[-1]["reported_at"] == "2022-10-16T08:59:00+08:00"
    assert rows[-1]["caller_phone"] == "13800138999"
    assert "2 input(s)" in result.stdout


def test_csv_and_jsonl_inputs_into_one_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "mixed.jsonl"

    summary = harmonise_files([ALERTS_CSV, ALERTS_JSONL], out, workers=1)

    assert summary.counts.rows_in == 7 + 5
    assert [r["alert_id"] for r in read_jsonl(out)] == [
        *("AL-1", "AL-2", "AL-5", "AL-7"),
        *("AL-11", "AL-12", "AL-14"),
    ]
    assert summary.counts.formats["zh"] == 2
    assert summary.counts.text_repaired == 5


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_job_leaves_neither_output_nor_partial_files(tmp_path: Path, workers: int) -> None:
    broken = unreadable_csv(tmp_path / "unreadable")
    out = tmp_path / "out" / "out.csv"
    out.parent.mkdir()
    with pytest.raises(HarmoniseError, match="unreadable CSV"):
        harmonise_files([ALERTS_CSV, broken], out, workers=workers)
    assert sorted(p.name for p in out.parent.iterdir()) == []  # no part files either


def test_workers_write_part_files_that_end_up_in_the_output_in_order(tmp_path: Path) -> None:
    one = harmonise_files([ALERTS_CSV, ALERTS_JSONL], tmp_path / "one.jsonl", workers=1)
    two = harmonise_files(
        [ALERTS_CSV, ALERTS_JSONL], tmp_path / "two.jsonl", workers=2, chunk_bytes=200
    )
    assert one.counts.rows_in == two.counts.rows_in
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    one_rejects = (tmp_path / "one.rejects.jsonl").read_bytes()
    assert one_rejects == (tmp_path / "two.rejects.jsonl").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.csv"
    with path.open("w") as file:
        file.write("id,reported_at,note\n")
        for n in range(300_000):
            file.write(f"{n},{format_iso(1_665_817_440_000 + n * 1000, 'Asia/Shanghai')},x\n")
    return path


def start_job(source: Path, out: Path) -> subprocess.Popen[str]:
    args = ["harmonise", str(source), "--out", str(out), "--workers", "1", "--no-progress"]
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", *args],
        cwd=ROOT,
        env=env_without_settings(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not partials(out.parent) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert partials(out.parent), "the job never started writing"
    time.sleep(0.2)
    return process


def test_terminated_job_removes_its_partial_files(big_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    process = start_job(big_csv, out)

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=20) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_killed_job_leaves_no_output_and_the_next_run_cleans_up(
    big_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    process = start_job(big_csv, out)

    process.kill()
    process.wait(timeout=20)

    assert not out.exists()
    assert len(partials(tmp_path)) == 2  # output and rejects, named .<name>.partial-<pid>
    harmonise_files([ALERTS_CSV], out, workers=1)
    assert out.exists() and partials(tmp_path) == []


# --- chunks, workers and the library -----------------------------------------------------------


def test_chunk_boundaries_inside_quoted_newlines_change_nothing(tmp_path: Path) -> None:
    source = tmp_path / "quoted.csv"
    lines = ['id,ts,"note, with comma"']
    lines += [f'{n},2022-10-15 15:{n % 60:02d}:00,"a ""q""\nline {n}\n,end"' for n in range(400)]
    source.write_text("\n".join(lines) + "\n")
    whole = harmonise_files([source], tmp_path / "whole.csv", workers=1)

    chunked = harmonise_files([source], tmp_path / "chunked.csv", workers=2, chunk_bytes=97)

    assert whole.counts.rows_in == chunked.counts.rows_in == 400
    assert chunked.rows_rejected == 0
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()


def test_invalid_utf8_row_is_rejected_with_its_original_bytes(tmp_path: Path) -> None:
    source = tmp_path / "latin.csv"
    source.write_bytes(b"id,ts,note\n1,2022-10-15 15:04:00,caf\xe9\n2,2022-10-15 15:05:00,ok\n")

    summary = harmonise_files([source], tmp_path / "out.csv", workers=1)

    assert summary.counts.rejected == {"invalid_encoding": 1}
    rejects = (tmp_path / "out.rejects.csv").read_bytes()
    assert b"1,2022-10-15 15:04:00,caf\xe9,invalid_encoding," in rejects


def test_reference_column_settles_times_without_a_date(tmp_path: Path) -> None:
    source = tmp_path / "calls.csv"
    source.write_text("id,call_time,ingest_ms\n1,15:04,1665817000000\n2,15:04,\n")
    options = HarmoniseOptions(reference_column="ingest_ms")

    summary = harmonise_files([source], tmp_path / "out.csv", options=options, workers=1)

    assert summary.counts.inferred == 1
    assert summary.counts.rejected == {"ambiguous_time": 1}
    assert read_csv(tmp_path / "out.csv")[0]["call_time"] == "2022-10-15T15:04:00+08:00"


def test_source_conventions_read_day_first_and_twelve_hour_clocks(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    source.write_text("id,ts\n1,03/04/2022 10:00\n")
    day_first = HarmoniseOptions(convention=SourceConvention(day_first=True))

    harmonise_files([source], tmp_path / "d.out.csv", options=day_first, workers=1)
    unknown = harmonise_files([source], tmp_path / "u.out.csv", workers=1)

    assert read_csv(tmp_path / "d.out.csv")[0]["ts"] == "2022-04-03T10:00:00+08:00"
    assert unknown.counts.rejected == {"ambiguous_time": 1}


def test_harmonising_an_output_again_changes_nothing(tmp_path: Path) -> None:
    once, twice = tmp_path / "once.csv", tmp_path / "twice.csv"
    harmonise_files([ALERTS_CSV], once, workers=1)
    harmonise_files([once], twice, workers=1)

    assert once.read_bytes() == twice.read_bytes()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("reported_at", True),
        ("received_time", True),
        ("ts", True),
        ("timestamp", True),
        ("date", True),
        ("report_date", True),
        ("eventTime", True),
        ("time_local", True),
        ("报警时间", True),
        ("出警日期", True),
        ("reported_at_utc_ms", False),
        ("response_time_s", False),
        ("time_zone", False),
        ("timezone", False),
        ("address", False),
        ("station_id", False),
        ("updates", False),
    ],
)
def test_time_columns_are_detected_by_name(name: str, expected: bool) -> None:
    assert is_time_column(name) is expected


@pytest.mark.parametrize("name", ["caller_phone", "officer_id", "badgeNo", "plate-number", "警号"])
def test_identifier_columns_are_detected_by_name(name: str) -> None:
    assert is_identifier_column(name)


def test_explicit_time_columns_override_detection(tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text("id,when,reported_at\n1,2022-10-15 15:04:00,whenever\n")

    harmonise_files(
        [source],
        tmp_path / "o.csv",
        options=HarmoniseOptions(time_columns=("when",)),
        workers=1,
    )

    assert read_csv(tmp_path / "o.csv") == [
        {
            "id": "1",
            "when": "2022-10-15T15:04:00+08:00",
            "when_utc_ms": "1665817440000",
            "reported_at": "whenever",
        }
    ]


# --- a round-trip property ---------------------------------------------------------------------

instants = st.integers(min_value=946_684_800_000, max_value=4_102_444_799_000)
time_cells = st.one_of(
    instants.map(lambda ms: format_iso(ms, "Asia/Shanghai")),
    instants.map(lambda ms: str(ms)),
    instants.map(lambda ms: format_iso(ms, "Asia/Shanghai")[:19].replace("T", " ")),
    st.sampled_from(["", "not a time", "2022-02-30 10:00:00", "24:00", "yesterday"]),
)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(time_cells, texts, time_cells), max_size=30))
def test_random_rows_survive_the_round_trip(rows: list[tuple[str, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        source = tmp / "in.csv"
        with source.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["row_id", "reported_at", "note", "received_at"])
            writer.writerows([n, a, note, b] for n, (a, note, b) in enumerate(rows))

        summary = harmonise_files([source], tmp / "out.csv", workers=1)
        out = read_csv(tmp / "out.csv")
        rejects = read_csv(tmp / "out.rejects.csv")

    assert summary.counts.rows_in == len(rows)
    assert len(out) + len(rejects) == len(rows) == summary.counts.rows_out + len(rejects)
    out_ids = [int(r["row_id"]) for r in out]
    reject_ids = [int(r["row_id"]) for r in rejects]
    assert out_ids == sorted(out_ids) and reject_ids == sorted(reject_ids)
    assert sorted(out_ids + reject_ids) == list(range(len(rows)))
    for row in out:
        for column in ("reported_at", "received_at"):
            assert parse_instant(row[column]).utc_ms == int(row[f"{column}_utc_ms"])
        assert row["note"] == repair_text(rows[int(row["row_id"])][1]).text
    for reject in rejects:
        original = rows[int(reject["row_id"])]
        assert (reject["reported_at"], reject["note"], reject["received_at"]) == original


# --- Kafka: a bounded range of a topic ---------------------------------------------------------


@pytest.mark.broker
def test_topic_range_is_harmonised_into_a_topic_keeping_keys(
    kafka_bootstrap: str, producer: KafkaProducer, settings: Settings
) -> None:
    source, target = settings.topic("raw.alerts"), settings.topic("alerts.harmonised")
    ensure_topics(kafka_bootstrap, [source], 2)
    for n in range(6):
        value = {"alert_id": f"AL-{n}", "ts": f"2022-10-15 15:0{n}:00", "address": "ÓåÖÐÇø"}
        send_json(producer, source, value, key=f"AL-{n}")
    send_json(producer, source, {"alert_id": "AL-bad", "ts": "soon"}, key="AL-bad")
    producer.send(source, key=b"AL-junk", value=b"{not json")
    producer.flush()

    summary = harmonise_topic(kafka_bootstrap, source, to_topic=target, workers=1, partitions=2)

    assert (summary.counts.rows_in, summary.counts.rows_out, summary.rows_rejected) == (8, 6, 2)
    records = consume(kafka_bootstrap, target, until=lambda found: len(found) >= 6, raw=True)
    by_key = {r.key.decode(): orjson.loads(r.value) for r in records}
    assert set(by_key) == {f"AL-{n}" for n in range(6)}
    assert by_key["AL-3"]["ts"] == "2022-10-15T15:03:00+08:00"
    assert by_key["AL-3"]["ts_utc_ms"] == 1665817380000
    assert by_key["AL-3"]["address"] == "渝中区"
    rejected = consume(kafka_bootstrap, f"{target}.rejects", until=lambda found: len(found) >= 2)
    assert sorted(r["reason"] for r in rejected) == ["invalid_json", "invalid_time"]


@pytest.mark.broker
def test_cli_reads_an_offset_range_and_a_time_range_into_files(
    kafka_bootstrap: str, producer: KafkaProducer, settings: Settings, tmp_path: Path
) -> None:
    source = settings.topic("raw.calls")
    ensure_topics(kafka_bootstrap, [source], 1)
    base_ms = 1_665_817_440_000
    for n in range(5):
        value = orjson.dumps({"call_id": n, "time": base_ms + n * 60_000})
        producer.send(source, value=value, timestamp_ms=base_ms + n * 60_000)
    producer.flush()

    by_offset = run_cli(
        *("--kafka-bootstrap", kafka_bootstrap, "harmonise", "--from-topic", source),
        *("--start-offset", "1", "--end-offset", "4", "--out", tmp_path / "o.jsonl"),
        "--no-progress",
    )
    window = TopicRange(since_ms=base_ms + 120_000, until_ms=base_ms + 240_000)
    by_time = harmonise_topic(
        kafka_bootstrap, source, window=window, out=tmp_path / "t.jsonl", workers=1
    )

    assert by_offset.returncode == 0, by_offset.stderr
    assert [r["call_id"] for r in read_jsonl(tmp_path / "o.jsonl")] == [1, 2, 3]
    assert by_time.counts.rows_in == 2
    assert [r["call_id"] for r in read_jsonl(tmp_path / "t.jsonl")] == [2, 3]
    assert read_jsonl(tmp_path / "t.jsonl")[0]["time"] == "2022-10-15T15:06:00+08:00"


def test_summary_lines_are_concise() -> None:
    summary = HarmoniseSummary(["a.csv"], "o.csv", "r.csv", workers=2)
    summary.counts.rows_in, summary.counts.rows_out = 10, 9
    summary.counts.rejected = {"empty": 1}
    summary.seconds = 1.0

    lines = summary.lines()

    assert lines[0].startswith("harmonised 10 rows from 1 input(s)")
    assert "9 -> o.csv, 1 rejected -> r.csv" in lines[0]
    assert lines[1:] == ["rejected: empty 1", "text: 0 cells repaired, 0 identifiers folded"]


# --- the column-wise chunk path against a row-by-row oracle ------------------------------------

ORACLE_HEADER = ["row_id", "reported_at", "note", "caller_phone", "received_at"]
many_shapes = st.one_of(
    time_cells,
    instants.map(lambda ms: format_iso(ms, "Asia/Shanghai").replace("T", " ")),
    st.sampled_from(
        [
            "2022年3月5日 下午3点05分",
            "2022年3月5日 晚上12点",
            "Oct 15, 2022 3:05 PM",
            "3/4/2022 3:05 PM",
            "13/04/2022 10:00",
            "20221015150405",
            "2023-02-29",
            "2022-01-01 25:00",
            "2022-13-01 10:00",
            "1665817440",
        ]
    ),
)
oracle_texts = st.one_of(
    texts,
    st.sampled_from(["a,b", 'say "hi"', "line\nbreak", "ÓåÖÐÇø", "１３８００００", "", " x"]),
)


def oracle(rows: list[tuple[str, str, str, str]], zone: str) -> tuple[bytes, bytes]:
    """What harmonising `rows` must write, worked out row by row with the scalar functions."""
    out, rejects = io.StringIO(), io.StringIO()
    output = ["row_id", "reported_at", "reported_at_utc_ms", "note", "caller_phone"]
    csv.writer(out).writerow([*output, "received_at", "received_at_utc_ms"])
    csv.writer(rejects).writerow([*ORACLE_HEADER, "reason", "message"])
    for n, (reported, note, phone, received) in enumerate(rows):
        try:
            first, second = (parse_instant(v, zone=zone) for v in (reported, received))
        except InvalidEvent as exc:
            cells = [str(n), reported, note, phone, received, exc.reason.value, exc.message]
            csv.writer(rejects).writerow(cells)
            continue
        repaired = [r.text for r in repair_record([note, phone])]  # a row's evidence counts
        cells = [str(n), first.iso, str(first.utc_ms), repaired[0]]
        cells += [fold_fullwidth(repaired[1]), second.iso, str(second.utc_ms)]
        csv.writer(out).writerow(cells)
    return out.getvalue().encode(), rejects.getvalue().encode()


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(many_shapes, oracle_texts, oracle_texts, many_shapes), max_size=40),
    st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/London"]),
)
def test_output_is_what_row_by_row_parsing_and_repair_would_write(
    rows: list[tuple[str, str, str, str]], zone: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        source = tmp / "in.csv"
        with source.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(ORACLE_HEADER)
            writer.writerows([n, *row] for n, row in enumerate(rows))
        options = HarmoniseOptions(zone=zone)

        harmonise_files([source], tmp / "out.csv", options=options, workers=1)

        assert ((tmp / "out.csv").read_bytes(), (tmp / "out.rejects.csv").read_bytes()) == oracle(
            rows, zone
        )


# --- inputs in another encoding ----------------------------------------------------------------


def test_a_gbk_file_is_read_as_gbk_and_an_undecodable_row_rejected(tmp_path: Path) -> None:
    source = tmp_path / "gbk.csv"
    source.write_bytes(
        "alert_id,报警时间,地址\r\n".encode("gbk")
        + "A1,2022年10月15日 下午3:05,渝中区解放碑\r\n".encode("gbk")
        + b"A2,2022-10-15 15:06,\x81\x20broken\r\n"  # 0x81 0x20: no GBK character
        + "A3,2022-10-15 15:07,江北区\r\n".encode("gbk")
    )
    options = HarmoniseOptions(encoding="gbk")

    summary = harmonise_files([source], tmp_path / "o.csv", options=options, workers=1)

    with (tmp_path / "o.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["alert_id"], r["报警时间"], r["地址"]) for r in rows] == [
        ("A1", "2022-10-15T15:05:00+08:00", "渝中区解放碑"),
        ("A3", "2022-10-15T15:07:00+08:00", "江北区"),
    ]
    assert summary.counts.rejected == {"invalid_encoding": 1}
    rejected = (tmp_path / "o.rejects.csv").read_bytes().splitlines()[1]
    assert rejected.startswith(b"A2,2022-10-15 15:06,\x81 broken,invalid_encoding")


def test_gbk_json_lines_are_read_as_gbk(tmp_path: Path) -> None:
    source = tmp_path / "gbk.jsonl"
    line = '{"alert_id": "A1", "ts": "2022年10月15日 下午3:05", "address": "渝中区"}\n'
    source.write_bytes(line.encode("gbk"))

    harmonise_files([source], tmp_path / "o.jsonl", options=HarmoniseOptions(encoding="gbk"))

    [obj] = [orjson.loads(x) for x in (tmp_path / "o.jsonl").read_bytes().splitlines()]
    assert (obj["ts"], obj["address"]) == ("2022-10-15T15:05:00+08:00", "渝中区")


@pytest.mark.parametrize("encoding", ["utf-16", "no-such-codec"])
def test_an_unusable_encoding_is_one_line_and_exit_2(tmp_path: Path, encoding: str) -> None:
    result = run_cli("harmonise", ALERTS_CSV, "--out", tmp_path / "o.csv", "--encoding", encoding)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and encoding in result.stderr


def test_a_short_field_is_repaired_on_the_evidence_of_its_row(tmp_path: Path) -> None:
    # '·Ö' (分) alone keeps the caution; beside an address that was GBK mojibake it is repaired,
    # and a row without such evidence keeps it as it is.
    def gbk_as_latin1(text: str) -> str:
        return text.encode("gbk").decode("latin-1")

    source = tmp_path / "short.csv"
    with source.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["alert_id", "reported_at", "address", "unit"])
        writer.writerow(["A1", "2022-10-15 15:04", gbk_as_latin1("江北区公安分局"), "·Ö"])
        writer.writerow(["A2", "2022-10-15 15:05", "江北区公安分局", "·Ö"])
        writer.writerow(["A3", "2022-10-15 15:06", gbk_as_latin1("渝中区解放碑"), "café"])
    out = tmp_path / "short.out.csv"
    summary = harmonise_files([source], out, workers=1)

    rows = read_csv(out)
    assert [(r["address"], r["unit"]) for r in rows] == [
        ("江北区公安分局", "分"),
        ("江北区公安分局", "·Ö"),
        ("渝中区解放碑", "café"),
    ]
    assert summary.counts.text_repaired == 3


def test_a_short_field_of_a_json_object_is_repaired_on_the_evidence_of_its_object(
    tmp_path: Path,
) -> None:
    # Regression: JSON Lines inputs repaired each value alone, so '·Ö' stayed mojibake beside
    # an address that was GBK mojibake (CSV and Parquet repaired it on its row's evidence).
    def gbk_as_latin1(text: str) -> str:
        return text.encode("gbk").decode("latin-1")

    objects = [
        {"alert_id": "A1", "reported_at": "2022-10-15 15:04", "address": "江北区公安分局"},
        {"alert_id": "A2", "reported_at": "2022-10-15 15:05", "address": "江北区公安分局"},
        {"alert_id": "A3", "reported_at": "2022-10-15 15:06", "address": "渝中区解放碑"},
    ]
    objects[0] |= {"address": gbk_as_latin1(objects[0]["address"]), "unit": "·Ö", "n": [1]}
    objects[1] |= {"unit": "·Ö"}
    objects[2] |= {"address": gbk_as_latin1(objects[2]["address"]), "unit": "café"}
    source = tmp_path / "short.jsonl"
    source.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects))
    out = tmp_path / "short.out.jsonl"
    summary = harmonise_files([source], out, workers=1)

    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["address"], r["unit"]) for r in rows] == [
        ("江北区公安分局", "分"),
        ("江北区公安分局", "·Ö"),
        ("渝中区解放碑", "café"),
    ]
    assert rows[0]["n"] == [1]
    assert summary.counts.text_repaired == 3
