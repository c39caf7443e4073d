"""Bootstrap intervals of NERL over the skeletons, and their place in the summary."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.evaluate import evaluate_arrays, nerl_interval, paired_nerl_difference


def test_interval_holds_the_figure_and_narrows_with_more_skeletons():
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 800):
        lengths = rng.uniform(1_000, 20_000, n)
        erl = lengths * rng.uniform(0.0, 1.0, n)
        nerl = float(lengths @ erl / (lengths @ lengths))
        low, high = nerl_interval(lengths, erl)
        assert low < nerl < high
        widths.append(high - low)
    # the spread falls about as 1/sqrt(n): 16x the skeletons, about a quarter of the width
    assert 0.15 < widths[1] / widths[0] < 0.4


def test_interval_is_reproducible_and_exact_for_a_perfect_segmentation():
    lengths = np.array([5_000.0, 12_000.0, 800.0])
    assert nerl_interval(lengths, lengths) == (1.0, 1.0)
    erl = lengths * [0.5, 0.1, 1.0]
    assert nerl_interval(lengths, erl, seed=3) == nerl_interval(lengths, erl, seed=3)
    assert np.isnan(nerl_interval(np.zeros(0), np.zeros(0))[0])
    with pytest.raises(InputError, match="level is 1.5"):
        nerl_interval(lengths, erl, level=1.5)
    with pytest.raises(InputError, match="skeleton ERL has shape"):
        nerl_interval(lengths, erl[:2])


def test_paired_difference_tells_a_real_gain_from_one_lucky_skeleton():
    rng = np.random.default_rng(1)
    lengths = rng.uniform(1_000, 20_000, 60)
    a = lengths * rng.uniform(0.1, 0.5, 60)
    better = paired_nerl_difference(lengths, a, a * 1.5)  # every skeleton 50% longer runs
    assert better["low"] > 0 and better["p_b_better"] == 1.0
    np.testing.assert_allclose(better["difference"], 0.5 * (lengths @ a) / (lengths @ lengths))
    # B fixes only the longest skeleton and breaks another long one as much: no clear winner
    b = a.copy()
    order = np.argsort(lengths)
    b[order[-1]] = lengths[order[-1]]
    b[order[-2]] = 0.0
    mixed = paired_nerl_difference(lengths, a, b)
    assert mixed["low"] < 0 < mixed["high"]
    assert 0.1 < mixed["p_b_better"] < 0.95


def test_summary_reports_the_interval_of_a_real_evaluation():
    gt = np.zeros((8, 40, 40), dtype=np.uint64)
    gt[:, :, :20], gt[:, :, 20:] = 1, 2
    seg = gt.copy()
    seg[:, 20:, :20] = 3  # body 1 split in y
    skeletons = {
        1: (np.array([[40.0, y, 100.0] for y in range(10, 400, 40)]), np.array([[i, i + 1] for i in range(9)])),
        2: (np.array([[40.0, y, 300.0] for y in range(10, 400, 40)]), np.array([[i, i + 1] for i in range(9)])),
    }
    summary = evaluate_arrays(seg, gt, skeletons, voxel_size=(10, 10, 10)).summary()
    assert 0 < summary["nerl"] < 1
    assert summary["nerl_low"] <= summary["nerl"] <= summary["nerl_high"]
    assert summary["nerl_low"] < summary["nerl_high"]
    assert evaluate_arrays(gt, gt, skeletons, voxel_size=(10, 10, 10)).summary()["nerl_low"] == 1.0
    assert evaluate_arrays(seg, gt, voxel_size=(10, 10, 10)).summary()["nerl_low"] is None
