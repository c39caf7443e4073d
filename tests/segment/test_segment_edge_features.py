"""Edge features and edge targets of a region graph (the learned-agglomeration study of #15)."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.segment import block_region_graph, watershed_fragments
from axonseg.segment.edge_features import GRAPH_FEATURES, edge_features, feature_names, node_means
from axonseg.segment.edge_targets import MERGE, SPLIT, UNKNOWN, edge_targets, fragment_bodies

NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]


def three_fragments():
    """Fragments 5 | 9 | 12 side by side along x (2 x 3 x 2 voxels each) and their graph."""
    fragments = np.zeros((2, 3, 6), dtype=np.uint64)
    fragments[:, :, :2], fragments[:, :, 2:4], fragments[:, :, 4:] = 5, 9, 12
    affinities = np.full((3, 2, 3, 6), 255, dtype=np.uint8)
    affinities[2, :, :, 2] = [[10, 20, 30], [40, 50, 60]]        # the 6 faces 5 | 9
    affinities[2, :, :, 4] = [[200, 200, 200], [200, 200, 255]]  # the 6 faces 9 | 12
    graph = block_region_graph(np.pad(fragments, ((1, 0), (1, 0), (1, 0))), affinities, NN_OFFSETS)
    return fragments, affinities, graph


def test_graph_features_are_the_histogram_quantiles_sizes_and_degrees():
    _, _, graph = three_fragments()
    x = edge_features(graph)
    names = feature_names()
    assert names == GRAPH_FEATURES and x.shape == (2, len(names)) and x.dtype == np.float32
    col = {name: x[:, i] for i, name in enumerate(names)}
    np.testing.assert_allclose(col["mean_affinity"], [35 / 255, 1255 / 6 / 255], rtol=1e-6)
    np.testing.assert_allclose(col["affinity_q0"], [10 / 255, 200 / 255], rtol=1e-6)
    np.testing.assert_allclose(col["affinity_q50"], [30 / 255, 200 / 255], rtol=1e-6)
    np.testing.assert_allclose(col["affinity_q100"], [60 / 255, 1.0], rtol=1e-6)
    np.testing.assert_allclose(col["log_faces"], np.log1p([6, 6]), rtol=1e-6)
    np.testing.assert_allclose(col["log_size_small"], np.log1p([12, 12]), rtol=1e-6)
    np.testing.assert_allclose(col["contact_ratio"], 6 / 12 ** (2 / 3), rtol=1e-6)
    # fragment 9 has two neighbours, 5 and 12 one each
    np.testing.assert_allclose(col["log_degree_small"], np.log1p([1, 1]), rtol=1e-6)
    np.testing.assert_allclose(col["log_degree_large"], np.log1p([2, 2]), rtol=1e-6)


def test_node_values_add_ordered_pairs_and_their_gap():
    fragments, _, graph = three_fragments()
    raw = np.where(fragments == 5, 100.0, np.where(fragments == 9, 40.0, 70.0))
    means = node_means(fragments, raw, graph.node_id)
    np.testing.assert_allclose(means, [100.0, 40.0, 70.0])
    x = edge_features(graph, {"raw": means})
    assert feature_names(("raw",))[-3:] == ("raw_low", "raw_high", "raw_gap")
    np.testing.assert_allclose(x[:, -3:], [[40, 100, 60], [40, 70, 30]])
    with pytest.raises(InputError, match="node value 'raw' has shape"):
        edge_features(graph, {"raw": means[:2]})


def test_targets_name_merges_splits_and_unknown_edges():
    fragments, _, graph = three_fragments()
    gt = np.zeros_like(fragments)
    gt[fragments == 5] = 1
    gt[fragments == 9] = 1
    gt[fragments == 12] = 2
    np.testing.assert_array_equal(edge_targets(graph, fragments, gt), [MERGE, SPLIT])
    # fragment 12 unlabelled: its edge is unknown, not a split
    unlabelled = np.where(fragments == 12, 0, gt)
    np.testing.assert_array_equal(edge_targets(graph, fragments, unlabelled), [MERGE, UNKNOWN])
    # fragment 9 mixed 8:4 between bodies 1 and 3: purity 2/3 < 0.9 makes both its edges unknown
    mixed = gt.copy()
    mixed[:, 2, 2:4] = 3
    body, purity = fragment_bodies(fragments, mixed, graph.node_id)
    np.testing.assert_array_equal(body, [1, 1, 2])
    np.testing.assert_allclose(purity, [1.0, 8 / 12, 1.0])
    np.testing.assert_array_equal(edge_targets(graph, fragments, mixed), [UNKNOWN, UNKNOWN])
    np.testing.assert_array_equal(edge_targets(graph, fragments, mixed, min_purity=0.6), [MERGE, SPLIT])
    with pytest.raises(InputError, match="min_purity is 0"):
        edge_targets(graph, fragments, gt, min_purity=0)


def test_merge_edges_have_higher_affinity_features_on_generated_objects(make_affinities):
    """On noisy affinities of random boxes, the learned features separate the targets: the
    median affinity of merge edges is above that of split edges."""
    rng = np.random.default_rng(3)
    labels = rng.integers(1, 8, size=(4, 5, 5)).repeat(4, 0).repeat(4, 1).repeat(4, 2).astype(np.uint64)
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.2)
    fragments, _ = watershed_fragments(affinities, NN_OFFSETS, seed_radius=1)
    graph = block_region_graph(np.pad(fragments, ((1, 0), (1, 0), (1, 0))), affinities, NN_OFFSETS)
    y = edge_targets(graph, fragments.astype(np.uint64), labels, min_purity=0.8)
    x = edge_features(graph)
    q50 = x[:, feature_names().index("affinity_q50")]
    assert (y == MERGE).sum() > 5 and (y == SPLIT).sum() > 5
    assert np.median(q50[y == MERGE]) > np.median(q50[y == SPLIT]) + 0.3
