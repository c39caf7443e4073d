"""Look skeleton nodes and mask voxels up in a segmentation, for a whole array or one block.

These produce the two inputs of ERL that come from voxels: node -> segment id, and per
segment the number of voxels inside a non-axon mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from axonseg.evaluate._checks import as_uint64, check_labels, check_same_shape, check_triple
from axonseg.errors import InputError

# Nodes sit on voxel corners (index * voxel_size, kimimaro's convention) or centres; a
# tolerance of 1e-6 voxel keeps i * s / s from flooring to i - 1 through float rounding.
_FLOOR_TOLERANCE = 1e-6


def node_voxel_indices(
    positions_nm: np.ndarray,
    voxel_size: Sequence[float],
    offset_nm: Sequence[float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """Voxel index (zyx) of each node: ``floor((position - offset) / voxel_size)``.

    This is AxonEM's ``node_nm // resolution`` with a volume offset added.

    Args:
        positions_nm: (N, 3) node positions, zyx, nm.
        voxel_size: (z, y, x) voxel size in nm.
        offset_nm: (z, y, x) world position of voxel (0, 0, 0) in nm.

    Returns:
        (N, 3) int64 voxel indices; they may lie outside the volume.
    """
    size = check_triple(voxel_size, "voxel_size", positive=True)
    offset = check_triple(offset_nm, "offset_nm", positive=False)
    scaled = (np.asarray(positions_nm, dtype=np.float64) - offset) / size
    return np.floor(scaled + _FLOOR_TOLERANCE).astype(np.int64)


def lookup_segments(
    segmentation: np.ndarray,
    positions_nm: np.ndarray,
    voxel_size: Sequence[float],
    offset_nm: Sequence[float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """Segment id under each node; nodes outside the volume get 0 (omitted by ERL).

    Args:
        segmentation: (Z, Y, X) predicted labels.
        positions_nm: (N, 3) node positions, zyx, nm.
        voxel_size: (z, y, x) voxel size in nm.
        offset_nm: (z, y, x) world position of voxel (0, 0, 0) in nm.

    Returns:
        (N,) uint64 segment ids.
    """
    voxels = node_voxel_indices(positions_nm, voxel_size, offset_nm)
    node_index, segments = lookup_segments_block(segmentation, voxels, (0, 0, 0))
    out = np.zeros(len(voxels), dtype=np.uint64)
    out[node_index] = segments
    return out


def lookup_segments_block(
    segmentation_block: np.ndarray,
    node_voxels: np.ndarray,
    block_offset_voxels: Sequence[int],
    z_order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Segment ids of the nodes that fall inside one block.

    Args:
        segmentation_block: (z, y, x) labels of the block.
        node_voxels: (N, 3) int64 global voxel indices of all nodes (from
            :func:`node_voxel_indices`).
        block_offset_voxels: global voxel index (zyx) of the block's first voxel.
        z_order: optional ``argsort(node_voxels[:, 0], kind="stable")``; with it only the nodes
            in the block's z range are tested, which matters for many blocks.

    Returns:
        ``(node_index, segment_ids)``: int64 indices of the nodes inside the block and the
        uint64 segment id under each.
    """
    check_labels(segmentation_block, "pred")
    if segmentation_block.ndim != 3:
        raise InputError(f"pred has shape {segmentation_block.shape}: expected a 3D (z, y, x) block")
    start = np.asarray(block_offset_voxels, dtype=np.int64)
    stop = start + np.asarray(segmentation_block.shape, dtype=np.int64)
    if z_order is None:
        candidates = np.arange(len(node_voxels))
    else:
        z_sorted = node_voxels[z_order, 0]
        low, high = np.searchsorted(z_sorted, [start[0], stop[0]], side="left")
        candidates = z_order[low:high]
    local = node_voxels[candidates] - start
    inside = np.all((local >= 0) & (local < stop - start), axis=1)
    node_index = candidates[inside]
    local = local[inside]
    segments = as_uint64(segmentation_block[local[:, 0], local[:, 1], local[:, 2]])
    return node_index.astype(np.int64), segments


def mask_voxel_counts(segmentation: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Voxels of each segment inside a non-axon mask (one block or a whole array).

    Args:
        segmentation: predicted labels (zyx).
        mask: same shape; nonzero/True marks voxels that belong to no axon (AxonEM's
            ``gt_no_bg``). Sum block results with :func:`merge_counts`.

    Returns:
        ``(segment_ids, counts)``: sorted uint64 ids with at least one masked voxel (0
        included) and int64 counts.
    """
    check_labels(segmentation, "pred")
    if not isinstance(mask, np.ndarray):
        raise InputError(f"mask is a {type(mask).__name__}: expected a numpy array")
    check_same_shape(segmentation, "pred", mask, "mask")
    ids, counts = np.unique(segmentation[mask.astype(bool, copy=False)], return_counts=True)
    return as_uint64(ids), counts.astype(np.int64)


def merge_counts(tables: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``(ids, counts)`` tables of several blocks; ids come back sorted and unique."""
    if not tables:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    ids = np.concatenate([np.asarray(t[0], dtype=np.uint64) for t in tables])
    counts = np.concatenate([np.asarray(t[1], dtype=np.int64) for t in tables])
    unique, inverse = np.unique(ids, return_inverse=True)
    return unique, np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64)
