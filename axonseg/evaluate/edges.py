"""Classify ground-truth skeleton edges against a segmentation with the AxonEM rules.

Every edge is correct, omitted, split or merged; ERL and the split/merge lists are both
read off this one classification.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from axonseg.evaluate.skeletons import FlatSkeletons
from axonseg.errors import InputError

CORRECT, OMITTED, SPLIT, MERGED = 0, 1, 2, 3


@dataclass(frozen=True)
class EdgeClassification:
    """Per-edge outcome and the merge bookkeeping behind it.

    Skeletons and segments are referred to by dense indices into ``skeleton_ids`` and
    ``segment_ids``; node arrays have N entries, edge arrays E.

    Attributes:
        skeletons: the skeletons that were scored.
        skeleton_ids: (S,) sorted unique skeleton ids.
        skeleton_lengths_nm: (S,) total edge length per skeleton, nm.
        node_skeleton: (N,) skeleton index per node.
        node_segment: (N,) segment index per node.
        segment_ids: (K,) sorted unique segment ids seen at nodes (uint64, may include 0).
        edge_skeleton: (E,) skeleton index per edge.
        edge_lengths_nm: (E,) edge length, nm.
        edge_segments: (E, 2) segment index at the two ends of each edge.
        category: (E,) uint8, one of CORRECT, OMITTED, SPLIT, MERGED.
        pair_skeleton, pair_segment, pair_nodes: (P,) the (skeleton, segment) pairs whose
            node count passed ``merge_threshold``, with that count.
        segment_merging: (K,) bool, the segment merges two skeletons or enters the mask.
        segment_mask_merge: (K,) bool, merging because of the non-axon mask.
        segment_mask_voxels: (K,) int64 voxels of the segment inside the mask (0 if no mask).
    """

    skeletons: FlatSkeletons
    skeleton_ids: np.ndarray
    skeleton_lengths_nm: np.ndarray
    node_skeleton: np.ndarray
    node_segment: np.ndarray
    segment_ids: np.ndarray
    edge_skeleton: np.ndarray
    edge_lengths_nm: np.ndarray
    edge_segments: np.ndarray
    category: np.ndarray
    pair_skeleton: np.ndarray
    pair_segment: np.ndarray
    pair_nodes: np.ndarray
    segment_merging: np.ndarray
    segment_mask_merge: np.ndarray
    segment_mask_voxels: np.ndarray

    @property
    def n_segments(self) -> int:
        """Number of distinct segment ids at nodes."""
        return int(len(self.segment_ids))


def classify_edges(
    skeletons: FlatSkeletons,
    node_segments: np.ndarray,
    merge_threshold: int = 0,
    mask_counts: tuple[np.ndarray, np.ndarray] | None = None,
    mask_threshold: int | None = None,
) -> EdgeClassification:
    """Classify every skeleton edge (u, v) with the AxonEM protocol.

    Rules, in this order (``s_u``, ``s_v`` = segment ids at the two nodes):

    1. omitted if ``s_u == 0`` or ``s_v == 0``;
    2. split if ``s_u != s_v``;
    3. merged (its length is lost) if segment ``s_u`` is merging and the edge's skeleton has
       a (skeleton, segment) pair that passed the threshold with some merging segment
       (for this flag segment 0 counts like any id, as in AxonEM);
    4. correct otherwise.

    A segment is merging if at least two skeletons have more than ``merge_threshold`` nodes
    in it, or (with a mask) it has more than ``mask_threshold`` voxels inside the non-axon
    mask. Segment 0 is never merging.

    Where this differs from the AxonEM reference code (``erl_wrapper/eval_erl.py``):
      * AxonEM keeps (skeleton, segment) pairs with ``count >= merge_threshold``; we keep
        ``count > merge_threshold`` as the paper words it. Identical at the default 0
        (every pair has >= 1 node); our k equals AxonEM's k + 1.
      * AxonEM uses one ``merge_threshold`` for node counts and mask voxel counts; here
        ``mask_threshold=None`` (default) does the same, or a separate value can be given.
      * None in rule 3: its skeleton condition is AxonEM's ``skeleton_id in
        merged_skeletons``, including the background quirk. It only matters with a threshold
        > 0, where a skeleton that barely touches a merging segment keeps that run unless it
        is flagged through another merging segment (or through background).

    Args:
        skeletons: ground-truth skeletons (nodes in nm, zyx).
        node_segments: (N,) segment id under each node (0 = background / outside).
        merge_threshold: node-count threshold of a (skeleton, segment) pair, see above.
        mask_counts: optional ``(segment_ids, voxel_counts)`` of predicted segments inside
            the non-axon mask (:func:`axonseg.evaluate.lookup.mask_voxel_counts`).
        mask_threshold: voxel-count threshold for the mask; None = ``merge_threshold``.

    Returns:
        :class:`EdgeClassification`.
    """
    node_segments = np.asarray(node_segments)
    if node_segments.shape != (skeletons.n_nodes,) or node_segments.dtype.kind not in "ui":
        raise InputError(
            f"node_segments has shape {node_segments.shape} and dtype {node_segments.dtype}: "
            f"expected ({skeletons.n_nodes},) integer segment ids, one per skeleton node"
        )
    if merge_threshold < 0 or (mask_threshold is not None and mask_threshold < 0):
        raise InputError(f"merge_threshold {merge_threshold} / mask_threshold {mask_threshold}: expected >= 0")
    node_segments = node_segments.astype(np.uint64, copy=False)
    skeleton_ids, node_skeleton = np.unique(skeletons.node_skeleton_ids, return_inverse=True)
    segment_ids, node_segment = np.unique(node_segments, return_inverse=True)
    n_skeletons, n_segments = len(skeleton_ids), len(segment_ids)

    # (skeleton, segment) node counts; the packed key fits int64 for any realistic size
    pair_keys, pair_nodes = np.unique(
        node_skeleton.astype(np.int64) * n_segments + node_segment, return_counts=True
    )
    passed = pair_nodes > merge_threshold
    pair_keys, pair_nodes = pair_keys[passed], pair_nodes[passed]
    pair_skeleton, pair_segment = np.divmod(pair_keys, n_segments)

    skeletons_per_segment = np.bincount(pair_segment, minlength=n_segments)
    segment_merging = skeletons_per_segment >= 2
    segment_mask_merge, segment_mask_voxels = _mask_merges(
        segment_ids, mask_counts, merge_threshold if mask_threshold is None else mask_threshold
    )
    segment_merging |= segment_mask_merge
    # AxonEM flags skeletons before dropping background: a skeleton with nodes on a
    # "merging" segment 0 is flagged too (this only changes results with a threshold > 0)
    skeleton_in_merge = np.zeros(n_skeletons, dtype=bool)
    skeleton_in_merge[pair_skeleton[segment_merging[pair_segment]]] = True
    background = segment_ids == 0
    segment_merging[background] = False
    segment_mask_merge[background] = False

    edges = skeletons.edges
    edge_segments = node_segment[edges]
    edge_skeleton = node_skeleton[edges[:, 0]]
    lengths = skeletons.edge_lengths_nm()
    segment_u, segment_v = node_segments[edges[:, 0]], node_segments[edges[:, 1]]
    category = np.full(len(edges), CORRECT, dtype=np.uint8)
    omitted = (segment_u == 0) | (segment_v == 0)
    split = ~omitted & (segment_u != segment_v)
    merged = ~omitted & ~split & segment_merging[edge_segments[:, 0]] & skeleton_in_merge[edge_skeleton]
    category[omitted] = OMITTED
    category[split] = SPLIT
    category[merged] = MERGED

    skeleton_lengths = np.bincount(edge_skeleton, weights=lengths, minlength=n_skeletons)
    return EdgeClassification(
        skeletons=skeletons,
        skeleton_ids=skeleton_ids,
        skeleton_lengths_nm=skeleton_lengths,
        node_skeleton=node_skeleton,
        node_segment=node_segment,
        segment_ids=segment_ids,
        edge_skeleton=edge_skeleton,
        edge_lengths_nm=lengths,
        edge_segments=edge_segments,
        category=category,
        pair_skeleton=pair_skeleton,
        pair_segment=pair_segment,
        pair_nodes=pair_nodes,
        segment_merging=segment_merging,
        segment_mask_merge=segment_mask_merge,
        segment_mask_voxels=segment_mask_voxels,
    )


def _mask_merges(
    segment_ids: np.ndarray, mask_counts: tuple[np.ndarray, np.ndarray] | None, threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    voxels = np.zeros(len(segment_ids), dtype=np.int64)
    if mask_counts is not None and len(segment_ids):
        mask_ids = np.asarray(mask_counts[0], dtype=np.uint64)
        mask_voxels = np.asarray(mask_counts[1], dtype=np.int64)
        position = np.searchsorted(segment_ids, mask_ids)
        found = position < len(segment_ids)
        found[found] = segment_ids[position[found]] == mask_ids[found]
        np.add.at(voxels, position[found], mask_voxels[found])
    return voxels > threshold, voxels
