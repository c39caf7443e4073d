"""How many chunks zarr reads or writes at once within one array access.

zarr decodes up to ``async.concurrency`` chunks of one read at the same time (default 10) and
holds them all until they are copied out, so reading one block cost about three times the
block: a 164x256x256 uint64 read of 128³ chunks peaked 275 MB above the process for an 82 MB
result, and 115 MB with one chunk at a time, which was no slower on local disk. Blocks already
run in parallel (threads or dask workers), so axonseg reads and writes one chunk at a time
within a block unless ``ZARR_ASYNC__CONCURRENCY`` is set (worth raising for object stores,
where each chunk is a request with its own latency). Jobs that move many small chunks (ingest:
64³ uint8, 256 kB) raise it for their duration with :func:`chunk_concurrency`, within a byte
budget per block.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import zarr

from axonseg.errors import ConfigError

ENV_VARIABLE = "ZARR_ASYNC__CONCURRENCY"
DEFAULT_CONCURRENCY = 1
ZARR_DEFAULT_CONCURRENCY = 10
CHUNK_BUDGET_BYTES = 32 * 2**20


def limit_chunk_concurrency(concurrency: int | None = None) -> int:
    """Set zarr's ``async.concurrency`` and return the value in force.

    Args:
        concurrency: chunks decoded or encoded at once per array access; None keeps what
            ``ZARR_ASYNC__CONCURRENCY`` says when it is set, else :data:`DEFAULT_CONCURRENCY`.
    """
    if concurrency is None:
        if os.environ.get(ENV_VARIABLE):
            return int(zarr.config.get("async.concurrency"))
        concurrency = DEFAULT_CONCURRENCY
    if concurrency < 1:
        raise ConfigError(f"concurrency={concurrency}: expected at least 1 chunk at a time")
    zarr.config.set({"async.concurrency": int(concurrency)})
    return int(concurrency)


def concurrency_for(chunk_nbytes: int, budget_bytes: int = CHUNK_BUDGET_BYTES) -> int:
    """Chunks at once that keep one access's decoded chunks within ``budget_bytes`` (1 to 10).

    Args:
        chunk_nbytes: bytes of one decoded chunk.
        budget_bytes: bytes of decoded chunks one array access may hold.
    """
    return int(min(ZARR_DEFAULT_CONCURRENCY, max(1, budget_bytes // max(int(chunk_nbytes), 1))))


@contextmanager
def chunk_concurrency(concurrency: int) -> Iterator[int]:
    """zarr's ``async.concurrency`` inside the ``with`` (in this process), restored after.

    Set it before starting the threads that access arrays, not from inside them: the setting is
    process-wide. ``ZARR_ASYNC__CONCURRENCY``, when set, wins. Yields the value in force.
    """
    if os.environ.get(ENV_VARIABLE):
        yield int(zarr.config.get("async.concurrency"))
        return
    if concurrency < 1:
        raise ConfigError(f"concurrency={concurrency}: expected at least 1 chunk at a time")
    with zarr.config.set({"async.concurrency": int(concurrency)}):  # donfig restores on exit
        yield int(concurrency)
