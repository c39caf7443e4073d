"""Blockwise skeletonization of a label volume on disk: one kimimaro call per block, each block's
graphs written as parquet (so a killed run resumes), then joined into one graph per segment.

Public: ``axonseg skeletonize`` and the ground-truth skeletons of ``axonseg evaluate`` both run it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from axonseg.blockwise import Roi, parse_scheduler
from axonseg.blockwise.outputs import BlockFiles
from axonseg.blockwise.stage import BlockData, Input, Stage, run_stage
from axonseg.blockwise.memory import return_large_allocations
from axonseg.errors import InputError, StageError
from axonseg.io.pyramid import downsample as downsample_block
from axonseg.io.synapse_tables import write_table
from axonseg.skeleton import AxonGraph, SkeletonParams, compact_labels, default_context, skeletonize_block
from axonseg.skeleton import SkeletonStore, SkeletonTableWriter, from_tables, to_swc, to_tables
from axonseg.skeleton.store import DEFAULT_BATCH_NODES, EDGES_FILE, NODES_FILE

logger = logging.getLogger(__name__)

ReadLabels = Callable[[Roi], np.ndarray]


def block_table_paths(folder: Path, block_id: str) -> tuple[Path, Path]:
    """``(<block_id>.nodes.parquet, <block_id>.edges.parquet)`` of one block's skeleton pieces."""
    return folder / f"{block_id}.nodes.parquet", folder / f"{block_id}.edges.parquet"


def write_block_graphs(folder: Path, block_id: str, graphs: dict[int, AxonGraph]) -> None:
    """Store one block's graphs as ``<block_id>.edges.parquet`` and ``<block_id>.nodes.parquet``.

    The node table carries an ``open_end`` column (stubs the join attaches to neighbours);
    nodes are written last, and a block counts as stored only when both files exist.
    """
    nodes, edges = to_tables(graphs)
    is_open = np.zeros(len(nodes), dtype=bool)
    start = 0
    for graph in graphs.values():
        is_open[start + graph.open_ends] = True
        start += graph.n_nodes
    nodes["open_end"] = is_open
    nodes_path, edges_path = block_table_paths(folder, block_id)
    write_table(edges, edges_path)  # atomic; nodes last
    write_table(nodes, nodes_path)


def read_block_graphs(folder: Path, block_id: str) -> dict[int, AxonGraph]:
    """Read what :func:`write_block_graphs` stored, open ends included."""
    nodes_path, edges_path = block_table_paths(folder, block_id)
    if not (nodes_path.exists() and edges_path.exists()):
        raise StageError(f"{nodes_path}: block skeleton missing although the block is marked done; pass --restart")
    return block_graphs_from_tables(pd.read_parquet(nodes_path), pd.read_parquet(edges_path))


def block_graphs_from_tables(nodes: pd.DataFrame, edges: pd.DataFrame) -> dict[int, AxonGraph]:
    """One block's graphs from its node table (with the ``open_end`` column) and edge table."""
    graphs = from_tables(nodes, edges)
    # to_tables numbers each segment's nodes 0..n-1, and from_tables keeps that order.
    open_rows = nodes[nodes["open_end"].to_numpy(dtype=bool)]
    segment_ids = open_rows["segment_id"].to_numpy(dtype=np.uint64)
    node_ids = open_rows["node_id"].to_numpy(dtype=np.int64)
    order = np.argsort(segment_ids, kind="stable")
    unique, starts = np.unique(segment_ids[order], return_index=True)
    for segment_id, chunk in zip(unique.tolist(), np.split(node_ids[order], starts[1:])):
        graphs[int(segment_id)].open_ends = np.sort(chunk)
    return graphs


def kimimaro_pool_scheduler(params: SkeletonParams) -> Callable[[str], str] | None:
    """With kimimaro's own pool (``params.parallel > 1``) the in-process schedulers run the blocks
    in the main thread (``synchronous``): that pool installs signal handlers, which Python allows
    only there (on a dask thread it failed with "signal only works in main thread"); ``local:N``
    and clusters keep their worker processes. None without kimimaro's pool."""
    if params.parallel <= 1:
        return None

    def choose(scheduler: str) -> str:
        return "synchronous" if parse_scheduler(scheduler)[0] in ("threads", "synchronous") else scheduler

    return choose


