"""Blockwise skeletonization of a label volume on disk: one kimimaro call per block, each block's
graphs written as parquet (so a killed run resumes), then joined into one graph per segment.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from axonseg.blockwise import Block, DoneMarkers, Roi, make_blocks, run_blockwise
from axonseg.errors import StageError
from axonseg.skeleton import AxonGraph, SkeletonParams, default_context, join_skeletons, skeletonize_block
from axonseg.skeleton import from_tables, to_swc, to_tables

logger = logging.getLogger(__name__)

ReadLabels = Callable[[Roi], np.ndarray]


def _write_parquet(table: pd.DataFrame, path: Path) -> None:
    """Write a table so that ``path`` is either absent or complete (temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    table.to_parquet(tmp, index=False)
    os.replace(tmp, path)


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
    _write_parquet(edges, folder / f"{block_id}.edges.parquet")
    _write_parquet(nodes, folder / f"{block_id}.nodes.parquet")


def read_block_graphs(folder: Path, block_id: str) -> dict[int, AxonGraph]:
    """Read what :func:`write_block_graphs` stored, open ends included."""
    nodes_path, edges_path = folder / f"{block_id}.nodes.parquet", folder / f"{block_id}.edges.parquet"
    if not (nodes_path.exists() and edges_path.exists()):
        raise StageError(f"{nodes_path}: block skeleton missing although the block is marked done; pass --restart")
    nodes = pd.read_parquet(nodes_path)
    graphs = from_tables(nodes, pd.read_parquet(edges_path))
    # to_tables numbers each segment's nodes 0..n-1, and from_tables keeps that order.
    open_rows = nodes[nodes["open_end"].to_numpy(dtype=bool)]
    segment_ids = open_rows["segment_id"].to_numpy(dtype=np.uint64)
    node_ids = open_rows["node_id"].to_numpy(dtype=np.int64)
    order = np.argsort(segment_ids, kind="stable")
    unique, starts = np.unique(segment_ids[order], return_index=True)
    for segment_id, chunk in zip(unique.tolist(), np.split(node_ids[order], starts[1:])):
        graphs[int(segment_id)].open_ends = np.sort(chunk)
    return graphs


def skeletonize_blockwise(
    read_labels: ReadLabels,
    shape: Sequence[int],
    voxel_size: Sequence[float],
    offset_nm: Sequence[float],
    params: SkeletonParams,
    block_shape: Sequence[int],
    work_dir: Path,
    context: Sequence[int] | None = None,
    markers: DoneMarkers | None = None,
    scheduler: str = "threads",
    show_progress: bool = True,
    description: str = "skeletonize",
    attach_distance_nm: float | None = None,
    bridge_distance_nm: float | None = None,
) -> dict[int, AxonGraph]:
    """Skeletonize every segment of a label volume block by block and join the pieces.

    Each block reads its write ROI plus ``context`` clipped to the volume (nothing is padded),
    skeletonizes it with the world offset of that clipped read region, keeps what it owns
    (plus stubs) and stores the graphs in ``work_dir``.

    Args:
        read_labels: returns the labels (zyx, integer) of a ROI inside the volume.
        shape: volume shape in voxels, zyx.
        voxel_size: nm, zyx.
        offset_nm: world position of voxel (0, 0, 0) in nm, zyx.
        params: kimimaro settings.
        block_shape: write-ROI shape in voxels, zyx.
        work_dir: folder for the per-block parquet files (created).
        context: voxels of context per side (zyx); None: :func:`default_context`.
        markers: done markers for resuming; None computes every block.
        scheduler: dask scheduler spec (see :func:`axonseg.blockwise.parse_scheduler`).
        show_progress: draw a progress bar.
        description: progress-bar label.
        attach_distance_nm: open ends attach within this distance (nm); None: two voxel diagonals.
        bridge_distance_nm: gaps up to this distance (nm) are bridged; None: one voxel diagonal.

    Returns:
        ``{segment_id: AxonGraph}`` in world nm (zyx), sorted by segment id.
    """
    voxel = np.asarray(voxel_size, dtype=np.float64)
    origin = np.asarray(offset_nm, dtype=np.float64)
    context = tuple(context) if context is not None else default_context(tuple(voxel), params)
    volume_roi = Roi.of((0, 0, 0), shape)
    blocks = make_blocks(shape, block_shape, context)
    work_dir = Path(work_dir)
    if markers is None or markers.count() == 0:
        shutil.rmtree(work_dir, ignore_errors=True)  # stale blocks of another block grid would join in
    work_dir.mkdir(parents=True, exist_ok=True)

    def process(block: Block) -> None:
        read = block.read_roi.intersect(volume_roi)
        labels = read_labels(read)
        write = block.write_roi.to_slices(relative_to=read.offset)
        block_offset = origin + np.asarray(read.offset) * voxel
        graphs = skeletonize_block(labels, tuple(voxel), block_offset, params, write_slices=write)
        write_block_graphs(work_dir, block.block_id, graphs)

    run_blockwise(blocks, process, description=description, markers=markers, scheduler=scheduler,
                  show_progress=show_progress)
    per_block = [read_block_graphs(work_dir, block.block_id) for block in blocks]
    diagonal = float(np.linalg.norm(voxel))
    graphs = join_skeletons(
        per_block,
        attach_distance_nm=2 * diagonal if attach_distance_nm is None else attach_distance_nm,
        bridge_distance_nm=diagonal if bridge_distance_nm is None else bridge_distance_nm,
    )
    logger.info("%s: %d segments, %.0f nm of skeleton from %d blocks", description, len(graphs),
                sum(g.path_length_nm for g in graphs.values()), len(blocks))
    return graphs


def write_skeletons(graphs: dict[int, AxonGraph], out_dir: Path, swc: bool = True) -> tuple[Path, Path]:
    """Write the run's skeletons: ``nodes.parquet`` + ``edges.parquet`` and ``swc/<id>.swc``.

    Args:
        graphs: ``{segment_id: AxonGraph}`` (nm, zyx).
        out_dir: the skeleton folder (created).
        swc: also write one SWC file per segment (x y z in nm); the folder is replaced whole.

    Returns:
        Paths of the node and edge tables.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nodes, edges = to_tables(graphs)
    nodes_path, edges_path = out_dir / "nodes.parquet", out_dir / "edges.parquet"
    _write_parquet(edges, edges_path)
    _write_parquet(nodes, nodes_path)
    if swc:
        staging = out_dir / "swc.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for segment_id, graph in graphs.items():
            (staging / f"{segment_id}.swc").write_text(to_swc(graph))
        shutil.rmtree(out_dir / "swc", ignore_errors=True)
        os.replace(staging, out_dir / "swc")
    return nodes_path, edges_path


def read_skeletons(out_dir: Path) -> dict[int, AxonGraph]:
    """Read ``nodes.parquet`` + ``edges.parquet`` of a skeleton folder into graphs."""
    out_dir = Path(out_dir)
    return from_tables(pd.read_parquet(out_dir / "nodes.parquet"), pd.read_parquet(out_dir / "edges.parquet"))
