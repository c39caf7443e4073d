"""A blockwise stage, declared once, and the one runner that owns everything around it.

A :class:`Stage` says what a stage reads (its inputs), where it writes (its output), its block
shape, the context it needs before and after each block, how it fills that context at the
volume border, the config that goes into its hash, and a pure ``process(block, inputs)``.
:func:`run_stage` does the rest: done markers keyed by the config hash (a killed run resumes;
another config is refused, naming the changed keys), the integrity check of finished blocks,
creating and completing the output, progress, retries and the result record. No stage computes
a halo, crops a read or constructs done markers by hand (daisy's ``Task`` and volara's
blockwise tasks are the model).

All ROIs and shapes here are voxels, zyx.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from axonseg.blockwise.block import Block, make_blocks
from axonseg.io.border import Border, read_with_border
from axonseg.blockwise.executor import RunSummary, one_thread_per_process, parse_scheduler, run_blockwise
from axonseg.blockwise.forkpool import fork_pool, pool_workers
from axonseg.blockwise.integrity import BlockOutputs, summarize
from axonseg.blockwise.markers import DoneMarkers
from axonseg.blockwise.pipelined import run_pipelined
from axonseg.blockwise.roi import Roi
from axonseg.errors import ConfigError, StageError

logger = logging.getLogger(__name__)

Shape = tuple[int, int, int]
StageStart = Literal["done", "resume", "fresh"]
Fit = Literal["shrink", "overhang"]


def digest(payload: Mapping[str, Any]) -> str:
    """A short sha256 of ``payload``'s canonical JSON (a stage's config plus upstream hashes)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Input:
    """One array a stage reads per block.

    Attributes:
        read: returns the voxels of a ROI that lies inside the volume (leading channel axes
            whole, the last three axes zyx). Picklable when the stage runs on a cluster. With
            ``border="clip"`` it may return any value for the ROI (e.g. ``{threshold: labels}``).
        shape: the volume's spatial shape (voxels, zyx).
        with_context: False reads only the block's write ROI (always inside the volume, so
            the border rule does not apply) and ``process`` gets it uncropped. For an input the
            stage needs only where it writes: the graph stage's affinities, 1 voxel smaller
            per axis than its fragments, skip a padded and a cropped copy per block.
    """

    read: Callable[[Roi], np.ndarray]
    shape: Shape
    with_context: bool = True


class Output(Protocol):
    """Where a stage's blocks write, and the record that says whether that output is complete.

    ``state()`` returns ``{"complete": bool, "config_hash": str, ...}`` or None when the output
    does not exist; ``create`` starts a fresh output; ``write`` stores one block's result (the
    value ``process`` returned; never called for None); ``complete`` records success;
    ``block_files`` lists the files a block wrote (for the integrity check), or None when the
    output is not verified per block; ``where`` names it in messages. An output with a false
    ``resumable`` attribute (results kept in memory) runs without done markers.
    """

    where: Path

    def state(self) -> dict[str, Any] | None: ...

    def create(self, config_hash: str, config: dict[str, Any]) -> None: ...

    def write(self, block: Block, result: Any) -> None: ...

    def complete(self, config_hash: str, config: dict[str, Any], details: dict[str, Any]) -> None: ...

    def block_files(self) -> BlockOutputs | None: ...


@dataclass(frozen=True)
class BlockData:
    """What ``process`` gets for one block: the block, and each input read over its read ROI.

    With ``border="clip"`` the arrays cover ``read_roi`` (the block's read ROI clipped to the
    volume); with ``"zero"`` or ``"mirror"`` they cover the whole read ROI, filled outside. An
    input declared ``with_context=False`` covers the block's write ROI only.
    """

    block: Block
    read_roi: Roi
    arrays: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def write_slices(self) -> tuple[slice, slice, slice]:
        """Slices of the write ROI inside the arrays (the last three axes)."""
        return self.block.write_roi.to_slices(self.read_roi.offset)

    def crop(self, array: np.ndarray) -> np.ndarray:
        """``array`` (shaped like the inputs, any leading axes) cut to the write ROI."""
        return array[(Ellipsis,) + self.write_slices]


ProcessFn = Callable[[BlockData], Any]


