"""Join the per-block skeleton pieces of a run a batch of segments at a time, so the client's
memory is bounded by the batch (``batch_nodes``), not by the volume.

When all pieces fit one batch they are joined in memory. Otherwise the pieces are first
partitioned by segment id range into buckets on disk (one pass over the blocks, one parquet
writer per bucket), with ranges cut at quantiles of the node count per segment, and each bucket
is then joined on its own and appended to the output. A segment is always joined whole, so a
single segment larger than a batch still takes its own size in memory.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from axonseg.pipelines.skeletonize.blocks import (
    SkeletonOutput,
    block_graphs_from_tables,
    block_table_paths,
    read_block_graphs,
)
from axonseg.skeleton import join_skeletons
from axonseg.skeleton.store import DEFAULT_BATCH_NODES

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class JoinSummary:
    """What :func:`join_to_disk` wrote.

    Attributes:
        nodes_path, edges_path: the joined skeleton tables.
        n_segments: segments with a skeleton.
        total_length_nm: summed cable length, nm.
        n_buckets: id-range buckets joined one after another (1: all in memory at once).
    """

    nodes_path: Path
    edges_path: Path
    n_segments: int
    total_length_nm: float
    n_buckets: int


def bucket_bounds(work_dir: Path, block_ids: Sequence[str], n_buckets: int) -> np.ndarray:
    """Segment-id cuts (uint64, at most ``n_buckets - 1``, ascending) that split the pieces'
    nodes into buckets of about equal node count.

    Reads only the ``segment_id`` column of each block and keeps one count per segment (like
    the LUT, which holds one id per fragment), so the cuts are exact quantiles whatever the
    spread of the ids.
    """
    ids, counts = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    pending_ids: list[np.ndarray] = []
    pending_counts: list[np.ndarray] = []
    pending = 0

    def merge() -> tuple[np.ndarray, np.ndarray]:
        merged, inverse = np.unique(np.concatenate([ids, *pending_ids]), return_inverse=True)
        weights = np.concatenate([counts, *pending_counts])
        pending_ids.clear()
        pending_counts.clear()
        return merged, np.bincount(inverse, weights=weights, minlength=len(merged)).astype(np.int64)

    for block_id in block_ids:
        column = pq.read_table(block_table_paths(work_dir, block_id)[0], columns=["segment_id"]).column("segment_id")
        block_segments, block_counts = np.unique(column.to_numpy().astype(np.uint64), return_counts=True)
        pending_ids.append(block_segments)
        pending_counts.append(block_counts)
        pending += len(block_segments)
        if pending > len(ids) + 1_000_000:  # merge in rounds: linear, not blocks x ids
            ids, counts = merge()
            pending = 0
    ids, counts = merge()
    if len(ids) == 0:
        return np.zeros(0, dtype=np.uint64)
    cumulative = np.cumsum(counts)
    targets = cumulative[-1] * np.arange(1, n_buckets) / n_buckets
    # a cut sits just above the segment where the running count reaches each target
    last = np.unique(np.searchsorted(cumulative, targets, side="left"))
    last = last[last < len(ids) - 1]
    return ids[last] + np.uint64(1)


def _spill(work_dir: Path, block_ids: Sequence[str], cuts: np.ndarray, spill_dir: Path) -> list[tuple[Path, Path]]:
    """Write every block's pieces into bucket files by segment id (``block`` column added)."""
    n_buckets = len(cuts) + 1
    buckets = [(spill_dir / f"{k}.nodes.parquet", spill_dir / f"{k}.edges.parquet") for k in range(n_buckets)]
    writers: dict[Path, pq.ParquetWriter] = {}
    try:
        for index, block_id in enumerate(block_ids):
            for table_path, bucket_paths in zip(block_table_paths(work_dir, block_id), zip(*buckets)):
                frame = pd.read_parquet(table_path)
                if frame.empty:
                    continue
                frame["block"] = np.int32(index)
                which = np.searchsorted(cuts, frame["segment_id"].to_numpy(np.uint64), side="right")
                for bucket in np.unique(which).tolist():
                    table = pa.Table.from_pandas(frame[which == bucket], preserve_index=False)
                    path = bucket_paths[bucket]
                    if path not in writers:
                        writers[path] = pq.ParquetWriter(path, table.schema)
                    writers[path].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()
    return buckets


