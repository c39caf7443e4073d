"""Error candidates to visit when there is no ground truth: the agglomeration's least certain
merges, and skeleton ends that stop inside the volume on short segments (likely splits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # both packages import numba kernels; only types are needed at import time
    from axonseg.segment.region_graph import RegionGraph
    from axonseg.skeleton.graph import AxonGraph


@dataclass(frozen=True)
class Candidates:
    """Ranked locations to review.

    Attributes:
        location_nm: (n, 3) zyx, nm.
        kind: (n,) ``"merge"`` or ``"split"``.
        segment_ids: (n, 2) uint64 segments involved (second 0 when one segment).
        score: (n,) the ranking key (smaller first).
    """

    location_nm: np.ndarray
    kind: np.ndarray
    segment_ids: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.location_nm)


def uncertain_merges(graph: RegionGraph, fragment_ids: np.ndarray, segment_ids: np.ndarray, threshold: float,
                     limit: int = 200) -> Candidates:
    """Merged edges whose merge score (1 - mean affinity) lies just below the threshold.

    Args:
        graph: the run's region graph (centroids in nm).
        fragment_ids, segment_ids: the LUT the agglomeration chose.
        threshold: the LUT's agglomeration threshold in [0, 1].
        limit: at most this many candidates.

    Returns:
        :class:`Candidates` of kind ``merge`` at the midpoint of the two fragments' centroids,
        ranked by threshold - score (the closest call first).
    """
    order = np.argsort(fragment_ids)
    ids, segments = np.asarray(fragment_ids, np.uint64)[order], np.asarray(segment_ids, np.uint64)[order]
    if len(ids) == 0 or graph.n_edges == 0:
        return _empty()
    pu = np.minimum(np.searchsorted(ids, graph.u), len(ids) - 1)
    pv = np.minimum(np.searchsorted(ids, graph.v), len(ids) - 1)
    merged = (ids[pu] == graph.u) & (ids[pv] == graph.v) & (segments[pu] == segments[pv])
    score = 1.0 - graph.mean_affinity
    margin = threshold - score
    chosen = np.flatnonzero(merged & (margin >= 0))
    chosen = chosen[np.argsort(margin[chosen], kind="stable")][:limit]
    node_order = np.argsort(graph.node_id)
    node_ids = graph.node_id[node_order]
    cu = graph.node_centroid[node_order[np.searchsorted(node_ids, graph.u[chosen])]]
    cv = graph.node_centroid[node_order[np.searchsorted(node_ids, graph.v[chosen])]]
    seg = segments[pu[chosen]]
    return Candidates((cu + cv) / 2, np.full(len(chosen), "merge"), np.column_stack([seg, np.zeros_like(seg)]),
                      margin[chosen])


def dangling_ends(skeletons: Mapping[int, AxonGraph], box_nm: tuple[Sequence[float], Sequence[float]],
                  border_nm: float = 200.0, max_length_nm: float = 5000.0, limit: int = 200) -> Candidates:
    """Skeleton endpoints inside the volume on short skeletons: an axon does not end there.

    Args:
        skeletons: ``{segment_id: AxonGraph}`` (nm, zyx).
        box_nm: ``(begin, end)`` of the volume, nm, zyx.
        border_nm: endpoints closer than this to a volume face are ignored (the axon leaves).
        max_length_nm: only skeletons shorter than this (total cable, nm).
        limit: at most this many candidates.

    Returns:
        :class:`Candidates` of kind ``split``, shortest skeleton first.
    """
    from axonseg.skeleton.graph import endpoints

    begin, end = (np.asarray(b, np.float64) for b in box_nm)
    points, segments, lengths = [], [], []
    for segment_id, graph in skeletons.items():
        length = graph.path_length_nm
        if len(graph.nodes_nm) == 0 or length >= max_length_nm:
            continue
        ends = graph.nodes_nm[endpoints(graph)]
        inside = ((ends - begin > border_nm) & (end - ends > border_nm)).all(axis=1)
        points.append(ends[inside])
        segments.extend([segment_id] * int(inside.sum()))
        lengths.extend([length] * int(inside.sum()))
    if not segments:
        return _empty()
    lengths_arr = np.asarray(lengths)
    order = np.argsort(lengths_arr, kind="stable")[:limit]
    seg = np.asarray(segments, np.uint64)[order]
    return Candidates(np.concatenate(points)[order], np.full(len(order), "split"),
                      np.column_stack([seg, np.zeros_like(seg)]), lengths_arr[order])


def _empty() -> Candidates:
    return Candidates(np.zeros((0, 3)), np.zeros(0, dtype="<U5"), np.zeros((0, 2), np.uint64), np.zeros(0))
