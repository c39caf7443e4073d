"""Region graph: face statistics, block ownership rule, merging and Arrow tables."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.segment import (
    block_region_graph,
    edge_scores,
    graph_from_tables,
    graph_to_tables,
    merge_block_graphs,
    watershed_fragments,
)

NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]


def pad_negative(fragments: np.ndarray) -> np.ndarray:
    return np.pad(fragments, ((1, 0), (1, 0), (1, 0)))


def test_two_fragment_statistics_are_exact():
    fragments = np.zeros((2, 3, 4), dtype=np.uint64)
    fragments[:, :, :2] = 5
    fragments[:, :, 2:] = 9
    affinities = np.ones((3, 2, 3, 4), dtype=np.uint8) * 255
    # the 6 faces between x=1 and x=2 are stored at x=2 in the x channel
    affinities[2, :, :, 2] = np.array([[10, 20, 30], [40, 50, 60]])
    graph = block_region_graph(pad_negative(fragments), affinities, NN_OFFSETS, voxel_size=(40, 4, 2))
    np.testing.assert_array_equal(graph.node_id, [5, 9])
    np.testing.assert_array_equal(graph.node_size, [12, 12])
    np.testing.assert_allclose(graph.node_centroid, [[20, 4, 1], [20, 4, 5]])
    assert (graph.u.tolist(), graph.v.tolist(), graph.count.tolist()) == ([5], [9], [6])
    np.testing.assert_allclose(graph.aff_sum, [210 / 255])
    np.testing.assert_allclose(graph.area, [6 * 40 * 4])
    np.testing.assert_allclose(graph.mean_affinity, [35 / 255])
    np.testing.assert_allclose(edge_scores(graph, "quantile", 50), [1 - 30 / 255])
    assert graph.edge_histograms()[0, [10, 20, 30, 40, 50, 60]].tolist() == [1] * 6


def test_blocks_with_negative_context_reproduce_the_whole_graph(make_affinities):
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 6, size=(4, 6, 6)).repeat(3, 0).repeat(3, 1).repeat(3, 2)
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.1)
    fragments, _ = watershed_fragments(affinities, NN_OFFSETS, seed_radius=1)
    whole = block_region_graph(pad_negative(fragments), affinities, NN_OFFSETS, (8, 4, 4))
    padded = pad_negative(fragments)
    block = np.array([5, 7, 6])
    parts = []
    for z in range(0, labels.shape[0], block[0]):
        for y in range(0, labels.shape[1], block[1]):
            for x in range(0, labels.shape[2], block[2]):
                stop = np.minimum([z, y, x] + block, labels.shape)
                # read ROI = write ROI grown by one voxel towards negative z, y, x
                context = padded[z : stop[0] + 1, y : stop[1] + 1, x : stop[2] + 1]
                write = (slice(None), slice(z, stop[0]), slice(y, stop[1]), slice(x, stop[2]))
                parts.append(block_region_graph(
                    context, affinities[write], NN_OFFSETS, (8, 4, 4),
                    write_offset_nm=(8 * z, 4 * y, 4 * x)))
    merged = merge_block_graphs(parts)
    for name in ("node_id", "node_size", "u", "v", "count", "hist_ptr", "hist_bin", "hist_count"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name), err_msg=name)
    for name in ("node_centroid", "aff_sum", "area"):
        np.testing.assert_allclose(getattr(merged, name), getattr(whole, name), err_msg=name)


def test_tables_round_trip(make_affinities):
    labels = np.ones((6, 10, 10), dtype=np.int64)
    labels[:, 5:] = 2
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.2)
    fragments, _ = watershed_fragments(affinities, NN_OFFSETS, seed_radius=1)
    graph = block_region_graph(pad_negative(fragments), affinities, NN_OFFSETS)
    nodes, edges = graph_to_tables(graph)
    assert edges.num_rows == graph.n_edges and nodes.num_rows == graph.n_nodes
    back = graph_from_tables(nodes, edges)
    np.testing.assert_array_equal(back.edge_histograms(), graph.edge_histograms())
    np.testing.assert_array_equal(back.u, graph.u)
    np.testing.assert_allclose(back.aff_sum, graph.aff_sum)


def test_empty_block_has_no_nodes_or_edges():
    graph = block_region_graph(np.zeros((5, 5, 5), np.uint64), np.zeros((3, 4, 4, 4), np.float32), NN_OFFSETS)
    assert graph.n_nodes == 0 and graph.n_edges == 0
    assert merge_block_graphs([graph, graph]).n_edges == 0


def test_wrong_context_shape_raises():
    with pytest.raises(InputError, match="fragments_context has shape"):
        block_region_graph(np.zeros((4, 4, 4), np.uint64), np.zeros((3, 4, 4, 4), np.float32), NN_OFFSETS)
