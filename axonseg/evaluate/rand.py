"""Adapted Rand error (SNEMI3D / CREMI definition) from a contingency table.

Only voxels with gt != 0 count; predicted id 0 inside the gt is a set of singletons.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from axonseg.evaluate.contingency import Contingency, contingency_block, labelled_rows


@dataclass(frozen=True)
class RandResult:
    """Adapted Rand error and its two parts (all in [0, 1]).

    Attributes:
        arand: 1 - F, with F the harmonic mean of precision and recall.
        precision: of the voxel pairs that share a predicted id, the fraction that also share
            a gt id (low = false merges).
        recall: of the voxel pairs that share a gt id, the fraction that also share a predicted
            id (low = false splits).
        n_voxels: voxels scored (gt != 0).
    """

    arand: float
    precision: float
    recall: float
    n_voxels: int

    def to_dict(self) -> dict:
        """Plain-Python dict for JSON."""
        return asdict(self)


def adapted_rand_from_contingency(table: Contingency, count_self_pairs: bool = True) -> RandResult:
    """Adapted Rand error from a (gt id, pred id) -> count table.

    With n_ij voxels of gt i and pred j over gt != 0, a_i = sum_j n_ij, b_j = sum_i n_ij for
    j != 0 and c the voxels with pred 0 (each its own singleton):
    sum_A = sum_i a_i^2, sum_B = sum_{j!=0} b_j^2 + c, sum_AB = sum_{i, j!=0} n_ij^2 + c,
    precision = sum_AB / sum_B, recall = sum_AB / sum_A, arand = 1 - 2PR / (P + R).
    This is the SNEMI3D MATLAB definition, in which every voxel pairs with itself.

    Differences to other implementations:
      * CREMI / gala Python (``cremi.evaluation.adapted_rand_error``) add ``c / n`` instead
        of ``c`` (the MATLAB term ported from probabilities to counts without rescaling), so
        predicted-0 voxels there weigh ~nothing; identical to ours when pred has no 0 inside
        gt.
      * ``skimage.metrics.adapted_rand_error(gt, pred)`` counts pairs of distinct voxels
        (subtracts n from each sum: ``count_self_pairs=False`` here), treats pred 0 as an
        ordinary label, and names the two ratios the other way round: its ``precision``
        (divided by the gt pair count) is our ``recall``. With ``count_self_pairs=False`` and
        no pred 0 inside gt, our (arand, precision, recall) equal skimage's
        (are, rec, prec) exactly.

    Args:
        table: ``(pairs, counts)`` from :func:`contingency_block` / :func:`merge_contingency`.
        count_self_pairs: True (default, SNEMI3D) counts ordered pairs including a voxel with
            itself (sums of n^2); False counts pairs of distinct voxels (n^2 - n), as skimage.

    Returns:
        :class:`RandResult`.

    Raises:
        InputError: the table has no voxel with gt != 0.
    """
    pairs, counts, n_voxels = labelled_rows(table)
    _, gt_index = np.unique(pairs[:, 0], return_inverse=True)
    gt_sizes = np.bincount(gt_index, weights=counts)
    labelled = pairs[:, 1] != 0
    _, pred_index = np.unique(pairs[labelled, 1], return_inverse=True)
    pred_sizes = np.bincount(pred_index, weights=counts[labelled])
    singletons = float(counts[~labelled].sum())
    sum_a = float(np.dot(gt_sizes, gt_sizes))
    sum_b = float(np.dot(pred_sizes, pred_sizes)) + singletons
    sum_ab = float(np.dot(counts[labelled], counts[labelled])) + singletons
    if not count_self_pairs:
        sum_a, sum_b, sum_ab = sum_a - n_voxels, sum_b - n_voxels, sum_ab - n_voxels
    precision = _ratio(sum_ab, sum_b)
    recall = _ratio(sum_ab, sum_a)
    f_score = 2.0 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return RandResult(arand=1.0 - f_score, precision=precision, recall=recall, n_voxels=int(n_voxels))


def adapted_rand(pred: np.ndarray, gt: np.ndarray, count_self_pairs: bool = True) -> RandResult:
    """Adapted Rand error of a predicted segmentation against gt (voxels with gt != 0).

    Args:
        pred: predicted labels (zyx, integer, ids >= 0); 0 inside gt = singletons.
        gt: ground-truth labels, same shape; 0 = unlabelled, not scored.
        count_self_pairs: see :func:`adapted_rand_from_contingency`.

    Returns:
        :class:`RandResult`.
    """
    return adapted_rand_from_contingency(contingency_block(gt, pred), count_self_pairs)


def _ratio(numerator: float, denominator: float) -> float:
    # No pairs at all (every voxel a singleton, distinct-pair counting): nothing is wrong.
    return numerator / denominator if denominator > 0 else 1.0
