"""numba seeded watershed on the nearest-neighbour affinity graph (edges, not voxels).

Kruskal-style watershed cut in three phases, all on a union-find over voxels:

1. confident edges (distance <= free_level) join regions unless both carry different seeds.
   These are most edges of a volume; they are visited in raster order, which is cache
   friendly and needs no sort, in three bands of increasing distance (ties inside a band
   are broken by position);
2. every still seedless region of two or more voxels becomes a fragment of its own, so an
   object without a seed (a thin process, a piece cut by the block border) never joins a
   neighbour through one noisy face;
3. the voxels left alone (no seed, no confident edge) attach to a neighbour over their
   edges with distance <= max_level in increasing distance (a counting sort of the few
   edges of such voxels), so a voxel joins the region it reaches over its best edge; a
   voxel without such an edge stays a fragment of its own.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _find(parent, node):
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@numba.njit(cache=True, nogil=True)
def float_edge_distances(values, out):
    """out[p] = 255 - rint(clip(values[p], 0, 1) * 255) for flat float affinities (uint8 bins
    exactly as as_uint8_bins), without float temporaries."""
    for p in range(values.shape[0]):
        v = values[p]
        if v <= 0.0:
            out[p] = 255
        elif v >= 1.0:
            out[p] = 0
        else:
            # multiply in the input's precision, like numpy does in as_uint8_bins
            out[p] = 255 - np.uint8(np.rint(v * np.float32(255.0)))


@numba.njit(cache=True, nogil=True)
def inside_mask(distance, mask, shape, axes, level):
    """Flat bool: voxels in the mask whose touching edges (both sides, on `axes`) all have
    distance < level. Edges out of the array do not count."""
    n = distance.shape[1]
    strides = (shape[1] * shape[2], shape[2], 1)
    inside = np.empty(n, dtype=np.bool_)
    for p in range(n):
        inside[p] = mask[p]
    p = 0
    for z in range(shape[0]):
        for y in range(shape[1]):
            for x in range(shape[2]):
                coords = (z, y, x)
                for axis in axes:
                    if coords[axis] > 0 and distance[axis, p] >= level:
                        inside[p] = False
                        inside[p - strides[axis]] = False
                p += 1
    return inside


@numba.njit(cache=True, nogil=True)
def _union(parent, size, label, root_p, root_q):
    """Join two roots (union by size); returns the new root."""
    if size[root_p] < size[root_q]:
        root_p, root_q = root_q, root_p
    parent[root_q] = root_p
    size[root_p] += size[root_q]
    label[root_p] = max(label[root_p], label[root_q])
    return root_p


@numba.njit(cache=True, nogil=True)
def edge_watershed(seeds, distance, mask, shape, axes, max_level, free_level, id_offset):
    """Seeded watershed cut of the voxel graph (phases in the module docstring).

    Args:
        seeds: flat int32 seed ids (0 = none), ids > 0; overwritten (it becomes the label
            array of the union-find, which saves a fresh array of the block's size).
        distance: (3, n) uint8 edge distances (255 - affinity): distance[k, p] for the edge
            between p and p - e_k.
        mask: flat bool, voxels that may be labelled.
        shape: (Z, Y, X).
        axes: axes whose edges count ((0, 1, 2) in 3D, (1, 2) per section).
        max_level: unlabelled voxels attach over edges with distance <= max_level, in
            increasing distance; voxels without such an edge stay alone.
        free_level: distance limit of phase 1 (confident edges).
        id_offset: uint64 added to every label.

    Returns:
        (flat uint64 labels, n_labels): 0 outside the mask, else id_offset + 1 ..
        id_offset + n_labels, all used when the seed ids are 1..k all used (cc3d's are).
    """
    n = seeds.shape[0]
    strides = (shape[1] * shape[2], shape[2], 1)
    use = np.zeros(3, dtype=np.bool_)
    for axis in axes:
        use[axis] = True
    # int32 halves the memory traffic of the random accesses (blocks have < 2^31 voxels)
    parent = np.arange(n, dtype=np.int32)
    size = np.ones(n, dtype=np.int32)
    label = seeds
    # phase 1: confident edges in raster order, in three bands of increasing distance: a
    # seedless part of an object then joins its object over its best edges before a noisy
    # face to a neighbour can claim it
    band_low = (0, free_level // 8 + 1, free_level // 2 + 1)
    band_high = (free_level // 8, free_level // 2, free_level)
    for band in range(3):
        low = band_low[band]
        high = band_high[band]
        if low > high:
            continue
        p = 0
        for z in range(shape[0]):
            for y in range(shape[1]):
                for x in range(shape[2]):
                    if mask[p]:
                        coords = (z, y, x)
                        root_p = -1
                        for axis in range(3):
                            d = distance[axis, p]
                            if not use[axis] or coords[axis] == 0 or d < low or d > high:
                                continue
                            q = p - strides[axis]
                            if not mask[q]:
                                continue
                            if root_p < 0:
                                root_p = _find(parent, p)
                            root_q = _find(parent, q)
                            if root_p == root_q:
                                continue
                            lp = label[root_p]
                            lq = label[root_q]
                            if lp != 0 and lq != 0 and lp != lq:
                                continue
                            root_p = _union(parent, size, label, root_p, root_q)
                    p += 1
    # phase 2: name seedless regions of two or more voxels; flatten the trees; list the
    # voxels left alone (no seed, no confident edge)
    next_label = 0
    for p in range(n):
        next_label = max(next_label, label[p])
    n_lonely = 0
    for p in range(n):
        if parent[p] == p and mask[p]:
            if label[p] == 0 and size[p] > 1:
                next_label += 1
                label[p] = next_label
            elif label[p] == 0:
                n_lonely += 1
    lonely = np.empty(n_lonely, dtype=np.int64)
    n_lonely = 0
    for p in range(n):
        parent[p] = _find(parent, p)
        if parent[p] == p and mask[p] and label[p] == 0:
            lonely[n_lonely] = p
            n_lonely += 1
    # phase 3: the edges of lonely voxels, by increasing distance (counting sort)
    counts = np.zeros(257, dtype=np.int64)
    codes = np.empty(6 * n_lonely, dtype=np.int64)
    n_codes = 0
    for i in range(n_lonely):
        p = lonely[i]
        coords = (p // strides[0], (p // strides[1]) % shape[1], p % shape[2])
        for axis in range(3):
            if not use[axis]:
                continue
            if coords[axis] > 0 and mask[p - strides[axis]]:
                codes[n_codes] = axis * n + p
                n_codes += 1
                counts[distance[axis, p] + 1] += 1
            if coords[axis] < shape[axis] - 1 and mask[p + strides[axis]]:
                codes[n_codes] = axis * n + p + strides[axis]
                n_codes += 1
                counts[distance[axis, p + strides[axis]] + 1] += 1
    starts = np.cumsum(counts)
    ordered = np.empty(n_codes, dtype=np.int64)
    for i in range(n_codes):
        code = codes[i]
        axis = code // n
        d = distance[axis, code - axis * n]
        ordered[starts[d]] = code
        starts[d] += 1
    for i in range(n_codes):
        code = ordered[i]
        axis = code // n
        p = code - axis * n
        root_p = _find(parent, p)
        root_q = _find(parent, p - strides[axis])
        if root_p == root_q:
            continue
        lp = label[root_p]
        lq = label[root_q]
        if lp != 0 and lq != 0:
            continue
        if distance[axis, p] > max_level:
            break  # edges are sorted: the rest cross boundaries; a voxel left alone here
            # (all its affinities low, e.g. membrane or unlabelled space) is a fragment of
            # its own, for the agglomeration to judge, rather than glued to a random side
        _union(parent, size, label, root_p, root_q)
    out = np.zeros(n, dtype=np.uint64)
    for p in range(n):
        if mask[p]:
            root = _find(parent, p)
            if label[root] == 0:
                next_label += 1
                label[root] = next_label
            out[p] = np.uint64(label[root]) + id_offset
    return out, next_label
