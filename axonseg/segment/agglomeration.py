"""Hierarchical agglomeration of a region graph into fragment -> segment lookup tables.

Convention (as waterz's OneMinus scores): an edge's score is a distance, 1 - affinity
statistic, in [0, 1]. For a threshold t, regions are merged, cheapest edge first, while the
cheapest remaining edge has score <= t. Higher t merges more; the LUTs of one call are nested.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from axonseg.errors import InputError
from axonseg.segment._kernels import table_capacity
from axonseg.segment._merge_kernel import merge_regions
from axonseg.segment.lut import Lut
from axonseg.segment.region_graph import RegionGraph
from axonseg.segment.scores import check_score

logger = logging.getLogger(__name__)


class ThresholdLut(NamedTuple):
    """What agglomeration makes for one threshold: the threshold and its LUT's two arrays.

    Attributes:
        threshold: the score threshold in [0, 1] it was made with.
        fragment_ids: (N,) uint64 fragment ids, ascending.
        segment_ids: (N,) uint64 segment id of each fragment; a segment's id is the id of one of
            its fragments, so ids of different thresholds never clash with fragment ids.
    """

    threshold: float
    fragment_ids: np.ndarray
    segment_ids: np.ndarray

    @property
    def lut(self) -> Lut:
        """The :class:`~axonseg.segment.lut.Lut` (fragment -> segment) of this threshold."""
        return Lut(self.fragment_ids, self.segment_ids)


def check_thresholds(thresholds: Sequence[float]) -> np.ndarray:
    """Thresholds as float64, or InputError if empty or any is outside [0, 1]."""
    values = np.asarray(thresholds, dtype=np.float64).ravel()
    if values.size == 0:
        raise InputError("thresholds is empty: expected at least one value in [0, 1]")
    bad = values[~((values >= 0.0) & (values <= 1.0))]
    if bad.size:
        raise InputError(f"threshold {bad[0]} is outside [0, 1]: thresholds are 1 - affinity scores")
    return values


def graph_indices(graph: RegionGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All fragment ids of the graph (nodes and edge ends, ascending) and the edges as indices."""
    ids = np.unique(np.concatenate([graph.node_id, graph.u, graph.v]).astype(np.uint64))
    eu = np.searchsorted(ids, graph.u).astype(np.int64)
    ev = np.searchsorted(ids, graph.v).astype(np.int64)
    if np.any(eu == ev):
        raise InputError("graph has an edge from a fragment to itself: expected u != v")
    return ids, eu, ev


def agglomerate(
    graph: RegionGraph,
    thresholds: Sequence[float],
    score: str = "mean",
    quantile: float = 50.0,
) -> list[ThresholdLut]:
    """Merge regions of a region graph, cheapest edge first, for several thresholds in one pass.

    Args:
        graph: merged region graph (edges u < v unique, e.g. from merge_block_graphs).
        thresholds: score thresholds in [0, 1]; regions merge while the cheapest edge score
            (1 - affinity statistic) is <= threshold.
        score: "mean" (1 - mean affinity over the contact, updated as sum / count on merges) or
            "quantile" (1 - percentile of the 256-bin affinity histogram; histograms add on
            merges, stored sparsely so memory follows the real number of non-empty bins).
        quantile: percentile in [0, 100] for score="quantile" (50 = median).

    Returns:
        One :class:`ThresholdLut` per threshold, in the order given. LUTs are nested: a higher
        threshold only merges segments of a lower one.
    """
    values = check_thresholds(thresholds)
    mode = check_score(score, quantile)
    ids, eu, ev = graph_indices(graph)
    order = np.argsort(values, kind="stable")
    roots = merge_regions(
        len(ids), eu, ev,
        graph.aff_sum.astype(np.float64, copy=True), graph.count.astype(np.float64),
        graph.hist_ptr.astype(np.int64), graph.hist_bin.astype(np.uint8),
        graph.hist_count.astype(np.uint32), mode, float(quantile),
        values[order], table_capacity(graph.n_edges),
    )
    luts: list[ThresholdLut | None] = [None] * len(values)
    for row, index in enumerate(order):
        luts[index] = ThresholdLut(float(values[index]), ids, ids[roots[row]])
    logger.info("agglomerate: %d fragments, %d edges, %d thresholds", len(ids), graph.n_edges, len(values))
    return luts  # type: ignore[return-value]
