"""numba local maxima of a distance transform (the seeds of watershed_fragments).

Equal to ``(distance == scipy.ndimage.maximum_filter(distance, 2 * radius + 1)) & inside``
(the filter's default 'reflect' border only repeats values inside the window, so it equals a
window clipped to the array), without the filtered copy: almost every voxel of a distance
transform has a larger 6-neighbour (the distance grows towards the object's middle), so a
voxel is rejected after a few reads and only ridge voxels scan their whole window.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _is_window_max(distance, z, y, x, value, radius):
    """Whether no distance in the cube of half-width radius around (z, y, x) exceeds value."""
    nz, ny, nx = distance.shape
    for zz in range(max(z - radius, 0), min(z + radius + 1, nz)):
        for yy in range(max(y - radius, 0), min(y + radius + 1, ny)):
            for xx in range(max(x - radius, 0), min(x + radius + 1, nx)):
                if distance[zz, yy, xx] > value:
                    return False
    return True


@numba.njit(cache=True, nogil=True)
def local_maxima(distance, inside, radius):
    """(Z, Y, X) bool: inside voxels whose distance is >= every distance in the cube of
    half-width `radius` voxels around them (clipped to the array).

    Args:
        distance: (Z, Y, X) float distance transform.
        inside: (Z, Y, X) bool voxels that may be maxima.
        radius: half-width of the window in voxels (>= 0).
    """
    nz, ny, nx = distance.shape
    out = np.zeros(distance.shape, dtype=np.bool_)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if not inside[z, y, x]:
                    continue
                value = distance[z, y, x]
                if radius > 0:
                    # quick rejection by the 6 neighbours
                    if z > 0 and distance[z - 1, y, x] > value:
                        continue
                    if z < nz - 1 and distance[z + 1, y, x] > value:
                        continue
                    if y > 0 and distance[z, y - 1, x] > value:
                        continue
                    if y < ny - 1 and distance[z, y + 1, x] > value:
                        continue
                    if x > 0 and distance[z, y, x - 1] > value:
                        continue
                    if x < nx - 1 and distance[z, y, x + 1] > value:
                        continue
                # growing windows: a ridge voxel mostly has a larger one close by
                is_max = True
                for r in (1, 2, radius):
                    if r <= radius and not _is_window_max(distance, z, y, x, value, r):
                        is_max = False
                        break
                out[z, y, x] = is_max
    return out
