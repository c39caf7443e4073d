"""numba kernels of ``min_size``: the faces that touch a small fragment, and the best neighbour
of every small fragment, in one pass over those faces (no sort of all face pairs).

Faces are bucketed by their small fragment (a counting sort over the dense ids); each bucket
holds at most six faces per voxel of a fragment below ``min_size``, so its neighbours are
ranked by a sort of that bucket alone.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def best_neighbours(here: np.ndarray, there: np.ndarray, values: np.ndarray, small: np.ndarray) -> np.ndarray:
    """For each fragment id ``f`` with ``small[f]``, the neighbour with the highest mean face
    affinity (ties: the smallest id); -1 for the others and for a small fragment without faces.

    Args:
        here, there: (n_faces,) int64 fragment ids of the two voxels of each face (different,
            non-zero), each face listed once.
        values: (n_faces,) float64 affinity of each face (any monotone scale: raw uint8 values
            keep the sums exact, so equal means compare equal).
        small: (n_ids,) bool, indexed by fragment id.
    """
    n = small.shape[0]
    starts = np.zeros(n + 1, np.int64)
    for i in range(here.shape[0]):
        if small[here[i]]:
            starts[here[i] + 1] += 1
        if small[there[i]]:
            starts[there[i] + 1] += 1
    for f in range(n):
        starts[f + 1] += starts[f]
    fill = starts[:-1].copy()
    neighbour = np.empty(starts[n], np.int64)
    value = np.empty(starts[n], np.float64)
    for i in range(here.shape[0]):
        a, b, v = here[i], there[i], values[i]
        if small[a]:
            neighbour[fill[a]] = b
            value[fill[a]] = v
            fill[a] += 1
        if small[b]:
            neighbour[fill[b]] = a
            value[fill[b]] = v
            fill[b] += 1
    best = np.full(n, -1, np.int64)
    for f in range(n):
        start, stop = starts[f], starts[f + 1]
        if stop == start:
            continue
        ids = neighbour[start:stop]
        order = np.argsort(ids, kind="mergesort")
        best_mean, best_id, k, m = -1.0, -1, 0, stop - start
        while k < m:
            current, total, count = ids[order[k]], 0.0, 0
            while k < m and ids[order[k]] == current:
                total += value[start + order[k]]
                count += 1
                k += 1
            mean = total / count
            if mean > best_mean:  # ascending ids: a tie keeps the smaller id
                best_mean, best_id = mean, current
        best[f] = best_id
    return best


@numba.njit(cache=True, nogil=True)
def _small_face_pass(labels, affinities, nn_channels, small, fill, here, there, values) -> int:  # noqa: ANN001
    """Count (``fill`` False) or also write the faces that touch a small fragment; returns the count."""
    n_z, n_y, n_x = labels.shape
    k = 0
    for axis in range(3):
        channel = nn_channels[axis]
        dz, dy, dx = (1, 0, 0) if axis == 0 else ((0, 1, 0) if axis == 1 else (0, 0, 1))
        for z in range(dz, n_z):
            for y in range(dy, n_y):
                for x in range(dx, n_x):
                    a = labels[z, y, x]
                    if a == 0:
                        continue
                    b = labels[z - dz, y - dy, x - dx]
                    if b == 0 or b == a or not (small[a] or small[b]):
                        continue
                    if fill:
                        here[k] = a
                        there[k] = b
                        values[k] = affinities[channel, z, y, x]
                    k += 1
    return k


@numba.njit(cache=True, nogil=True)
def small_faces(labels: np.ndarray, affinities: np.ndarray, nn_channels: np.ndarray,
                small: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The faces between two different non-zero fragments of which at least one is small.

    A face joins voxel p and its negative neighbour p - e_axis (none at the block's negative
    faces); it is listed once, by p, axis z first, then y, then x, C order within an axis. The
    faces between two large fragments are left out: they are most of a block's faces and
    :func:`best_neighbours` ignores them. Two passes over the block (count, then fill) and no
    volume-sized temporaries.

    Args:
        labels: (Z, Y, X) int64 fragment ids, 0 = background.
        affinities: (C, Z, Y, X) affinities of the same voxels (uint8 or float).
        nn_channels: channels of the offsets (-1,0,0), (0,-1,0), (0,0,-1), in that order.
        small: (n_ids,) bool, indexed by fragment id (longer than the largest id).

    Returns:
        (here, there, values): int64 ids of the voxel p and of its negative neighbour, and the
        float64 affinity at p of that face.
    """
    n = _small_face_pass(labels, affinities, nn_channels, small, False,
                         np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    here = np.empty(n, np.int64)
    there = np.empty(n, np.int64)
    values = np.empty(n, np.float64)
    _small_face_pass(labels, affinities, nn_channels, small, True, here, there, values)
    return here, there, values
