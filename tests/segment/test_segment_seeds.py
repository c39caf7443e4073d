"""Seed kernels of watershed_fragments: local maxima against scipy's maximum_filter, and the
seed ids of one cc3d pass against the two-pass definition (cc3d of the maxima, then one seed
per component without a maximum)."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest
from scipy import ndimage

from axonseg.segment import watershed_fragments
from axonseg.segment._seed_kernel import label_seeds, local_maxima

NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]


def random_inside(shape, fraction_outside: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) >= fraction_outside


@pytest.mark.parametrize("radius", [0, 1, 2, 4])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_local_maxima_equal_maximum_filter(radius, n_threads):
    """Ties and borders included: maxima of the squared distances as scipy defines them."""
    inside = ndimage.binary_opening(random_inside((20, 40, 36), 0.2, 3))
    distance = ndimage.distance_transform_edt(inside, sampling=(30.0, 10.0, 10.0)).astype(np.float32) ** 2
    expected = (distance == ndimage.maximum_filter(distance, size=2 * radius + 1)) & inside
    got = local_maxima(distance, inside, radius, n_threads)
    assert expected.sum() > 10
    np.testing.assert_array_equal(got, expected)


def two_pass_seeds(inside: np.ndarray, maxima: np.ndarray, connectivity: int) -> np.ndarray:
    """The former definition: cc3d of the maxima, then each inside component without a
    maximum as one more seed, in cc3d's component order."""
    seeds, n_seeds = cc3d.connected_components(maxima, connectivity=connectivity, return_N=True)
    seeds = seeds.astype(np.int64)
    components, n_components = cc3d.connected_components(inside, connectivity=connectivity, return_N=True)
    seeded = np.zeros(n_components + 1, dtype=bool)
    seeded[components[maxima]] = True
    next_id = n_seeds
    for component in range(1, n_components + 1):
        if not seeded[component]:
            next_id += 1
            seeds[components == component] = next_id
    return seeds


@pytest.mark.parametrize("shape, seed", [((16, 40, 44), 0), ((1, 80, 70), 1), ((7, 30, 9), 2)])
def test_one_cc3d_pass_gives_the_two_pass_seeds(shape, seed):
    rng = np.random.default_rng(seed)
    inside = ndimage.binary_opening(rng.random(shape) < 0.75) if shape[0] > 1 else rng.random(shape) < 0.7
    # maxima with plateaus (connected groups) and components without any
    maxima = inside & ndimage.binary_dilation(rng.random(shape) < 0.01)
    # a single section goes to cc3d as 2D (4-connected), as watershed_fragments does
    connectivity, squeeze = (6, slice(None)) if shape[0] > 1 else (4, 0)
    expected = two_pass_seeds(inside[squeeze], maxima[squeeze], connectivity).reshape(shape)
    components, n_components = cc3d.connected_components(
        inside[squeeze], connectivity=connectivity, return_N=True, out_dtype=np.uint32)
    seeds = components.view(np.int32).reshape(shape)
    n_seeds = label_seeds(seeds, n_components, maxima)
    n_maxima_groups = cc3d.connected_components(maxima[squeeze], connectivity=connectivity, return_N=True)[1]
    assert n_seeds == expected.max() > n_maxima_groups > 0  # some components had no maximum
    np.testing.assert_array_equal(seeds, expected)


def test_fragments_do_not_depend_on_threads(make_affinities):
    labels = np.ones((20, 48, 48), dtype=np.int64)
    labels[:, :, 20:] = 2
    labels[:, 30:, :] = 3
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.2, seed=4)
    one, n_one = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(40, 8, 8))
    two, n_two = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(40, 8, 8), n_threads=2)
    assert n_one == n_two > 3
    np.testing.assert_array_equal(one, two)