@dataclass(frozen=True)
class Stage:
    """A blockwise stage, declared.

    Attributes:
        name: the stage's name (done markers live in ``RUN/blocks/<name>``).
        volume_shape: the volume's shape (voxels, zyx) that the blocks tile.
        block_shape: the write ROI of a block (voxels, zyx); the last blocks may be smaller.
        inputs: the arrays read per block, by name.
        output: where blocks write (see :class:`Output`).
        process: ``process(data) -> result``; pure: it reads only ``data`` and returns what the
            output writes for the block (None: nothing to write, e.g. an empty block).
        config: everything the output depends on; its hash keys markers and states.
        context: voxels of context ``(before, after)`` per axis (zyx).
        border: how context outside the volume is filled: ``clip`` (read less), ``zero`` or
            ``mirror`` (reflect at the face).
        skip_empty: the output's fill value already stands for a block whose every input is 0,
            so such a block returns without calling ``process`` (faster, same result).
        fit: ``shrink`` or ``overhang`` (see :meth:`blocks`).
        scheduler_for: maps the user's scheduler to the one this stage runs on (e.g. one block
            at a time for a GIL-bound stage).
        process_batch: optional ``process`` over a list of blocks' data (results in order). On
            the in-process schedulers it runs ``batch_size`` blocks at a time while one thread
            reads ahead and another writes behind (:func:`run_pipelined`); on dask workers it
            gets one block at a time.
        batch_size: blocks per ``process_batch`` call.
        cache: the output is only a cache of the job (e.g. per-block statistics): markers of an
            interrupted run with another config are dropped and the stage starts afresh,
            instead of refusing.
        setup: optional per-process set-up, called before the first block's read in every
            process that runs blocks (this one, each dask worker before its blocks, and each
            worker of a ``gil_bound`` stage's pool once), e.g.
            :func:`axonseg.blockwise.memory.return_large_allocations`. It must be cheap to
            call again (it runs before every block on a worker).
        gil_bound: ``process`` holds the GIL (kimimaro's tracing, zmesh), so threads of one
            process would take turns on it. On the threaded scheduler on Linux each block's
            ``process`` then runs in one of N forked worker processes (N: the scheduler's
            threads; a bare ``threads``: every available core,
            :func:`axonseg.blockwise.forkpool.pool_workers`) while the threads read, write and
            mark the blocks as before; ``data`` and the result travel by pickle, so a reader
            that shrinks the block first (``border="clip"`` lets it return any value) sends
            less. Elsewhere ``process`` runs where the block does, and a bare ``threads``
            becomes ``threads:1`` (a second thread would add memory, not speed).
    """

    name: str
    volume_shape: Shape
    block_shape: Shape
    inputs: dict[str, Input]
    output: Output
    process: ProcessFn | None
    config: dict[str, Any]
    context: tuple[Shape, Shape] = ((0, 0, 0), (0, 0, 0))
    border: Border = "clip"
    fit: Fit = "shrink"
    skip_empty: bool = False
    scheduler_for: Callable[[str], str] | None = None
    process_batch: Callable[[list[BlockData]], list[Any]] | None = None
    batch_size: int = 1
    cache: bool = False
    setup: Callable[[], Any] | None = None
    gil_bound: bool = False

    def __post_init__(self) -> None:
        if self.gil_bound and self.process_batch is not None:
            raise ConfigError(f"stage {self.name}: gil_bound runs `process` in worker processes; it has no batch form")

    @property
    def config_hash(self) -> str:
        return digest(self.config)

    def blocks(self) -> list[Block]:
        """The blocks in C order. ``fit="shrink"``: write and read ROIs shrink at the far
        border. ``"overhang"``: every block reads the full-size read ROI (one input shape for
        all blocks, e.g. one network input), and its write ROI is clipped to the volume."""
        if self.fit == "shrink":
            return make_blocks(self.volume_shape, self.block_shape, self.context)
        before, after = self.context
        return [
            Block(block.index, block.write_roi,
                  Roi.of([i * b for i, b in zip(block.index, self.block_shape)], self.block_shape).grow(before, after))
            for block in make_blocks(self.volume_shape, self.block_shape)
        ]


