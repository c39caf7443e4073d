"""Node sums of the region graph and the edge classifier of agglomerate method ``learned`` (#15)."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.segment import block_region_graph, graph_from_tables, graph_to_tables, merge_block_graphs
from axonseg.segment.edge_classifier import (
    EdgeClassifier, graph_edge_features, learned_graph, load_classifier, train_classifier,
)
from axonseg.segment.edge_features import feature_names, graph_node_means, node_means, node_sums
from axonseg.segment.edge_targets import MERGE, SPLIT, UNKNOWN

NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]


def blocks_graph(fragments: np.ndarray, affinities: np.ndarray, raw: np.ndarray, split_x: int):
    """The graph of two blocks split along x, each with node sums of ``raw`` over the voxels it owns."""
    padded = np.pad(fragments, ((1, 0), (1, 0), (1, 0)))
    graphs = []
    for lo, hi in ((0, split_x), (split_x, fragments.shape[2])):
        graph = block_region_graph(padded[:, :, lo:hi + 1], affinities[:, :, :, lo:hi], NN_OFFSETS)
        graph.node_sums = {"raw": node_sums(fragments[:, :, lo:hi], raw[:, :, lo:hi], graph.node_id)[0]}
        graphs.append(graph)
    return graphs


def test_node_sums_add_across_blocks_and_survive_the_tables():
    rng = np.random.default_rng(0)
    fragments = rng.integers(1, 6, size=(3, 4, 10)).astype(np.uint64)
    affinities = rng.integers(0, 256, size=(3, 3, 4, 10)).astype(np.uint8)
    raw = rng.integers(0, 256, size=fragments.shape).astype(np.uint8)
    merged = merge_block_graphs([graph_from_tables(*graph_to_tables(g)) for g in blocks_graph(fragments, affinities, raw, 4)])
    whole = node_means(fragments, raw, merged.node_id)
    np.testing.assert_allclose(graph_node_means(merged)["raw"], whole)
    assert merged.node_size.sum() == fragments.size


def test_blocks_with_different_node_sums_do_not_merge():
    rng = np.random.default_rng(1)
    fragments = rng.integers(1, 4, size=(2, 3, 6)).astype(np.uint64)
    graphs = blocks_graph(fragments, np.full((3, 2, 3, 6), 128, np.uint8), np.ones(fragments.shape), 3)
    graphs[1].node_sums = {}
    with pytest.raises(InputError, match="different node sums"):
        merge_block_graphs(graphs)


def separable_edges(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features of len(feature_names(raw, boundary)) columns; merge where column 0 plus noise > 0.5."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, len(feature_names(("raw", "boundary"))))).astype(np.float32)
    y = np.where(x[:, 0] + 0.1 * rng.standard_normal(n) > 0.5, MERGE, SPLIT).astype(np.int8)
    y[rng.random(n) < 0.1] = UNKNOWN
    return x, y


def test_classifier_learns_saves_and_loads(tmp_path):
    x, y = separable_edges(4000, 0)
    classifier = train_classifier(x, y, {"note": "test"})
    assert classifier.record["edges"]["unknown"] == int((y == UNKNOWN).sum())
    xv, yv = separable_edges(2000, 1)
    p = classifier.predict(xv)
    known = yv != UNKNOWN
    accuracy = ((p[known] > 0.5) == (yv[known] == MERGE)).mean()
    assert accuracy > 0.85  # the noise alone caps it near 0.9
    classifier.threshold = 0.35
    loaded = load_classifier(classifier.save(tmp_path / "edges.json"))
    assert loaded.threshold == 0.35 and loaded.features == classifier.features and loaded.record["note"] == "test"
    np.testing.assert_array_equal(loaded.predict(xv), p)
    # bit-identical retraining: the same data and settings give the same model
    assert train_classifier(x, y, {"note": "test"}).model == classifier.model


def test_classifier_refuses_bad_input(tmp_path):
    x, y = separable_edges(200, 2)
    with pytest.raises(InputError, match="expected both"):
        train_classifier(x, np.full(len(y), SPLIT, np.int8))
    with pytest.raises(InputError, match="columns"):
        train_classifier(x[:, :5], y)
    with pytest.raises(InputError, match="no edge classifier file"):
        load_classifier(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="not an edge classifier"):
        load_classifier(tmp_path / "other.json")
    classifier = EdgeClassifier("", feature_names(("raw", "boundary")))
    with pytest.raises(InputError, match="columns"):
        classifier.predict(np.zeros((3, 4), np.float32))


def test_learned_graph_scores_edges_by_probability_and_needs_node_sums():
    rng = np.random.default_rng(3)
    fragments = rng.integers(1, 6, size=(3, 4, 10)).astype(np.uint64)
    graph = merge_block_graphs(blocks_graph(fragments, np.full((3, 3, 4, 10), 200, np.uint8), np.ones(fragments.shape), 5))
    p = np.linspace(0.0, 1.0, graph.n_edges)
    np.testing.assert_allclose(learned_graph(graph, p).mean_affinity, p)
    np.testing.assert_allclose(graph.mean_affinity, 200 / 255)  # the input graph is left alone
    with pytest.raises(InputError, match="graph.node_values"):
        graph_edge_features(graph)  # only "raw" is there, "boundary" is missing
