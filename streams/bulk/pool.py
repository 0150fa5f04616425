"""Running chunks in order on every core: a process pool with at most two chunks per process
in flight."""

from __future__ import annotations

import gc
import signal
import threading
from collections import deque
from collections.abc import Generator, Iterable
from multiprocessing import get_context
from multiprocessing.pool import Pool
from typing import Any

from streams.bulk.chunks import run_task
from streams.bulk.options import M
from streams.bulk.render import ChunkResult, Task
from streams.text.model import char_model, word_model


def ordered_map(
    tasks: Iterable[tuple[Task, M]], workers: int, *, fork: bool = False
) -> Generator[tuple[ChunkResult, M], None, None]:
    """Results in task order. Pool.imap would read the whole input ahead: this keeps at most two
    chunks per worker in flight, so memory stays flat however large the input. `fork`: the
    caller holds no client or connection a child could trip on (see `_pool`)."""
    if workers <= 1:
        for task, meta in tasks:
            yield run_task(task), meta
        return
    with _pool(workers, fork) as pool:
        pending: deque[tuple[Any, M]] = deque()
        for task, meta in tasks:
            pending.append((pool.apply_async(run_task, (task,)), meta))
            if len(pending) >= 2 * workers:
                result, done = pending.popleft()
                yield result.get(), done
        while pending:
            result, done = pending.popleft()
            yield result.get(), done


def _pool(workers: int, fork: bool) -> Pool:
    """Forked workers share the parent's time shape tables and text model (a spawned one spent
    ~1 s CPU importing and loading them before its first chunk). Fork only when the caller says
    it holds no Kafka client or warehouse and no other thread runs: a lock another thread holds
    at the fork stays held in the child. Otherwise spawn."""
    if not fork or threading.active_count() > 1:
        return get_context("spawn").Pool(workers)
    char_model(), word_model()  # loaded once here rather than once per worker
    gc.freeze()  # the children's collector leaves the shared objects (and their pages) alone
    try:
        return get_context("fork").Pool(workers, initializer=_default_sigterm)
    finally:
        gc.unfreeze()


def _default_sigterm() -> None:
    """A forked worker would inherit the job's SIGTERM handler; it dies on SIGTERM as a spawned
    one does (the parent removes its part files)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
