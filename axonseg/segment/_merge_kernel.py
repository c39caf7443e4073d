"""numba kernel of hierarchical region merging (waterz style) over a region graph.

Edges are popped cheapest first from a lazy min-heap; merging two regions re-keys the edges
of the region with the shorter incidence list, and an edge to a common neighbour is combined
into the surviving edge (sums and sparse histograms add), then re-scored and re-pushed.
"""

from __future__ import annotations

import numba
import numpy as np

from axonseg.segment._kernels import (
    EMPTY,
    find,
    hash_delete,
    hash_find,
    hash_insert,
    hash_rebuild,
    heap_pop,
    heap_push,
    heapify,
    pair_key,
)
from axonseg.segment.scores import histogram_quantile


@numba.njit(cache=True, nogil=True)
def _compact_arena(arena_bin, arena_count, hist_start, hist_len, alive, extra):
    """Copy the histograms of live edges into a fresh arena with room for `extra` more."""
    live = 0
    for e in range(len(alive)):
        if alive[e]:
            live += hist_len[e]
    capacity = max(2 * (live + extra), 1024)
    new_bin = np.empty(capacity, dtype=np.uint8)
    new_count = np.empty(capacity, dtype=np.uint32)
    used = 0
    for e in range(len(alive)):
        if alive[e]:
            start = hist_start[e]
            for i in range(hist_len[e]):
                new_bin[used + i] = arena_bin[start + i]
                new_count[used + i] = arena_count[start + i]
            hist_start[e] = used
            used += hist_len[e]
    return new_bin, new_count, used


@numba.njit(cache=True, nogil=True)
def _score(e, mode, q, aff_sum, count, arena_bin, arena_count, hist_start, hist_len):
    if mode == 0:
        return 1.0 - aff_sum[e] / max(count[e], 1.0)
    start = hist_start[e]
    return 1.0 - histogram_quantile(arena_bin, arena_count, start, start + hist_len[e], q)