def coarse_params(params: SkeletonParams, factor: Sequence[int]) -> SkeletonParams:
    """``params`` for labels downsampled by ``factor``: the dust threshold (voxels) scaled to the
    coarse voxels; the TEASAR lengths are nm and stay."""
    cells = int(np.prod(factor))
    return params if cells == 1 else params.model_copy(update={"dust_threshold": -(-params.dust_threshold // cells)})


def check_downsample(factor: Sequence[int], block_shape: Sequence[int]) -> tuple[int, int, int]:
    """The downsampling factor (zyx) as a triple, checked against the block shape.

    Raises:
        InputError: a factor below 1, or a block shape that is not a multiple of the factor
            (the coarse voxels of neighbouring blocks must tile the same grid).
    """
    triple = tuple(int(f) for f in factor)
    if len(triple) != 3 or min(triple) < 1:
        raise InputError(f"downsample={list(factor)}: expected three integers >= 1 (z y x)")
    if any(b % f for b, f in zip(block_shape, triple)):
        raise InputError(f"block_shape {list(block_shape)} must be a multiple of downsample {list(triple)} per axis "
                         "(the coarse voxels of neighbouring blocks tile one grid)")
    return triple  # type: ignore[return-value]


def _save_graphs(folder: Path, block_id: str, graphs: dict[int, AxonGraph]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_block_graphs(folder, block_id, graphs)


def skeletonize_blocks(
    read_labels: ReadLabels,
    shape: Sequence[int],
    voxel_size: Sequence[float],
    offset_nm: Sequence[float],
    params: SkeletonParams,
    block_shape: Sequence[int],
    work_dir: Path,
    run_dir: Path,
    config: dict,
    context: Sequence[int] | None = None,
    name: str = "skeletonize",
    scheduler: str = "threads",
    restart: bool = False,
    cache: bool = False,
    show_progress: bool = True,
    downsample: Sequence[int] = (1, 1, 1),
) -> list[str]:
    """Skeletonize every block of a label volume and store each block's pieces in ``work_dir``.

    The blocks run as a declared stage (markers in ``run_dir/blocks/<name>``): each reads its
    write ROI plus ``context`` clipped to the volume (nothing is padded), skeletonizes it with
    the world offset of that clipped read region, keeps what it owns (plus stubs) and stores
    the graphs as ``work_dir/<block_id>.{nodes,edges}.parquet``.

    Args:
        read_labels: returns the labels (zyx, integer) of a ROI inside the volume.
        shape: volume shape in voxels, zyx.
        voxel_size: nm, zyx.
        offset_nm: world position of voxel (0, 0, 0) in nm, zyx.
        params: kimimaro settings.
        block_shape: write-ROI shape in voxels, zyx.
        work_dir: folder for the per-block parquet files (created).
        run_dir: the folder whose ``blocks/`` holds the done markers (resume).
        config: everything the pieces depend on (keys the markers).
        context: voxels of context per side (zyx, full-resolution voxels, rounded up to a
            multiple of ``downsample``); None: :func:`default_context` of the traced voxels.
        name: the stage's name (markers, progress bar, log).
        scheduler: dask scheduler spec (see :func:`axonseg.blockwise.parse_scheduler`). On Linux
            ``threads[:N]`` traces N blocks at once in forked worker processes (a bare
            ``threads``: one per available core; :mod:`axonseg.blockwise.forkpool`);
            ``synchronous`` one at a time in this process; ``local:N`` N at once in dask's
            worker processes (:attr:`axonseg.blockwise.stage.Stage.gil_bound`).
        restart: drop the markers of an interrupted run with another config.
        cache: the pieces are only a cache (ground-truth skeletons): another config's markers
            are dropped instead of refused.
        show_progress: draw a progress bar.
        downsample: trace labels downsampled by this factor (zyx; the most frequent label of
            each window, :func:`axonseg.io.pyramid.downsample`), as igneous skeletonizes a
            coarser mip: ``(2, 2, 2)`` traces 8x fewer voxels. Nodes sit at the coarse voxels'
            centres in the same world nm; the dust threshold is scaled to the coarse voxels.
            ``block_shape`` must be a multiple of it.

    Returns:
        The block ids, in block order; :func:`axonseg.pipelines.skeletonize.join.join_to_disk`
        joins their pieces a batch of segments at a time.
    """
    factor = check_downsample(downsample, block_shape)
    voxel = np.asarray(voxel_size, dtype=np.float64)
    traced_voxel = voxel * np.asarray(factor)
    origin = np.asarray(offset_nm, dtype=np.float64)
    traced_params = coarse_params(params, factor)
    coarse_context = default_context(tuple(traced_voxel), params) if context is None else [
        -(-int(c) // f) for c, f in zip(context, factor)]
    # whole coarse voxels of context, so every read starts on the coarse grid (blocks start on it)
    context = tuple(int(c) * f for c, f in zip(coarse_context, factor))
    coarse = factor != (1, 1, 1)

    def read_compact(roi: Roi) -> tuple[np.ndarray, np.ndarray]:
        # In the reading thread: the uint64 read becomes compact ids (uint16 for < 65k segments)
        # at once, so only the small copy stays alive, and only it travels to a worker process.
        # The read starts on the coarse grid; a partial window at the far face repeats its edge.
        labels = read_labels(roi)
        return compact_labels(downsample_block(labels, factor, "mode") if coarse else labels)

    def process(data: BlockData) -> dict[int, AxonGraph]:
        labels, segment_ids = data.arrays.pop("labels")
        write_slices = tuple(data.write_slices)
        if coarse:
            write_slices = tuple(slice(w.start // f, -(-w.stop // f)) for w, f in zip(write_slices, factor))
        # the read's corner; coarse voxel j's centre lies at (j + 0.5) coarse voxels from it
        block_offset = origin + np.asarray(data.read_roi.offset) * voxel
        return skeletonize_block(labels, tuple(traced_voxel), block_offset, traced_params, write_slices=write_slices,
                                 segment_ids=segment_ids)

    stage = Stage(
        name=name, volume_shape=tuple(shape), block_shape=tuple(block_shape),
        inputs={"labels": Input(read_compact, tuple(shape))},
        output=BlockFiles(Path(work_dir), ("{block_id}.nodes.parquet", "{block_id}.edges.parquet"), _save_graphs),
        process=process, config=config, context=(context, context), border="clip", cache=cache,
        # kimimaro holds the GIL: a second block in flight needs a second process, not a thread.
        # Its own pool cannot run inside a pool worker (daemonic processes have no children).
        gil_bound=params.parallel <= 1, scheduler_for=kimimaro_pool_scheduler(params),
        # kimimaro frees many 4-32 MB arrays per block; with glibc's dynamic threshold they stay
        # resident in the thread's arena. Set before the first read in each process (set after
        # it, glibc's threshold has already grown past the read's size), and in each pool worker.
        setup=return_large_allocations,
    )
    run_stage(stage, run_dir, scheduler=scheduler, restart=restart, show_progress=show_progress)
    return [block.block_id for block in stage.blocks()]


def join_distances(voxel_size: Sequence[float], attach_distance_nm: float | None,
                   bridge_distance_nm: float | None) -> tuple[float, float]:
    """(attach, bridge) distances in nm; None: two voxel diagonals and one voxel diagonal."""
    diagonal = float(np.linalg.norm(np.asarray(voxel_size, dtype=np.float64)))
    return (2 * diagonal if attach_distance_nm is None else attach_distance_nm,
            diagonal if bridge_distance_nm is None else bridge_distance_nm)


def write_skeletons(graphs: dict[int, AxonGraph], out_dir: Path, swc: bool = True) -> tuple[Path, Path]:
    """Write skeletons: ``nodes.parquet`` + ``edges.parquet`` and ``swc/<id>.swc``.

    Args:
        graphs: ``{segment_id: AxonGraph}`` (nm, zyx).
        out_dir: the skeleton folder (created).
        swc: also write one SWC file per segment (x y z radius in µm, the SWC convention; see
            :func:`axonseg.skeleton.to_swc`); the folder is replaced whole.

    Returns:
        Paths of the node and edge tables.
    """
    with SkeletonOutput(out_dir, swc=swc) as output:
        output.write(graphs)
    return output.paths


class SkeletonOutput:
    """The skeleton tables plus (optionally) one SWC file per segment, written batch by batch.

    Tables go through :class:`SkeletonTableWriter`; SWC files into ``swc.tmp``, which replaces
    ``swc/`` whole when the output closes without an error.

    Args:
        out_dir: the skeleton folder (created).
        swc: also write SWC files.
        batch_nodes: nodes per parquet row group (the batch a reader loads at once).
    """

    def __init__(self, out_dir: Path, swc: bool = True, batch_nodes: int = DEFAULT_BATCH_NODES) -> None:
        self.out_dir = Path(out_dir)
        self.tables = SkeletonTableWriter(self.out_dir, batch_nodes)
        self.swc_dir = self.out_dir / "swc.tmp" if swc else None
        if self.swc_dir is not None:
            shutil.rmtree(self.swc_dir, ignore_errors=True)
            self.swc_dir.mkdir()
        self.paths: tuple[Path, Path] = (self.out_dir / NODES_FILE, self.out_dir / EDGES_FILE)

    def write(self, graphs: dict[int, AxonGraph]) -> None:
        """Add one batch of ``{segment_id: AxonGraph}`` (ids above every earlier batch's)."""
        self.tables.write(graphs)
        if self.swc_dir is not None:
            for segment_id, graph in graphs.items():
                (self.swc_dir / f"{segment_id}.swc").write_text(to_swc(graph))

    def __enter__(self) -> SkeletonOutput:
        return self

    def __exit__(self, kind, error, trace) -> None:  # noqa: ANN001
        if kind is not None:
            self.tables.abort()
            if self.swc_dir is not None:
                shutil.rmtree(self.swc_dir, ignore_errors=True)
            return
        self.paths = self.tables.close()
        if self.swc_dir is not None:
            shutil.rmtree(self.out_dir / "swc", ignore_errors=True)
            os.replace(self.swc_dir, self.out_dir / "swc")


def read_skeletons(out_dir: Path) -> dict[int, AxonGraph]:
    """All skeletons of a skeleton folder in memory (use :class:`SkeletonStore` for a batch at a time)."""
    return {segment_id: graph for batch in SkeletonStore(out_dir).batches() for segment_id, graph in batch.items()}
