"""Mutex watershed on a region graph: an alternative to hierarchical agglomeration.

Edges are taken in decreasing |affinity - bias|. An attractive edge (affinity > bias) merges
its two clusters unless a mutex (a repulsive edge taken earlier) separates them; a repulsive
edge adds such a mutex. It needs no threshold sweep: the bias plays that role.
"""

from __future__ import annotations

import numba
import numpy as np

from axonseg.errors import InputError
from axonseg.segment._kernels import (
    EMPTY,
    find,
    hash_delete,
    hash_find,
    hash_insert,
    hash_rebuild,
    pair_key,
    table_capacity,
)
from axonseg.segment.agglomeration import ThresholdLut, graph_indices
from axonseg.segment.region_graph import RegionGraph
from axonseg.segment.scores import edge_scores


@numba.njit(cache=True, nogil=True)
def _mutex_kernel(n_nodes, eu, ev, attractive, order, capacity):
    """Root per node after the mutex watershed over the edges in `order`."""
    n_edges = len(eu)
    parent = np.arange(n_nodes)
    head = np.full(n_nodes, -1, dtype=np.int64)
    tail = np.full(n_nodes, -1, dtype=np.int64)
    list_len = np.zeros(n_nodes, dtype=np.int64)
    nxt = np.full(2 * n_edges, -1, dtype=np.int64)
    mu = np.empty(n_edges, dtype=np.int64)
    mv = np.empty(n_edges, dtype=np.int64)
    m_alive = np.zeros(n_edges, dtype=np.bool_)
    n_mutex = 0
    table_keys = np.full(capacity, EMPTY, dtype=np.int64)
    table_values = np.empty(capacity, dtype=np.int64)
    table_used = 0
    for idx in order:
        a = find(parent, eu[idx])
        b = find(parent, ev[idx])
        if a == b or hash_find(table_keys, table_values, pair_key(a, b, n_nodes)) >= 0:
            continue
        if not attractive[idx]:
            m = n_mutex
            n_mutex += 1
            mu[m], mv[m] = a, b
            m_alive[m] = True
            for side in range(2):
                node = a if side == 0 else b
                slot = 2 * m + side
                if head[node] == -1:
                    head[node] = slot
                else:
                    nxt[tail[node]] = slot
                tail[node] = slot
                list_len[node] += 1
            if hash_insert(table_keys, table_values, pair_key(a, b, n_nodes), m):
                table_used += 1
        else:
            keep, drop = (a, b) if list_len[a] >= list_len[b] else (b, a)
            parent[drop] = keep
            slot = head[drop]
            while slot != -1:
                m = slot >> 1
                if m_alive[m]:
                    other = mv[m] if mu[m] == drop else mu[m]
                    hash_delete(table_keys, pair_key(drop, other, n_nodes))
                    if hash_find(table_keys, table_values, pair_key(keep, other, n_nodes)) >= 0:
                        m_alive[m] = False  # keep already has this mutex
                    else:
                        if mu[m] == drop:
                            mu[m] = keep
                        else:
                            mv[m] = keep
                        if hash_insert(table_keys, table_values, pair_key(keep, other, n_nodes), m):
                            table_used += 1
                slot = nxt[slot]
            if head[drop] != -1:
                if head[keep] == -1:
                    head[keep] = head[drop]
                else:
                    nxt[tail[keep]] = head[drop]
                tail[keep] = tail[drop]
            list_len[keep] += list_len[drop]
        if table_used > 0.7 * len(table_keys):
            table_keys, table_values, table_used = hash_rebuild(table_keys, table_values)
    roots = np.empty(n_nodes, dtype=np.int64)
    for node in range(n_nodes):
        roots[node] = find(parent, node)
    return roots


def mutex_watershed(
    graph: RegionGraph, bias: float = 0.5, score: str = "mean", quantile: float = 50.0
) -> ThresholdLut:
    """Mutex watershed clustering of a region graph.

    Args:
        graph: merged region graph.
        bias: affinity in [0, 1] that separates attractive (above) from repulsive (below) edges;
            a higher bias splits more.
        score: edge affinity statistic, "mean" or "quantile" (see agglomerate).
        quantile: percentile in [0, 100] for score="quantile".

    Returns:
        ThresholdLut with threshold = bias.
    """
    if not 0.0 <= bias <= 1.0:
        raise InputError(f"bias is {bias}: expected an affinity in [0, 1]")
    ids, eu, ev = graph_indices(graph)
    affinity = 1.0 - edge_scores(graph, score, quantile)
    weight = affinity - bias
    order = np.argsort(-np.abs(weight), kind="stable")
    roots = _mutex_kernel(len(ids), eu, ev, weight > 0, order, table_capacity(graph.n_edges))
    return ThresholdLut(float(bias), ids, ids[roots])
