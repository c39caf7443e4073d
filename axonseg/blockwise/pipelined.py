"""A batched, pipelined block loop for stages whose work is one big kernel per batch (the
network in predict): the kernel runs batch i while one thread reads batch i+1 and another
writes batch i-1. zarr compression and dask reads release the GIL, so the three overlap.

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
) -> RunSummary:
    """Run ``compute`` over batches of the blocks not yet done, reading ahead and writing behind.

    Args:
        blocks: every block of the stage.
        read: a block's inputs (runs on the read-ahead thread).
        compute: results for a batch of read inputs, in order (runs on the calling thread).
        write: stores one block's result (runs on the write-behind thread); the block is
            marked done after it returns.
        markers: done markers; blocks already marked are skipped.
        batch_size: blocks per ``compute`` call.
        description: label of the progress bar and of the log lines.
        show_progress: draw a rich progress bar on stderr.
    """
    start = time.perf_counter()
    todo = [b for b in blocks if not markers.is_done(b)]
    skipped = len(blocks) - len(todo)
    if skipped:
        logger.info("%s: resuming: %d of %d blocks already done, skipped", description, skipped, len(blocks))
    where, total = markers.where or description, len(blocks)

    def write_batch(batch: list[Block], results: list[Any]) -> None:
        for block, result in zip(batch, results):
            with full_disk_named(where, block, total):
                if result is not None:
                    write(block, result)
                markers.mark_done(block)
        release_freed_memory()

    batches = [list(todo[i : i + batch_size]) for i in range(0, len(todo), batch_size)]
    with block_progress(description, total=len(blocks), enabled=show_progress) as progress, \
            ThreadPoolExecutor(1, thread_name_prefix=f"{description}-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix=f"{description}-write") as writer:
        progress.advance(sum(b.write_roi.size for b in blocks if b not in todo), blocks=skipped)
        pending_read: Future | None = reader.submit(lambda b: [read(x) for x in b], batches[0]) if batches else None
        pending_write: Future | None = None
        for index, batch in enumerate(batches):
            inputs = pending_read.result()  # type: ignore[union-attr]
            if index + 1 < len(batches):
                pending_read = reader.submit(lambda b: [read(x) for x in b], batches[index + 1])
            results = compute(inputs)
            del inputs
            if pending_write is not None:
                pending_write.result()  # surfaces a write error, keeps at most one batch in flight
            pending_write = writer.submit(write_batch, batch, results)
            pending_write.add_done_callback(
                lambda f, n=sum(b.write_roi.size for b in batch), k=len(batch): f.exception() or progress.advance(n, blocks=k)
            )
        if pending_write is not None:
            pending_write.result()
    return RunSummary(len(blocks), skipped, len(todo), time.perf_counter() - start)
