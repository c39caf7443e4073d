"""Fragments' watershed phases, the hashed region-graph kernel and relabel's two lookup paths,
each checked against a plain reference on generated data."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.segment import block_region_graph, relabel, watershed_fragments

NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]


def test_small_object_beside_a_thick_one_keeps_its_own_fragment():
    # a 4-voxel thick slab beside a 20-voxel thick one: inside the seed window the thick
    # object's distance maximum dominates, so the slab gets no maximum of its own; one noisy
    # face (0.6) between them must not merge them
    labels = np.ones((12, 24, 24), dtype=np.int64)
    labels[:, :, 20:] = 2
    affinities = np.ones((3,) + labels.shape, dtype=np.float32)
    affinities[2][:, :, 20] = 0.0
    affinities[2][6, 12, 20] = 0.6
    fragments, _ = watershed_fragments(affinities, NN_OFFSETS, seed_radius=8)
    assert set(np.unique(fragments[labels == 2])).isdisjoint(np.unique(fragments[labels == 1]))


def test_voxel_with_only_low_affinities_stays_alone():
    # an unlabelled voxel (every affinity to it is 0.1) inside one object: it must not be glued
    # to the object, the agglomeration decides
    affinities = np.ones((3, 10, 10, 10), dtype=np.float32)
    z, y, x = 5, 5, 5
    for axis, (dz, dy, dx) in enumerate(((1, 0, 0), (0, 1, 0), (0, 0, 1))):
        affinities[axis, z, y, x] = 0.1
        affinities[axis, z + dz, y + dy, x + dx] = 0.1
    fragments, n_ids = watershed_fragments(affinities, NN_OFFSETS, seed_method="components")
    assert n_ids == 2
    assert (fragments == fragments[z, y, x]).sum() == 1


def reference_graph(context: np.ndarray, affinities: np.ndarray):
    """(u, v) -> (count, sum of affinities, dense histogram) by a loop over axes and np.unique."""
    here = context[1:, 1:, 1:]
    result = {}
    for axis, there in enumerate((context[:-1, 1:, 1:], context[1:, :-1, 1:], context[1:, 1:, :-1])):
        selected = (here != there) & (here != 0) & (there != 0)
        a, b = here[selected], there[selected]
        values = affinities[axis][selected]
        for lo, hi, value in zip(np.minimum(a, b), np.maximum(a, b), values):
            count, total, hist = result.setdefault((int(lo), int(hi)), [0, 0.0, np.zeros(256, int)])
            unit = value / 255.0 if affinities.dtype == np.uint8 else min(max(float(value), 0.0), 1.0)
            result[(int(lo), int(hi))][0] += 1
            result[(int(lo), int(hi))][1] += unit
            bin_ = int(value) if affinities.dtype == np.uint8 else int(np.rint(np.float32(unit) * np.float32(255)))
            hist[bin_] += 1
    return result


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_hashed_graph_matches_a_reference_on_random_fragments(dtype):
    rng = np.random.default_rng(5)
    # large ids (block offsets) with gaps, background holes, and context voxels
    ids = np.uint64(3 * 2**40) + rng.choice(10**6, 40, replace=False).astype(np.uint64)
    context = ids[rng.integers(0, 40, (9, 11, 13))].repeat(2, 0)[:9]
    context[rng.random(context.shape) < 0.05] = 0
    shape = tuple(s - 1 for s in context.shape)
    if dtype == np.uint8:
        affinities = rng.integers(0, 256, (3,) + shape).astype(np.uint8)
    else:
        affinities = rng.uniform(-0.1, 1.1, (3,) + shape).astype(np.float32)
    graph = block_region_graph(context, affinities, NN_OFFSETS, voxel_size=(4, 2, 1))
    expected = reference_graph(context, affinities)
    assert [(int(u), int(v)) for u, v in zip(graph.u, graph.v)] == sorted(expected)
    dense = graph.edge_histograms()
    for i, key in enumerate(sorted(expected)):
        count, total, hist = expected[key]
        assert graph.count[i] == count
        assert graph.aff_sum[i] == pytest.approx(total, rel=1e-6)
        np.testing.assert_array_equal(dense[i], hist)
    assert np.all(np.diff(graph.hist_bin.astype(int))[np.diff(np.repeat(np.arange(graph.n_edges), np.diff(graph.hist_ptr))) == 0] > 0)
    write = context[1:, 1:, 1:]
    node_ids, sizes = np.unique(write[write > 0], return_counts=True)
    np.testing.assert_array_equal(graph.node_id, node_ids)
    np.testing.assert_array_equal(graph.node_size, sizes)
    z, y, x = np.nonzero(write == node_ids[0])
    np.testing.assert_allclose(graph.node_centroid[0], [4 * z.mean(), 2 * y.mean(), x.mean()])


@pytest.mark.parametrize("offset", [0, 2**50])
def test_relabel_dense_and_sparse_id_paths_match_a_dictionary(offset):
    rng = np.random.default_rng(2)
    fragment_ids = np.uint64(offset) + np.arange(1, 301, dtype=np.uint64)
    if offset:
        fragment_ids[150:] += np.uint64(2**45)  # a range far too wide for a dense table
    segment_ids = fragment_ids[rng.integers(0, 300, 300)]
    fragments = fragment_ids[rng.integers(0, 300, (6, 20, 20))]
    fragments[0, 0, :5] = 0
    fragments[1, 1, 1] = np.uint64(offset) + np.uint64(10**6)  # not in the LUT: kept
    table = dict(zip(fragment_ids.tolist(), segment_ids.tolist()))
    expected = np.vectorize(lambda f: table.get(f, f), otypes=[np.uint64])(fragments)
    expected[fragments == 0] = 0
    np.testing.assert_array_equal(relabel(fragments, fragment_ids, segment_ids), expected)


def test_relabel_rejects_negative_ids():
    with pytest.raises(InputError, match="negative"):
        relabel(np.array([[[-1, 2]]]), np.array([2]), np.array([3]))


def test_float16_affinities_give_the_float32_fragments() -> None:
    from axonseg.segment import watershed_fragments

    affinities = np.random.default_rng(0).random((3, 8, 16, 16)).astype(np.float16)
    offsets = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]
    half, n_half = watershed_fragments(affinities, offsets)
    single, n_single = watershed_fragments(affinities.astype(np.float32), offsets)
    assert n_half == n_single > 0
    np.testing.assert_array_equal(half, single)


@pytest.mark.parametrize("radius", [0, 1, 2, 4])
def test_local_maxima_equals_maximum_filter(radius):
    """The numba seed maxima equal scipy's maximum_filter test, ties and borders included."""
    import edt
    from scipy import ndimage

    from axonseg.segment._seed_kernel import local_maxima

    rng = np.random.default_rng(3)
    inside = ndimage.binary_opening(rng.random((20, 40, 36)) < 0.8)
    distance = edt.edt(inside, anisotropy=(30.0, 10.0, 10.0))
    expected = (distance == ndimage.maximum_filter(distance, size=2 * radius + 1)) & inside
    got = local_maxima(distance, inside, radius)
    assert expected.sum() > 10
    np.testing.assert_array_equal(got, expected)


def test_relabel_into_a_reused_buffer() -> None:
    fragments = np.arange(24, dtype=np.uint64).reshape(2, 3, 4)
    buffer = np.full(fragments.shape, 7, dtype=np.uint64)
    result = relabel(fragments, np.array([1, 2, 3], np.uint64), np.array([5, 5, 9], np.uint64), out=buffer)
    assert result is buffer
    np.testing.assert_array_equal(buffer, relabel(fragments, np.array([1, 2, 3]), np.array([5, 5, 9])))
    assert buffer[0, 0, 1] == 5 and buffer[0, 0, 3] == 9 and buffer[0, 0, 0] == 0
    with pytest.raises(InputError, match="out has shape"):
        relabel(fragments, np.array([1]), np.array([2]), out=np.zeros((2, 3), np.uint64))
