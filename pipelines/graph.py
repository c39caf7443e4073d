"""Region-graph stage: per block, the fragments it owns and the contacts (edges) it owns, as
parquet tables ``RUN/graph/{nodes,edges}/<block_id>.parquet``, blockwise and resumable.

A block reads the stored fragments of its write ROI grown by one voxel towards negative z, y
and x (0 outside the volume) and the affinities of its write ROI, so every voxel face of the
volume is counted by exactly one block. It needs the whole fragments stage finished first.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from axonseg.blockwise import Block, DoneMarkers, Roi, make_blocks, run_blockwise
from axonseg.errors import InputError
from axonseg.io import open_level
from axonseg.segment import RegionGraph, block_region_graph, graph_from_tables, graph_to_tables, merge_block_graphs
from axonseg.pipelines._segment_source import remove_if_empty, run_store
from axonseg.pipelines._segment_stage import (
    Affinities,
    StageResult,
    begin_stage,
    digest,
    group_state,
    open_affinities,
    read_json,
    write_json,
)
from axonseg.pipelines.segment_config import SegmentConfig

logger = logging.getLogger(__name__)

STAGE = "graph"
STATE_FILE = "graph.json"
TABLES = ("nodes", "edges")


def graph_dir(run_dir: Path) -> Path:
    return Path(run_dir) / STAGE


def graph_state(run_dir: Path) -> dict | None:
    """``RUN/graph/graph.json``: ``complete``, ``config_hash`` and the config, or None."""
    return read_json(graph_dir(run_dir) / STATE_FILE)


def write_table(table: pa.Table, path: Path) -> None:
    """Write a parquet file atomically: a re-run block replaces its rows, never appends."""
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _block_writer(affinities: Affinities, fragments, folder: Path) -> Callable[[Block], None]:  # noqa: ANN001
    """The per-block job: region graph of the block's owned faces, written as two tables."""
    volume = Roi.of((0, 0, 0), affinities.shape)
    voxel_size = np.asarray(affinities.voxel_size)
    origin_nm = np.asarray(affinities.offset_nm)

    def process(block: Block) -> None:
        context = block.read_roi
        inside = context.intersect(volume)
        fragments_context = np.zeros(context.shape, dtype=np.uint64)
        fragments_context[inside.to_slices(context.offset)] = fragments[inside.to_slices()]
        paths = [folder / table / f"{block.block_id}.parquet" for table in TABLES]
        if not fragments_context[1:, 1:, 1:].any():
            for path in paths:  # an empty block owns nothing, not even rows of an earlier try
                path.unlink(missing_ok=True)
            return
        graph = block_region_graph(
            fragments_context, affinities.read(block.write_roi), affinities.offsets, affinities.voxel_size,
            write_offset_nm=tuple(origin_nm + np.asarray(block.write_roi.offset) * voxel_size),
        )
        for table, path in zip(graph_to_tables(graph), paths):
            write_table(table, path)

    return process


def run_graph(
    run_dir: str | Path,
    config: SegmentConfig | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Write the region graph of ``RUN/volume.zarr/fragments`` as parquet tables per block.

    Args:
        run_dir: the run folder; its fragments stage must be complete.
        config: block shape (voxels) and offsets; defaults when None.
        scheduler: ``synchronous``, ``threads[:N]``, ``local[:N]`` or ``tcp://host:port``.
        restart: drop the done markers of an interrupted run with another config and start again.
        show_progress: draw a progress bar.

    Returns:
        A :class:`StageResult`; ``up_to_date`` when the graph of these fragments exists.

    Raises:
        InputError: no complete fragments, or affinities that do not match them.
        StageError: an interrupted run used another config and ``restart`` is False.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    config = config or SegmentConfig()
    store = run_store(run_dir)
    affinities = open_affinities(store, config)
    fragments_info = group_state(store, "fragments")
    if not fragments_info or not fragments_info.get("complete"):
        raise InputError(f"{store / 'fragments'}: no complete fragments; run the fragments stage first")
    fragments = open_level(store, "fragments", 0, mode="r")
    if tuple(fragments.shape) != affinities.shape:
        raise InputError(
            f"{store / 'fragments'} has shape {tuple(fragments.shape)} but the affinities have "
            f"{affinities.shape}: expected equal shapes (z, y, x); run the fragments stage again"
        )
    payload = {"fragments": fragments_info.get("config_hash"), "block_shape": list(config.block_shape)}
    config_hash = digest(payload)
    folder = graph_dir(run_dir)
    markers = DoneMarkers(run_dir / "blocks", STAGE, payload, config_hash)
    blocks = make_blocks(affinities.shape, config.block_shape, ((1, 1, 1), (0, 0, 0)))
    start = begin_stage(markers, graph_state(run_dir), config_hash, restart)
    if start == "done":
        logger.info("graph: up to date (config %s)", config_hash)
        return StageResult(STAGE, config_hash, len(blocks), 0, time.perf_counter() - started, up_to_date=True)
    if start == "fresh":
        # tables of another block grid would be read as extra rows: start from empty folders
        for table in TABLES:
            shutil.rmtree(folder / table, ignore_errors=True)
        write_json(folder / STATE_FILE, {"complete": False, "config_hash": config_hash, "config": payload})
    for table in TABLES:
        (folder / table).mkdir(parents=True, exist_ok=True)
    summary = run_blockwise(
        blocks, _block_writer(affinities, fragments, folder), description=STAGE,
        markers=markers, scheduler=scheduler, show_progress=show_progress,
    )
    write_json(folder / STATE_FILE, {"complete": True, "config_hash": config_hash, "config": payload,
                                     "blocks": len(blocks)})
    markers.clear()
    remove_if_empty(run_dir / "blocks")
    seconds = time.perf_counter() - started
    logger.info("graph: %d blocks (%d resumed) in %.1f s -> %s", len(blocks), summary.skipped, seconds, folder)
    return StageResult(STAGE, config_hash, len(blocks), summary.skipped, seconds)


def read_graph(run_dir: str | Path) -> RegionGraph:
    """The run's whole region graph: every block's tables, merged (edges unique, u < v).

    Raises:
        InputError: the graph stage has not completed.
    """
    folder = graph_dir(Path(run_dir))
    state = graph_state(Path(run_dir))
    if not state or not state.get("complete"):
        raise InputError(f"{folder}: no complete region graph; run the graph stage first")
    tables = []
    for name in TABLES:
        files = sorted((folder / name).glob("*.parquet"))
        parts = [pq.read_table(path) for path in files]
        tables.append(pa.concat_tables(parts, promote_options="permissive") if parts else None)
    if tables[0] is None:
        return merge_block_graphs([])
    nodes, edges = tables
    if edges is None:
        edges = graph_to_tables(merge_block_graphs([]))[1]
    # a fragment spanning blocks has one node row per block: merging sums them
    return merge_block_graphs([graph_from_tables(nodes, edges)])
