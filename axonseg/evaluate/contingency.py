"""Contingency tables (gt id, pred id) -> voxel count, computed per block and summed.

The table is the one accumulator that VOI and adapted Rand need, so volumes that do not fit
in memory are scored by summing block tables (:func:`merge_contingency`).
"""

from __future__ import annotations

from collections.abc import Iterable

import fastremap
import numpy as np

from axonseg.errors import InputError
from axonseg.evaluate._checks import check_labels, check_same_shape

#: A contingency table: ``pairs`` (K, 2) uint64 rows ``(gt_id, pred_id)`` sorted and unique,
#: and ``counts`` (K,) int64 voxel counts.
Contingency = tuple[np.ndarray, np.ndarray]

_SHIFT = np.uint64(32)
_LOW = np.uint64(0xFFFFFFFF)


def empty_contingency() -> Contingency:
    """A table with no rows."""
    return np.zeros((0, 2), dtype=np.uint64), np.zeros(0, dtype=np.int64)


def contingency_block(gt_block: np.ndarray, pred_block: np.ndarray) -> Contingency:
    """Count voxels per (gt id, pred id) pair in one block.

    Both ids are packed into one uint64 key so that a single ``fastremap.unique`` pass does
    the counting; ids of 2**32 or more are first renumbered to compact ids (and mapped back).

    Args:
        gt_block: ground-truth labels, any shape (zyx), integer dtype, ids >= 0.
        pred_block: predicted labels, same shape.

    Returns:
        ``(pairs, counts)``: pairs (K, 2) uint64 ``(gt_id, pred_id)`` in lexicographic order,
        counts (K,) int64 voxels. Rows with gt id 0 are kept; the metrics drop them.

    Raises:
        InputError: shape mismatch, non-integer dtype or negative labels.
    """
    check_labels(gt_block, "gt")
    check_labels(pred_block, "pred")
    check_same_shape(pred_block, "pred", gt_block, "gt")
    if gt_block.size == 0:
        return empty_contingency()
    gt_ids, gt_lut = _compact(gt_block.ravel())
    pred_ids, pred_lut = _compact(pred_block.ravel())
    key = gt_ids << _SHIFT
    key |= pred_ids
    keys, counts = fastremap.unique(key, return_counts=True)
    gt_col = keys >> _SHIFT
    pred_col = keys & _LOW
    if gt_lut is not None:
        gt_col = gt_lut[gt_col]
    if pred_lut is not None:
        pred_col = pred_lut[pred_col]
    pairs = np.stack([gt_col, pred_col], axis=1).astype(np.uint64, copy=False)
    counts = counts.astype(np.int64, copy=False)
    if gt_lut is not None or pred_lut is not None:
        return _sort_pairs(pairs, counts)
    return pairs, counts  # packed keys were sorted, so the rows already are


def labelled_rows(table: Contingency) -> tuple[np.ndarray, np.ndarray, float]:
    """The table's rows where gt != 0 (and the count is positive), counts as float64, and their total.

    Raises:
        InputError: no voxel has gt != 0.
    """
    pairs, counts = table
    keep = (pairs[:, 0] != 0) & (counts > 0)
    pairs, counts = pairs[keep], counts[keep].astype(np.float64)
    n_voxels = float(counts.sum())
    if n_voxels == 0:
        raise InputError("gt is all zero: expected labelled voxels (gt != 0) to evaluate against")
    return pairs, counts, n_voxels


def merge_contingency(tables: Iterable[Contingency]) -> Contingency:
    """Sum contingency tables of several blocks (or of partial sums) into one.

    Args:
        tables: ``(pairs, counts)`` tables as returned by :func:`contingency_block`.

    Returns:
        One table with unique sorted pairs and the summed counts (int64).
    """
    pair_list, count_list = [], []
    for pairs, counts in tables:
        pair_list.append(np.asarray(pairs, dtype=np.uint64).reshape(-1, 2))
        count_list.append(np.asarray(counts, dtype=np.int64).ravel())
    if not pair_list:
        return empty_contingency()
    pairs = np.concatenate(pair_list)
    counts = np.concatenate(count_list)
    return group_sum_pairs(pairs, counts)


def group_sum_pairs(pairs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``values`` over equal rows of ``pairs`` (K, 2); rows come back sorted and unique."""
    if len(pairs) == 0:
        return pairs.reshape(0, 2), values[:0]
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs = pairs[order]
    values = values[order]
    starts = np.flatnonzero(np.r_[True, np.any(pairs[1:] != pairs[:-1], axis=1)])
    return pairs[starts], np.add.reduceat(values, starts)


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Non-negative labels as a writable uint64 copy; ids >= 2**32 renumbered to 0..n-1.

    Returns the labels and the lookup table new id -> old id (None when unchanged).
    """
    if labels.size == 0 or int(labels.max()) <= int(_LOW):
        return labels.astype(np.uint64, copy=True), None
    renumbered, remap = fastremap.renumber(labels, start=0, preserve_zero=False, in_place=False)
    lut = np.zeros(len(remap), dtype=np.uint64)
    lut[np.fromiter(remap.values(), dtype=np.int64, count=len(remap))] = np.fromiter(
        remap.keys(), dtype=np.uint64, count=len(remap)
    )
    return renumbered.astype(np.uint64), lut


def _sort_pairs(pairs: np.ndarray, counts: np.ndarray) -> Contingency:
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order], counts[order]
