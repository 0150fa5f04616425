"""base.logs: repeated warnings and errors are written once per window, with a count."""

from __future__ import annotations

import logging

import pytest

from base.logs import RepeatLimiter, limit_repeats
from streams.pipeline.worker import PipelineWorker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logged() -> tuple[logging.Logger, list[str], Clock]:
    """A logger whose handler keeps every formatted line, behind a limiter on a fake clock."""
    lines: list[str] = []
    clock = Clock()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    logger = logging.getLogger(f"test-logs-{id(lines)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Keep())
    limit_repeats(logger, RepeatLimiter(window_s=30.0, clock=clock))
    return logger, lines, clock


def test_an_error_flood_is_one_line_per_window_then_a_count(
    logged: tuple[logging.Logger, list[str], Clock],
) -> None:
    logger, lines, clock = logged
    for attempt in range(10_000):  # a broker outage: the same failure, node after node
        logger.error("Unable connect to node with id %s: %s", attempt % 3, "refused")
        clock.now += 0.001
    assert lines == ["Unable connect to node with id 0: refused"]

    clock.now += 30.0
    logger.error("Unable connect to node with id %s: %s", 1, "refused")
    assert lines[1] == (
        "Unable connect to node with id 1: refused [9999 more like this held back in the last 30 s]"
    )
    logger.error("Unable connect to node with id %s: %s", 2, "refused")
    assert len(lines) == 2


def test_other_messages_and_info_lines_are_not_held_back(
    logged: tuple[logging.Logger, list[str], Clock],
) -> None:
    logger, lines, _ = logged
    for _ in range(3):
        logger.error("commit failed")
        logger.warning("fetch failed")
        logger.info("assigned %d partitions", 4)
    assert lines == ["commit failed", "fetch failed"] + ["assigned 4 partitions"] * 3


def test_a_record_seen_by_two_handlers_is_counted_once() -> None:
    clock = Clock()
    limiter = RepeatLimiter(window_s=30.0, clock=clock)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, None)
    assert limiter.filter(record) and limiter.filter(record)  # the same record, two handlers
    again = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, None)
    assert not limiter.filter(again)
    assert limiter.seen[("x", logging.ERROR, "boom")].held_back == 1


def test_the_worker_limits_repeats_on_the_root_handlers_it_sets_up() -> None:
    logger = logging.Logger("root-like")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    worker = PipelineWorker.__new__(PipelineWorker)
    worker.spinner = None
    worker.on_setup_root_logger(logger, logging.WARNING)
    assert any(isinstance(f, RepeatLimiter) for f in handler.filters)
