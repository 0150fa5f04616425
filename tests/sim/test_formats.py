"""streams.sim.formats: every legacy time format a simulated station writes is read by the time
standard back to the instant it was written for (to the second the format keeps)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from base.errors import InvalidEvent
from streams.sim.formats import TimeFormat, gbk_mojibake, malformed, render_time
from streams.text.repair import repair_text
from streams.timestd import parse_instant

# 2000-01-01 .. 2037-12-31, Asia/Shanghai has had no DST since 1991.
INSTANTS = st.integers(min_value=946_684_800_000, max_value=2_145_830_400_000)


@pytest.mark.parametrize("form", list(TimeFormat))
@given(epoch_ms=INSTANTS)
def test_every_station_format_reads_back_to_its_instant(form: TimeFormat, epoch_ms: int) -> None:
    written = render_time(epoch_ms, form)
    read = parse_instant(written, zone="Asia/Shanghai")
    keeps_ms = form in (TimeFormat.ISO, TimeFormat.EPOCH_MS)
    assert read.utc_ms == (epoch_ms if keeps_ms else epoch_ms - epoch_ms % 1000)
    assert not read.inferred


def test_chinese_clock_words_name_the_part_of_the_day() -> None:
    evening = 1_795_781_730_000  # 2026-11-27 20:15:30 +08:00
    assert render_time(evening, TimeFormat.ZH_WORDS) == "2026年11月27日晚上8点15分30秒"
    assert render_time(evening, TimeFormat.FULL_WIDTH) == "２０２６-１１-２７ ２０：１５：３０"
    assert render_time(evening, TimeFormat.CLOCK12) == "2026-11-27 08:15:30 PM"


def test_mojibake_is_what_the_text_repair_undoes() -> None:
    address = "重庆市江北区观音桥建新北路12号"
    broken = gbk_mojibake(address)
    assert broken != address
    assert repair_text(broken).text == address


@pytest.mark.parametrize("kind", ["missing_id", "lat_out_of_range", "impossible_date"])
def test_malformed_events_are_refused_by_the_ping_reader(kind: str) -> None:
    from streams.ingest.officers import ping_from_raw
    from streams.ingest.stations import StationBook

    raw = malformed(kind, "JB-001", 1_795_781_730_000)
    assert isinstance(raw, dict)
    with pytest.raises(InvalidEvent):
        ping_from_raw(
            raw, stations=StationBook(), resolution=8, reference_ms=1_795_781_730_000, ingest_ms=0
        )
