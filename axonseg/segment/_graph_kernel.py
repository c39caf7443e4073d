"""numba kernel of the block region graph: one pass over the voxels accumulates node sizes,
centroid sums and per-edge face statistics with sparse 256-bin histograms in hash tables.

Replaces a sort of every face (np.unique): a block has millions of faces but only some
10^5 edges and a few histogram entries per edge, so hashing touches far less memory.
"""

from __future__ import annotations

import numba
import numpy as np

_EMPTY = -1


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(key, mask):
    # Fibonacci hashing spreads the structured keys (dense id pairs, edge * 256 + bin)
    h = np.uint64(key) * np.uint64(11400714819323198485)
    return int(h >> np.uint64(24)) & mask


@numba.njit(cache=True, nogil=True)
def _lookup(keys, values, key, new_value):
    """Index stored for key; inserts new_value (and returns it) when key is absent."""
    mask = len(keys) - 1
    i = _slot(key, mask)
    while True:
        k = keys[i]
        if k == key:
            return values[i]
        if k == _EMPTY:
            keys[i] = key
            values[i] = new_value
            return new_value
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def _grow(keys, values):
    """The same entries in a table of twice the capacity."""
    new_keys = np.full(2 * len(keys), _EMPTY, dtype=np.int64)
    new_values = np.empty(2 * len(keys), dtype=np.int64)
    for i in range(len(keys)):
        if keys[i] != _EMPTY:
            _lookup(new_keys, new_values, keys[i], values[i])
    return new_keys, new_values


@numba.njit(cache=True, nogil=True, inline="always")
def _unit(value):
    """Affinity as float32 in [0, 1] exactly like as_unit_float (uint8 / 255, floats clipped).

    Without branches: clipped values (0 and 1) are common in noisy affinities."""
    return min(max(np.float32(value), np.float32(0.0)), np.float32(1.0))


@numba.njit(cache=True, nogil=True, inline="always")
def _to_bin(value, uint8_input, zero, one):
    """Histogram bin 0-255 exactly like as_uint8_bins (floats: rint(clip(v) * 255));
    zero and one have the affinities' dtype, so the product keeps numpy's precision."""
    if uint8_input:
        return np.uint8(value)
    return np.uint8(np.rint(min(max(value, zero), one) * np.float32(255.0)))


@numba.njit(cache=True, nogil=True)
def _accumulate_rows(ids, shift, aff_z, aff_y, aff_x, uint8_input, n_dense, row,
                     node_size, node_sum, edge_keys, edge_values, edge_lo, edge_hi, edge_sum,
                     edge_axis_count, face_edge, face_bin, state):
    """accumulate_graph's voxel loop over the (z, y) rows from `row` on, into arrays of
    fixed size: it returns the first row it did not do when one more row might not fit.

    state holds n_edges, n_faces, and per axis the last edge key and edge (faces along x
    mostly join the same two fragments). Arrays that are reassigned inside a hot loop
    (to grow them) make numba reload them on every access: growing happens outside.
    """
    shape = (ids.shape[0] - 1, ids.shape[1] - 1, ids.shape[2] - 1)
    clip = np.zeros(2, dtype=aff_x.dtype)
    clip[1] = 1
    zero, one = clip[0], clip[1]
    n_edges = state[0]
    n_faces = state[1]
    most_per_row = 3 * shape[2]
    n_rows = shape[0] * shape[1]
    while row < n_rows:
        if (n_faces + most_per_row > len(face_edge) or n_edges + most_per_row > len(edge_lo)
                or 2 * (n_edges + most_per_row) > len(edge_keys)):
            break
        z = row // shape[1]
        y = row - z * shape[1]
        row += 1
        for x in range(shape[2]):
            raw = ids[z + 1, y + 1, x + 1]
            if raw == 0:
                continue
            here = np.int64(np.uint64(raw) - shift)
            node_size[here] += 1
            node_sum[here, 0] += z
            node_sum[here, 1] += y
            node_sum[here, 2] += x
            if (raw == ids[z, y + 1, x + 1] and raw == ids[z + 1, y, x + 1]
                    and raw == ids[z + 1, y + 1, x]):
                continue  # inside a fragment: no face
            for axis in range(3):
                if axis == 0:
                    other = ids[z, y + 1, x + 1]
                elif axis == 1:
                    other = ids[z + 1, y, x + 1]
                else:
                    other = ids[z + 1, y + 1, x]
                if other == 0 or other == raw:
                    continue
                there = np.int64(np.uint64(other) - shift)
                if axis == 0:
                    value = aff_z[z, y, x]
                elif axis == 1:
                    value = aff_y[z, y, x]
                else:
                    value = aff_x[z, y, x]
                lo = min(here, there)
                hi = max(here, there)
                key = np.int64(lo) * n_dense + hi
                if key == state[2 + axis]:
                    e = state[5 + axis]
                else:
                    e = _lookup(edge_keys, edge_values, key, n_edges)
                    state[2 + axis] = key
                    state[5 + axis] = e
                if e == n_edges:
                    edge_lo[e] = lo
                    edge_hi[e] = hi
                    edge_sum[e] = 0.0
                    edge_axis_count[e, 0] = 0
                    edge_axis_count[e, 1] = 0
                    edge_axis_count[e, 2] = 0
                    n_edges += 1
                if uint8_input:
                    edge_sum[e] += np.float32(value) * np.float32(1.0 / 255.0)
                else:
                    edge_sum[e] += _unit(value)
                edge_axis_count[e, axis] += 1
                face_edge[n_faces] = e
                face_bin[n_faces] = _to_bin(value, uint8_input, zero, one)
                n_faces += 1
    state[0] = n_edges
    state[1] = n_faces
    return row


