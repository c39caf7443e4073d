"""Expected run length (ERL) of a segmentation on ground-truth skeletons, AxonEM protocol.

Edges are classified by :mod:`axonseg.evaluate.edges`; this module sums the correct edge
lengths into runs C[s, k] and reduces them to ERL, GT ERL and NERL, all in nm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from axonseg.evaluate.bootstrap import nerl_interval
from axonseg.evaluate.edges import CORRECT, MERGED, OMITTED, SPLIT, EdgeClassification, classify_edges
from axonseg.evaluate.skeletons import as_flat_skeletons
from axonseg.errors import InputError


@dataclass(frozen=True)
class ErlInterval:
    """ERL over the skeletons whose length L_s lies in [lower_nm, upper_nm)."""

    lower_nm: float
    upper_nm: float
    n_skeletons: int
    total_length_nm: float
    erl_nm: float
    gt_erl_nm: float
    nerl: float

    def to_dict(self) -> dict:
        """Plain-Python dict for JSON (NaN for an empty interval becomes None)."""
        return {key: _json_float(value) for key, value in self.__dict__.items()}


@dataclass(frozen=True)
class ErlResult:
    """ERL of one segmentation, overall and per skeleton. Lengths in nm.

    Attributes:
        erl_nm: sum_s L_s * erl_s / sum_s L_s = sum_{s,k} C[s,k]^2 / sum_s L_s.
        gt_erl_nm: the same for a perfect segmentation, sum_s L_s^2 / sum_s L_s.
        nerl: erl_nm / gt_erl_nm, in [0, 1].
        total_length_nm: sum_s L_s.
        skeleton_ids, skeleton_lengths_nm, skeleton_erl_nm: (S,) per skeleton with L_s > 0.
        run_lengths_nm, run_skeleton_ids, run_segment_ids: every correct run C[s, k] > 0.
        n_edges, n_correct, n_omitted, n_split, n_merged: edge counts per category.
        correct_length_nm, omitted_length_nm, split_length_nm, merged_length_nm: their lengths.
        intervals: per skeleton-length interval results when ``erl_intervals`` was given.
    """

    erl_nm: float
    gt_erl_nm: float
    nerl: float
    total_length_nm: float
    skeleton_ids: np.ndarray
    skeleton_lengths_nm: np.ndarray
    skeleton_erl_nm: np.ndarray
    run_lengths_nm: np.ndarray
    run_skeleton_ids: np.ndarray
    run_segment_ids: np.ndarray
    n_edges: int
    n_correct: int
    n_omitted: int
    n_split: int
    n_merged: int
    correct_length_nm: float
    omitted_length_nm: float
    split_length_nm: float
    merged_length_nm: float
    intervals: list[ErlInterval] = field(default_factory=list)

    @property
    def n_skeletons(self) -> int:
        """Skeletons with at least one edge (the ones ERL weighs)."""
        return int(len(self.skeleton_ids))

    @cached_property
    def nerl_bounds(self) -> tuple[float, float]:
        """90% bootstrap interval of NERL over the skeletons (NaN without skeletons); computed
        once per result (:func:`axonseg.evaluate.bootstrap.nerl_interval`)."""
        return nerl_interval(self.skeleton_lengths_nm, self.skeleton_erl_nm)

    def to_dict(self, include_arrays: bool = False) -> dict:
        """Plain-Python dict for JSON; per-skeleton arrays only with ``include_arrays``."""
        out = {
            "erl_nm": _json_float(self.erl_nm),
            "gt_erl_nm": _json_float(self.gt_erl_nm),
            "nerl": _json_float(self.nerl),
            "nerl_low": _json_float(self.nerl_bounds[0]),
            "nerl_high": _json_float(self.nerl_bounds[1]),
            "total_length_nm": float(self.total_length_nm),
            "n_skeletons": self.n_skeletons,
            "n_edges": self.n_edges,
            "n_correct": self.n_correct,
            "n_omitted": self.n_omitted,
            "n_split": self.n_split,
            "n_merged": self.n_merged,
            "correct_length_nm": float(self.correct_length_nm),
            "omitted_length_nm": float(self.omitted_length_nm),
            "split_length_nm": float(self.split_length_nm),
            "merged_length_nm": float(self.merged_length_nm),
            "intervals": [interval.to_dict() for interval in self.intervals],
        }
        if include_arrays:
            out["skeleton_ids"] = self.skeleton_ids.tolist()
            out["skeleton_lengths_nm"] = self.skeleton_lengths_nm.tolist()
            out["skeleton_erl_nm"] = self.skeleton_erl_nm.tolist()
            out["run_lengths_nm"] = self.run_lengths_nm.tolist()
        return out


def expected_run_length(
    skeletons,
    node_segments: np.ndarray,
    merge_threshold: int = 0,
    mask_counts: tuple[np.ndarray, np.ndarray] | None = None,
    mask_threshold: int | None = None,
    erl_intervals: Sequence[float] | None = None,
) -> ErlResult:
    """ERL of a segmentation given as the segment id under each skeleton node.

    Args:
        skeletons: ground-truth skeletons, any form :func:`as_flat_skeletons` takes (nodes
            in nm, zyx). Edge lengths are Euclidean distances in nm.
        node_segments: (N,) segment id under each node, in the flat node order (for a dict,
            the dict's order with each skeleton's nodes in turn). See
            :func:`axonseg.evaluate.lookup.lookup_segments`.
        merge_threshold: a segment merges skeletons when at least two have more than this
            many nodes in it (default 0).
        mask_counts: optional ``(segment_ids, voxels inside the non-axon mask)``.
        mask_threshold: voxels inside the mask above which a segment is merging; None uses
            ``merge_threshold`` (AxonEM).
        erl_intervals: optional ascending skeleton-length bounds in nm; interval i holds the
            skeletons with bounds[i] <= L_s < bounds[i + 1].

    Returns:
        :class:`ErlResult`.
    """
    classification = classify_edges(
        as_flat_skeletons(skeletons), node_segments, merge_threshold, mask_counts, mask_threshold
    )
    return erl_from_classification(classification, erl_intervals)


def erl_from_classification(
    classification: EdgeClassification, erl_intervals: Sequence[float] | None = None
) -> ErlResult:
    """ERL from classified edges (see :func:`expected_run_length` for the definitions).

    Differences to the AxonEM reference code: the overall ERL weights each skeleton by its
    own length (AxonEM's ``erl_wrapper`` multiplies by the last loop value, a bug, and the
    funlib original does it right); skeletons without edges are left out, as in both;
    lengths are float64 (funlib computes them from float32 positions).
    """
    c = classification
    lengths = c.edge_lengths_nm
    correct = c.category == CORRECT
    n_segments = max(c.n_segments, 1)
    run_keys, run_index = np.unique(
        c.edge_skeleton[correct].astype(np.int64) * n_segments + c.edge_segments[correct, 0],
        return_inverse=True,
    )
    runs = np.bincount(run_index, weights=lengths[correct], minlength=len(run_keys))
    run_skeleton, run_segment = np.divmod(run_keys, n_segments)
    squared = np.bincount(run_skeleton, weights=runs**2, minlength=len(c.skeleton_ids))

    has_length = c.skeleton_lengths_nm > 0
    skeleton_lengths = c.skeleton_lengths_nm[has_length]
    skeleton_erl = squared[has_length] / skeleton_lengths
    erl, gt_erl, nerl, total = _reduce(skeleton_lengths, skeleton_erl)
    intervals = _intervals(skeleton_lengths, skeleton_erl, erl_intervals)

    def length_of(category: int) -> float:
        return float(lengths[c.category == category].sum())

    return ErlResult(
        erl_nm=erl,
        gt_erl_nm=gt_erl,
        nerl=nerl,
        total_length_nm=total,
        skeleton_ids=c.skeleton_ids[has_length],
        skeleton_lengths_nm=skeleton_lengths,
        skeleton_erl_nm=skeleton_erl,
        run_lengths_nm=runs,
        run_skeleton_ids=c.skeleton_ids[run_skeleton],
        run_segment_ids=c.segment_ids[run_segment] if len(runs) else np.zeros(0, np.uint64),
        n_edges=int(len(c.category)),
        n_correct=int(correct.sum()),
        n_omitted=int((c.category == OMITTED).sum()),
        n_split=int((c.category == SPLIT).sum()),
        n_merged=int((c.category == MERGED).sum()),
        correct_length_nm=length_of(CORRECT),
        omitted_length_nm=length_of(OMITTED),
        split_length_nm=length_of(SPLIT),
        merged_length_nm=length_of(MERGED),
        intervals=intervals,
    )


def _reduce(skeleton_lengths: np.ndarray, skeleton_erl: np.ndarray) -> tuple[float, float, float, float]:
    total = float(skeleton_lengths.sum())
    if total == 0:
        return float("nan"), float("nan"), float("nan"), 0.0
    erl = float(np.dot(skeleton_lengths, skeleton_erl) / total)
    gt_erl = float(np.dot(skeleton_lengths, skeleton_lengths) / total)
    return erl, gt_erl, erl / gt_erl, total


def _intervals(
    skeleton_lengths: np.ndarray, skeleton_erl: np.ndarray, bounds: Sequence[float] | None
) -> list[ErlInterval]:
    if bounds is None:
        return []
    edges = np.asarray(bounds, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0) or np.isnan(edges).any():
        raise InputError(f"erl_intervals is {list(bounds)!r}: expected at least two ascending bounds in nm")
    out = []
    for lower, upper in zip(edges[:-1], edges[1:]):
        inside = (skeleton_lengths >= lower) & (skeleton_lengths < upper)
        erl, gt_erl, nerl, total = _reduce(skeleton_lengths[inside], skeleton_erl[inside])
        out.append(ErlInterval(float(lower), float(upper), int(inside.sum()), total, erl, gt_erl, nerl))
    return out


def _json_float(value: float) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else value
