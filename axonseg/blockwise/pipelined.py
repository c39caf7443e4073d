"""A batched, pipelined block loop for stages whose work is one big kernel per batch (the
network in predict): the kernel runs batch i while reader threads read batch i+1 and writer
threads write batch i-1, one thread per block of a batch by default. zarr compression and dask
reads release the GIL, so they overlap with the kernel and with each other.

Why a thread per block: on an H200 the predict stage made 8.8 Mvoxels/s while the network alone
made 48 (benchmarks/gpu.py, 2026-12-04), and with the network replaced by a constant one reader
and one writer capped the stage at 12-19 Mvoxels/s on a busy 2-core CPU (one block's 33.5 MB of
affinities takes about 0.35 s to compress at zarr's default zstd level on one thread). On a GPU
node the I/O threads set the stage's speed; on a CPU the network does, and batch 1 keeps one
thread of each.

It keeps the executor's contract: done blocks are skipped and logged, a block is marked done
only after its write, a full disk names the block, and progress counts voxels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from axonseg.blockwise.block import Block
from axonseg.blockwise.executor import RunSummary, full_disk_named
from axonseg.blockwise.markers import DoneMarkers
from axonseg.blockwise.memory import release_freed_memory
from axonseg.blockwise.progress import block_progress

logger = logging.getLogger(__name__)


def run_pipelined(
    blocks: Sequence[Block],
    read: Callable[[Block], Any],
    compute: Callable[[list[Any]], list[Any]],
    write: Callable[[Block, Any], None],
    *,
    markers: DoneMarkers,
    batch_size: int = 1,
    description: str = "blocks",
    show_progress: bool = True,
    io_threads: int | None = None,
) -> RunSummary:
    """Run ``compute`` over batches of the blocks not yet done, reading ahead and writing behind.

    Args:
        blocks: every block of the stage.
        read: a block's inputs (runs on a reader thread).
        compute: results for a batch of read inputs, in order (runs on the calling thread).
        write: stores one block's result (runs on a writer thread); the block is marked done
            after it returns.
        markers: done markers; blocks already marked are skipped.
        batch_size: blocks per ``compute`` call.
        description: label of the progress bar and of the log lines.
        show_progress: draw a rich progress bar on stderr.
        io_threads: threads that read, and threads that write, blocks of a batch at once;
            None: ``batch_size``. Blocks write disjoint chunks, so their writes never collide.
    """
    start = time.perf_counter()
    todo = [b for b in blocks if not markers.is_done(b)]
    skipped = len(blocks) - len(todo)
    if skipped:
        logger.info("%s: resuming: %d of %d blocks already done, skipped", description, skipped, len(blocks))
    where, total = markers.where or description, len(blocks)

    def write_block(block: Block, result: Any) -> None:
        with full_disk_named(where, block, total):
            if result is not None:
                write(block, result)
            markers.mark_done(block)
        release_freed_memory()
        progress.advance(block.write_roi.size, blocks=1)

    threads = max(1, io_threads or batch_size)
    batches = [list(todo[i : i + batch_size]) for i in range(0, len(todo), batch_size)]
    with block_progress(description, total=len(blocks), enabled=show_progress) as progress, \
            ThreadPoolExecutor(threads, thread_name_prefix=f"{description}-read") as reader, \
            ThreadPoolExecutor(threads, thread_name_prefix=f"{description}-write") as writer:
        progress.advance(sum(b.write_roi.size for b in blocks if b not in todo), blocks=skipped)
        pending_read: list[Future] = [reader.submit(read, b) for b in batches[0]] if batches else []
        pending_write: list[Future] = []
        for index, batch in enumerate(batches):
            inputs = [future.result() for future in pending_read]
            if index + 1 < len(batches):
                pending_read = [reader.submit(read, b) for b in batches[index + 1]]
            results = compute(inputs)
            del inputs
            for future in pending_write:
                future.result()  # surfaces a write error, keeps at most one batch in flight
            pending_write = [writer.submit(write_block, block, result) for block, result in zip(batch, results)]
            del results
        for future in pending_write:
            future.result()
    return RunSummary(len(blocks), skipped, len(todo), time.perf_counter() - start)
