"""Split of one segment by a minimum cut on its fragments' region graph.

Capacities are the summed face affinities of the contacts (``aff_sum``: mean affinity times
contact area in faces), so the cut runs through small, low-affinity contacts. Several seeds per
side join a super-source and a super-sink; scipy's integer max-flow gives the cut.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components, maximum_flow

from axonseg.errors import InputError

# max-flow needs integer capacities: affinity sums are scaled by this and rounded, at least 1
CAPACITY_SCALE = 1000


class FragmentAdjacency:
    """Symmetric fragment adjacency (CSR over fragment positions) with integer capacities.

    Args:
        n_fragments: number of fragments (positions 0..n-1 in the sorted LUT).
        u, v: (E,) positions of each edge's fragments.
        capacity: (E,) non-negative edge weights (e.g. ``aff_sum``).
    """

    def __init__(self, n_fragments: int, u: np.ndarray, v: np.ndarray, capacity: np.ndarray) -> None:
        weights = np.maximum(np.rint(np.asarray(capacity, np.float64) * CAPACITY_SCALE), 1).astype(np.int64)
        rows = np.concatenate([u, v]).astype(np.int64)
        cols = np.concatenate([v, u]).astype(np.int64)
        keep = rows != cols
        self.matrix = sp.csr_matrix((np.concatenate([weights, weights])[keep], (rows[keep], cols[keep])),
                                    shape=(n_fragments, n_fragments))
        self.matrix.sum_duplicates()

    def subgraph(self, members: np.ndarray) -> sp.csr_matrix:
        """The capacities among ``members`` (positions), as a square CSR matrix in that order."""
        return self.matrix[members][:, members].tocsr()


def min_cut_sides(capacity: sp.csr_matrix, seeds_a: np.ndarray, seeds_b: np.ndarray) -> np.ndarray:
    """Minimum cut separating two seed sets in a graph.

    Args:
        capacity: (n, n) symmetric integer capacities of the segment's fragment graph.
        seeds_a, seeds_b: local node indices (0..n-1) of each side's seeds (at least one each).

    Returns:
        (n,) bool, True for nodes on side B. Pieces with no path to any seed (the segment
        can be disconnected after a manual merge) stay on side A, the side keeping the id.
    """
    n = capacity.shape[0]
    seeds_a, seeds_b = np.unique(seeds_a), np.unique(seeds_b)
    if len(seeds_a) == 0 or len(seeds_b) == 0:
        raise InputError("split seeds: expected at least one seed on each side")
    both = np.intersect1d(seeds_a, seeds_b)
    if len(both):
        raise InputError(f"split seeds: fragment positions {both.tolist()} hold seeds of both sides; "
                         "expected the sides' seeds in different fragments")
    source, sink = n, n + 1
    infinite = int(capacity.sum()) + 1 if capacity.nnz else 1
    coo = capacity.tocoo()
    rows = np.concatenate([coo.row, np.full(len(seeds_a), source), seeds_a, seeds_b, np.full(len(seeds_b), sink)])
    cols = np.concatenate([coo.col, seeds_a, np.full(len(seeds_a), source), np.full(len(seeds_b), sink), seeds_b])
    # seed links are infinite towards the seeds' own terminal only (0 back), so seeds never cut
    values = np.concatenate([coo.data, np.full(len(seeds_a), infinite), np.zeros(len(seeds_a)),
                             np.full(len(seeds_b), infinite), np.zeros(len(seeds_b))]).astype(np.int64)
    graph = sp.csr_matrix((values, (rows, cols)), shape=(n + 2, n + 2))
    graph.sum_duplicates()
    flow = maximum_flow(graph, source, sink).flow
    residual = (graph - flow).tocsr()
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    reached = breadth_first_order(residual, source, directed=True, return_predecessors=False)
    side_b = np.ones(n + 2, dtype=bool)
    side_b[reached] = False
    side_b = side_b[:n]
    # a B-side piece without a B seed is not connected to B through the segment: keep it on A
    labels = connected_components(capacity[side_b][:, side_b], directed=False)[1]
    b_nodes = np.flatnonzero(side_b)
    with_seed = np.unique(labels[np.isin(b_nodes, seeds_b)])
    side_b[b_nodes[~np.isin(labels, with_seed)]] = False
    return side_b
