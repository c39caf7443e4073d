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


def test_isolating_mixed_fragments_keeps_a_leak_from_merging_whole_skeletons():
    """Two long bodies side by side and one fragment across their contact at the far end: joined
    to body 1 by majority, it merges the two skeletons; kept alone, it costs only its nodes."""
    gt = np.zeros((4, 8, 40), np.uint32)
    gt[:, :4], gt[:, 4:] = 1, 2
    fragments = np.where(gt == 1, 1, 2).astype(np.uint64)
    fragments[:, 2:5, 36:] = 3  # 3 rows of body 1 and 1 row of body 2: majority body 1
    skeletons = {body: (np.array([[20.0, y, x * 10.0 + 5.0] for x in range(40)]),
                        np.array([[i, i + 1] for i in range(39)]))
                 for body, y in ((1, 15.0), (2, 45.0))}
    nodes_at = {1: 1, 2: 4}  # the nodes lie on rows 1 and 4 (y = 15 nm, 45 nm at 10 nm voxels)
    assert all(gt[2, nodes_at[b], 0] == b for b in (1, 2))
    majority = majority_lut(fragments, gt)
    isolated = majority_lut(fragments, gt, isolate_mixed=True)
    assert majority.fragment_ids.tolist() == [1, 2, 3] and isolated.fragment_ids.tolist() == [1, 2]
    scores = {name: evaluate_arrays(apply_lut(fragments, lut), gt, skeletons, (10.0, 10.0, 10.0)).summary()
              for name, lut in (("majority", majority), ("isolated", isolated))}
    # majority: body 1's whole run is lost to the merge (NERL 0.40); isolated: only the last 4
    # nodes of body 2 are cut off (0.91), at a higher VOI split: for VOI the majority is better
    assert scores["majority"]["n_merge"] == 1 and scores["majority"]["nerl"] < 0.45
    assert scores["isolated"]["n_merge"] == 0 and scores["isolated"]["nerl"] > 0.85
    assert scores["isolated"]["voi_split"] > scores["majority"]["voi_split"]


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="same shape"):
        majority_lut(np.zeros((2, 2, 2), np.uint64), np.zeros((2, 2, 3), np.uint64))
    with pytest.raises(InputError, match="gt has dtype float32"):
        majority_lut(np.zeros((2, 2, 2), np.uint64), np.zeros((2, 2, 2), np.float32))
