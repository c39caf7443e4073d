"""numba seeds of watershed_fragments: local maxima of the (edt) distance transform of the
inside voxels, and seed ids (connected maxima, plus one seed per component without one).

The maxima pass works on whole contiguous x-rows (SIMD) and one z-plane at a time, so the
driver can hand chunks of planes to threads (the kernels release the GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from axonseg.segment._watershed_kernel import _find


def _in_chunks(kernel, n_items: int, n_threads: int, *args) -> None:
    """kernel(*args, start, stop) over 0..n_items, in n_threads contiguous chunks on Python
    threads (the kernels release the GIL; numba's own thread pools are not fork-safe)."""
    n_chunks = max(1, min(n_threads, n_items))
    bounds = np.linspace(0, n_items, n_chunks + 1).astype(np.int64)
    if n_chunks == 1:
        kernel(*args, 0, n_items)
        return
    with ThreadPoolExecutor(n_chunks) as pool:
        for done in [pool.submit(kernel, *args, int(a), int(b)) for a, b in zip(bounds, bounds[1:])]:
            done.result()


@numba.njit(cache=True, nogil=True)
def _window_max_plane(distance, z, radius, along_x, window):
    """window = maximum of distance[z] over the (2r+1)^2 square around each voxel (clipped
    to the plane): along x into along_x, then along y, a row at a time."""
    ny, nx = distance.shape[1], distance.shape[2]
    for y in range(ny):
        source = distance[z, y]
        row = along_x[y]
        row[:] = source
        for shift in range(1, min(radius, nx - 1) + 1):
            for x in range(nx - shift):
                row[x] = max(row[x], source[x + shift])
            for x in range(shift, nx):
                row[x] = max(row[x], source[x - shift])
    for y in range(ny):
        row = window[y]
        row[:] = along_x[y]
        for yy in range(max(y - radius, 0), min(y + radius + 1, ny)):
            if yy != y:
                other = along_x[yy]
                for x in range(nx):
                    row[x] = max(row[x], other[x])


@numba.njit(cache=True, nogil=True)
def _maxima_planes(distance, inside, out, radius, start, stop):
    """out[z] for planes start:stop: inside voxels not below the cube maximum; the square
    maxima of planes z - r .. z + r live in a ring of 2r + 1 planes."""
    nz, ny, nx = distance.shape
    n_ring = 2 * radius + 1
    ring = np.empty((n_ring, ny, nx), dtype=distance.dtype)
    along_x = np.empty((ny, nx), dtype=distance.dtype)
    done = max(start - radius, 0)  # the next plane whose square maxima are due
    for z in range(start, stop):
        low, high = max(z - radius, 0), min(z + radius + 1, nz)
        while done < high:
            _window_max_plane(distance, done, radius, along_x, ring[done % n_ring])
            done += 1
        for y in range(ny):
            value = distance[z, y]
            row = out[z, y]
            for x in range(nx):
                row[x] = inside[z, y, x]
            for zz in range(low, high):
                other = ring[zz % n_ring, y]
                for x in range(nx):
                    row[x] = row[x] and value[x] >= other[x]


def local_maxima(distance: np.ndarray, inside: np.ndarray, radius: int, n_threads: int = 1) -> np.ndarray:
    """(Z, Y, X) bool: inside voxels whose distance is >= every distance in the cube of
    half-width `radius` voxels around them (clipped to the array).

    Equals ``(distance == scipy.ndimage.maximum_filter(distance, 2 * radius + 1)) & inside``
    (the filter's 'reflect' border only repeats values inside the window). The cube maximum
    is separable: x and y per plane, then z while comparing.

    Args:
        distance: (Z, Y, X) float distance transform (or its square: same maxima), C order.
        inside: (Z, Y, X) bool voxels that may be maxima.
        radius: half-width of the window in voxels (>= 0).
        n_threads: threads over planes.
    """
    out = np.empty(distance.shape, dtype=np.bool_)
    _in_chunks(_maxima_planes, distance.shape[0], n_threads, distance, inside, out, radius)
    return out


@numba.njit(cache=True, nogil=True)
def label_seeds(components, n_components, maxima):
    """Seed ids, in place of the inside components; returns the number of seeds.

    Connected (6- / 4-connected in a plane) groups of maxima become seeds 1..n in raster
    order of their first voxel, as cc3d numbers them; then each component without a maximum
    becomes one seed, in component order (a small object beside a thicker one has no
    maximum of its own inside the window, and must not be absorbed by its neighbour).

    Args:
        components: (Z, Y, X) int32 inside components 1..n_components (0 = not inside),
            overwritten with the seed ids (0 = no seed).
        n_components: number of components.
        maxima: (Z, Y, X) bool local maxima (inside voxels only).
    """
    nz, ny, nx = maxima.shape
    flat = maxima.ravel()
    n_maxima = 0
    for p in range(flat.shape[0]):
        n_maxima += flat[p]
    where = np.empty(n_maxima, dtype=np.int64)
    i = 0
    for p in range(flat.shape[0]):
        if flat[p]:
            where[i] = p
            i += 1
    # union-find over the maxima, in raster order: the list index of a neighbour q < p is
    # found by bisection (maxima are sparse)
    parent = np.arange(n_maxima)
    strides = (ny * nx, nx, 1)
    for i in range(n_maxima):
        p = where[i]
        coords = (p // strides[0], (p // nx) % ny, p % nx)
        for axis in range(3):
            if coords[axis] == 0:
                continue
            q = p - strides[axis]
            if not flat[q]:
                continue
            j = np.searchsorted(where[:i], q)
            root_i, root_j = _find(parent, i), _find(parent, j)
            if root_i != root_j:
                parent[max(root_i, root_j)] = min(root_i, root_j)
    ids = components.ravel()
    seed_of = np.zeros(n_maxima, dtype=np.int32)
    seeded = np.zeros(n_components + 1, dtype=np.bool_)
    n_seeds = 0
    for i in range(n_maxima):
        root = _find(parent, i)
        if root == i:
            n_seeds += 1
            seed_of[i] = n_seeds
        else:
            seed_of[i] = seed_of[root]
        seeded[ids[where[i]]] = True
    new_id = np.zeros(n_components + 1, dtype=np.int32)
    for c in range(1, n_components + 1):
        if not seeded[c]:
            n_seeds += 1
            new_id[c] = n_seeds
    for p in range(ids.shape[0]):
        ids[p] = new_id[ids[p]]
    for i in range(n_maxima):
        ids[where[i]] = seed_of[i]
    return n_seeds
