"""Per-edge features of a region graph, for a learned merge classifier (#15).

Everything here is read from what the region graph already holds (affinity histograms, contact
counts, fragment sizes) plus, optionally, one number per fragment such as its mean raw
intensity. Pure numpy in, numpy out; rows follow the graph's edges.
"""

from __future__ import annotations

import numba
import numpy as np

from axonseg.errors import InputError
from axonseg.segment.region_graph import RegionGraph
from axonseg.segment.scores import histogram_quantile

#: Affinity percentiles of an edge's faces used as features (0 = lowest face, 100 = highest).
QUANTILES = (0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 100.0)

#: Column names of :func:`edge_features` without node values, in order.
GRAPH_FEATURES = (
    "mean_affinity",
    *(f"affinity_q{int(q)}" for q in QUANTILES),
    "log_faces",            # log(1 + contact faces)
    "log_size_small",       # log(1 + voxels) of the smaller fragment
    "log_size_large",       # log(1 + voxels) of the larger fragment
    "contact_ratio",        # faces / (smaller fragment's voxels)^(2/3): how much of its surface touches
    "log_degree_small",     # log(1 + edges) of the fragment with fewer neighbours
    "log_degree_large",
)

#: Columns added per node value ``name``: the two fragments' values (lower, higher) and their gap.
NODE_VALUE_SUFFIXES = ("low", "high", "gap")


@numba.njit(cache=True, nogil=True)
def _quantile_columns(hist_ptr: np.ndarray, bins: np.ndarray, counts: np.ndarray, qs: np.ndarray) -> np.ndarray:
    n_edges = len(hist_ptr) - 1
    out = np.empty((n_edges, len(qs)), dtype=np.float32)
    for e in range(n_edges):
        for k in range(len(qs)):
            out[e, k] = histogram_quantile(bins, counts, hist_ptr[e], hist_ptr[e + 1], qs[k])
    return out


def feature_names(node_values: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Column names of :func:`edge_features` for the given node value names."""
    return GRAPH_FEATURES + tuple(f"{name}_{suffix}" for name in node_values for suffix in NODE_VALUE_SUFFIXES)


def node_index(graph: RegionGraph) -> tuple[np.ndarray, np.ndarray]:
    """Row of ``graph.node_id`` for every edge end (u, v).

    Raises:
        InputError: an edge names a fragment that is not a node of the graph.
    """
    iu = np.searchsorted(graph.node_id, graph.u)
    iv = np.searchsorted(graph.node_id, graph.v)
    n = len(graph.node_id)
    for ends, index in ((graph.u, iu), (graph.v, iv)):
        bad = (index >= n) | (graph.node_id[np.minimum(index, max(n - 1, 0))] != ends) if n else np.ones(len(ends), bool)
        if len(ends) and bad.any():
            raise InputError(f"edge end {ends[bad][0]} is not a node of the region graph: expected every "
                             "edge between nodes (a graph merged from complete blocks)")
    return iu, iv


def edge_features(graph: RegionGraph, node_values: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Feature matrix of the graph's edges.

    Args:
        graph: a merged region graph (nodes sorted by id, edges u < v).
        node_values: optional ``{name: (N,) values}`` aligned with ``graph.node_id``, e.g. the
            mean raw intensity of each fragment; each adds the columns ``name_low``,
            ``name_high`` (the two fragments' values, ordered) and ``name_gap`` (their
            difference).

    Returns:
        (E, F) float32, columns named by :func:`feature_names` (``GRAPH_FEATURES`` first).

    Raises:
        InputError: a node value array does not have one value per node.
    """
    node_values = node_values or {}
    for name, values in node_values.items():
        if np.shape(values) != (graph.n_nodes,):
            raise InputError(f"node value {name!r} has shape {np.shape(values)}: expected ({graph.n_nodes},), "
                             "one value per node of the region graph")
    iu, iv = node_index(graph)
    count = graph.count.astype(np.float64)
    quantiles = _quantile_columns(graph.hist_ptr, graph.hist_bin, graph.hist_count,
                                  np.asarray(QUANTILES, dtype=np.float64))
    size = graph.node_size.astype(np.float64)
    small = np.minimum(size[iu], size[iv])
    large = np.maximum(size[iu], size[iv])
    degree = np.bincount(np.concatenate([iu, iv]), minlength=graph.n_nodes).astype(np.float64)
    columns = [
        graph.mean_affinity,
        *quantiles.T,
        np.log1p(count),
        np.log1p(small),
        np.log1p(large),
        count / np.maximum(small, 1.0) ** (2.0 / 3.0),
        np.log1p(np.minimum(degree[iu], degree[iv])),
        np.log1p(np.maximum(degree[iu], degree[iv])),
    ]
    for values in node_values.values():
        values = np.asarray(values, dtype=np.float64)
        low, high = np.minimum(values[iu], values[iv]), np.maximum(values[iu], values[iv])
        columns += [low, high, high - low]
    if graph.n_edges == 0:
        return np.zeros((0, len(columns)), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)


def node_sums(fragments: np.ndarray, values: np.ndarray, node_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of ``values`` and voxel count over each fragment's voxels, aligned with ``node_id``.

    Args:
        fragments: (Z, Y, X) fragment ids, 0 = background.
        values: (Z, Y, X) numbers on the same grid, e.g. raw intensity.
        node_id: (N,) uint64 fragment ids (ascending), e.g. ``graph.node_id``.

    Returns:
        ``(sums, counts)``: (N,) float64 and (N,) int64; voxels of ids not in ``node_id`` are
        left out.

    Raises:
        InputError: the shapes differ.
    """
    if fragments.shape != values.shape:
        raise InputError(f"fragments have shape {fragments.shape} and values {values.shape}: expected the same shape")
    flat = fragments.ravel()
    inside = flat != 0
    index = np.searchsorted(node_id, flat[inside].astype(np.uint64))
    index = np.minimum(index, max(len(node_id) - 1, 0))
    known = node_id[index] == flat[inside] if len(node_id) else np.zeros(0, bool)
    sums = np.bincount(index[known], weights=values.ravel()[inside][known].astype(np.float64), minlength=len(node_id))
    counts = np.bincount(index[known], minlength=len(node_id)).astype(np.int64)
    return sums, counts


def node_means(fragments: np.ndarray, values: np.ndarray, node_id: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over each fragment's voxels, aligned with ``node_id``
    (:func:`node_sums` divided by the counts).

    Returns:
        (N,) float64; NaN for a node without voxels in ``fragments``.

    Raises:
        InputError: the shapes differ.
    """
    sums, counts = node_sums(fragments, values, node_id)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def graph_node_means(graph: RegionGraph) -> dict[str, np.ndarray]:
    """``{name: (N,) mean}`` of each of the graph's node sums (sum / node size; NaN for size 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: np.where(graph.node_size > 0, sums / np.maximum(graph.node_size, 1), np.nan)
                for name, sums in graph.node_sums.items()}
