"""Skeletons of single segments traced from the fragments, for the segments a proofreading
edit touched (no blockwise skeletonize run; the viewer calls it through the pipelines layer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from axonseg.io import Volume
from axonseg.skeleton import AxonGraph, SkeletonParams, skeletonize


def skeletonize_fragments(
    fragments: Volume,
    fragment_ids: np.ndarray,
    segment_id: int,
    begin: Sequence[int],
    end: Sequence[int],
    params: SkeletonParams | None = None,
) -> AxonGraph | None:
    """The skeleton of one segment made of ``fragment_ids``, traced inside a box of the fragments.

    For re-skeletonizing the segments a proofreading edit touched, without a skeletonize run.

    Args:
        fragments: the run's fragments (zyx).
        fragment_ids: the segment's fragment ids.
        segment_id: the id the skeleton gets.
        begin, end: the box in voxels (zyx, ``end`` exclusive); clipped to the volume.
        params: kimimaro settings; None: the AxonEM defaults.

    Returns:
        The :class:`AxonGraph` in world nm (zyx), or None when the box holds no skeleton of it.
    """
    shape = np.asarray(fragments.spatial_shape, dtype=np.int64)
    begin = np.clip(np.asarray(begin, dtype=np.int64), 0, shape)
    end = np.clip(np.asarray(end, dtype=np.int64), begin, shape)
    block = np.asarray(fragments.read(tuple(slice(int(b), int(e)) for b, e in zip(begin, end))))
    labels = np.where(np.isin(block, np.asarray(fragment_ids, dtype=block.dtype)), np.uint64(segment_id), np.uint64(0))
    offset_nm = np.asarray(fragments.offset, dtype=np.float64) + begin * np.asarray(fragments.voxel_size)
    found = skeletonize(labels, voxel_size=tuple(fragments.voxel_size), params=params, offset_nm=tuple(offset_nm))
    return found.get(int(segment_id))
