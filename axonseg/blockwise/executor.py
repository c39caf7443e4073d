"""Run a function over blocks on dask: synchronous, threads, a LocalCluster, or a cluster address.

We never write a scheduler of our own; this module only maps blocks onto dask and keeps
done markers, retries and progress in one place.
"""

from __future__ import annotations

import errno
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import dask
from dask.callbacks import Callback

from axonseg.blockwise.block import Block
from axonseg.blockwise.memory import release_freed_memory
from axonseg.blockwise.markers import DoneMarkers
from axonseg.blockwise.progress import BlockProgress, block_progress
from axonseg.errors import ConfigError, StageError

logger = logging.getLogger(__name__)

ProcessBlock = Callable[[Block], None]
CONNECT_TIMEOUT = "10s"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class RunSummary:
    """What a blockwise run did."""

    total: int
    skipped: int
    processed: int
    seconds: float


def parse_scheduler(spec: str) -> tuple[str, int | None, str | None]:
    """Parse ``synchronous``, ``threads[:N]``, ``local[:N]``, ``tcp://host:port`` or a cluster YAML
    (see ``configs/cluster/slurm.yaml``).

    Returns:
        ``(kind, n_workers, address)``.
    """
    if spec.startswith(("tcp://", "tls://", "ws://", "inproc://")):
        return "address", None, spec
    if spec.endswith((".yaml", ".yml")):
        return "cluster", None, spec
    kind, _, count = spec.partition(":")
    if kind not in ("synchronous", "threads", "local"):
        raise ConfigError(
            f"scheduler={spec!r}: expected synchronous, threads[:N], local[:N], tcp://host:port or a cluster YAML"
        )
    if count:
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"scheduler={spec!r}: the worker count after ':' must be a positive integer")
        return kind, int(count), None
    return kind, None, None


def one_thread_per_process(scheduler: str) -> str:
    """The scheduler for a stage whose per-block work holds the GIL (kimimaro's tracing).

    Threads of one process then take turns: measured on skeletonize at 512³ with two threads,
    each block took twice as long as alone (1955 s of blocks in 989 s), so a second thread
    adds only a second block's memory. A bare ``threads`` becomes ``threads:1``; an explicit
    ``threads:N`` and the process-based schedulers (``local[:N]``, an address, a cluster
    YAML), which do run blocks in parallel, are kept.
    """
    kind, n_workers, _ = parse_scheduler(scheduler)
    if kind == "threads" and n_workers is None:
        return "threads:1"
    return scheduler


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in DISK_FULL


@contextmanager
def full_disk_named(where: str, block: Block, total: int) -> Iterator[None]:
    """Turn a full disk (or quota) inside the ``with`` into one line naming the block and output.

    Args:
        where: the output being written, e.g. ``run/volume.zarr/fragments``.
        block: the block being written (it is not marked done).
        total: blocks of the stage.

    Raises:
        StageError: the block's write failed with ENOSPC / EDQUOT; other errors pass unchanged.
    """
    try:
        yield
    except OSError as err:
        if not is_disk_full(err):
            raise
        reason = "disk full" if err.errno == errno.ENOSPC else "disk quota exceeded"
        raise StageError(
            f"{reason} while writing {where} (block {block.block_id} of {total}): "
            "free space and re-run the same command to resume"
        ) from err


def _with_retries(process: ProcessBlock, block: Block, retries: int) -> None:
    for attempt in range(retries + 1):
        try:
            process(block)
            return
        except (OSError, MemoryError) as err:
            if attempt == retries or is_disk_full(err):  # a full disk stays full: retrying only waits
                raise
            logger.warning("block %s failed (%s); retrying", block.block_id, err)


class _ProgressCallback(Callback):
    def __init__(self, progress: BlockProgress, voxels_per_key: dict[str, int]) -> None:
        super().__init__()
        self._progress = progress
        self._voxels = voxels_per_key

    def _posttask(self, key, result, dsk, state, worker_id) -> None:  # noqa: ANN001
        name = key[0] if isinstance(key, tuple) else key
        if name in self._voxels:
            self._progress.advance(self._voxels[name])


def run_blockwise(
    blocks: Sequence[Block],
    process: ProcessBlock,
    *,
    description: str = "blocks",
    markers: DoneMarkers | None = None,
    scheduler: str = "threads",
    retries: int = 1,
    show_progress: bool = True,
) -> RunSummary:
    """Call ``process(block)`` for every block not yet done, then mark it done.

    Args:
        blocks: the blocks to run.
        process: writes one block's output; must be idempotent (a re-run overwrites).
        description: label of the progress bar.
        markers: done markers; blocks already marked are skipped (resume).
        scheduler: see :func:`parse_scheduler`.
        retries: extra attempts for a block that failed with an I/O or memory error.
        show_progress: draw a rich progress bar on stderr.

    Returns:
        A :class:`RunSummary` with how many blocks were skipped and processed.
    """
    start = time.perf_counter()
    done = [b for b in blocks if markers is not None and markers.is_done(b)]
    done_ids = {b.index for b in done}
    todo = [b for b in blocks if b.index not in done_ids]
    skipped = len(done)
    if skipped:
        logger.info("%s: resuming: %d of %d blocks already done, skipped", description, skipped, len(blocks))
    where = (markers.where if markers is not None else None) or description
    total = len(blocks)

    def run_one(block: Block) -> None:
        with full_disk_named(where, block, total):
            _with_retries(process, block, retries)
            if markers is not None:
                markers.mark_done(block)
        release_freed_memory()  # keep RSS at one block's worth, not creeping up block by block

    kind, n_workers, address = parse_scheduler(scheduler)
    with block_progress(description, total=len(blocks), enabled=show_progress) as progress:
        progress.advance(sum(b.write_roi.size for b in done), blocks=skipped)
        if kind in ("synchronous", "threads"):
            tasks = {f"block-{b.block_id}": dask.delayed(run_one, pure=False)(b, dask_key_name=f"block-{b.block_id}") for b in todo}
            voxels = {f"block-{b.block_id}": b.write_roi.size for b in todo}
            with _ProgressCallback(progress, voxels):
                dask.compute(*tasks.values(), scheduler=kind, num_workers=n_workers)
        else:
            _run_distributed(todo, run_one, progress, n_workers, address)
    summary = RunSummary(len(blocks), skipped, len(todo), time.perf_counter() - start)
    logger.debug("%s: %d blocks processed, %d skipped in %.1f s", description, summary.processed, skipped, summary.seconds)
    return summary


def _run_distributed(
    todo: Sequence[Block], run_one: ProcessBlock, progress: BlockProgress, n_workers: int | None, address: str | None
) -> None:
    from distributed import Client, LocalCluster, as_completed

    if address is not None and address.endswith((".yaml", ".yml")):
        from axonseg.blockwise.cluster import load_cluster_config, make_cluster

        settings = load_cluster_config(address)
        cluster = make_cluster(settings)
        cluster.scale(jobs=settings.jobs)
        client = Client(cluster)
    elif address is not None:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise StageError(f"scheduler {address} did not answer within {CONNECT_TIMEOUT} ({err})") from None
        cluster = None
    else:
        cluster = LocalCluster(n_workers=n_workers or 2, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
    logger.info("dask dashboard: %s", client.dashboard_link)
    try:
        futures = client.map(run_one, list(todo), pure=False)
        sizes = {f.key: b.write_roi.size for f, b in zip(futures, todo)}
        for future in as_completed(futures):
            future.result()
            progress.advance(sizes[future.key])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
