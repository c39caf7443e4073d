"""VOI and adapted Rand: hand-computed cases, skimage agreement, invariances."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import adapted_rand_error, variation_of_information as sk_voi

from axonseg.evaluate import (
    adapted_rand,
    adapted_rand_from_contingency,
    contingency_block,
    evaluate_arrays,
    variation_of_information,
)


def _random_pair(seed: int, zeros_in_pred: bool):
    rng = np.random.default_rng(seed)
    gt = np.repeat(rng.integers(0, 12, (6, 10, 5)), 2, axis=2).astype(np.uint32)
    noise = rng.random(gt.shape) < 0.3
    pred = np.where(noise, rng.integers(0 if zeros_in_pred else 1, 9, gt.shape), gt % 7 + 1).astype(np.int32)
    return pred, gt


def test_one_object_cut_in_two_is_one_bit_of_split():
    gt = np.ones((1, 1, 4), np.uint8)
    pred = np.array([[[1, 1, 2, 2]]], np.uint8)
    voi = variation_of_information(pred, gt)
    assert (voi.split, voi.merge, voi.n_voxels) == (pytest.approx(1.0), 0.0, 4)
    rand = adapted_rand(pred, gt)  # sum_A = 16, sum_B = sum_AB = 8
    assert (rand.precision, rand.recall) == (pytest.approx(1.0), pytest.approx(0.5))
    assert rand.arand == pytest.approx(1 - 2 / 3)


def test_predicted_zero_inside_gt_counts_as_singletons():
    gt = np.ones((1, 1, 4), np.uint8)
    pred = np.array([[[1, 1, 0, 0]]], np.uint8)
    rand = adapted_rand(pred, gt)  # sum_B = sum_AB = 2^2 + 2 singletons = 6, sum_A = 16
    assert rand.precision == pytest.approx(1.0)
    assert rand.recall == pytest.approx(6 / 16)
    assert rand.arand == pytest.approx(1 - 2 * 0.375 / 1.375)


def test_gt_zero_is_not_scored():
    gt = np.array([[[1, 1, 0, 0]]], np.uint8)
    pred = np.array([[[5, 5, 5, 6]]], np.uint8)
    assert variation_of_information(pred, gt).total == 0.0
    assert adapted_rand(pred, gt).arand == 0.0


def test_gt_against_itself_scores_zero(tubes):
    gt, skeletons = tubes
    result = evaluate_arrays(gt, gt, skeletons, voxel_size=(30, 6, 6))
    assert result.voi.split == 0.0 and result.voi.merge == 0.0
    assert result.rand.arand == pytest.approx(0.0, abs=1e-15)
    assert result.erl.nerl == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_voi_matches_skimage_on_labelled_voxels(seed):
    # same definition, same bits; skimage gets only the gt != 0 voxels (its ignore_labels
    # would do the same) and returns [split, merge] for (gt, pred).
    pred, gt = _random_pair(seed, zeros_in_pred=True)
    ours = variation_of_information(pred, gt)
    labelled = gt > 0
    split, merge = sk_voi(gt[labelled], pred[labelled])
    assert ours.split == pytest.approx(split, rel=1e-10)
    assert ours.merge == pytest.approx(merge, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_adapted_rand_matches_skimage_with_its_pair_convention(seed):
    # skimage counts pairs of distinct voxels and swaps the names precision / recall
    pred, gt = _random_pair(seed, zeros_in_pred=False)
    are, sk_precision, sk_recall = adapted_rand_error(gt, pred, ignore_labels=(0,))
    ours = adapted_rand(pred, gt, count_self_pairs=False)
    assert ours.arand == pytest.approx(are, rel=1e-10)
    assert ours.recall == pytest.approx(sk_precision, rel=1e-10)
    assert ours.precision == pytest.approx(sk_recall, rel=1e-10)
    # with self pairs (SNEMI3D) the figure moves only slightly on 600 voxels
    assert adapted_rand(pred, gt).arand == pytest.approx(are, abs=0.02)


def test_relabelling_prediction_changes_nothing(tubes):
    gt, skeletons = tubes
    rng = np.random.default_rng(7)
    pred = gt.copy()
    pred[:, :, 20:] += 10 * (pred[:, :, 20:] > 0).astype(np.uint32)  # split every tube in two
    pred[pred == 2] = 1  # and merge two of them
    ids = np.unique(pred[pred > 0])
    permuted = np.zeros(int(pred.max()) + 1, np.uint64)
    permuted[ids] = rng.permutation(ids) * 1000 + 17  # new ids, 0 stays 0
    relabelled = permuted[pred]
    first = evaluate_arrays(pred, gt, skeletons, voxel_size=(30, 6, 6)).summary()
    second = evaluate_arrays(relabelled, gt, skeletons, voxel_size=(30, 6, 6)).summary()
    assert second.pop("mask_threshold") is first.pop("mask_threshold") is None
    assert first == pytest.approx(second, rel=1e-12)
    assert first["n_merge"] == 1 and first["n_split"] == 6


def test_ids_beyond_32_bits_give_the_same_table():
    pred, gt = _random_pair(2, zeros_in_pred=True)
    big_pred = pred.astype(np.uint64) + np.uint64(2**40) * (pred > 0)
    pairs, counts = contingency_block(gt, pred)
    big_pairs, big_counts = contingency_block(gt, big_pred)
    assert np.array_equal(counts, big_counts)
    shift = np.where(pairs[:, 1] > 0, np.uint64(2**40), np.uint64(0))
    assert np.array_equal(big_pairs[:, 1], pairs[:, 1] + shift)
    assert adapted_rand_from_contingency((big_pairs, big_counts)) == adapted_rand(pred, gt)


def test_contingency_counts_every_voxel_once():
    pred, gt = _random_pair(3, zeros_in_pred=True)
    pairs, counts = contingency_block(gt, pred)
    assert counts.sum() == gt.size
    assert len(np.unique(pairs, axis=0)) == len(pairs)
    gt_id, pred_id = pairs[5]
    assert counts[5] == np.count_nonzero((gt == gt_id) & (pred == pred_id))


def test_real_labels_with_merges_and_splits_agree_with_skimage(fib_path):
    import h5py

    with h5py.File(fib_path, "r") as handle:
        gt = handle["labels"][180:250]  # held-out slab
    ids, sizes = np.unique(gt[gt > 0], return_counts=True)
    largest = ids[np.argsort(sizes)[-4:]]
    pred = gt.astype(np.uint64)
    pred[pred == largest[0]] = largest[1]  # merge two large neurites
    cut = (pred == largest[2]) & (np.arange(gt.shape[2]) >= gt.shape[2] // 2)
    pred[cut] = 10**6  # split another in half
    voi = variation_of_information(pred, gt)
    labelled = gt > 0
    assert voi.split > 0.005 and voi.merge > 0.005
    assert [voi.split, voi.merge] == pytest.approx(list(sk_voi(gt[labelled], pred[labelled])), rel=1e-10)
    are = adapted_rand_error(gt, pred, ignore_labels=(0,))[0]
    assert adapted_rand(pred, gt, count_self_pairs=False).arand == pytest.approx(are, rel=1e-10)
    assert adapted_rand(pred, gt).arand == pytest.approx(are, rel=1e-4)  # self pairs: ~1e-7 of 4.4M^2
