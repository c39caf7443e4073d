"""numba seeded watershed on the nearest-neighbour affinity graph (edges, not voxels).

Kruskal-style watershed cut in three phases, all on a union-find over voxels:

1. confident edges (distance <= free_level) join regions unless both carry different seeds.
   These are most edges of a volume. They are taken in three bands of increasing distance,
   in raster order inside a band (ties are broken by position): one raster pass joins the
   first band and lists the edges of the other two, which are then joined from their lists.
   A seedless part of an object thus joins its object over its best edges before a noisy
   face to a neighbour can claim it;
2. every still seedless region of two or more voxels becomes a fragment of its own, so an
   object without a seed (a thin process, a piece cut by the block border) never joins a
   neighbour through one noisy face;
3. the voxels left alone (no seed, no confident edge) attach to a neighbour over their
   edges with distance <= max_level in increasing distance (a counting sort of the few
   edges of such voxels), so a voxel joins the region it reaches over its best edge; a
   voxel without such an edge stays a fragment of its own.

The union-find links the larger root index under the smaller (no size array: path halving
keeps the trees flat, and a raster pass links each new voxel straight to a root). The
partition does not depend on that choice, only on the order in which edges are taken.
"""

from __future__ import annotations

import numba
import numpy as np

# label of a root without a seed that has joined another voxel (a region of >= 2 voxels)
_JOINED = -1


@numba.njit(cache=True, nogil=True, inline="always")
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


def inside_mask(distance, mask, shape, axes, level):
    """Flat bool: voxels in the mask whose touching edges (both sides, on `axes`) all have
    distance < level. Edges out of the array do not count."""
    inside = mask.copy()  # numpy's big arrays get huge pages, numba's get 4 KiB page faults
    _clear_outside(distance, inside, shape, axes, level)
    return inside


@numba.njit(cache=True, nogil=True)
def _clear_outside(distance, inside, shape, axes, level):
    """inside_mask's kernel: clears (in place) the voxels touching an edge >= level."""
    n = distance.shape[1]
    # one axis at a time streams through that axis' distances in order
    for axis in axes:
        if axis == 0:
            stride = shape[1] * shape[2]
            for p in range(stride, n):
                if distance[0, p] >= level:
                    inside[p] = False
                    inside[p - stride] = False
        else:
            stride = shape[2] if axis == 1 else 1
            row = shape[1] * shape[2] if axis == 1 else shape[2]
            for start in range(0, n, row):
                for p in range(start + stride, start + row):
                    if distance[axis, p] >= level:
                        inside[p] = False
                        inside[p - stride] = False


@numba.njit(cache=True, nogil=True, inline="always")
def _join(parent, label, root_p, root_q, seeded_pair_blocks):
    """Link two different roots (the larger index under the smaller); returns whether they
    were linked. Two roots with different seeds stay apart when seeded_pair_blocks."""
    lp = label[root_p]
    lq = label[root_q]
    if lp > 0 and lq > 0:
        if seeded_pair_blocks or lp != lq:
            return False
    if lp <= 0:
        lp = lq if lq > 0 else _JOINED
    if root_p < root_q:
        parent[root_q] = root_p
        label[root_p] = lp
    else:
        parent[root_p] = root_q
        label[root_q] = lp
    return True


@numba.njit(cache=True, nogil=True)
def _count_bands(distance, high_1, high_2, high_3):
    """Upper bounds of the edges in bands 2 (high_1, high_2] and 3 (high_2, high_3]."""
    n_2 = 0
    n_3 = 0
    for axis in range(3):
        for p in range(distance.shape[1]):
            d = distance[axis, p]
            if d > high_1 and d <= high_3:
                if d > high_2:
                    n_3 += 1
                else:
                    n_2 += 1
    return n_2, n_3


