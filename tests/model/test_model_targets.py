"""Affinity targets, masks, balancing and boundary weights, and local shape descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.model.lsd import compute_lsds, lsd_margin
from axonseg.model.sampler import output_lsds
from axonseg.model.targets import (
    balance_weights,
    boundary_distance_weights,
    compute_affinities,
    crop_centre,
    output_affinities,
)


def two_objects() -> np.ndarray:
    labels = np.zeros((4, 6, 6), dtype=np.uint32)
    labels[:, :, :3] = 1
    labels[:, :, 3:] = 2
    labels[:, 0, :] = 0  # an unannotated row
    return labels


def test_affinities_nearest_and_long_range():
    labels = two_objects()
    affs, mask = compute_affinities(labels, [(0, 0, -1), (0, 0, -3), (-1, 0, 0)])
    # x-affinity: voxel x pairs with x-1; across the 1|2 border (x=3) it is 0
    assert affs[0, 1, 2, 1] == 1 and affs[0, 1, 2, 3] == 0
    assert mask[0, 1, 2, 0] == 0  # partner outside the volume
    assert mask[0, 1, 2, 3] == 1
    # long range: x=4 pairs with x=1 (different objects); x=5 pairs with x=2 (different)
    assert affs[1, 1, 2, 4] == 0 and mask[1, 1, 2, 4] == 1
    assert mask[1, 1, 2, 2] == 0
    # z: first section has no partner
    assert mask[2, 0].sum() == 0 and affs[2, 1:, 1:].all()
    # the unannotated row y=0 is masked, not a boundary
    assert mask[:, :, 0, :].sum() == 0 and affs[:, :, 0, :].sum() == 0


def test_zero_as_background():
    labels = two_objects()
    affs, mask = compute_affinities(labels, [(0, -1, 0)], zero_is_unlabelled=False)
    # y=1 pairs with the background row y=0: a real negative, counted in the loss
    assert mask[0, 1, 1, 1] == 1 and affs[0, 1, 1, 1] == 0
    assert affs[0, 1, 2, 1] == 1


def test_affinities_reject_float_labels():
    with pytest.raises(InputError, match="dtype float32"):
        compute_affinities(np.zeros((3, 3, 3), np.float32), [(0, 0, -1)])


@pytest.mark.parametrize("zero_is_unlabelled", [True, False])
@pytest.mark.parametrize(("shape", "out", "offsets"), [
    ((20, 30, 30), (8, 10, 10), [(-1, 0, 0), (0, -1, 0), (0, 0, -1), (-3, 0, 0), (0, -9, 0), (0, 0, -9)]),
    # offsets that reach past the crop's margin: their partners outside the crop stay masked
    ((9, 12, 12), (3, 4, 4), [(-5, 0, 0), (0, 6, 0), (0, 0, -7), (1, 1, 1)]),
])
def test_output_affinities_equal_those_of_the_whole_crop(zero_is_unlabelled, shape, out, offsets):
    labels = np.random.default_rng(3).integers(0, 4, shape).astype(np.uint64)  # many boundaries and zeros
    affinities, mask = compute_affinities(labels, offsets, zero_is_unlabelled)
    fast_affinities, fast_mask = output_affinities(labels, offsets, out, zero_is_unlabelled)
    assert fast_affinities.shape == (len(offsets),) + out
    assert np.array_equal(fast_affinities, crop_centre(affinities, out))
    assert np.array_equal(fast_mask, crop_centre(mask, out))
    assert 0 < fast_affinities.mean() < 1 and fast_mask.max() == 1
    if zero_is_unlabelled or shape == (9, 12, 12):  # masked: unlabelled partners, or partners outside the crop
        assert fast_mask.min() == 0


def test_balance_weights_equalise_classes():
    labels = two_objects()
    affs, mask = compute_affinities(labels, [(0, 0, -1)])
    weights = balance_weights(affs, mask, clip=0.01)
    positive = (affs[0] > 0) & (mask[0] > 0)
    negative = (affs[0] == 0) & (mask[0] > 0)
    assert weights[0][positive].sum() == pytest.approx(weights[0][negative].sum(), rel=1e-5)
    assert weights[0][mask[0] == 0].sum() == 0
    assert weights[0][negative].mean() > weights[0][positive].mean()  # negatives are rarer here


def test_boundary_weights_peak_at_boundaries():
    labels = two_objects()[:, 1:]
    weights = boundary_distance_weights(labels, (10, 10, 10), sigma_nm=10, scale=2.0)
    assert weights[1, 2, 2] == pytest.approx(3.0)  # next to the 1|2 border
    assert weights[1, 2, 0] == pytest.approx(1 + 2 * np.exp(-2.0), rel=1e-4)  # 20 nm from it
    assert np.all(weights >= 1.0)


def test_lsd_of_a_ball():
    z, y, x = np.indices((21, 21, 21))
    ball = ((z - 10) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= 36).astype(np.uint32)
    lsds = compute_lsds(ball, sigma_nm=20.0, voxel_size=(10, 10, 10))
    assert lsds.shape == (10, 21, 21, 21)
    assert lsds[:, ball == 0].max() == 0
    centre = lsds[:, 10, 10, 10]
    np.testing.assert_allclose(centre[:3], 0.5, atol=1e-3)  # centre of mass is the voxel itself
    np.testing.assert_allclose(centre[3:6], centre[3], rtol=1e-3)  # isotropic spread
    np.testing.assert_allclose(centre[6:9], 0.5, atol=1e-3)  # no correlation
    # on the +x surface the local mass lies towards -x: offset channel 2 below 0.5
    assert lsds[2, 10, 10, 16] < 0.45 and lsds[9, 10, 10, 16] < lsds[9, 10, 10, 10]
    assert lsds.min() >= 0 and lsds.max() <= 1


def voronoi_labels(shape=(40, 56, 56), n_seeds=14, seed=0) -> np.ndarray:
    """Space-filling objects (nearest of random seeds), with a 0 (unlabelled) slab in z."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1, (n_seeds, 3)) * shape
    grid = np.stack(np.indices(shape), axis=-1)
    labels = (np.argmin(((grid[..., None, :] - points) ** 2).sum(-1), axis=-1) + 1).astype(np.uint64)
    labels[:4] = 0
    return labels


