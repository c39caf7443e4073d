"""Apply a fragment -> segment lookup table to a fragment volume."""

from __future__ import annotations

import numpy as np

from axonseg.errors import InputError

def relabel(
    fragments: np.ndarray, fragment_ids: np.ndarray, segment_ids: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Map fragment ids to segment ids.

    Args:
        fragments: (Z, Y, X) integer fragment ids (0 = background).
        fragment_ids: (N,) fragment ids of the LUT.
        segment_ids: (N,) segment id of each fragment.
        out: optional uint64 array of the fragments' shape to write into (for a threshold
            sweep that reuses one buffer instead of touching fresh memory per threshold).

    Returns:
        (Z, Y, X) uint64 segmentation; fragments missing from the LUT keep their own id and
        0 stays 0 (a LUT entry for 0 is ignored).
    """
    fragment_ids = np.asarray(fragment_ids)
    segment_ids = np.asarray(segment_ids)
    if fragment_ids.shape != segment_ids.shape or fragment_ids.ndim != 1:
        raise InputError(
            f"LUT has {fragment_ids.shape} fragment ids and {segment_ids.shape} segment ids: "
            "expected two 1-D arrays of equal length"
        )
    if not np.issubdtype(fragments.dtype, np.integer):
        raise InputError(f"fragments has dtype {fragments.dtype}: expected an integer dtype")
    if fragments.dtype.kind == "i" and fragments.size and fragments.min() < 0:
        raise InputError("fragments has negative ids: expected ids >= 0")
    # imported here: readers of a finished segmentation never load numba (see _relabel_kernel)
    from axonseg.segment._relabel_kernel import DENSE_TABLE_PER_VOXEL, relabel_dense, relabel_sorted

    keys = fragment_ids.astype(np.uint64)
    values = segment_ids.astype(np.uint64)
    # identity entries need no work, and 0 must stay background
    changed = (keys != values) & (keys != 0)
    flat = np.ascontiguousarray(fragments).ravel()
    if out is None:
        # np.zeros (calloc'd pages) measured 2x faster than np.empty for the kernel's first touch
        out = np.zeros(fragments.shape, dtype=np.uint64)
    elif out.shape != fragments.shape or out.dtype != np.uint64 or not out.flags.c_contiguous:
        raise InputError(f"out has shape {out.shape} {out.dtype}: expected a C-contiguous uint64 array of shape {fragments.shape}")
    result, out = out, out.reshape(-1)
    if not changed.any():
        out[:] = flat
        return result
    keys, values = keys[changed], values[changed]
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    low, high = int(keys[0]), int(keys[-1])
    if high - low + 1 <= max(DENSE_TABLE_PER_VOXEL * flat.size, 1 << 16):
        # the LUTs of one block or volume cover a compact id range: one array lookup per voxel
        table = np.arange(low, high + 1, dtype=np.uint64)
        table[(keys - np.uint64(low)).astype(np.int64)] = values
        relabel_dense(flat, table, np.uint64(low), out)
    else:
        relabel_sorted(flat, keys, values, out)
    return result
