"""Variation of information (split and merge parts, in bits) from a contingency table.

Conventions (CREMI): only voxels with gt != 0 count; predicted id 0 is an ordinary label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from axonseg.evaluate.contingency import Contingency, contingency_block, labelled_rows


@dataclass(frozen=True)
class VoiResult:
    """Variation of information in bits (log2).

    Attributes:
        split: H(pred | gt), over-segmentation: how many bits it takes to say which predicted
            piece a voxel is in, given its gt object.
        merge: H(gt | pred), under-segmentation.
        total: split + merge.
        n_voxels: voxels scored (gt != 0).
    """

    split: float
    merge: float
    total: float
    n_voxels: int

    def to_dict(self) -> dict:
        """Plain-Python dict for JSON."""
        return asdict(self)


def voi_from_contingency(table: Contingency) -> VoiResult:
    """VOI split and merge from a (gt id, pred id) -> count table.

    Rows with gt id 0 are dropped (not scored). With n voxels, n_ij voxels of gt i and pred j,
    a_i gt sizes and b_j pred sizes: split = H(pred|gt) = -sum_ij (n_ij/n) log2(n_ij/a_i),
    merge = H(gt|pred) = -sum_ij (n_ij/n) log2(n_ij/b_j).

    Differences to ``skimage.metrics.variation_of_information(gt, pred, ignore_labels=(0,))``:
    none in definition; skimage also works in bits (``_xlogx`` uses log2) and returns
    ``[split, merge]`` in that order when called with (gt, pred). skimage builds a dense-index
    sparse matrix of size max(id) + 1, so it cannot take 64-bit ids; this table can.

    Args:
        table: ``(pairs, counts)`` from :func:`contingency_block` / :func:`merge_contingency`.

    Returns:
        :class:`VoiResult`.

    Raises:
        InputError: the table has no voxel with gt != 0.
    """
    pairs, counts, n_voxels = labelled_rows(table)
    _, gt_index = np.unique(pairs[:, 0], return_inverse=True)
    _, pred_index = np.unique(pairs[:, 1], return_inverse=True)
    gt_sizes = np.bincount(gt_index, weights=counts)
    pred_sizes = np.bincount(pred_index, weights=counts)
    joint = _xlog2x(counts).sum()
    # H(pred|gt) = H(gt, pred) - H(gt); written with counts: (sum a log a - sum n log n) / n
    split = (_xlog2x(gt_sizes).sum() - joint) / n_voxels
    merge = (_xlog2x(pred_sizes).sum() - joint) / n_voxels
    split, merge = max(float(split), 0.0), max(float(merge), 0.0)  # clip -1e-16 rounding
    return VoiResult(split=split, merge=merge, total=split + merge, n_voxels=int(n_voxels))


def variation_of_information(pred: np.ndarray, gt: np.ndarray) -> VoiResult:
    """VOI of a predicted segmentation against gt (voxels with gt != 0), in bits.

    Args:
        pred: predicted labels (zyx, integer, ids >= 0).
        gt: ground-truth labels, same shape; 0 = unlabelled, not scored.

    Returns:
        :class:`VoiResult`.
    """
    return voi_from_contingency(contingency_block(gt, pred))


def _xlog2x(values: np.ndarray) -> np.ndarray:
    positive = values > 0
    out = np.zeros_like(values, dtype=np.float64)
    out[positive] = values[positive] * np.log2(values[positive])
    return out
