"""The bulk pool: forked workers start with the parent's loaded tables; spawned ones when the
parent runs another thread."""

from __future__ import annotations

import signal
import threading

from streams.bulk.pool import _pool
from streams.text.model import char_model


def _model_loaded() -> bool:
    return char_model.cache_info().currsize == 1


def test_forked_workers_start_with_the_text_model_loaded() -> None:
    with _pool(2, fork=True) as pool:
        assert pool.apply(_model_loaded)


def test_workers_are_spawned_when_the_caller_may_not_fork() -> None:
    with _pool(2, fork=False) as pool:
        assert not pool.apply(_model_loaded)


def test_workers_are_spawned_while_another_thread_runs() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with _pool(2, fork=True) as pool:
            assert not pool.apply(_model_loaded)
    finally:
        stop.set()
        other.join()


def _sigterm_handler() -> object:
    return signal.getsignal(signal.SIGTERM)


def test_forked_workers_die_on_sigterm_whatever_the_job_handles() -> None:
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        with _pool(2, fork=True) as pool:
            assert pool.apply(_sigterm_handler) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
