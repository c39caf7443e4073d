"""Blockwise evaluation: per-block statistics summed into one result.

A block contributes a contingency table, the segment ids under the skeleton nodes it holds,
and (with a mask) per-segment masked voxel counts. All three add up exactly, so a volume
scored block by block gives the same figures as scoring it whole.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from axonseg.evaluate._checks import check_labels, check_same_shape
from axonseg.evaluate.contingency import Contingency, contingency_block, merge_contingency
from axonseg.evaluate.edges import classify_edges
from axonseg.evaluate.erl import erl_from_classification
from axonseg.evaluate.lookup import lookup_segments_block, mask_voxel_counts, merge_counts, node_voxel_indices
from axonseg.evaluate.rand import adapted_rand_from_contingency
from axonseg.evaluate.result import EvaluationResult
from axonseg.evaluate.skeletons import as_flat_skeletons
from axonseg.evaluate.split_merge import lists_from_classification
from axonseg.evaluate.voi import voi_from_contingency
from axonseg.errors import InputError

logger = logging.getLogger(__name__)

# Pending block tables are merged once this many have queued, bounding memory and work.
_MERGE_EVERY = 64


@dataclass(frozen=True)
class BlockStatistics:
    """What one block contributes; picklable, so workers can compute it and ship it back.

    Attributes:
        contingency: ``(pairs, counts)`` (gt id, pred id) -> voxels.
        node_index: (n,) int64 skeleton nodes inside the block.
        node_segments: (n,) uint64 segment id under each of them.
        mask_counts: ``(segment_ids, voxels)`` inside the non-axon mask, or None.
    """

    contingency: Contingency
    node_index: np.ndarray
    node_segments: np.ndarray
    mask_counts: tuple[np.ndarray, np.ndarray] | None


class EvaluationAccumulator:
    """Sums per-block statistics and computes VOI, adapted Rand, ERL and split/merge lists.

    Blocks must not overlap (each voxel counted once); their union is the scored volume.

    Example::

        acc = EvaluationAccumulator(skeletons, voxel_size=(30, 6, 6))
        for offset, pred_block, gt_block in blocks:
            acc.add_block(pred_block, gt_block, offset)
        result = acc.finish(merge_threshold=0)
    """

    def __init__(
        self,
        skeletons=None,
        voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
        offset_nm: Sequence[float] = (0.0, 0.0, 0.0),
    ) -> None:
        """Args:
        skeletons: ground-truth skeletons (nm, zyx) in a form :func:`as_flat_skeletons`
            takes, or None to skip ERL and the split/merge lists.
        voxel_size: (z, y, x) voxel size of the volumes, nm.
        offset_nm: (z, y, x) world position of voxel (0, 0, 0), nm.
        """
        self.skeletons = as_flat_skeletons(skeletons) if skeletons is not None else None
        n_nodes = self.skeletons.n_nodes if self.skeletons is not None else 0
        positions = self.skeletons.positions_nm if self.skeletons is not None else np.zeros((0, 3))
        self.node_voxels = node_voxel_indices(positions, voxel_size, offset_nm)
        self.z_order = np.argsort(self.node_voxels[:, 0], kind="stable")
        self.node_segments = np.zeros(n_nodes, dtype=np.uint64)
        self.node_covered = np.zeros(n_nodes, dtype=bool)
        self._tables: list[Contingency] = []
        self._mask_tables: list[tuple[np.ndarray, np.ndarray]] = []
        self._has_mask: bool | None = None
        self.n_blocks = 0

    def block_statistics(
        self,
        pred_block: np.ndarray,
        gt_block: np.ndarray,
        block_offset_voxels: Sequence[int] = (0, 0, 0),
        mask_block: np.ndarray | None = None,
    ) -> BlockStatistics:
        """Compute one block's contribution without adding it (for parallel workers).

        Args:
            pred_block: (z, y, x) predicted labels of the block.
            gt_block: (z, y, x) gt labels, same shape.
            block_offset_voxels: global voxel index (zyx) of the block's first voxel.
            mask_block: optional (z, y, x) non-axon mask, same shape.
        """
        check_labels(pred_block, "pred")
        check_labels(gt_block, "gt")
        check_same_shape(pred_block, "pred", gt_block, "gt")
        if pred_block.ndim != 3:
            raise InputError(f"pred has shape {pred_block.shape}: expected a 3D (z, y, x) block")
        node_index, node_segments = lookup_segments_block(
            pred_block, self.node_voxels, block_offset_voxels, self.z_order
        )
        mask_counts = mask_voxel_counts(pred_block, mask_block) if mask_block is not None else None
        return BlockStatistics(contingency_block(gt_block, pred_block), node_index, node_segments, mask_counts)

    def add(self, stats: BlockStatistics) -> None:
        """Add one block's statistics."""
        if self._has_mask is None:
            self._has_mask = stats.mask_counts is not None
        elif self._has_mask != (stats.mask_counts is not None):
            raise InputError("mask given for some blocks but not others: expected a mask for all or none")
        self._tables.append(stats.contingency)
        if len(self._tables) >= _MERGE_EVERY:
            self._tables = [merge_contingency(self._tables)]
        if stats.mask_counts is not None:
            self._mask_tables.append(stats.mask_counts)
            if len(self._mask_tables) >= _MERGE_EVERY:
                self._mask_tables = [merge_counts(self._mask_tables)]
        self.node_segments[stats.node_index] = stats.node_segments
        self.node_covered[stats.node_index] = True
        self.n_blocks += 1

    def add_block(
        self,
        pred_block: np.ndarray,
        gt_block: np.ndarray,
        block_offset_voxels: Sequence[int] = (0, 0, 0),
        mask_block: np.ndarray | None = None,
    ) -> None:
        """Compute and add one block (see :meth:`block_statistics`)."""
        self.add(self.block_statistics(pred_block, gt_block, block_offset_voxels, mask_block))

    def contingency(self) -> Contingency:
        """The summed (gt id, pred id) -> voxels table so far."""
        self._tables = [merge_contingency(self._tables)]
        return self._tables[0]

    def finish(
        self,
        merge_threshold: int = 0,
        mask_threshold: int | None = None,
        erl_intervals: Sequence[float] | None = None,
        warn_outside: bool = True,
    ) -> EvaluationResult:
        """All metrics from the blocks added so far.

        Args:
            merge_threshold: see :func:`axonseg.evaluate.erl.expected_run_length`.
            mask_threshold: see there; None = ``merge_threshold`` (AxonEM).
            erl_intervals: optional skeleton-length bounds in nm for per-interval ERL.
            warn_outside: log a warning when skeleton nodes lie outside every block (the count
                is in the result either way); callers that finish several segmentations over
                the same blocks warn once.

        Raises:
            InputError: no block added, or the gt of all blocks is zero.
        """
        if self.n_blocks == 0:
            raise InputError("no blocks were added: expected at least one pred/gt block")
        table = self.contingency()
        voi = voi_from_contingency(table)  # raises on all-zero gt
        rand = adapted_rand_from_contingency(table)
        if self.skeletons is None:
            return EvaluationResult(voi, rand, None, None, merge_threshold, mask_threshold)
        n_outside = int((~self.node_covered).sum())
        if n_outside and warn_outside:
            logger.warning("%d of %d skeleton nodes lie outside the evaluated blocks; scored as background",
                           n_outside, len(self.node_covered))
        mask_counts = merge_counts(self._mask_tables) if self._has_mask else None
        classification = classify_edges(
            self.skeletons, self.node_segments, merge_threshold, mask_counts, mask_threshold
        )
        return EvaluationResult(
            voi=voi,
            rand=rand,
            erl=erl_from_classification(classification, erl_intervals),
            split_merge=lists_from_classification(classification),
            merge_threshold=merge_threshold,
            mask_threshold=mask_threshold,
            n_nodes_outside=n_outside,
        )


