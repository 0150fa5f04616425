"""Straight-line ETA: monotonic in distance, mode-dependent, strict about its inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.dispatch.eta import CIRCUITY_FACTOR, SPEEDS_KMH, eta_seconds

distances = st.floats(0.0, 1e6)


@given(a=distances, b=distances, mode=st.sampled_from(sorted(SPEEDS_KMH)))
def test_eta_grows_with_distance(a: float, b: float, mode: str) -> None:
    near, far = sorted((a, b))
    assert eta_seconds(near, mode=mode) <= eta_seconds(far, mode=mode)


def test_car_covers_a_kilometre_of_straight_line_in_about_two_and_a_half_minutes() -> None:
    assert eta_seconds(1_000.0) == pytest.approx(1_000 * CIRCUITY_FACTOR / (30 / 3.6))
    assert 140 < eta_seconds(1_000.0) < 170


def test_modes_differ_and_walking_is_slowest() -> None:
    etas = {mode: eta_seconds(2_000.0, mode=mode) for mode in SPEEDS_KMH}

    assert len(set(etas.values())) == len(etas)
    assert max(etas, key=etas.__getitem__) == "foot"
    assert etas["foot"] > etas["bicycle"] > etas["car"] > etas["motorbike"]


def test_zero_distance_takes_no_time() -> None:
    assert eta_seconds(0.0, mode="foot") == 0.0


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown travel mode"):
        eta_seconds(100.0, mode="helicopter")


@pytest.mark.parametrize("distance_m", [-1.0, float("nan")])
def test_negative_or_nan_distance_is_rejected(distance_m: float) -> None:
    with pytest.raises(ValueError):
        eta_seconds(distance_m)
