"""Split and merge lists on a small constructed case."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.evaluate import evaluate_arrays, split_merge_lists


def test_lists_on_three_skeletons(line):
    # skeleton 10: 21 nodes along x (1 nm steps), split 1|2 after node 9 and 2|3 after node 17
    # skeleton 20: 10 nodes, all in segment 5; skeleton 30: 4 nodes, 3 in segment 5 (merge)
    skeletons = {10: line(21), 20: line(10, start=(0, 40, 0)), 30: line(4, start=(0, 80, 0))}
    segments = np.r_[[1] * 10, [2] * 8, [3] * 3, [5] * 10, [5] * 3, [6]]
    lists = split_merge_lists(skeletons, segments)
    total = 20 + 9 + 3

    assert lists.n_split_edges == 3 and lists.n_split == 3
    first, second, third = lists.splits.to_records()
    # runs: C[1] = 9, C[2] = 7, C[3] = 2 nm; gain of joining = 2 * C_a * C_b / total
    assert first["skeleton_id"] == 10 and first["segment_ids"] == [1, 2]
    assert first["erl_gain_nm"] == pytest.approx(2 * 9 * 7 / total)
    assert first["location_nm"] == pytest.approx([0.0, 0.0, 9.5])  # midpoint of edge 9-10
    assert first["piece_lengths_nm"] == pytest.approx([9.0, 7.0])
    assert second["segment_ids"] == [2, 3] and second["location_nm"] == pytest.approx([0, 0, 17.5])
    assert second["erl_gain_nm"] == pytest.approx(2 * 7 * 2 / total)
    assert third["skeleton_id"] == 30 and third["segment_ids"] == [5, 6]
    assert third["erl_gain_nm"] == 0.0  # its piece in 5 is lost to the merge anyway

    assert lists.n_merge == 1
    (merge,) = lists.merges.to_records()
    assert merge["segment_id"] == 5
    assert merge["skeleton_ids"] == [20, 30]  # most nodes first
    assert merge["location_nm"] == pytest.approx([0.0, 80.0, 0.0])  # first node of 30 in 5
    assert merge["involved_length_nm"] == pytest.approx(9 + 2)
    assert merge["erl_loss_nm"] == pytest.approx((9**2 + 2**2) / total)
    assert not merge["by_mask"]


def test_split_with_several_crossings_is_one_row(line):
    nodes, edges = line(9)
    lists = split_merge_lists({1: (nodes, edges)}, np.array([1, 1, 2, 2, 1, 1, 2, 2, 2]))
    assert lists.n_split == 1 and lists.n_split_edges == 3
    assert lists.splits.n_edges.tolist() == [3]
    assert lists.splits.location_nm.tolist() == [[0.0, 0.0, 1.5]]


def test_mask_merge_is_listed_with_its_voxels(tubes):
    gt, skeletons = tubes
    z, y, x = np.argwhere(gt == 3)[0]
    pred = gt.copy()
    pred[z, y, x - 1] = 3  # segment 3 leaks one voxel into a non-axon region
    mask = np.zeros(gt.shape, bool)
    mask[z, y, x - 1] = True
    result = evaluate_arrays(pred, gt, skeletons, (30, 6, 6), mask=mask)
    (merge,) = result.split_merge.merges.to_records()
    assert merge["segment_id"] == 3 and merge["by_mask"] and merge["mask_voxels"] == 1
    assert merge["skeleton_ids"] == [3]
    assert result.erl.skeleton_erl_nm[result.erl.skeleton_ids == 3].tolist() == [0.0]
    # a mask threshold of 1 voxel tolerates the leak
    tolerant = evaluate_arrays(pred, gt, skeletons, (30, 6, 6), mask=mask, mask_threshold=1)
    assert tolerant.summary()["n_merge"] == 0 and tolerant.erl.nerl == pytest.approx(1.0)


def test_summary_has_the_cli_keys(tubes):
    gt, skeletons = tubes
    summary = evaluate_arrays(gt, gt, skeletons, (30, 6, 6)).summary()
    for key in ("erl_nm", "gt_erl_nm", "nerl", "voi_split", "voi_merge", "arand", "n_split", "n_merge"):
        assert summary[key] is not None
    assert summary["erl_nm"] == pytest.approx(210.0)