def _join_bucket(nodes_path: Path, edges_path: Path, attach_nm: float, bridge_nm: float) -> dict:
    """Join the pieces of one bucket: ``{segment_id: AxonGraph}``."""
    if not nodes_path.exists():
        return {}
    nodes = pd.read_parquet(nodes_path)
    edges = pd.read_parquet(edges_path) if edges_path.exists() else pd.DataFrame(
        {"segment_id": np.zeros(0, np.uint64), "u": np.zeros(0, np.int64), "v": np.zeros(0, np.int64),
         "length_nm": np.zeros(0), "block": np.zeros(0, np.int32)})
    per_block = []
    edge_groups = dict(tuple(edges.groupby("block", sort=False)))
    for block, block_nodes in nodes.groupby("block", sort=True):
        block_edges = edge_groups.get(block, edges.iloc[:0])
        per_block.append(block_graphs_from_tables(block_nodes.drop(columns="block"), block_edges.drop(columns="block")))
    return join_skeletons(per_block, attach_distance_nm=attach_nm, bridge_distance_nm=bridge_nm)


def join_to_disk(work_dir: Path, block_ids: Sequence[str], out_dir: Path, attach_distance_nm: float,
                 bridge_distance_nm: float, swc: bool = True, batch_nodes: int = DEFAULT_BATCH_NODES) -> JoinSummary:
    """Join per-block skeleton pieces into ``out_dir/{nodes,edges}.parquet`` (+ ``swc/``).

    Args:
        work_dir: folder of the ``<block_id>.{nodes,edges}.parquet`` pieces.
        block_ids: the blocks to join.
        out_dir: the skeleton folder.
        attach_distance_nm, bridge_distance_nm: as :func:`axonseg.skeleton.join_skeletons`.
        swc: also write one SWC file per segment.
        batch_nodes: most piece nodes joined at once (and the output's row-group size).

    Returns:
        A :class:`JoinSummary`.
    """
    work_dir, out_dir = Path(work_dir), Path(out_dir)
    total = sum(pq.ParquetFile(block_table_paths(work_dir, b)[0]).metadata.num_rows for b in block_ids)
    n_buckets = max(1, math.ceil(total / batch_nodes))
    spill_dir = out_dir / "join.tmp"
    with SkeletonOutput(out_dir, swc=swc, batch_nodes=batch_nodes) as output:
        if n_buckets == 1:
            per_block = [read_block_graphs(work_dir, block_id) for block_id in block_ids]
            output.write(join_skeletons(per_block, attach_distance_nm=attach_distance_nm,
                                        bridge_distance_nm=bridge_distance_nm))
        else:
            cuts = bucket_bounds(work_dir, block_ids, n_buckets)
            shutil.rmtree(spill_dir, ignore_errors=True)
            spill_dir.mkdir(parents=True)
            try:
                buckets = _spill(work_dir, block_ids, cuts, spill_dir)
                logger.info("skeleton join: %d piece nodes in %d id-range buckets of about %d", total, len(buckets),
                            batch_nodes)
                for nodes_path, edges_path in buckets:
                    output.write(_join_bucket(nodes_path, edges_path, attach_distance_nm, bridge_distance_nm))
                    nodes_path.unlink(missing_ok=True)
                    edges_path.unlink(missing_ok=True)
            finally:
                shutil.rmtree(spill_dir, ignore_errors=True)
    tables = output.tables
    return JoinSummary(output.paths[0], output.paths[1], tables.n_segments, tables.total_length_nm,
                       n_buckets if n_buckets == 1 else len(cuts) + 1)
