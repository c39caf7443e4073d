"""Worker processes for per-block work that holds the GIL, under the threaded scheduler.

kimimaro's tracing holds the GIL, so two dask threads of one process take turns on it. A stage
whose work is like that can hand each block's GIL-bound call to a pool of forked processes:
the dask threads still read and write the blocks (markers, retries and progress unchanged),
and each waits for its block's result with the GIL released. The pool is forked once, before
the scheduler's threads start, so no child inherits a lock another thread held.

``fork`` is Linux's start method and needs no ``if __name__ == "__main__"`` guard in the user's
script (``spawn`` and ``forkserver`` re-import it); elsewhere the work runs in the thread.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

from axonseg.blockwise.executor import parse_scheduler

logger = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """Whether a fork pool is safe here: Linux (macOS's system libraries are not fork-safe)."""
    return sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()


def pool_workers(scheduler: str) -> int:
    """Worker processes a GIL-bound stage gets on ``scheduler``: as many as its threads for
    ``threads[:N]`` (a bare ``threads``: every available core), 0 for ``synchronous`` and the
    distributed schedulers (their workers are processes already), and 0 where fork is unsafe."""
    kind, n_workers, _ = parse_scheduler(scheduler)
    if kind != "threads" or not can_fork():
        return 0
    return n_workers if n_workers is not None else available_cores()


def _ready() -> int:
    return os.getpid()


@contextmanager
def fork_pool(n_workers: int, initializer: Callable[[], object] | None = None) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of ``n_workers`` forked processes, all started on entry; None when ``n_workers < 2``
    (one worker would only add a copy of each block) or fork is unavailable.

    Args:
        n_workers: processes to fork.
        initializer: run once in each worker before any task (e.g. malloc settings).

    Yields:
        The executor, or None: run the work in the calling thread.
    """
    if n_workers < 2 or not can_fork():
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=mp.get_context("fork"), initializer=initializer)
    try:
        # with fork, the first submit forks every worker at once: do it here, before any thread starts
        pids = {future.result() for future in [pool.submit(_ready) for _ in range(n_workers)]}
        logger.debug("forked %d worker processes: %s", len(pids), sorted(pids))
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
