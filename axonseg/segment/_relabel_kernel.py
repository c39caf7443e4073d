"""The numba kernels of :func:`axonseg.segment.relabel.relabel` (its only user).

They live apart so that importing ``relabel`` (and the ``Lut`` type with it) does not import
numba: a process that only reads ``segmentation/`` (skeletonize, mesh, the viewer) never pays
numba's ~50 MB of modules and JIT state.
"""

from __future__ import annotations

import numba
import numpy as np

# a dense table over the id range is used when it is at most this many entries per voxel
DENSE_TABLE_PER_VOXEL = 1


@numba.njit(cache=True, nogil=True)
def relabel_dense(flat, table, low, out):
    """out[i] = table[flat[i] - low] where that is in range, else flat[i] (0 stays 0)."""
    # all arithmetic in uint64: mixing it with int64 makes numba compare in float64
    size = np.uint64(len(table))
    last_in = np.uint64(0)
    last_out = np.uint64(0)
    for i in range(flat.shape[0]):
        value = np.uint64(flat[i])
        if value != last_in:  # neighbouring voxels mostly share a fragment
            last_in = value
            offset = value - low  # wraps around (large) below low
            last_out = table[offset] if value != 0 and offset < size else value
        out[i] = last_out


@numba.njit(cache=True, nogil=True)
def relabel_sorted(flat, keys, values, out):
    """out[i] = values[j] where keys[j] == flat[i] (keys ascending), else flat[i]; the last
    lookup is cached because neighbouring voxels mostly share a fragment."""
    last_in = np.uint64(0)
    last_out = np.uint64(0)
    for i in range(flat.shape[0]):
        value = np.uint64(flat[i])
        if value == 0:
            out[i] = 0
            continue
        if value != last_in:
            j = np.searchsorted(keys, value)
            last_in = value
            last_out = values[j] if j < len(keys) and keys[j] == value else value
        out[i] = last_out
