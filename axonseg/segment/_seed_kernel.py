"""numba seeds of watershed_fragments: local maxima of a distance transform, and one seed
for each component of inside voxels that has no maximum.

local_maxima equals ``(distance == scipy.ndimage.maximum_filter(distance, 2 * radius + 1))
& inside`` (the filter's default 'reflect' border only repeats values inside the window, so it
equals a window clipped to the array), with only a filtered copy along x: almost every voxel
of a distance transform has a larger 6- or 26-neighbour (the distance grows towards the
object's middle), so it is rejected after a few reads, and only ridge voxels read the
(2r+1)^2 row maxima of their window."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _row_maxima(distance, radius):
    """(Z, Y, X) max of distance over x - radius .. x + radius (clipped to the row).

    van Herk / Gil-Werman: running maxima from the left and from the right inside blocks of
    the window's width give any window's maximum from two reads (3 operations per voxel).
    """
    nz, ny, nx = distance.shape
    width = 2 * radius + 1
    length = ((nx + 2 * radius + width - 1) // width) * width
    out = np.empty_like(distance)
    padded = np.full(length, -np.inf, dtype=np.float64)
    from_left = np.empty(length, dtype=np.float64)
    from_right = np.empty(length, dtype=np.float64)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                padded[radius + x] = distance[z, y, x]
            for i in range(length):
                if i % width == 0:
                    from_left[i] = padded[i]
                else:
                    from_left[i] = max(from_left[i - 1], padded[i])
            for i in range(length - 1, -1, -1):
                if (i + 1) % width == 0:
                    from_right[i] = padded[i]
                else:
                    from_right[i] = max(from_right[i + 1], padded[i])
            for x in range(nx):
                out[z, y, x] = max(from_right[x], from_left[x + 2 * radius])
    return out


@numba.njit(cache=True, nogil=True)
def _is_cube_max(distance, z, y, x, value, radius):
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
    if radius == 0:
        return inside.copy()
    out = np.zeros(distance.shape, dtype=np.bool_)
    # the window maximum of a voxel is the maximum of (2r+1)^2 row maxima, not (2r+1)^3 reads
    row_max = _row_maxima(distance, radius)
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if not inside[z, y, x]:
                    continue
                value = distance[z, y, x]
                # quick rejection by the 6 neighbours, then by the 26
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
                if not _is_cube_max(distance, z, y, x, value, 1):
                    continue
                is_max = True
                for zz in range(max(z - radius, 0), min(z + radius + 1, nz)):
                    for yy in range(max(y - radius, 0), min(y + radius + 1, ny)):
                        if row_max[zz, yy, x] > value:
                            is_max = False
                            break
                    if not is_max:
                        break
                out[z, y, x] = is_max
    return out


@numba.njit(cache=True, nogil=True)
def seed_unseeded_components(seeds, n_seeds, components, n_components, maxima):
    """Give every component of inside voxels without a maximum one new seed id, in component
    order after n_seeds (in place on the flat int32 seeds; flat components and maxima)."""
    seeded = np.zeros(n_components + 1, dtype=np.bool_)
    for p in range(maxima.shape[0]):
        if maxima[p]:
            seeded[components[p]] = True
    new_id = np.zeros(n_components + 1, dtype=np.int32)
    next_id = n_seeds
    for c in range(1, n_components + 1):
        if not seeded[c]:
            next_id += 1
            new_id[c] = next_id
    if next_id > n_seeds:
        for p in range(components.shape[0]):
            c = components[p]
            if c != 0 and new_id[c] != 0:
                seeds[p] = new_id[c]
