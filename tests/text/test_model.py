"""streams.text.model: the models' tables are cached per dictionary, and a cached copy reads
back as what a build makes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.text import model


@pytest.fixture
def fresh_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SMART_STATION_STATE_DIR", str(tmp_path / "state"))
    for cached in (model._tables, model.char_model, model.word_model):
        cached.cache_clear()
    yield tmp_path / "state" / "cache"
    for cached in (model._tables, model.char_model, model.word_model):
        cached.cache_clear()


def test_the_tables_are_cached_privately_and_read_back_as_built(fresh_models: Path) -> None:
    built = model._tables()
    [copy] = fresh_models.glob("text-model-*.marshal")
    assert copy.stat().st_mode & 0o777 == 0o600
    assert fresh_models.stat().st_mode & 0o777 == 0o700
    assert fresh_models.parent.stat().st_mode & 0o777 == 0o700
    model._tables.cache_clear()
    assert model._tables() == built
    assert model.char_model().cost("江", "北") == pytest.approx(
        model.CharModel(*built[:4]).cost("江", "北")
    )


def test_a_damaged_cached_copy_is_built_again(fresh_models: Path) -> None:
    built = model._tables()
    [copy] = fresh_models.glob("text-model-*.marshal")
    copy.write_bytes(b"not marshal data")
    model._tables.cache_clear()
    assert model._tables() == built
