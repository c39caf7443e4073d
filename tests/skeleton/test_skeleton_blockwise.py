"""Blockwise skeletonization: cropped blocks joined into one graph per segment, block invariant."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.skeleton import (
    AxonGraph,
    SkeletonParams,
    block_regions,
    default_context,
    join_skeletons,
    skeletonize,
    skeletonize_block,
)

# A small invalidation constant lets TEASAR trace inside small test blocks.
SMALL = SkeletonParams(const=100.0)


def _components(graph: AxonGraph) -> int:
    import networkx as nx

    return nx.number_connected_components(graph.to_networkx())


def test_block_regions_tile_the_volume_once():
    regions = block_regions((20, 50, 64), (8, 32, 32), (2, 5, 5))
    assert len(regions) == 3 * 2 * 2
    owned = np.zeros((20, 50, 64), int)
    for read, write in regions:
        block = owned[read]
        block[write] += 1
        assert all(r.start >= 0 and r.stop <= n for r, n in zip(read, owned.shape))
    assert np.all(owned == 1)
    read, write = regions[-1]
    assert read == (slice(14, 20), slice(27, 50), slice(27, 64)) and write == (slice(2, 6), slice(5, 23), slice(5, 37))
    with pytest.raises(InputError, match="block_shape"):
        block_regions((8, 8, 8), (0, 4, 4), (1, 1, 1))


def test_default_context_is_a_quarter_of_the_invalidation_constant():
    # const/4 + 1 voxel: on the FIB-SEM medulla the skeletons agreed with whole-volume kimimaro
    # as well as with all of const (benchmarks/README.md), so blocks read 2-3x fewer voxels
    assert default_context((30.0, 8.0, 8.0), SkeletonParams()) == (6, 17, 17)
    assert default_context((10.0, 10.0, 10.0), SkeletonParams()) == (14, 14, 14)
    assert default_context((10.0, 10.0, 10.0), SkeletonParams(const=100.0)) == (4, 4, 4)


@pytest.mark.parametrize(
    ("voxel", "shape", "start", "end", "block_shape"),
    [
        ((30.0, 8.0, 8.0), (20, 96, 96), (10, 6, 6), (10, 90, 90), (20, 32, 32)),  # 3x3 blocks, in plane
        ((30.0, 8.0, 8.0), (20, 96, 96), (3, 6, 6), (16, 90, 90), (8, 32, 32)),  # 3x3x3, oblique
        ((30.0, 8.0, 8.0), (20, 64, 64), (2, 31, 31), (18, 31, 31), (8, 32, 32)),  # along two block faces
        ((10.0, 10.0, 10.0), (48, 48, 48), (4, 4, 4), (44, 44, 44), (16, 16, 16)),  # through block corners
    ],
)
def test_tube_across_blocks_is_one_skeleton_of_whole_length(tube, voxel, shape, start, end, block_shape):
    labels, axis_nm = tube(shape, voxel, start, end, 40.0, label=7)
    whole = skeletonize(labels, voxel, SMALL)[7]
    blocks = skeletonize(labels, voxel, SMALL, block_shape=block_shape)[7]
    assert _components(blocks) == 1
    assert blocks.path_length_nm == pytest.approx(whole.path_length_nm, rel=0.07)
    assert axis_nm * 0.95 < blocks.path_length_nm < (axis_nm + 80.0) * 1.4
    assert len(blocks.open_ends) == 0
    inside = labels[tuple(np.floor(blocks.nodes_nm / np.asarray(voxel)).astype(int).T)]
    assert np.all(inside == 7)


def test_tube_across_3x3_blocks_with_axonem_defaults(tube):
    voxel = (30.0, 8.0, 8.0)
    labels, axis_nm = tube((20, 192, 192), voxel, (10, 8, 8), (10, 184, 184), 48.0, label=2)
    whole = skeletonize(labels, voxel)[2]
    blocks = skeletonize(labels, voxel, block_shape=(20, 64, 64))[2]
    assert _components(blocks) == 1
    assert blocks.path_length_nm == pytest.approx(whole.path_length_nm, rel=0.05)
    assert blocks.path_length_nm == pytest.approx(axis_nm + 2 * 48.0, rel=0.1)


def test_join_is_independent_of_block_order(tube):
    voxel = (10.0, 10.0, 10.0)
    labels, _ = tube((32, 48, 48), voxel, (16, 4, 4), (16, 44, 44), 40.0, label=1)
    per_block = [
        skeletonize_block(labels[read], voxel, np.array([s.start for s in read]) * 10.0, SMALL, write_slices=write)
        for read, write in block_regions(labels.shape, (32, 16, 16), (11, 11, 11))
    ]
    assert sum(1 in block for block in per_block) >= 3
    assert any(len(block[1].open_ends) for block in per_block if 1 in block)
    forward = join_skeletons(per_block, attach_distance_nm=35.0)[1]
    backward = join_skeletons(per_block[::-1], attach_distance_nm=35.0)[1]
    np.testing.assert_array_equal(forward.nodes_nm, backward.nodes_nm)
    np.testing.assert_array_equal(forward.edges, backward.edges)
    assert forward.n_components() == 1


def test_join_merges_coinciding_nodes_and_bridges_gaps():
    left = AxonGraph(5, [[0, 0, 0], [0, 0, 10], [0, 0, 20]], [[0, 1], [1, 2]], [4, 4, 4])
    right = AxonGraph(5, [[0, 0, 20.001], [0, 0, 30]], [[0, 1]], [4, 4])
    far = AxonGraph(5, [[0, 0, 45], [0, 0, 55]], [[0, 1]], [4, 4])
    joined = join_skeletons([{5: left}, {5: right, 6: far.__class__(6, far.nodes_nm, far.edges, far.radii_nm)}])
    assert joined[5].n_nodes == 4 and joined[5].n_components() == 1
    assert joined[5].path_length_nm == pytest.approx(30.0, abs=0.01)
    assert sorted(joined) == [5, 6]
    gap = join_skeletons([{5: left}, {5: far}], bridge_distance_nm=30.0)[5]
    assert gap.n_components() == 1 and gap.path_length_nm == pytest.approx(20 + 25 + 10)
    kept_apart = join_skeletons([{5: left}, {5: far}], bridge_distance_nm=20.0)[5]
    assert kept_apart.n_components() == 2


def test_bridge_reaches_a_nodes_radius_and_no_further():
    left = AxonGraph(3, [[0, 0, 0], [0, 0, 10], [0, 0, 20]], [[0, 1], [1, 2]], [50, 50, 50])
    right = AxonGraph(3, [[0, 0, 60], [0, 0, 70]], [[0, 1]], [5, 5])  # 40 nm gap: inside left's 50 nm radius
    joined = join_skeletons([{3: left}, {3: right}], bridge_distance_nm=17.3)[3]
    assert joined.n_components() == 1 and joined.path_length_nm == pytest.approx(20 + 40 + 10)
    thin = AxonGraph(3, left.nodes_nm, left.edges, [30, 30, 30])
    assert join_skeletons([{3: thin}, {3: right}], bridge_distance_nm=17.3)[3].n_components() == 2
    assert join_skeletons([{3: left}, {3: right}], bridge_distance_nm=0.0)[3].n_components() == 2  # 0: off


def test_open_end_attaches_within_its_radius_only():
    owner = AxonGraph(1, [[0, 0, 100], [0, 0, 110], [0, 0, 120]], [[0, 1], [1, 2]], [30, 30, 30])
    stub = AxonGraph(1, [[0, 0, 80], [0, 0, 90], [0, 3, 102]], [[0, 1], [1, 2]], [30, 30, 30], open_ends=[2])
    joined = join_skeletons([{1: owner}, {1: stub}])[1]
    assert joined.n_nodes == 5 and joined.n_components() == 1  # the stub moved onto (0, 0, 100)
    thin = AxonGraph(1, stub.nodes_nm, stub.edges, [1, 1, 1], open_ends=[2])
    apart = join_skeletons([{1: owner}, {1: thin}])[1]
    assert apart.n_components() == 2