@dataclass(frozen=True)
class StageResult:
    """What one stage run did.

    Attributes:
        stage: the stage's name.
        config_hash: hash of the stage's config and its upstream stages' hashes.
        blocks: blocks of the stage (1 for a global step such as agglomeration).
        skipped: blocks skipped because an interrupted run had done them.
        seconds: wall time of this call.
        up_to_date: the output was already complete for this config; nothing was run.
        details: stage-specific figures (graph size, LUT thresholds, the relabel threshold).
    """

    stage: str
    config_hash: str
    blocks: int
    skipped: int
    seconds: float
    up_to_date: bool = False
    details: dict[str, Any] | None = field(default=None)


def _reader(stage: Stage) -> Callable[[Block], BlockData]:
    """A block's inputs, read over its read ROI with the stage's border rule."""
    inputs, border = stage.inputs, stage.border

    def read(block: Block) -> BlockData:
        arrays, covered = {}, block.read_roi.intersect(Roi.of((0, 0, 0), stage.volume_shape))
        if border != "clip":
            covered = block.read_roi
        for name, source in inputs.items():
            if source.with_context:
                arrays[name], covered = read_with_border(source.read, block.read_roi, source.shape, border)
            else:
                arrays[name] = source.read(block.write_roi)
        return BlockData(block, covered, arrays)

    return read


#: ``process`` of the gil_bound stages now running, by key: set before the pool forks, so every
#: worker inherits it and a task names it instead of pickling a closure.
_GIL_BOUND: dict[str, ProcessFn] = {}


def _process_registered(key: str, data: BlockData) -> Any:
    return _GIL_BOUND[key](data)


def _in_worker(pool: Executor, key: str, stage_name: str) -> ProcessFn:
    """``process`` as a task in ``pool``: the calling thread waits for it without the GIL."""

    def process(data: BlockData) -> Any:
        try:
            return pool.submit(_process_registered, key, data).result()
        except BrokenProcessPool:
            raise StageError(
                f"{stage_name}: a worker process died while processing block {data.block.block_id} (killed, perhaps "
                "out of memory); re-run the same command to resume, with --scheduler threads:N for fewer blocks at once"
            ) from None

    return process


def _block_job(stage: Stage, process: ProcessFn | None = None) -> Callable[[Block], None]:
    """Read a block's inputs, run ``process`` (default: the stage's) and write its result
    (picklable for dask)."""
    output, skip_empty, read, setup = stage.output, stage.skip_empty, _reader(stage), stage.setup
    process = process or stage.process
    if process is None:
        batch = stage.process_batch
        process = lambda data: batch([data])[0]  # noqa: E731

    def job(block: Block) -> None:
        if setup is not None:
            setup()
        data = read(block)
        if skip_empty and not any(a.any() for a in data.arrays.values()):
            return
        result = process(data)
        if result is not None:
            output.write(block, result)

    return job