@numba.njit(cache=True, nogil=True)
def _join_listed(parent, label, codes, n_codes, strides):
    """Phase 1 for one listed band: edge code 4 * p + axis joins p and p - e_axis."""
    for i in range(n_codes):
        code = codes[i]
        p = code >> 2
        q = p - strides[code & 3]
        root_p = _find(parent, p)
        root_q = _find(parent, q)
        if root_p != root_q:
            _join(parent, label, root_p, root_q, False)


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
    # the big buffers come from numpy, whose large arrays get huge pages: numba's allocator
    # touches them page by page (measured 4x slower for a fresh 64 MB array)
    parent = np.empty(n, dtype=np.int32)  # int32 halves the traffic of the random accesses
    out = np.zeros(n, dtype=np.uint64)
    # bands 2 and 3 are listed as codes 4 * p + axis: int32 where they fit
    n_2, n_3 = _count_bands(distance, free_level // 8, free_level // 2, free_level)
    code_type = np.int32 if 4 * n + 3 < 2**31 else np.int64
    listed_2 = np.empty(n_2, dtype=code_type)
    listed_3 = np.empty(n_3, dtype=code_type)
    n_labels = _edge_watershed(seeds, distance, mask, np.asarray(shape, dtype=np.int64),
                               np.asarray(axes, dtype=np.int64), max_level, free_level,
                               np.uint64(id_offset), parent, listed_2, listed_3, out)
    return out, n_labels


@numba.njit(cache=True, nogil=True)
def _edge_watershed(seeds, distance, mask, shape, axes, max_level, free_level, id_offset,
                    parent, listed_2, listed_3, out):
    """edge_watershed's kernel, on buffers from the caller: parent (n,) int32, listed_2 and
    listed_3 sized by _count_bands, out (n,) uint64 zeros. Returns the number of labels."""
    n = seeds.shape[0]
    strides = np.array((shape[1] * shape[2], shape[2], 1), dtype=np.int64)
    use = np.zeros(3, dtype=np.bool_)
    for axis in axes:
        use[axis] = True
    label = seeds
    band_high_1 = free_level // 8
    band_high_2 = free_level // 2
    n_2 = 0
    n_3 = 0
    next_label = 0
    p = 0
    for z in range(shape[0]):
        for y in range(shape[1]):
            for x in range(shape[2]):
                parent[p] = p  # nothing has touched p yet: edges only reach back
                if not mask[p]:
                    p += 1
                    continue
                if label[p] > next_label:
                    next_label = label[p]
                root_p = p
                for axis in range(3):
                    if not use[axis]:
                        continue
                    if axis == 0:
                        if z == 0:
                            continue
                    elif axis == 1:
                        if y == 0:
                            continue
                    elif x == 0:
                        continue
                    d = distance[axis, p]
                    if d > free_level:
                        continue
                    q = p - strides[axis]
                    if not mask[q]:
                        continue
                    if d > band_high_2:
                        listed_3[n_3] = 4 * p + axis
                        n_3 += 1
                    elif d > band_high_1:
                        listed_2[n_2] = 4 * p + axis
                        n_2 += 1
                    else:
                        root_q = _find(parent, q)
                        if root_p != root_q and _join(parent, label, root_p, root_q, False):
                            root_p = min(root_p, root_q)
                p += 1
    _join_listed(parent, label, listed_2, n_2, strides)
    _join_listed(parent, label, listed_3, n_3, strides)
    # phase 2: flatten the trees, name seedless regions of two or more voxels, list the
    # voxels left alone (no seed, no confident edge)
    n_lonely = 0
    for p in range(n):
        if not mask[p]:
            continue
        root = _find(parent, p)
        parent[p] = root
        if root == p:
            if label[p] == _JOINED:
                next_label += 1
                label[p] = next_label
            elif label[p] == 0:
                n_lonely += 1
    lonely = np.empty(n_lonely, dtype=np.int64)
    n_lonely = 0
    for p in range(n):
        if parent[p] == p and label[p] == 0 and mask[p]:
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
        if distance[axis, p] > max_level:
            break  # edges are sorted: the rest cross boundaries; a voxel left alone here
            # (all its affinities low, e.g. membrane or unlabelled space) is a fragment of
            # its own, for the agglomeration to judge, rather than glued to a random side
        root_p = _find(parent, p)
        root_q = _find(parent, p - strides[axis])
        if root_p != root_q:
            # only a lonely voxel (label 0) may join: two labelled regions stay apart
            _join(parent, label, root_p, root_q, True)
    for p in range(n):
        if mask[p]:
            root = _find(parent, p)
            if label[root] <= 0:  # lonely voxels, alone or joined to each other in phase 3
                next_label += 1
                label[root] = next_label
            out[p] = np.uint64(label[root]) + id_offset
    return next_label
