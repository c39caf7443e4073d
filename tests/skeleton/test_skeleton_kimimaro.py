"""Whole-volume skeletonization: axis order, anisotropy, units and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import ConfigError, InputError
from axonseg.config import validate_config
from axonseg.skeleton import SkeletonParams, compact_labels, endpoints, skeletonize, skeletonize_block


def _voxel_of(graph, voxel_size, offset=(0, 0, 0)):
    return np.floor((graph.nodes_nm - np.asarray(offset)) / np.asarray(voxel_size)).astype(int)


def test_params_default_to_axonem():
    params = SkeletonParams()
    teasar = params.teasar_params()
    assert (teasar["scale"], teasar["const"], teasar["pdrf_exponent"], teasar["pdrf_scale"]) == (1.5, 500, 4, 100000)
    assert params.dust_threshold == 100 and params.fix_branching and params.fix_borders
    with pytest.raises(ConfigError, match="scale"):
        validate_config(SkeletonParams, {"scale": -1})
    with pytest.raises(ConfigError, match="unknown key 'speed'"):
        validate_config(SkeletonParams, {"speed": 3})


def test_tube_along_z_at_30x8x8_has_z_length():
    voxel = (30.0, 8.0, 8.0)
    labels = np.zeros((20, 64, 64), np.uint32)
    labels[:, 28:37, 14:23] = 5  # a 9x9 voxel tube through all 20 slices, centred at y=32, x=18
    graph = skeletonize(labels, voxel)[5]
    assert graph.path_length_nm == pytest.approx(19 * 30.0, rel=0.03)
    # zyx order: z spans the volume, y and x stay at the tube centre (voxel centres).
    assert graph.nodes_nm[:, 0].min() == pytest.approx(15.0) and graph.nodes_nm[:, 0].max() == pytest.approx(585.0)
    np.testing.assert_allclose(graph.nodes_nm[:, 1], 32.5 * 8.0, atol=8.0)
    np.testing.assert_allclose(graph.nodes_nm[:, 2], 18.5 * 8.0, atol=8.0)
    assert graph.nodes_nm.dtype == np.float64 and graph.edges.dtype == np.int64
    assert graph.radii_nm.dtype == np.float32
    # The radius is the distance to the boundary in nm: about 4.5 voxels of 8 nm in y and x.
    assert 25.0 < float(np.median(graph.radii_nm)) < 45.0


def test_tube_along_x_at_30x8x8_has_x_length():
    voxel = (30.0, 8.0, 8.0)
    labels = np.zeros((20, 64, 64), np.uint32)
    labels[8:12, 28:37, :] = 9  # 4 slices x 9 rows (120 x 72 nm), all 64 columns
    graph = skeletonize(labels, voxel)[9]
    assert graph.path_length_nm == pytest.approx(63 * 8.0, rel=0.03)
    assert graph.nodes_nm[:, 2].max() - graph.nodes_nm[:, 2].min() == pytest.approx(63 * 8.0)
    assert np.ptp(graph.nodes_nm[:, 0]) <= 30.0
    assert len(endpoints(graph)) == 2


@pytest.mark.parametrize("voxel", [(10.0, 10.0, 10.0), (30.0, 8.0, 8.0)])
def test_diagonal_tube_length_and_nodes_inside(voxel, tube):
    labels, axis_nm = tube((20, 64, 64), voxel, (3, 8, 8), (16, 56, 56), 40.0, label=3)
    graph = skeletonize(labels, voxel, offset_nm=(1000.0, 0.0, -500.0))[3]
    # The skeleton runs tip to tip: the axis plus up to a radius at each end; the voxel
    # staircase of an oblique line adds up to ~25% when it climbs through 30 nm slices.
    assert axis_nm * 0.95 < graph.path_length_nm < (axis_nm + 80.0) * 1.3
    assert graph.n_components() == 1
    inside = labels[tuple(_voxel_of(graph, voxel, (1000.0, 0.0, -500.0)).T)]
    assert np.all(inside == 3)


def test_two_segments_and_dust():
    voxel = (10.0, 10.0, 10.0)
    labels = np.zeros((24, 40, 40), np.uint16)
    labels[2:22, 5:10, 5:10] = 1
    labels[2:22, 25:30, 25:30] = 70000 % 65536
    labels[10:12, 30:34, 10:12] = 2  # 16 voxels: dust at the default threshold of 100
    graphs = skeletonize(labels, voxel)
    assert sorted(graphs) == [1, 70000 % 65536]
    kept = skeletonize(labels, voxel, SkeletonParams(dust_threshold=10))
    assert 2 in kept


def test_skeletonize_block_offset_shifts_nodes():
    voxel = (30.0, 8.0, 8.0)
    labels = np.zeros((20, 32, 32), np.uint64)
    labels[:, 12:21, 12:21] = 4
    at_origin = skeletonize_block(labels, voxel)[4]
    shifted = skeletonize_block(labels, voxel, offset_nm=(300.0, 80.0, 16.0))[4]
    np.testing.assert_allclose(shifted.nodes_nm - at_origin.nodes_nm, [[300.0, 80.0, 16.0]] * at_origin.n_nodes)


def test_empty_volume_gives_no_skeletons():
    assert skeletonize(np.zeros((8, 8, 8), np.uint32), (10, 10, 10)) == {}


@pytest.mark.parametrize(
    ("labels", "voxel", "message"),
    [
        (np.zeros((4, 4), np.uint32), (10, 10, 10), "2 dimensions"),
        (np.zeros((4, 4, 4), np.float32), (10, 10, 10), "dtype float32"),
        (np.zeros((4, 4, 4), bool), (10, 10, 10), "dtype bool"),
        (np.full((4, 4, 4), -1, np.int32), (10, 10, 10), "negative"),
        (np.zeros((4, 4, 4), np.uint32), (10, 10), "voxel_size"),
        (np.zeros((4, 4, 4), np.uint32), (10, 0, 10), "voxel_size"),
    ],
)
def test_bad_inputs_raise_input_error(labels, voxel, message):
    with pytest.raises(InputError, match=message):
        skeletonize(labels, voxel)


def test_compact_labels_maps_back_and_leaves_input_alone():
    rng = np.random.default_rng(3)
    ids = np.array([0, 5, 2**40 + 7, 70_000, 123], dtype=np.uint64)
    labels = ids[rng.integers(0, len(ids), size=(6, 9, 11))]
    before = labels.copy()
    compact, segment_ids = compact_labels(labels)
    assert compact.dtype == np.uint8 and segment_ids.dtype == np.uint64
    np.testing.assert_array_equal(segment_ids, np.sort(ids))
    np.testing.assert_array_equal(segment_ids[compact], labels)
    np.testing.assert_array_equal(labels, before)
    # 300 segments need uint16; a block without background still keeps 0 for it
    many = np.arange(1, 301, dtype=np.uint64).repeat(2).reshape(6, 10, 10)
    compact, segment_ids = compact_labels(many)
    assert compact.dtype == np.uint16 and segment_ids[0] == 0 and compact.min() == 1
    np.testing.assert_array_equal(segment_ids[compact], many)
    # 70k segments (an over-segmented block) need uint32; ids above 2**53 stay exact
    huge = (np.uint64(2**60) + np.arange(70_000, dtype=np.uint64)).reshape(7, 100, 100)
    compact, segment_ids = compact_labels(huge)
    assert compact.dtype == np.uint32 and len(segment_ids) == 70_001
    np.testing.assert_array_equal(segment_ids[compact], huge)


def test_skeletonize_block_on_compact_labels_equals_original_ids():
    voxel = (30.0, 8.0, 8.0)
    labels = np.zeros((20, 40, 40), np.uint64)
    labels[:, 5:14, 5:14] = 2**40 + 1
    labels[3:18, 25:34, 20:29] = 99
    write = (slice(0, 20), slice(0, 30), slice(0, 40))  # 99 is cut by the write region
    expected = skeletonize_block(labels, voxel, write_slices=write)
    compact, segment_ids = compact_labels(labels)
    got = skeletonize_block(compact, voxel, write_slices=write, segment_ids=segment_ids)
    assert sorted(got) == sorted(expected) == [99, 2**40 + 1]
    for segment_id, graph in expected.items():
        np.testing.assert_array_equal(got[segment_id].nodes_nm, graph.nodes_nm)
        np.testing.assert_array_equal(got[segment_id].edges, graph.edges)
        np.testing.assert_array_equal(got[segment_id].open_ends, graph.open_ends)
    with pytest.raises(InputError, match="compact labels below len"):
        skeletonize_block(compact, voxel, segment_ids=segment_ids[:2])
