"""numba kernel of ``min_size``: the best neighbour of every small fragment, in one pass over
the faces (no sort of all face pairs).

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