def evaluate_arrays(
    pred: np.ndarray,
    gt: np.ndarray,
    skeletons=None,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    offset_nm: Sequence[float] = (0.0, 0.0, 0.0),
    mask: np.ndarray | None = None,
    merge_threshold: int = 0,
    mask_threshold: int | None = None,
    erl_intervals: Sequence[float] | None = None,
) -> EvaluationResult:
    """Evaluate a segmentation held in memory against gt labels and gt skeletons.

    Args:
        pred: (Z, Y, X) predicted segment ids (integer, >= 0).
        gt: (Z, Y, X) gt labels; 0 = unlabelled, not scored by VOI / Rand.
        skeletons: gt skeletons, nodes in nm zyx (dict ``id -> (nodes_nm, edges)``,
            :class:`FlatSkeletons` or a flat tuple); None skips ERL.
        voxel_size: (z, y, x) nm.
        offset_nm: (z, y, x) world position of voxel (0, 0, 0), nm.
        mask: optional (Z, Y, X) non-axon mask for ERL's merge rule.
        merge_threshold, mask_threshold, erl_intervals: see :meth:`EvaluationAccumulator.finish`.

    Returns:
        :class:`EvaluationResult`; ``.summary()`` gives the headline dict.

    Raises:
        InputError: shape mismatch, float or negative labels, all-zero gt.
    """
    check_labels(gt, "gt")
    check_labels(pred, "pred")
    check_same_shape(pred, "pred", gt, "gt")
    if not gt.any():
        raise InputError("gt is all zero: expected labelled voxels (gt != 0) to evaluate against")
    accumulator = EvaluationAccumulator(skeletons, voxel_size, offset_nm)
    accumulator.add_block(pred, gt, (0, 0, 0), mask)
    return accumulator.finish(merge_threshold, mask_threshold, erl_intervals)
