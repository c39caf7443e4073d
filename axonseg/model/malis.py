"""Constrained MALIS (Turaga et al. 2009; Funke et al. 2018, "MALA"): which affinity edges
decide whether two labelled voxels end up in one segment, and how many voxel pairs each decides.

A segmentation made by thresholding affinities joins two voxels when the best path between them
(its weakest edge, the *maximin* edge) is above the threshold. MALIS counts, for every edge, the
voxel pairs whose maximin edge it is; a loss weighted by those counts punishes exactly the
edges that merge (or split) many pairs, instead of every voxel the same.

The constrained version runs two passes of Kruskal's algorithm on the nearest-neighbour graph:

- **positive pass**, edges between different objects forced to 0: for pairs of the same object,
  the edge that connects them last, i.e. the weakest edge of their best path *inside* the object
  (a split there splits these pairs);
- **negative pass**, edges inside an object forced to 1: for pairs of different objects, the
  edge that joins their components first, i.e. the strongest crossing (a merge there merges
  these pairs).

Numpy in, numpy out; the torch loss lives in :mod:`axonseg.model.losses`. Arrays are zyx.
Label 0 is unlabelled: such voxels take part in paths but count in no pair.
"""

from __future__ import annotations

import numba
import numpy as np

from axonseg.errors import InputError


@numba.njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


@numba.njit(cache=True)
def _positive_pass(u, v, order, labelled, counts):  # pragma: no cover - numba
    n = labelled.shape[0]
    parent = np.arange(n)
    size = labelled.astype(np.int64)
    for e in order:
        ra, rb = _find(parent, u[e]), _find(parent, v[e])
        if ra == rb:
            continue
        counts[e] = float(size[ra] * size[rb])
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]


@numba.njit(cache=True)
def _negative_pass(u, v, within, order, dense_labels, n_labels, counts):  # pragma: no cover - numba
    n = dense_labels.shape[0]
    parent = np.arange(n)
    for e in range(u.shape[0]):  # edges inside an object count as 1: they join first
        if within[e]:
            ra, rb = _find(parent, u[e]), _find(parent, v[e])
            if ra != rb:
                parent[rb] = ra
    # one histogram row (voxels per label) per labelled component; unlabelled ones have none
    row = np.full(n, -1, dtype=np.int64)
    n_rows = 0
    for x in range(n):
        if dense_labels[x] > 0:
            r = _find(parent, x)
            if row[r] < 0:
                row[r] = n_rows
                n_rows += 1
    hist = np.zeros((n_rows, n_labels + 1), dtype=np.int64)
    total = np.zeros(n_rows, dtype=np.int64)
    for x in range(n):
        if dense_labels[x] > 0:
            r = row[_find(parent, x)]
            hist[r, dense_labels[x]] += 1
            total[r] += 1
    for e in order:
        ra, rb = _find(parent, u[e]), _find(parent, v[e])
        if ra == rb:
            continue
        a, b = row[ra], row[rb]
        if a >= 0 and b >= 0:
            same = 0
            for k in range(1, n_labels + 1):
                same += hist[a, k] * hist[b, k]
            counts[e] = float(total[a] * total[b] - same)
            for k in range(1, n_labels + 1):
                hist[a, k] += hist[b, k]
            total[a] += total[b]
            parent[rb] = ra
        elif a >= 0:
            parent[rb] = ra
        else:
            parent[ra] = rb


def _edges(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel pairs ``(u, v)`` (flat indices) of the nearest-neighbour graph and each edge's flat
    index into a ``(3, *shape)`` affinity array (channel k joins p and p - e_k)."""
    n = int(np.prod(shape))
    index = np.arange(n, dtype=np.int64).reshape(shape)
    us, vs, flats = [], [], []
    for axis in range(3):
        here = [slice(None)] * 3
        there = [slice(None)] * 3
        here[axis], there[axis] = slice(1, None), slice(None, -1)
        u = index[tuple(here)].ravel()
        us.append(u)
        vs.append(index[tuple(there)].ravel())
        flats.append(axis * n + u)
    return np.concatenate(us), np.concatenate(vs), np.concatenate(flats)


def malis_pair_counts(affinities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Constrained MALIS pair counts of the nearest-neighbour affinities of one crop.

    Args:
        affinities: ``(3, z, y, x)`` float, predicted affinities in [0, 1] of the offsets
            ``axonseg.model.config.NEAREST_OFFSETS`` in that order (channel k at voxel p joins p and p - e_k; the
            first plane along axis k has no edge and gets no count).
        labels: ``(z, y, x)`` integer ground truth; 0 = unlabelled (counts in no pair).

    Returns:
        ``(positive, negative)``, float64 arrays shaped like ``affinities``: at each edge the
        number of same-object voxel pairs whose maximin edge inside their object it is, and the
        number of different-object pairs whose maximin edge it is when every edge inside an
        object counts as 1. Each positive total is at most the number of same-object pairs.
    """
    affinities = np.asarray(affinities)
    labels = np.asarray(labels)
    if labels.ndim != 3 or affinities.shape != (3, *labels.shape):
        raise InputError(f"affinities {affinities.shape} and labels {labels.shape}: expected (3, z, y, x) and (z, y, x)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels has dtype {labels.dtype}: expected an integer dtype")
    shape = labels.shape
    u, v, flat = _edges(shape)
    weight = affinities.reshape(-1)[flat].astype(np.float64)
    flat_labels = labels.reshape(-1)
    _, dense = np.unique(flat_labels, return_inverse=True)
    dense = dense.astype(np.int64).reshape(-1)
    if flat_labels.min(initial=1) != 0:
        dense += 1  # no unlabelled voxel: every id is a real object
    n_labels = int(dense.max(initial=0))
    within = (dense[u] == dense[v]) & (dense[u] > 0)

    positive = np.zeros(u.shape[0], dtype=np.float64)
    inside = np.flatnonzero(within)
    _positive_pass(u, v, inside[np.argsort(-weight[inside], kind="stable")], (dense > 0), positive)

    negative = np.zeros(u.shape[0], dtype=np.float64)
    crossing = np.flatnonzero(~within)
    _negative_pass(u, v, within, crossing[np.argsort(-weight[crossing], kind="stable")], dense, n_labels, negative)

    out_pos = np.zeros(3 * labels.size, dtype=np.float64)
    out_neg = np.zeros(3 * labels.size, dtype=np.float64)
    out_pos[flat], out_neg[flat] = positive, negative
    return out_pos.reshape((3, *shape)), out_neg.reshape((3, *shape))