def begin_stage(markers: DoneMarkers, state: dict[str, Any] | None, config_hash: str, restart: bool) -> StageStart:
    """Decide how a stage starts from its output's recorded state and its done markers.

    ``done``: the output is complete for this very config and every file its blocks wrote is
    still there at its recorded size (nothing to do). ``resume``: an interrupted run of this
    config left markers, or a finished output lost or truncated files; done, intact blocks are
    skipped and the rest computed. ``fresh``: no usable output; markers and the manifest log are
    reset for this config and the caller (re)creates its output.

    Raises:
        StageError: an interrupted run of another config left markers and ``restart`` is False.
    """
    state = state or {}
    same = state.get("config_hash") == config_hash
    if same and state.get("complete") and not restart:
        markers.clear()  # left only if a run was killed between completing and clearing them
        damaged = markers.damaged_blocks()
        if not damaged:
            return "done"
        problems = [p for block_problems in damaged.values() for p in block_problems]
        logger.warning("%s: %d finished block(s) lost or truncated output files (%s); computing them again",
                       markers.stage, len(damaged), summarize(problems))
        markers.reopen(damaged)
        return "resume"
    markers.prepare(restart)
    if same and state.get("complete") is False and not restart:
        if markers.outputs is not None and not markers.log_path.exists():
            markers.reset_log()  # an interrupted run from before manifests: record from now on
        return "resume"
    if state and not same:
        logger.info("%s: made with another config before; computing it again", markers.stage)
    markers.clear()
    markers.prepare()
    markers.reset_log()
    return "fresh"


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` when nothing is left in it (the run's ``blocks/`` after a finished stage)."""
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _run_blocks(
    stage: Stage, blocks: list[Block], markers: DoneMarkers, scheduler: str, show_progress: bool
) -> RunSummary:
    """Run the blocks on ``scheduler``; a ``gil_bound`` stage's ``process`` in a fork pool."""
    workers = pool_workers(scheduler) if stage.gil_bound else 0
    key = f"{stage.name}:{id(stage)}"
    if workers > 1:
        _GIL_BOUND[key] = stage.process
    try:
        # forked here, before the scheduler starts its threads
        with fork_pool(workers, initializer=stage.setup) as pool:
            if pool is not None:
                job = _block_job(stage, _in_worker(pool, key, stage.name))
            else:
                job = _block_job(stage)
                if stage.gil_bound:
                    scheduler = one_thread_per_process(scheduler)
            return run_blockwise(blocks, job, description=stage.name, markers=markers, scheduler=scheduler,
                                 show_progress=show_progress)
    finally:
        _GIL_BOUND.pop(key, None)


def run_stage(
    stage: Stage,
    run_dir: str | Path | None,
    *,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
    details: dict[str, Any] | None = None,
) -> StageResult:
    """Run ``stage`` over every block of its volume, resuming an interrupted run of its config.

    Args:
        stage: the declared stage.
        run_dir: the run folder; done markers go to ``run_dir/blocks/<stage.name>`` and the
            block manifests to ``run_dir/manifests/<stage.name>.jsonl`` (unused, may be None,
            for an output that is not resumable).
        scheduler: ``synchronous``, ``threads[:N]``, ``local[:N]``, an address or a cluster YAML.
        restart: drop the markers of an interrupted run with another config and start again.
        show_progress: draw a progress bar.
        details: stage-specific figures for the result and the output's completion record.

    Returns:
        A :class:`StageResult`; ``up_to_date`` when the output is complete for this config.

    Raises:
        StageError: an interrupted run used another config and ``restart`` is False, or a
            block failed (a full disk names the block and the output).
    """
    started = time.perf_counter()
    config_hash = stage.config_hash
    if not getattr(stage.output, "resumable", True):  # an in-memory pass: no markers, in this process
        stage.output.create(config_hash, stage.config)
        summary = run_blockwise(stage.blocks(), _block_job(stage), description=stage.name, scheduler="synchronous",
                                show_progress=show_progress)
        return StageResult(stage.name, config_hash, summary.total, 0, time.perf_counter() - started, details=details)
    run_dir = Path(run_dir)
    markers = DoneMarkers(run_dir / "blocks", stage.name, stage.config, config_hash)
    files = stage.output.block_files()
    if files is not None:
        markers.track(files, run_dir, where=str(stage.output.where))
    blocks = stage.blocks()
    if stage.cache and not restart and markers.belongs_to_other_config():
        logger.info("%s: earlier partial results belong to another config; starting again", stage.name)
        restart = True
    start = begin_stage(markers, stage.output.state(), config_hash, restart)
    if start == "done":
        logger.info("%s: up to date (config %s)", stage.name, config_hash)
        return StageResult(stage.name, config_hash, len(blocks), 0, time.perf_counter() - started, True, details)
    if start == "fresh":
        stage.output.create(config_hash, stage.config)
    if stage.setup is not None:
        stage.setup()
    scheduler = stage.scheduler_for(scheduler) if stage.scheduler_for else scheduler
    if stage.process_batch is not None and parse_scheduler(scheduler)[0] in ("synchronous", "threads"):
        summary = run_pipelined(blocks, _reader(stage), stage.process_batch, stage.output.write, markers=markers,
                                batch_size=stage.batch_size, description=stage.name, show_progress=show_progress)
    else:
        summary = _run_blocks(stage, blocks, markers, scheduler, show_progress)
    stage.output.complete(config_hash, stage.config, dict(details or {}, blocks=len(blocks)))
    markers.clear()
    remove_if_empty(run_dir / "blocks")
    seconds = time.perf_counter() - started
    logger.info("%s: %d blocks (%d resumed) in %.1f s -> %s", stage.name, len(blocks), summary.skipped, seconds,
                stage.output.where)
    return StageResult(stage.name, config_hash, len(blocks), summary.skipped, seconds, details=details)
