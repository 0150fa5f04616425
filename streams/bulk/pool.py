"""Running chunks in order on every core: a process pool with at most two chunks per process
in flight."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable
from multiprocessing import get_context
from typing import Any

from streams.bulk.chunks import run_task
from streams.bulk.options import M
from streams.bulk.render import ChunkResult, Task


def ordered_map(
    tasks: Iterable[tuple[Task, M]], workers: int
) -> Generator[tuple[ChunkResult, M], None, None]:
    """Results in task order. Pool.imap would read the whole input ahead: this keeps at most two
    chunks per worker in flight, so memory stays flat however large the input."""
    if workers <= 1:
        for task, meta in tasks:
            yield run_task(task), meta
        return
    # spawn, not fork: the parent may hold Kafka client and tqdm threads.
    with get_context("spawn").Pool(workers) as pool:
        pending: deque[tuple[Any, M]] = deque()
        for task, meta in tasks:
            pending.append((pool.apply_async(run_task, (task,)), meta))
            if len(pending) >= 2 * workers:
                result, done = pending.popleft()
                yield result.get(), done
        while pending:
            result, done = pending.popleft()
            yield result.get(), done
