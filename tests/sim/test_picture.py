"""streams.sim.picture in a real browser: headless Chromium (Debian's, installed by setup.sh)
opens the night's HTML, and what it holds and paints is checked against the night; the PNG
beside it shows the same."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import h3
import pytest
from PIL import Image

from base.settings import Settings
from streams.ingest.stations import StationBook
from streams.pipeline.plumbing import policy_for
from streams.sim.night import Night, NightConfig
from streams.sim.picture import (
    BACKGROUND,
    PRIORITY_COLOURS,
    STATION_COLOUR,
    STATUS_COLOURS,
    scene_of,
    write_picture,
)
from streams.sim.runner import run_to_jsonl

WIDTH = 1000


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    config = NightConfig(stations=4, officers_per_station=10, duration_s=1800,
                         calls_per_station_hour=20, seed=11)  # fmt: skip
    night = Night.of(config)
    run_to_jsonl(
        night,
        tmp_path_factory.mktemp("night") / "night.jsonl",
        policy=policy_for(Settings()),
        stations=StationBook(),
        resolution=8,
    )
    return night


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: ./setup.sh installs it (apt-get install chromium)"
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, timeout=120, check=True)


def rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def pixels_near(image: Image.Image, colour: str, tolerance: int = 24) -> int:
    target = rgb(colour)
    return sum(
        n
        for n, pixel in image.convert("RGB").getcolors(maxcolors=1 << 24) or []
        if all(abs(a - b) <= tolerance for a, b in zip(pixel, target, strict=True))
    )


def test_the_browser_draws_every_station_officer_alert_cell_and_response(
    night: Night, tmp_path: Path
) -> None:
    scene = scene_of(night)
    html = tmp_path / "night.html"
    write_picture(scene, html, "test night", WIDTH)
    dom = chromium("--dump-dom", html.as_uri(), profile=tmp_path / "profile").stdout.decode()

    def count(css_class: str) -> int:
        return len(re.findall(rf'class="{css_class}[" ]', dom))

    patrol = [o for o in night.officers.values() if o.on_patrol]
    cells = {
        h3.latlng_to_cell(float(c["lat"]), float(c["lon"]), 8) for c in night.ledger.alerts.values()
    }
    assert count("station") == 4
    assert count("officer") == len(patrol) == 4 * 7
    assert count("alert") == len(night.ledger.alerts) >= 5
    assert count("cell") == len(cells)
    assert count("assignment") == len(night.ledger.responses) > 0
    statuses = {status for _, status, _, _ in scene.officers}
    for status in statuses:
        assert count(f"officer {status}") == sum(s == status for _, s, _, _ in scene.officers)
    assert "http" not in dom.replace("http://www.w3.org/2000/svg", "")  # nothing fetched

    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", f"--window-size={WIDTH},900", html.as_uri(),
             profile=tmp_path / "profile")  # fmt: skip
    painted = Image.open(shot)
    total = painted.width * painted.height
    background = pixels_near(painted, BACKGROUND, 2) + pixels_near(painted, "#ffffff", 2)
    assert total - background > 0.005 * total  # not blank
    assert pixels_near(painted, STATION_COLOUR, 10) >= 4 * 100  # 12 x 12 squares
    for status in statuses:
        assert pixels_near(painted, STATUS_COLOURS[status]) > 0, status
    for priority in {p for _, p, _, _ in scene.alerts}:
        assert pixels_near(painted, PRIORITY_COLOURS[priority]) > 0, priority


def test_the_png_shows_the_same_picture(night: Night, tmp_path: Path) -> None:
    scene = scene_of(night)
    png = write_picture(scene, tmp_path / "night.html", "test night", WIDTH)
    image = Image.open(png)
    assert image.width == WIDTH
    total = image.width * image.height
    assert total - pixels_near(image, BACKGROUND, 2) > 0.005 * total
    assert pixels_near(image, STATION_COLOUR, 10) >= 4 * 100
    for status in {status for _, status, _, _ in scene.officers}:
        assert pixels_near(image, STATUS_COLOURS[status]) > 0, status
    for priority in {p for _, p, _, _ in scene.alerts}:
        assert pixels_near(image, PRIORITY_COLOURS[priority]) > 0, priority


def test_an_empty_night_still_draws_its_stations(tmp_path: Path) -> None:
    night = Night.of(NightConfig(stations=2, officers_per_station=1, duration_s=1,
                                 calls_per_station_hour=0, patrol_share=0.0))  # fmt: skip
    for _ in night.records():
        pass
    png = write_picture(scene_of(night), tmp_path / "empty.html", "empty", 400)
    assert pixels_near(Image.open(png), STATION_COLOUR, 10) >= 2 * 100