def accumulate_graph(ids, low, aff_z, aff_y, aff_x, uint8_input, n_dense, table_capacity):
    """Node and edge statistics of one block.

    Args:
        ids: (Z+1, Y+1, X+1) fragment ids (0 = background), with one voxel of context on the
            negative sides; id v != 0 has the dense id v - low + 1 in 1..n_dense-1.
        low: the smallest non-zero id (1 for ids that are dense already).
        aff_z, aff_y, aff_x: (Z, Y, X) affinities of the edges p <-> p - e_axis.
        uint8_input: whether the affinities are uint8 (divided by 255 for sums).
        n_dense: number of dense ids (max id + 1).
        table_capacity: initial power-of-two capacity of the edge hash table (it grows).

    Returns:
        node_size (n_dense,) int64, node_sum (n_dense, 3) float64 voxel coordinate sums,
        edge_lo, edge_hi (E,) int64 dense ids, edge_sum (E,) float64, edge_axis_count (E, 3)
        int64, face_edge (F,) int32 and face_bin (F,) uint8: edge and histogram bin per face.
    """
    # The buffers are numpy's, grown here between row ranges: numpy's large arrays get huge
    # pages, where numba's allocator would fault them in 4 KiB at a time.
    shift = np.uint64(low) - np.uint64(1)
    node_size = np.zeros(n_dense, dtype=np.int64)
    node_sum = np.zeros((n_dense, 3), dtype=np.float64)
    # room for the edges of a few rows at a load of 1/2 (capacities stay powers of two)
    capacity = table_capacity
    while capacity < 16 * ids.shape[2]:
        capacity *= 2
    edge_keys = np.full(capacity, _EMPTY, dtype=np.int64)
    edge_values = np.empty(capacity, dtype=np.int64)
    capacity //= 2
    edge_lo = np.empty(capacity, dtype=np.int64)
    edge_hi = np.empty(capacity, dtype=np.int64)
    edge_sum = np.empty(capacity, dtype=np.float64)
    edge_axis_count = np.empty((capacity, 3), dtype=np.int64)
    # a block of fragments has some 0.1 - 0.5 faces per voxel
    n_voxels = (ids.shape[0] - 1) * (ids.shape[1] - 1) * (ids.shape[2] - 1)
    face_edge = np.empty(max(1 << 16, 8 * ids.shape[2], n_voxels // 2), dtype=np.int32)
    face_bin = np.empty(len(face_edge), dtype=np.uint8)
    state = np.zeros(8, dtype=np.int64)
    state[2:5] = -1
    n_rows = (ids.shape[0] - 1) * (ids.shape[1] - 1)
    most_per_row = 3 * (ids.shape[2] - 1)
    row = 0
    while True:
        row = _accumulate_rows(ids, shift, aff_z, aff_y, aff_x, uint8_input, n_dense, row,
                               node_size, node_sum, edge_keys, edge_values, edge_lo, edge_hi,
                               edge_sum, edge_axis_count, face_edge, face_bin, state)
        if row >= n_rows:
            break
        n_edges, n_faces = int(state[0]), int(state[1])
        if n_faces + most_per_row > len(face_edge):
            face_edge = _resized(face_edge, 2 * len(face_edge), n_faces)
            face_bin = _resized(face_bin, len(face_edge), n_faces)
        if 2 * (n_edges + most_per_row) > len(edge_keys):
            edge_keys, edge_values = _grow(edge_keys, edge_values)
        if n_edges + most_per_row > len(edge_lo):
            capacity = len(edge_keys) // 2
            edge_lo = _resized(edge_lo, capacity, n_edges)
            edge_hi = _resized(edge_hi, capacity, n_edges)
            edge_sum = _resized(edge_sum, capacity, n_edges)
            edge_axis_count = _resized(edge_axis_count, capacity, n_edges)
    n_edges, n_faces = int(state[0]), int(state[1])
    return (node_size, node_sum, edge_lo[:n_edges], edge_hi[:n_edges], edge_sum[:n_edges],
            edge_axis_count[:n_edges], face_edge[:n_faces], face_bin[:n_faces])


def _resized(array: np.ndarray, capacity: int, n_used: int) -> np.ndarray:
    """A numpy array of `capacity` rows holding the first n_used rows of array."""
    out = np.empty((capacity,) + array.shape[1:], dtype=array.dtype)
    out[:n_used] = array[:n_used]
    return out


@numba.njit(cache=True, nogil=True)
def id_range(ids):
    """(smallest non-zero id, largest id) of an array; (0, 0) when all are 0."""
    flat = ids.ravel()
    low = np.uint64(0)
    high = np.uint64(0)
    for i in range(flat.shape[0]):
        v = np.uint64(flat[i])
        if v != 0:
            if low == 0 or v < low:
                low = v
            if v > high:
                high = v
    return low, high


def face_histograms(edge_rank, face_edge, face_bin, n_edges):
    """Sparse histograms of the faces grouped by edge rank: (hist_ptr, bins asc., counts)."""
    sorted_bins = np.empty(len(face_edge), dtype=np.uint8)
    bins = np.empty(len(face_edge), dtype=np.uint8)
    counts = np.empty(len(face_edge), dtype=np.uint32)
    hist_ptr = np.zeros(n_edges + 1, dtype=np.int64)
    used = _face_histograms(edge_rank, face_edge, face_bin, n_edges, sorted_bins, hist_ptr,
                            bins, counts)
    return hist_ptr, bins[:used].copy(), counts[:used].copy()


@numba.njit(cache=True, nogil=True)
def _face_histograms(edge_rank, face_edge, face_bin, n_edges, sorted_bins, hist_ptr, bins,
                     counts):
    """face_histograms' kernel, on buffers from the caller; returns the entries used."""
    start = np.zeros(n_edges + 1, dtype=np.int64)
    for f in range(len(face_edge)):
        start[edge_rank[face_edge[f]] + 1] += 1
    for e in range(n_edges):
        start[e + 1] += start[e]
    fill = start[:-1].copy()
    for f in range(len(face_edge)):
        r = edge_rank[face_edge[f]]
        sorted_bins[fill[r]] = face_bin[f]
        fill[r] += 1
    local = np.zeros(256, dtype=np.int64)
    used = 0
    for e in range(n_edges):
        for f in range(start[e], start[e + 1]):
            local[sorted_bins[f]] += 1
        if start[e + 1] - start[e] < 64:
            # few faces: sort their bins (insertion sort) instead of scanning 256 bins
            run = sorted_bins[start[e]:start[e + 1]]
            for i in range(1, len(run)):
                value = run[i]
                j = i
                while j > 0 and run[j - 1] > value:
                    run[j] = run[j - 1]
                    j -= 1
                run[j] = value
            for i in range(len(run)):
                if i == 0 or run[i] != run[i - 1]:
                    bins[used] = run[i]
                    counts[used] = local[run[i]]
                    local[run[i]] = 0
                    used += 1
        else:
            for b in range(256):
                if local[b]:
                    bins[used] = b
                    counts[used] = local[b]
                    local[b] = 0
                    used += 1
        hist_ptr[e + 1] = used
    return used
