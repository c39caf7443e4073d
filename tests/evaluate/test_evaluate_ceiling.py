"""The perfect-agglomeration reference (majority ground-truth body per fragment)."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.evaluate import evaluate_arrays
from axonseg.evaluate.ceiling import majority_lut
from axonseg.segment import apply_lut


def test_each_fragment_gets_its_majority_body_and_unlabelled_fragments_stay_apart():
    gt = np.zeros((2, 4, 6), np.uint32)
    gt[:, :, :3], gt[:, :, 3:] = 5, 9
    fragments = np.zeros_like(gt, dtype=np.uint64)
    fragments[:, :, :2] = 1  # all body 5
    fragments[:, :, 2:4] = 2  # 8 voxels of 5, 8 of 9: a tie goes to the smaller body
    fragments[:, :, 4] = 3
    fragments[:, :, 5] = 4
    gt[:, :, 5] = 0  # fragment 4 sees no label
    lut = majority_lut(fragments, gt)
    assert lut.fragment_ids.tolist() == [1, 2, 3]
    assert lut.segment_ids.tolist() == [4 + 5, 4 + 5, 4 + 9]
    segmentation = apply_lut(fragments, lut)
    assert segmentation[0, 0, 5] == 4 and len(np.unique(segmentation)) == 3


def test_pure_fragments_reach_a_perfect_score_and_a_merged_one_does_not():
    gt = np.zeros((4, 8, 8), np.uint32)
    gt[:, :4], gt[:, 4:] = 1, 2
    fragments = (np.arange(gt.size).reshape(gt.shape) // 8 + 1).astype(np.uint64)  # rows: pure pieces
    perfect = apply_lut(fragments, majority_lut(fragments, gt))
    result = evaluate_arrays(perfect, gt).summary()
    assert result["voi_split"] == pytest.approx(0.0) and result["voi_merge"] == pytest.approx(0.0)
    leaky = fragments.copy()
    leaky[:, 3:5] = 999  # one fragment across the boundary: the ceiling keeps the merge
    merged = apply_lut(leaky, majority_lut(leaky, gt))
    assert evaluate_arrays(merged, gt).summary()["voi_merge"] > 0.1


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="same shape"):
        majority_lut(np.zeros((2, 2, 2), np.uint64), np.zeros((2, 2, 3), np.uint64))
    with pytest.raises(InputError, match="gt has dtype float32"):
        majority_lut(np.zeros((2, 2, 2), np.uint64), np.zeros((2, 2, 2), np.float32))
