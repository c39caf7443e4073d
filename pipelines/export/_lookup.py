"""Export glue that reads voxels: synapse points to segment ids (only the chunks that hold points),
and the contact proxy's blockwise pass over the segmentation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from axonseg.blockwise import Roi
from axonseg.blockwise.outputs import MemoryOutput
from axonseg.blockwise.stage import BlockData, Input, Stage, run_stage
from axonseg.connectome import (
    combine_contacts,
    contact_faces,
    group_by_chunk,
    inside_volume,
    lookup_in_block,
    points_to_voxels,
)
from axonseg.io import Volume
from axonseg.pipelines.labels import read_roi
from axonseg.segment import Lut, apply_lut

logger = logging.getLogger(__name__)

LutPair = tuple[np.ndarray, np.ndarray]
#: A LUT, a ``(fragment_ids, segment_ids)`` pair, or a function returning either (proofreading's
#: ``ProofreadSession.current_lut``), or None.
LutSource = Lut | LutPair | Callable[[], Lut | LutPair] | None


@dataclass(frozen=True)
class SegmentSource:
    """The labels that synapse points are looked up in.

    Attributes:
        volume: the run's ``segmentation`` (no LUT) or ``fragments`` (with ``lut``), zyx.
        lut: applied to the looked-up fragment ids, or None.
        description: for messages and the export report.
    """

    volume: Volume
    lut: Lut | None
    description: str

    def read_segments(self, roi: Roi) -> np.ndarray:
        """Segment ids of a block inside the volume (the LUT applied to every voxel)."""
        block = read_roi(self.volume, roi)
        return block if self.lut is None else apply_lut(block, self.lut)


def make_source(volume: Volume, lut: LutSource, description: str) -> SegmentSource:
    """A :class:`SegmentSource`; ``lut`` may be a function returning the current LUT (proofreading)."""
    current = lut() if callable(lut) else lut
    return SegmentSource(volume, None if current is None else Lut.of(current), description)


def chunk_shape_of(volume: Volume) -> tuple[int, int, int]:
    """The storage chunk shape (voxels, zyx) of the volume's dask array."""
    return tuple(int(c) for c in volume.data.chunksize[-3:])  # type: ignore[return-value]


def segment_ids_at(source: SegmentSource, points_nm: np.ndarray, n_threads: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Segment id under each point, reading only the chunks that hold points.

    Points are grouped by storage chunk; each chunk that holds points is read once (in a
    thread pool) and sampled for all of them.

    Args:
        source: the labels and LUT.
        points_nm: ``(N, 3)`` world points, nm, zyx (NaN allowed: treated as outside).
        n_threads: threads reading chunks.

    Returns:
        ``(ids, inside)``: ``(N,)`` uint64 segment ids (0 where outside) and ``(N,)`` bool.
    """
    volume = source.volume
    voxels = points_to_voxels(points_nm, volume.voxel_size, volume.offset)
    inside = inside_volume(voxels, volume.spatial_shape)
    ids = np.zeros(len(voxels), dtype=np.uint64)
    rows = np.flatnonzero(inside)
    chunk_shape = np.asarray(chunk_shape_of(volume), dtype=np.int64)
    groups = group_by_chunk(voxels[rows], chunk_shape)
    # One gather into chunk order; each group is then a contiguous slice.
    members_all = rows[groups.order]
    sorted_voxels = voxels[members_all]
    shape = np.asarray(volume.spatial_shape, dtype=np.int64)

    def sample(k: int) -> tuple[slice, np.ndarray]:
        part = slice(int(groups.starts[k]), int(groups.starts[k + 1]))
        begin = groups.chunks[k] * chunk_shape
        end = np.minimum(begin + chunk_shape, shape)  # exactly one storage chunk
        block = volume.read(tuple(slice(int(b), int(e)) for b, e in zip(begin, end)))
        return part, lookup_in_block(block, begin, sorted_voxels[part])

    with ThreadPoolExecutor(max_workers=max(1, n_threads)) as pool:
        for part, values in pool.map(sample, range(len(groups))):
            ids[members_all[part]] = values.astype(np.uint64, copy=False)
    if source.lut is not None:
        ids[rows] = apply_lut(ids[rows], source.lut)
    logger.info("looked up %d points in %d chunks of %s", len(rows), len(groups), source.description)
    return ids, inside


def contact_table(source: SegmentSource, block_shape: Sequence[int]) -> pd.DataFrame:
    """Contact areas and centres between every pair of touching segments (one pass, blockwise).

    Each block reads one extra voxel on its far sides (clipped at the volume), so faces across
    block borders are counted once, by the block that owns the near voxel.
    """
    volume = source.volume
    voxel_size, origin = np.asarray(volume.voxel_size), np.asarray(volume.offset)

    def process(data: BlockData) -> pd.DataFrame:
        offset_nm = origin + np.asarray(data.read_roi.offset) * voxel_size
        return contact_faces(data["segments"], volume.voxel_size, offset_nm, owned_shape=data.block.write_roi.shape)

    output = MemoryOutput()
    stage = Stage(
        name="contacts", volume_shape=volume.spatial_shape, block_shape=tuple(block_shape),
        inputs={"segments": Input(source.read_segments, volume.spatial_shape)}, output=output, process=process,
        config={"source": source.description, "block_shape": list(block_shape)},
        context=((0, 0, 0), (1, 1, 1)), border="clip",
    )
    # one block at a time in this process; the shared executor hands each block's freed memory back
    run_stage(stage, None, show_progress=False)
    return combine_contacts([output.results[b.index] for b in stage.blocks()])
