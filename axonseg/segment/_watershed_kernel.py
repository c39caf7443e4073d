"""numba seeded watershed on the nearest-neighbour affinity graph (edges, not voxels).

Kruskal-style watershed cut: edges are visited in increasing distance (a counting sort over
the 256 uint8 levels keeps raster order, and so memory locality, inside a level) and two
regions join unless both carry different seeds. A voxel therefore joins the seed it reaches
over the path whose worst edge is best, and a low-affinity face stops it even where an
object is one voxel thin.
"""

from __future__ import annotations

import numba
import numpy as np

# Edges are ordered by distance // 8 (32 levels): within a level the order is raster order,
# so coarser levels mean longer runs of nearby voxels (far fewer cache misses) at the price of
# ties between affinities less than 0.03 apart.
LEVEL_SHIFT = 3
N_LEVELS = 256 >> LEVEL_SHIFT


@numba.njit(cache=True, nogil=True)
def _find(parent, node):
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@numba.njit(cache=True, nogil=True)
def _sorted_edges(distance, mask, shape, axes):
    """Edge codes axis * n + p of valid edges, grouped by level; and each level's start."""
    n = distance.shape[1]
    counts = np.zeros(N_LEVELS + 1, dtype=np.int64)
    codes = np.empty(0, dtype=np.int64)
    fill = np.zeros(N_LEVELS, dtype=np.int64)
    for sweep in range(2):  # count per level, then place
        for axis in axes:
            stride = (shape[1] * shape[2], shape[2], 1)[axis]
            p = 0
            for z in range(shape[0]):
                for y in range(shape[1]):
                    for x in range(shape[2]):
                        first = (z, y, x)[axis] == 0
                        if not first and mask[p] and mask[p - stride]:
                            level = distance[axis, p] >> LEVEL_SHIFT
                            if sweep == 0:
                                counts[level + 1] += 1
                            else:
                                codes[fill[level]] = axis * n + p
                                fill[level] += 1
                        p += 1
        if sweep == 0:
            starts = np.cumsum(counts)
            fill[:] = starts[:-1]
            codes = np.empty(starts[-1], dtype=np.int64)
    return codes, np.cumsum(counts)


@numba.njit(cache=True, nogil=True)
def edge_watershed(seeds, distance, mask, shape, axes, max_level, free_level):
    """Seeded watershed cut of the voxel graph.

    1. edges with distance <= max_level join regions unless both carry different seeds (two
       seedless regions join only over edges with distance <= free_level);
    2. every still seedless region of two or more voxels (an object without a seed) becomes a
       fragment of its own;
    3. the remaining single voxels (every edge a boundary) join a neighbour over their
       cheapest edge.

    Args:
        seeds: flat int64 seed ids (0 = none), ids > 0.
        distance: (3, n) uint8 edge distances (255 - affinity): distance[k, p] for the edge
            between p and p - e_k.
        mask: flat bool, voxels that may be labelled.
        shape: (Z, Y, X).
        axes: axes whose edges count ((0, 1, 2) in 3D, (1, 2) per section).
        max_level: distance limit of step 1 (compared at the resolution of the levels).
        free_level: distance limit in step 1 for joining two seedless regions; lower than
            max_level, so that a seedless thin process does not bridge two objects through one
            noisy face.

    Returns:
        flat int64 labels (0 outside the mask); ids are the seeds' plus new ones above them.
    """
    n = seeds.shape[0]
    strides = (shape[1] * shape[2], shape[2], 1)
    # int32 halves the memory traffic of the random accesses (blocks have < 2^31 voxels)
    parent = np.arange(n, dtype=np.int32)
    size = np.ones(n, dtype=np.int32)
    label = seeds.astype(np.int32)
    codes, starts = _sorted_edges(distance, mask, shape, axes)
    cheap_end = starts[(max_level >> LEVEL_SHIFT) + 1]
    for i in range(len(codes)):
        if i == cheap_end:
            # step 2: name the seedless regions so that step 3 cannot merge them
            next_label = label.max()
            for p in range(n):
                if parent[p] == p and label[p] == 0 and size[p] > 1 and mask[p]:
                    next_label += 1
                    label[p] = next_label
        code = codes[i]
        axis = code // n
        p = code - axis * n
        root_p = _find(parent, p)
        root_q = _find(parent, p - strides[axis])
        if root_p == root_q:
            continue
        label_p = label[root_p]
        label_q = label[root_q]
        if label_p != 0 and label_q != 0 and (label_p != label_q or i >= cheap_end):
            continue
        if label_p == 0 and label_q == 0 and i < cheap_end and (distance[axis, p] >> LEVEL_SHIFT) > (free_level >> LEVEL_SHIFT):
            continue  # seedless regions only grow together over confident edges
        if size[root_p] < size[root_q]:
            root_p, root_q = root_q, root_p
        parent[root_q] = root_p
        size[root_p] += size[root_q]
        label[root_p] = max(label_p, label_q)
    next_label = label.max()
    out = np.zeros(n, dtype=np.int64)
    for p in range(n):
        if mask[p]:
            root = _find(parent, p)
            if label[root] == 0:
                next_label += 1
                label[root] = next_label
            out[p] = label[root]
    return out
