"""Pyramid downsampling: mean for EM, mode and strided for labels; level geometry in nm."""

from __future__ import annotations

import numpy as np

from axonseg.io.pyramid import downsample, pyramid_factors
from axonseg.io.writers import level_geometry_for, level_shapes


def test_mean_downsampling_matches_block_means() -> None:
    block = np.arange(4 * 4 * 4, dtype=np.float32).reshape(4, 4, 4)
    out = downsample(block, (2, 2, 2), "mean")
    assert out.shape == (2, 2, 2)
    assert out[0, 0, 0] == block[:2, :2, :2].mean()
    assert out[1, 1, 1] == block[2:, 2:, 2:].mean()


def test_mean_of_uint8_rounds_and_keeps_dtype() -> None:
    block = np.array([[[0, 1], [1, 1]], [[1, 1], [1, 1]]], dtype=np.uint8)  # mean 7/8
    out = downsample(block, (2, 2, 2), "mean")
    assert out.dtype == np.uint8 and out[0, 0, 0] == 1


def test_mode_keeps_majority_label_and_never_invents_ids() -> None:
    labels = np.zeros((2, 4, 4), dtype=np.uint64)
    labels[:, :2, :2] = 7
    labels[0, 0, 0] = 3
    labels[:, 2:, 2:] = 2**40
    out = downsample(labels, (2, 2, 2), "mode")
    assert out.shape == (1, 2, 2) and out.dtype == np.uint64
    assert out[0, 0, 0] == 7 and out[0, 1, 1] == 2**40 and out[0, 0, 1] == 0
    assert set(np.unique(out)) <= set(np.unique(labels))


def test_odd_shapes_pad_the_far_edge() -> None:
    block = np.ones((3, 5, 5), dtype=np.uint8) * 9
    assert downsample(block, (1, 2, 2), "mean").shape == (3, 3, 3)
    assert downsample(block, (1, 2, 2), "strided").shape == (3, 3, 3)
    assert (downsample(block, (1, 2, 2), "mode") == 9).all()


def test_anisotropic_pyramid_downsamples_in_plane_first() -> None:
    factors = pyramid_factors((30, 8, 8), (64, 1024, 1024), (64, 64, 64), max_levels=4)
    assert factors[:2] == [(1, 2, 2), (1, 2, 2)]  # 30x8x8 -> 30x16x16 -> 30x32x32
    assert factors[2] == (2, 2, 2)
    assert pyramid_factors((10, 10, 10), (128, 128, 128), (64, 64, 64)) == [(2, 2, 2)]


def test_level_geometry_and_shapes() -> None:
    geometry = level_geometry_for((30, 8, 8), (0, 0, 0), [(1, 2, 2), (2, 2, 2)])
    assert geometry[1] == ((30.0, 16.0, 16.0), (0.0, 4.0, 4.0))
    assert geometry[2] == ((60.0, 32.0, 32.0), (15.0, 12.0, 12.0))
    assert level_shapes((5, 9, 9), [(1, 2, 2), (2, 2, 2)]) == [(5, 9, 9), (5, 5, 5), (3, 3, 3)]
