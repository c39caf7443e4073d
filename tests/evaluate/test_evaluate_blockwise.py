"""Blockwise accumulation gives exactly the one-shot figures."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest

from axonseg.evaluate import (
    EvaluationAccumulator,
    contingency_block,
    evaluate_arrays,
    mask_voxel_counts,
    merge_contingency,
    merge_counts,
)


def _damaged(gt: np.ndarray, seed: int) -> np.ndarray:
    """A prediction with splits, merges and holes, made from gt."""
    rng = np.random.default_rng(seed)
    pred = gt.astype(np.uint64) * 3
    pred[:, :, 25:] += (pred[:, :, 25:] > 0).astype(np.uint64)  # split all tubes at x = 25
    pred[pred == 6] = 3  # merge tubes 1 and 2 on their left half
    pred[rng.random(gt.shape) < 0.03] = 0  # holes
    return pred


def _blocks(shape, block_shape):
    for start in itertools.product(*(range(0, s, b) for s, b in zip(shape, block_shape))):
        yield start, tuple(slice(o, o + b) for o, b in zip(start, block_shape))


@pytest.mark.parametrize("block_shape", [(6, 20, 20), (5, 17, 40), (12, 40, 13)])
def test_blockwise_equals_one_shot(tubes, block_shape):
    gt, skeletons = tubes
    pred = _damaged(gt, 0)
    mask = np.zeros(gt.shape, bool)
    mask[0, :, :] = True  # a non-axon slab that segment 0 / the background touches
    mask[6, 12, 10:12] = True
    one_shot = evaluate_arrays(pred, gt, skeletons, (30, 6, 6), mask=mask, erl_intervals=[0, 100, 1e9])
    accumulator = EvaluationAccumulator(skeletons, (30, 6, 6))
    for start, region in _blocks(gt.shape, block_shape):
        accumulator.add_block(pred[region], gt[region], start, mask[region])
    blockwise = accumulator.finish(erl_intervals=[0, 100, 1e9])
    assert accumulator.n_blocks > 1
    assert blockwise.to_dict(limit=None) == one_shot.to_dict(limit=None)
    assert one_shot.summary()["n_split"] > 0 and one_shot.summary()["n_merge"] > 0


def test_block_tables_sum_to_the_whole_table(tubes):
    gt, _ = tubes
    pred = _damaged(gt, 1)
    whole = contingency_block(gt, pred)
    parts = [contingency_block(gt[r], pred[r]) for _, r in _blocks(gt.shape, (4, 13, 40))]
    merged = merge_contingency(parts)
    assert np.array_equal(merged[0], whole[0]) and np.array_equal(merged[1], whole[1])
    mask = gt % 2 == 1
    whole_mask = mask_voxel_counts(pred, mask)
    merged_mask = merge_counts([mask_voxel_counts(pred[r], mask[r]) for _, r in _blocks(gt.shape, (4, 13, 40))])
    assert all(np.array_equal(a, b) for a, b in zip(whole_mask, merged_mask))


def test_block_statistics_travel_to_another_accumulator(tubes):
    # a worker computes statistics, pickles them, the driver adds them
    gt, skeletons = tubes
    pred = _damaged(gt, 2)
    worker = EvaluationAccumulator(skeletons, (30, 6, 6))
    driver = EvaluationAccumulator(skeletons, (30, 6, 6))
    for start, region in _blocks(gt.shape, (12, 20, 40)):
        driver.add(pickle.loads(pickle.dumps(worker.block_statistics(pred[region], gt[region], start))))
    expected = evaluate_arrays(pred, gt, skeletons, (30, 6, 6)).summary()
    assert driver.finish().summary() == expected


def test_nodes_outside_the_blocks_are_reported(tubes):
    gt, skeletons = tubes
    accumulator = EvaluationAccumulator(skeletons, (30, 6, 6))
    accumulator.add_block(gt[:, :, :20], gt[:, :, :20], (0, 0, 0))  # only the left half
    result = accumulator.finish()
    assert result.n_nodes_outside == 6 * 18  # x = 20..37 of 6 tubes
    assert result.erl.n_omitted == 6 * 18