@numba.njit(cache=True, nogil=True)
def merge_regions(n_nodes, eu, ev, aff_sum, count, hist_ptr, hist_bin, hist_count, mode, q,
                  thresholds, table_capacity):
    """Merge regions for ascending thresholds; returns (T, n_nodes) int64 root per node.

    Args mirror agglomerate(): eu, ev are int64 node indices (distinct pairs, eu != ev);
    aff_sum, count float64; hist_* the sparse histograms; mode 0 = mean, 1 = quantile q.
    Edges merge while their score <= threshold. eu, ev, aff_sum, count are modified.
    """
    n_edges = len(eu)
    parent = np.arange(n_nodes)
    head = np.full(n_nodes, -1, dtype=np.int64)
    tail = np.full(n_nodes, -1, dtype=np.int64)
    list_len = np.zeros(n_nodes, dtype=np.int64)
    nxt = np.full(2 * n_edges, -1, dtype=np.int64)
    alive = np.ones(n_edges, dtype=np.bool_)
    table_keys = np.full(table_capacity, EMPTY, dtype=np.int64)
    table_values = np.empty(table_capacity, dtype=np.int64)
    table_used = 0
    for e in range(n_edges):
        for side in range(2):
            node = eu[e] if side == 0 else ev[e]
            slot = 2 * e + side
            if head[node] == -1:
                head[node] = slot
            else:
                nxt[tail[node]] = slot
            tail[node] = slot
            list_len[node] += 1
        hash_insert(table_keys, table_values, pair_key(eu[e], ev[e], n_nodes), e)
        table_used += 1

    # histograms live in an arena that grows at its end; merged runs are appended there
    if mode == 1:
        arena_bin = hist_bin.copy()
        arena_count = hist_count.copy()
        hist_start = hist_ptr[:-1].copy()
        hist_len = (hist_ptr[1:] - hist_ptr[:-1]).astype(np.int64)
        arena_used = len(hist_bin)
    else:
        arena_bin = np.empty(0, dtype=np.uint8)
        arena_count = np.empty(0, dtype=np.uint32)
        hist_start = np.zeros(0, dtype=np.int64)
        hist_len = np.zeros(0, dtype=np.int64)
        arena_used = 0

    score = np.empty(n_edges, dtype=np.float64)
    heap_keys = np.empty(2 * n_edges + 1, dtype=np.float64)
    heap_values = np.empty(2 * n_edges + 1, dtype=np.int64)
    for e in range(n_edges):
        score[e] = _score(e, mode, q, aff_sum, count, arena_bin, arena_count, hist_start, hist_len)
        heap_keys[e] = score[e]
        heap_values[e] = e
    heap_size = n_edges
    heapify(heap_keys, heap_values, heap_size)

    roots = np.empty((len(thresholds), n_nodes), dtype=np.int64)
    for t in range(len(thresholds)):
        threshold = thresholds[t]
        while heap_size > 0 and heap_keys[0] <= threshold:
            s = heap_keys[0]
            e = heap_values[0]
            heap_size = heap_pop(heap_keys, heap_values, heap_size)
            if not alive[e] or score[e] != s:
                continue  # a stale entry: the edge was merged away or re-scored
            a = eu[e]
            b = ev[e]
            alive[e] = False
            hash_delete(table_keys, pair_key(a, b, n_nodes))
            keep, drop = (a, b) if list_len[a] >= list_len[b] else (b, a)
            parent[drop] = keep
            slot = head[drop]
            while slot != -1:
                f = slot >> 1
                if alive[f]:
                    other = ev[f] if eu[f] == drop else eu[f]
                    hash_delete(table_keys, pair_key(drop, other, n_nodes))
                    g = hash_find(table_keys, table_values, pair_key(keep, other, n_nodes))
                    if g >= 0:
                        # keep and drop share this neighbour: fold f into g and re-score g
                        alive[f] = False
                        aff_sum[g] += aff_sum[f]
                        count[g] += count[f]
                        if mode == 1:
                            need = hist_len[f] + hist_len[g]
                            if arena_used + need > len(arena_bin):
                                alive[f] = True  # f's run must survive the compaction
                                arena_bin, arena_count, arena_used = _compact_arena(
                                    arena_bin, arena_count, hist_start, hist_len, alive, need)
                                alive[f] = False
                            i, j = hist_start[f], hist_start[g]
                            i_end, j_end = i + hist_len[f], j + hist_len[g]
                            out = arena_used
                            while i < i_end or j < j_end:
                                if j >= j_end or (i < i_end and arena_bin[i] < arena_bin[j]):
                                    arena_bin[out] = arena_bin[i]
                                    arena_count[out] = arena_count[i]
                                    i += 1
                                elif i >= i_end or arena_bin[j] < arena_bin[i]:
                                    arena_bin[out] = arena_bin[j]
                                    arena_count[out] = arena_count[j]
                                    j += 1
                                else:
                                    arena_bin[out] = arena_bin[i]
                                    arena_count[out] = arena_count[i] + arena_count[j]
                                    i += 1
                                    j += 1
                                out += 1
                            hist_start[g] = arena_used
                            hist_len[g] = out - arena_used
                            arena_used = out
                        new_score = _score(g, mode, q, aff_sum, count, arena_bin, arena_count,
                                           hist_start, hist_len)
                        if new_score != score[g]:
                            score[g] = new_score
                            heap_size = heap_push(heap_keys, heap_values, heap_size, new_score, g)
                    else:
                        if eu[f] == drop:
                            eu[f] = keep
                        else:
                            ev[f] = keep
                        if hash_insert(table_keys, table_values, pair_key(keep, other, n_nodes), f):
                            table_used += 1
                            if table_used > 0.7 * len(table_keys):
                                table_keys, table_values, table_used = hash_rebuild(
                                    table_keys, table_values)
                slot = nxt[slot]
            if head[drop] != -1:
                if head[keep] == -1:
                    head[keep] = head[drop]
                else:
                    nxt[tail[keep]] = head[drop]
                tail[keep] = tail[drop]
            list_len[keep] += list_len[drop]
        for node in range(n_nodes):
            roots[t, node] = find(parent, node)
    return roots
