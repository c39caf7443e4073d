"""Ranked lists of split skeletons and merging segments, for proofreading navigation.

Both lists are ranked by how much ERL (nm) fixing the error would give back, so the first
rows are the edits worth making first. Locations are in nm, zyx.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from axonseg.evaluate.edges import CORRECT, MERGED, SPLIT, EdgeClassification, classify_edges
from axonseg.evaluate.skeletons import as_flat_skeletons


@dataclass(frozen=True)
class SplitList:
    """One row per (skeleton, segment a, segment b) joined by at least one split edge.

    Attributes:
        skeleton_ids: (n,) the split skeleton.
        segment_a, segment_b: (n,) uint64 the two segment ids (a < b); joining them fixes it.
        n_edges: (n,) split edges between a and b on this skeleton.
        location_nm: (n, 3) zyx midpoint of the first such edge, nm.
        piece_a_nm, piece_b_nm: (n,) skeleton length inside a and inside b (edges with both
            ends in the segment), nm.
        erl_gain_nm: (n,) ERL gained by joining a and b: 2 * C[s,a] * C[s,b] / sum_s L_s,
            with C the correct run lengths (0 for a piece lost to a merge). Rank key.
    """

    skeleton_ids: np.ndarray
    segment_a: np.ndarray
    segment_b: np.ndarray
    n_edges: np.ndarray
    location_nm: np.ndarray
    piece_a_nm: np.ndarray
    piece_b_nm: np.ndarray
    erl_gain_nm: np.ndarray

    def __len__(self) -> int:
        return int(len(self.skeleton_ids))

    def to_records(self, limit: int | None = None) -> list[dict]:
        """The first ``limit`` rows (all if None) as plain dicts, in rank order."""
        count = len(self) if limit is None else min(limit, len(self))
        return [
            {
                "skeleton_id": int(self.skeleton_ids[i]),
                "segment_ids": [int(self.segment_a[i]), int(self.segment_b[i])],
                "n_edges": int(self.n_edges[i]),
                "location_nm": [float(v) for v in self.location_nm[i]],
                "piece_lengths_nm": [float(self.piece_a_nm[i]), float(self.piece_b_nm[i])],
                "erl_gain_nm": float(self.erl_gain_nm[i]),
            }
            for i in range(count)
        ]


@dataclass(frozen=True)
class MergeList:
    """One row per merging segment that holds at least one skeleton.

    Attributes:
        segment_ids: (m,) uint64 the merging segment.
        skeleton_ids: m arrays, the skeletons with more than ``merge_threshold`` nodes in it,
            most nodes first.
        location_nm: (m, 3) zyx position of a node of the merge: the first node inside the
            segment of its second-largest skeleton (of its only one for a mask merge), nm.
        involved_length_nm: (m,) skeleton length inside the segment, summed over skeletons.
        erl_loss_nm: (m,) ERL lost to this merge: sum_s M[s,k]^2 / sum_s L_s with M the
            lost edge length of skeleton s in it; what a perfect fix gives back. Rank key.
        mask_voxels: (m,) voxels of the segment inside the non-axon mask (0 without mask).
        by_mask: (m,) True if the segment is merging because of the mask.
    """

    segment_ids: np.ndarray
    skeleton_ids: list[np.ndarray]
    location_nm: np.ndarray
    involved_length_nm: np.ndarray
    erl_loss_nm: np.ndarray
    mask_voxels: np.ndarray
    by_mask: np.ndarray

    def __len__(self) -> int:
        return int(len(self.segment_ids))

    def to_records(self, limit: int | None = None) -> list[dict]:
        """The first ``limit`` rows (all if None) as plain dicts, in rank order."""
        count = len(self) if limit is None else min(limit, len(self))
        return [
            {
                "segment_id": int(self.segment_ids[i]),
                "skeleton_ids": [int(v) for v in self.skeleton_ids[i]],
                "location_nm": [float(v) for v in self.location_nm[i]],
                "involved_length_nm": float(self.involved_length_nm[i]),
                "erl_loss_nm": float(self.erl_loss_nm[i]),
                "mask_voxels": int(self.mask_voxels[i]),
                "by_mask": bool(self.by_mask[i]),
            }
            for i in range(count)
        ]


@dataclass(frozen=True)
class SplitMergeLists:
    """Ranked split and merge lists.

    Attributes:
        splits: :class:`SplitList`; ``n_split`` = its rows (joins needed).
        merges: :class:`MergeList`; ``n_merge`` = its rows (merging segments).
        n_split_edges: split edges in total (AxonEM's split count).
    """

    splits: SplitList
    merges: MergeList
    n_split_edges: int

    @property
    def n_split(self) -> int:
        """Distinct (skeleton, segment pair) splits."""
        return len(self.splits)

    @property
    def n_merge(self) -> int:
        """Merging segments that hold a skeleton."""
        return len(self.merges)

    def to_dict(self, limit: int | None = None) -> dict:
        """Counts and the first ``limit`` rows of each list (all if None)."""
        return {
            "n_split": self.n_split,
            "n_split_edges": self.n_split_edges,
            "n_merge": self.n_merge,
            "splits": self.splits.to_records(limit),
            "merges": self.merges.to_records(limit),
        }


def split_merge_lists(
    skeletons,
    node_segments: np.ndarray,
    merge_threshold: int = 0,
    mask_counts: tuple[np.ndarray, np.ndarray] | None = None,
    mask_threshold: int | None = None,
) -> SplitMergeLists:
    """Split and merge lists of a segmentation on ground-truth skeletons.

    Args: as :func:`axonseg.evaluate.erl.expected_run_length`.

    Returns:
        :class:`SplitMergeLists`, each list ranked by ERL impact (largest first).
    """
    classification = classify_edges(
        as_flat_skeletons(skeletons), node_segments, merge_threshold, mask_counts, mask_threshold
    )
    return lists_from_classification(classification)


def lists_from_classification(c: EdgeClassification) -> SplitMergeLists:
    """Split and merge lists from classified edges (see :func:`split_merge_lists`)."""
    total_length = float(c.skeleton_lengths_nm.sum())
    norm = 1.0 / total_length if total_length > 0 else 0.0
    same = (c.category == CORRECT) | (c.category == MERGED)
    pieces = _PairSums(c, same)
    runs = _PairSums(c, c.category == CORRECT)
    splits = _splits(c, pieces, runs, norm)
    merges = _merges(c, pieces, _PairSums(c, c.category == MERGED), norm)
    return SplitMergeLists(splits, merges, int((c.category == SPLIT).sum()))


class _PairSums:
    """Edge length summed per (skeleton index, segment index), looked up by pair."""

    def __init__(self, c: EdgeClassification, selected: np.ndarray) -> None:
        self._n_segments = max(c.n_segments, 1)
        keys = c.edge_skeleton[selected].astype(np.int64) * self._n_segments + c.edge_segments[selected, 0]
        self._keys, inverse = np.unique(keys, return_inverse=True)
        self._sums = np.bincount(inverse, weights=c.edge_lengths_nm[selected], minlength=len(self._keys))

    def get(self, skeleton: np.ndarray, segment: np.ndarray) -> np.ndarray:
        keys = skeleton.astype(np.int64) * self._n_segments + segment
        position = np.minimum(np.searchsorted(self._keys, keys), max(len(self._keys) - 1, 0))
        if len(self._keys) == 0:
            return np.zeros(len(keys))
        return np.where(self._keys[position] == keys, self._sums[position], 0.0)


def _splits(c: EdgeClassification, pieces: _PairSums, runs: _PairSums, norm: float) -> SplitList:
    edge_index = np.flatnonzero(c.category == SPLIT)
    skeleton = c.edge_skeleton[edge_index]
    low = c.edge_segments[edge_index].min(axis=1)
    high = c.edge_segments[edge_index].max(axis=1)
    order = np.lexsort((edge_index, high, low, skeleton))
    skeleton, low, high, edge_index = skeleton[order], low[order], high[order], edge_index[order]
    starts = _group_starts(skeleton, low, high)
    n_edges = np.diff(np.r_[starts, len(edge_index)])
    skeleton, low, high, first_edge = skeleton[starts], low[starts], high[starts], edge_index[starts]
    ends = c.skeletons.edges[first_edge]
    location = (c.skeletons.positions_nm[ends[:, 0]] + c.skeletons.positions_nm[ends[:, 1]]) / 2.0
    piece_a, piece_b = pieces.get(skeleton, low), pieces.get(skeleton, high)
    gain = 2.0 * runs.get(skeleton, low) * runs.get(skeleton, high) * norm
    rank = np.lexsort((-np.minimum(piece_a, piece_b), -gain))
    return SplitList(
        skeleton_ids=c.skeleton_ids[skeleton][rank],
        segment_a=c.segment_ids[low][rank] if len(low) else np.zeros(0, np.uint64),
        segment_b=c.segment_ids[high][rank] if len(high) else np.zeros(0, np.uint64),
        n_edges=n_edges[rank],
        location_nm=location[rank].reshape(-1, 3),
        piece_a_nm=piece_a[rank],
        piece_b_nm=piece_b[rank],
        erl_gain_nm=gain[rank],
    )


def _merges(c: EdgeClassification, pieces: _PairSums, lost: _PairSums, norm: float) -> MergeList:
    in_merge = c.segment_merging[c.pair_segment]
    segment, skeleton, nodes = c.pair_segment[in_merge], c.pair_skeleton[in_merge], c.pair_nodes[in_merge]
    order = np.lexsort((skeleton, -nodes, segment))  # per segment, most nodes first
    segment, skeleton = segment[order], skeleton[order]
    starts = _group_starts(segment)
    group_sizes = np.diff(np.r_[starts, len(segment)])
    group = np.repeat(np.arange(len(starts)), group_sizes)
    involved = np.bincount(group, weights=pieces.get(skeleton, segment), minlength=len(starts))
    loss = np.bincount(group, weights=lost.get(skeleton, segment) ** 2, minlength=len(starts)) * norm
    merge_segment = segment[starts]
    # the partner skeleton (second by node count) marks where the foreign object enters
    located_skeleton = skeleton[starts + np.minimum(group_sizes, 2) - 1]
    location = _first_node_positions(c, located_skeleton, merge_segment)
    rank = np.lexsort((-involved, -loss))
    skeleton_lists = np.split(c.skeleton_ids[skeleton], starts[1:]) if len(starts) else []
    return MergeList(
        segment_ids=c.segment_ids[merge_segment][rank] if len(starts) else np.zeros(0, np.uint64),
        skeleton_ids=[skeleton_lists[i] for i in rank],
        location_nm=location[rank].reshape(-1, 3),
        involved_length_nm=involved[rank],
        erl_loss_nm=loss[rank],
        mask_voxels=c.segment_mask_voxels[merge_segment][rank],
        by_mask=c.segment_mask_merge[merge_segment][rank],
    )


def _group_starts(*keys: np.ndarray) -> np.ndarray:
    """Indices where any of the (sorted) key columns changes value; empty for empty keys."""
    if len(keys[0]) == 0:
        return np.zeros(0, dtype=np.int64)
    changed = np.zeros(len(keys[0]) - 1, dtype=bool)
    for key in keys:
        changed |= key[1:] != key[:-1]
    return np.flatnonzero(np.r_[True, changed])


def _first_node_positions(c: EdgeClassification, skeleton: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Position of the lowest-index node of each (skeleton index, segment index) pair."""
    if len(skeleton) == 0:
        return np.zeros((0, 3))
    n_segments = max(c.n_segments, 1)
    node_keys = c.node_skeleton.astype(np.int64) * n_segments + c.node_segment
    order = np.argsort(node_keys, kind="stable")
    position = np.searchsorted(node_keys[order], skeleton.astype(np.int64) * n_segments + segment)
    return c.skeletons.positions_nm[order[position]]
