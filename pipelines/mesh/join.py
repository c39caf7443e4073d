"""Join the per-block mesh pieces of a run into one watertight, smoothed mesh per segment and
write them as a neuroglancer legacy mesh folder, a range of segment ids at a time.

Segment-id ranges are cut so that each holds about ``batch_vertices`` piece vertices (from the
blocks' piece tables, one count per segment), and only that range's pieces are read (memory
maps), so the join's memory is bounded by the batch, not by the volume. A segment is always
joined whole, so one segment larger than a batch still takes its own size.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from axonseg.io.precomputed import write_legacy_mesh
from axonseg.mesh import MeshParams, MeshPiece, finish_mesh, is_watertight, surface_area_nm2
from axonseg.pipelines.mesh.blocks import load_block_pieces, read_piece_table

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JoinSummary:
    """What :func:`join_to_disk` wrote.

    Attributes:
        n_segments: segments with a mesh.
        n_faces: triangles of all meshes.
        total_area_nm2: summed surface area (nm²).
        not_watertight: ids of meshes with an edge not shared by exactly two faces (labels
            that touch themselves only along a voxel edge make such edges; the join adds none).
        n_batches: id ranges joined one after another.
    """

    n_segments: int
    n_faces: int
    total_area_nm2: float
    not_watertight: list[int]
    n_batches: int


def segment_sizes(work_dir: Path, block_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every segment with a piece and its piece vertices summed over the blocks:
    ``(ids uint64 ascending, vertices int64)``."""
    ids, counts = [], []
    for block_id in block_ids:
        table = read_piece_table(work_dir, block_id)
        if table is not None:
            ids.append(table["segment_id"])
            counts.append(table["n_vertices"])
    if not ids:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    unique, inverse = np.unique(np.concatenate(ids), return_inverse=True)
    return unique, np.bincount(inverse.reshape(-1), weights=np.concatenate(counts), minlength=len(unique)).astype(np.int64)


def id_ranges(ids: np.ndarray, sizes: np.ndarray, batch_vertices: int) -> list[tuple[int, int]]:
    """``[(low, high), ...]`` half-open id ranges covering ``ids``, each holding about
    ``batch_vertices`` vertices (a range ends after the segment that reaches its share)."""
    if len(ids) == 0:
        return []
    n_batches = max(1, math.ceil(int(sizes.sum()) / batch_vertices))
    cumulative = np.cumsum(sizes)
    targets = cumulative[-1] * np.arange(1, n_batches) / n_batches
    last = np.unique(np.searchsorted(cumulative, targets, side="left"))
    last = last[last < len(ids) - 1]
    cuts = [int(ids[0])] + [int(ids[i]) + 1 for i in last.tolist()] + [int(ids[-1]) + 1]
    return list(zip(cuts[:-1], cuts[1:]))


def join_to_disk(work_dir: Path, block_ids: Sequence[str], out_dir: Path, voxel_size: Sequence[float],
                 params: MeshParams, batch_vertices: int = 2_000_000) -> JoinSummary:
    """Join the pieces in ``work_dir`` and write ``out_dir/<id>`` + ``out_dir/<id>:0`` per segment.

    Args:
        work_dir: folder of the blocks' ``.npy`` pieces (:mod:`.blocks`).
        block_ids: the blocks to join.
        out_dir: the mesh folder (created; the caller writes its ``info``).
        voxel_size: nm, zyx.
        params: seam simplification and smoothing settings applied after each join.
        batch_vertices: piece vertices joined at once.

    Returns:
        A :class:`JoinSummary`.
    """
    ids, sizes = segment_sizes(work_dir, block_ids)
    ranges = id_ranges(ids, sizes, batch_vertices)
    written, n_faces, area, leaky = 0, 0, 0.0, []
    for low, high in ranges:
        pieces: dict[int, list[MeshPiece]] = defaultdict(list)
        for block_id in block_ids:
            for segment_id, piece in load_block_pieces(work_dir, block_id, low, high).items():
                pieces[segment_id].append(piece)
        for segment_id in sorted(pieces):
            mesh = finish_mesh(pieces.pop(segment_id), voxel_size, params)
            if mesh.n_faces == 0:
                continue
            write_legacy_mesh(out_dir, segment_id, mesh.vertices_nm, mesh.faces)
            written += 1
            n_faces += mesh.n_faces
            area += surface_area_nm2(mesh)
            if not is_watertight(mesh):
                leaky.append(segment_id)
    if leaky:
        logger.info("mesh join: %d of %d meshes have edges not shared by exactly two faces (e.g. segment %d)",
                    len(leaky), written, leaky[0])
    return JoinSummary(written, n_faces, area, leaky, len(ranges))
