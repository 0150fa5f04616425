"""Logging that survives a bad night: a repeated warning or error (same logger, level and message
template) is written once per window, and the next one after the window says how many were held
back. A broker outage used to write ~71,000 ERROR lines in 45 s."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

REPEAT_WINDOW_S = 30.0
MAX_KEYS = 10_000
_DECIDED = "_smart_station_repeat_decision"


@dataclass(slots=True)
class _Seen:
    window_start: float
    held_back: int = 0


class RepeatLimiter(logging.Filter):
    """Passes the first record of each (logger, level, template) per `window_s`; the rest of the
    window is counted, and the first record after it carries the count. Records below `min_level`
    always pass. One instance may sit on several handlers: a record is decided once."""

    def __init__(
        self,
        window_s: float = REPEAT_WINDOW_S,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.min_level = min_level
        self.clock = clock
        self.seen: dict[tuple[str, int, str], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, _DECIDED, None)
        if decided is None:
            decided = self._decide(record)
            setattr(record, _DECIDED, decided)
        return bool(decided)

    def _decide(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self.seen.get(key)
        if seen is None:
            if len(self.seen) >= MAX_KEYS:  # messages built with f-strings: keep memory bounded
                self.seen.clear()
            self.seen[key] = _Seen(now)
            return True
        if now - seen.window_start < self.window_s:
            seen.held_back += 1
            return False
        if seen.held_back:
            record.msg = f"{record.msg} [{seen.held_back} more like this held back in the last "
            record.msg += f"{self.window_s:g} s]"
        self.seen[key] = _Seen(now)
        return True


def limit_repeats(
    logger: logging.Logger | None = None, limiter: RepeatLimiter | None = None
) -> None:
    """Puts one `RepeatLimiter` on every handler of `logger` (the root logger by default): a
    filter on a handler sees the records of every logger that propagates to it."""
    target = logger or logging.getLogger()
    shared = limiter or RepeatLimiter()
    for handler in target.handlers:
        if not any(isinstance(f, RepeatLimiter) for f in handler.filters):
            handler.addFilter(shared)
