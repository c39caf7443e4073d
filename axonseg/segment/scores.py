"""Edge scores of a region graph as merge "distances": 0 = surely one object, 1 = surely two.

score = 1 - (mean affinity) or 1 - (q-th percentile of the edge's affinity histogram), so
agglomeration merges edges in increasing score, like waterz's ``OneMinus<...>`` functions.
"""

from __future__ import annotations

import numba
import numpy as np

from axonseg.errors import InputError

SCORE_FUNCTIONS = ("mean", "quantile")


def check_score(score: str, quantile: float) -> int:
    """Validate a score name and percentile; returns the kernel mode (0 mean, 1 quantile)."""
    if score not in SCORE_FUNCTIONS:
        raise InputError(f"score is {score!r}: expected one of {', '.join(SCORE_FUNCTIONS)}")
    if not 0.0 <= quantile <= 100.0:
        raise InputError(f"quantile is {quantile}: expected a percentile in [0, 100]")
    return SCORE_FUNCTIONS.index(score)


@numba.njit(cache=True, nogil=True)
def histogram_quantile(bins: np.ndarray, counts: np.ndarray, start: int, stop: int, q: float) -> float:
    """q-th percentile (0-100) of a sparse uint8 histogram run, as affinity in [0, 1].

    The smallest bin whose cumulative count reaches max(1, ceil(q/100 * total)).
    """
    total = 0
    for i in range(start, stop):
        total += counts[i]
    if total == 0:
        return 0.0
    rank = max(1, int(np.ceil(q / 100.0 * total)))
    cumulative = 0
    for i in range(start, stop):
        cumulative += counts[i]
        if cumulative >= rank:
            return bins[i] / 255.0
    return bins[stop - 1] / 255.0


@numba.njit(cache=True, nogil=True)
def _quantile_scores(hist_ptr: np.ndarray, bins: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    n_edges = len(hist_ptr) - 1
    scores = np.empty(n_edges, dtype=np.float64)
    for e in range(n_edges):
        scores[e] = 1.0 - histogram_quantile(bins, counts, hist_ptr[e], hist_ptr[e + 1], q)
    return scores


def edge_scores(graph, score: str = "mean", quantile: float = 50.0) -> np.ndarray:
    """Initial merge distance of every edge of a RegionGraph.

    Args:
        graph: a RegionGraph.
        score: "mean" (1 - mean affinity over the contact faces) or "quantile"
            (1 - the `quantile`-th percentile of the 256-bin affinity histogram).
        quantile: percentile in [0, 100] for score="quantile".

    Returns:
        (E,) float64 scores in [0, 1].
    """
    mode = check_score(score, quantile)
    if mode == 0:
        return 1.0 - graph.aff_sum / np.maximum(graph.count, 1)
    return _quantile_scores(graph.hist_ptr, graph.hist_bin, graph.hist_count, float(quantile))
