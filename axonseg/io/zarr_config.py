"""How many chunks zarr reads or writes at once within one array access.

zarr decodes up to ``async.concurrency`` chunks of one read at the same time (default 10) and
holds them all until they are copied out, so reading one block cost about three times the
block: a 164x256x256 uint64 read of 128³ chunks peaked 275 MB above the process for an 82 MB
result, and 115 MB with one chunk at a time, which was no slower on local disk. Blocks already
run in parallel (threads or dask workers), so axonseg reads and writes one chunk at a time
within a block unless ``ZARR_ASYNC__CONCURRENCY`` is set (worth raising for object stores,
where each chunk is a request with its own latency).
"""

from __future__ import annotations

import os

import zarr

from axonseg.errors import ConfigError

ENV_VARIABLE = "ZARR_ASYNC__CONCURRENCY"
DEFAULT_CONCURRENCY = 1


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
