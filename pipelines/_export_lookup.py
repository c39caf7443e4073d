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

from axonseg.blockwise import Block, Roi, make_blocks, run_blockwise
from axonseg.connectome import (
    apply_lut_to_ids,
    combine_contacts,
    contact_faces,
    group_by_chunk,
    inside_volume,
    lookup_in_block,
    points_to_voxels,
)
from axonseg.io import Volume
from axonseg.io.luts import Lut
from axonseg.pipelines._segment_source import apply_lut, read_roi, sort_lut

logger = logging.getLogger(__name__)

LutSource = Lut | Callable[[], Lut] | None


@dataclass(frozen=True)
class SegmentSource:
    """The labels that synapse points are looked up in.

    Attributes:
        volume: the run's ``segmentation`` (no LUT) or ``fragments`` (with ``lut``), zyx.
        lut: ``(fragment_ids, segment_ids)`` applied to the looked-up fragment ids, or None.
        description: for messages and the export report.
    """

    volume: Volume
    lut: Lut | None
    description: str

    def read_segments(self, roi: Roi) -> np.ndarray:
        """Segment ids of a block inside the volume (the LUT applied to every voxel)."""
        block = read_roi(self.volume, roi)
        return block if self.lut is None else apply_lut(block, self.lut, is_sorted=True)


def make_source(volume: Volume, lut: LutSource, description: str) -> SegmentSource:
    """A :class:`SegmentSource`; ``lut`` may be a function returning the current LUT (proofreading)."""
    current = lut() if callable(lut) else lut
    return SegmentSource(volume, None if current is None else sort_lut(current), description)


def chunk_shape_of(volume: Volume) -> tuple[int, int, int]:
    """The storage chunk shape (voxels, zyx) of the volume's dask array."""
    return tuple(int(c) for c in volume.data.chunksize[-3:])  # type: ignore[return-value]


def segment_ids_at(source: SegmentSource, points_nm: np.ndarray, workers: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Segment id under each point, reading only the chunks that hold points.

    Points are grouped by storage chunk; each chunk that holds points is read once (in a
    thread pool) and sampled for all of them.

    Args:
        source: the labels and LUT.
        points_nm: ``(N, 3)`` world points, nm, zyx (NaN allowed: treated as outside).
        workers: threads reading chunks.

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

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for part, values in pool.map(sample, range(len(groups))):
            ids[members_all[part]] = values.astype(np.uint64, copy=False)
    if source.lut is not None:
        ids[rows] = apply_lut_to_ids(ids[rows], source.lut)
    logger.info("looked up %d points in %d chunks of %s", len(rows), len(groups), source.description)
    return ids, inside


def contact_table(source: SegmentSource, block_shape: Sequence[int]) -> pd.DataFrame:
    """Contact areas and centres between every pair of touching segments (one pass, blockwise).

    Each block reads one extra voxel on its far sides, so faces across block borders are
    counted once, by the block that owns the near voxel.
    """
    volume = source.volume
    whole = Roi.of((0, 0, 0), volume.spatial_shape)
    blocks = make_blocks(volume.spatial_shape, block_shape, context=((0, 0, 0), (1, 1, 1)))
    parts: dict[int, pd.DataFrame] = {}

    def process(block: Block) -> None:
        read = block.read_roi.intersect(whole)
        labels = source.read_segments(read)
        offset_nm = np.asarray(volume.offset) + np.asarray(read.offset) * np.asarray(volume.voxel_size)
        parts[block.index] = contact_faces(labels, volume.voxel_size, offset_nm, owned_shape=block.write_roi.shape)

    # the shared executor (one block at a time) also hands each block's freed memory back
    run_blockwise(blocks, process, description="contacts", scheduler="synchronous", show_progress=False)
    return combine_contacts([parts[b.index] for b in blocks])
