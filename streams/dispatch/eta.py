"""Travel-time estimates: straight-line distance stretched by a circuity factor, over a typical
speed per travel mode. A road router can replace `eta_seconds` later."""

from __future__ import annotations

# Circuity = network distance / straight-line distance. Newell (1980) puts random urban point pairs
# at ~1.2; Giacomin & Levinson, "Road network circuity in metropolitan areas" (Environment and
# Planning B 42(6), 2015) find short metropolitan trips more circuitous than long ones, and 1.3 is
# the usual planning figure for short urban trips. Dispatch distances are short, so 1.3.
CIRCUITY_FACTOR = 1.3

# Typical door-to-door urban averages including junctions and congestion, not speed limits.
SPEEDS_KMH: dict[str, float] = {
    "car": 30.0,
    "motorbike": 35.0,  # filters through traffic, a little faster than a car on average
    "bicycle": 15.0,
    "foot": 5.0,
}


def eta_seconds(distance_m: float, *, mode: str = "car") -> float:
    """Seconds to cover `distance_m` of straight-line distance by `mode` on urban roads."""
    speed_kmh = SPEEDS_KMH.get(mode)
    if speed_kmh is None:
        raise ValueError(f"unknown travel mode {mode!r}; known: {', '.join(SPEEDS_KMH)}")
    if not distance_m >= 0.0:
        raise ValueError(f"distance_m must be non-negative, got {distance_m}")
    return distance_m * CIRCUITY_FACTOR / (speed_kmh / 3.6)