def test_lsds_on_the_output_crop_plus_margin_equal_those_of_the_whole_crop():
    labels = voronoi_labels()
    out_shape = (8, 20, 20)
    assert lsd_margin(40.0, (10, 10, 10)).tolist() == [12, 12, 12]  # 40 + 2 x 12 < 56: a real cut
    whole = crop_centre(compute_lsds(labels, 40.0, (10, 10, 10)), out_shape)
    np.testing.assert_allclose(output_lsds(labels, out_shape, 40.0, (10, 10, 10)), whole, atol=1e-4)


def test_downsampled_lsds_stay_close_to_the_exact_ones():
    labels = voronoi_labels(seed=1)
    exact = compute_lsds(labels, 80.0, (10, 10, 10))
    coarse = compute_lsds(labels, 80.0, (10, 10, 10), downsample=2)
    difference = np.abs(coarse - exact)
    assert difference.mean() < 0.004 and np.percentile(difference, 99) < 0.03
    assert coarse[:, labels == 0].max() == 0 and coarse.min() >= 0 and coarse.max() <= 1
    with pytest.raises(ValueError, match="downsample is 0"):
        compute_lsds(labels, 80.0, (10, 10, 10), downsample=0)


def test_crop_centre():
    array = np.arange(2 * 6 * 6 * 6).reshape(2, 6, 6, 6)
    assert crop_centre(array, (2, 4, 6)).shape == (2, 2, 4, 6)
    assert crop_centre(array, (2, 2, 2))[0, 0, 0, 0] == array[0, 2, 2, 2]
    with pytest.raises(InputError):
        crop_centre(array, (3, 3, 3))
