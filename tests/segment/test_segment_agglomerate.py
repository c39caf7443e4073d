"""Agglomeration, mutex watershed and relabelling on hand-made and random graphs."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.segment import (
    RegionGraph,
    agglomerate,
    block_region_graph,
    merge_block_graphs,
    mutex_watershed,
    relabel,
)

NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]


def graph_of(fragments: np.ndarray, affinities: np.ndarray) -> RegionGraph:
    return block_region_graph(np.pad(fragments, ((1, 0), (1, 0), (1, 0))), affinities, NN_OFFSETS)


def two_cubes(plane_affinity: float):
    fragments = np.ones((8, 8, 16), dtype=np.uint64)
    fragments[:, :, 8:] = 2
    affinities = np.ones((3, 8, 8, 16), dtype=np.float32)
    affinities[2, :, :, 8] = plane_affinity
    return fragments, affinities


@pytest.mark.parametrize(("plane", "merged"), [(0.1, False), (0.9, True)])
def test_two_cubes_merge_only_through_a_high_affinity_plane(plane, merged):
    fragments, affinities = two_cubes(plane)
    for lut in (agglomerate(graph_of(fragments, affinities), [0.5])[0], mutex_watershed(graph_of(fragments, affinities))):
        segmentation = relabel(fragments, lut.fragment_ids, lut.segment_ids)
        assert (len(np.unique(segmentation)) == 1) == merged


@pytest.mark.parametrize("score", ["mean", "quantile"])
def test_tube_cut_by_a_weak_section_merges_at_the_matching_threshold(score):
    # a tube along z in three fragments; the section z=10 is weak (affinity 64/255)
    fragments = np.zeros((20, 9, 9), dtype=np.uint64)
    fragments[:, 2:7, 2:7] = 1
    fragments[10:, 2:7, 2:7] = 2
    fragments[15:, 2:7, 2:7] = 3
    affinities = np.full((3,) + fragments.shape, 255, dtype=np.uint8)
    affinities[0, 10] = 64
    affinities[0, 15] = 230
    weak = 1 - 64 / 255
    luts = agglomerate(graph_of(fragments, affinities), [weak - 1e-6, weak, 0.0], score=score)
    counts = [len(np.unique(lut.segment_ids)) for lut in luts]
    assert counts == [2, 1, 3]


def random_graph(n_nodes: int, n_edges: int, seed: int) -> RegionGraph:
    rng = np.random.default_rng(seed)
    u = rng.integers(1, n_nodes + 1, 3 * n_edges)
    v = rng.integers(1, n_nodes + 1, 3 * n_edges)
    keep = u != v
    pairs = np.unique(np.stack([np.minimum(u, v)[keep], np.maximum(u, v)[keep]], 1), axis=0)[:n_edges]
    count = rng.integers(1, 20, len(pairs))
    bins = [np.sort(rng.choice(256, size=min(c, 5), replace=False)) for c in count]
    hist_count = [np.ones(len(b), np.uint32) for b in bins]
    return RegionGraph(
        node_id=np.arange(1, n_nodes + 1, dtype=np.uint64), node_size=np.ones(n_nodes, np.int64),
        node_centroid=np.zeros((n_nodes, 3)), u=pairs[:, 0].astype(np.uint64), v=pairs[:, 1].astype(np.uint64),
        aff_sum=np.array([b.sum() / 255 for b in bins]), count=np.array([len(b) for b in bins], np.int64),
        area=np.ones(len(pairs)), hist_ptr=np.r_[0, np.cumsum([len(b) for b in bins])].astype(np.int64),
        hist_bin=np.concatenate(bins).astype(np.uint8), hist_count=np.concatenate(hist_count),
    )


def reference_agglomeration(graph: RegionGraph, threshold: float, score: str) -> list[set] | None:
    """Slow, obviously correct region merging (one Python loop per merge, small graphs).

    Returns None when two edges tied for the cheapest merge (then the order is arbitrary).
    """
    hists = graph.edge_histograms().astype(np.int64)
    regions = {int(i): {int(i)} for i in graph.node_id}
    edges = {(int(a), int(b)): (s, c, h) for a, b, s, c, h in zip(graph.u, graph.v, graph.aff_sum, graph.count, hists)}

    def distance(stats):
        if score == "mean":
            return 1 - stats[0] / stats[1]
        cumulative = np.cumsum(stats[2])
        return 1 - np.searchsorted(cumulative, max(1, np.ceil(0.5 * cumulative[-1]))) / 255

    while edges:
        (a, b), stats = min(edges.items(), key=lambda item: distance(item[1]))
        if distance(stats) > threshold:
            break
        if sum(distance(other) == distance(stats) for other in edges.values()) > 1:
            return None
        regions[a] |= regions.pop(b)
        del edges[(a, b)]
        for (x, y), other in list(edges.items()):
            if b in (x, y):
                del edges[(x, y)]
                n = y if x == b else x
                key = (min(a, n), max(a, n))
                old = edges.get(key)
                edges[key] = other if old is None else (old[0] + other[0], old[1] + other[1], old[2] + other[2])
    return sorted(map(frozenset, regions.values()), key=min)


@pytest.mark.parametrize("score", ["mean", "quantile"])
def test_matches_a_slow_reference_implementation(score):
    compared = 0
    for seed, threshold in [(seed, t) for seed in range(4, 10) for t in (0.2, 0.4, 0.5, 0.6)]:
        graph = random_graph(40, 80, seed=seed)
        lut = agglomerate(graph, [threshold], score=score)[0]
        groups = {}
        for fragment, segment in zip(lut.fragment_ids.tolist(), lut.segment_ids.tolist()):
            groups.setdefault(segment, set()).add(fragment)
        ours = sorted(map(frozenset, groups.values()), key=min)
        reference = reference_agglomeration(graph, threshold, score)
        if reference is not None:
            assert ours == reference, (seed, threshold)
            compared += 1
    assert compared >= 4


def test_thresholds_are_monotone_and_luts_nested():
    graph = random_graph(500, 2000, seed=5)
    thresholds = [0.9, 0.1, 0.5, 0.3, 0.7]
    luts = agglomerate(graph, thresholds)
    assert [lut.threshold for lut in luts] == thresholds
    ordered = sorted(luts, key=lambda lut: lut.threshold)
    counts = [len(np.unique(lut.segment_ids)) for lut in ordered]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    for low, high in zip(ordered, ordered[1:]):
        # every segment of the lower threshold lies inside one segment of the higher one
        pairs = np.unique(np.stack([low.segment_ids, high.segment_ids]), axis=1)
        assert len(np.unique(pairs[0])) == pairs.shape[1]


def test_mutex_respects_an_earlier_repulsion():
    # A-B 0.95 (attractive), A-C 0.02 (repulsive, stronger than B-C), B-C 0.8 (attractive)
    graph = RegionGraph(
        node_id=np.array([1, 2, 3], np.uint64), node_size=np.ones(3, np.int64), node_centroid=np.zeros((3, 3)),
        u=np.array([1, 1, 2], np.uint64), v=np.array([2, 3, 3], np.uint64),
        aff_sum=np.array([0.95, 0.02, 0.8]), count=np.ones(3, np.int64), area=np.ones(3),
        hist_ptr=np.zeros(4, np.int64), hist_bin=np.zeros(0, np.uint8), hist_count=np.zeros(0, np.uint32),
    )
    lut = mutex_watershed(graph, bias=0.5)
    assert lut.segment_ids[0] == lut.segment_ids[1] != lut.segment_ids[2]
    # agglomeration instead combines A-C and B-C into one edge of mean (0.02 + 0.8) / 2
    below, above = agglomerate(graph, [0.58, 0.60])
    assert len(np.unique(below.segment_ids)) == 2 and len(np.unique(above.segment_ids)) == 1


def test_relabel_keeps_zero_and_unknown_ids():
    fragments = np.array([[[0, 1, 2, 3, 99]]], dtype=np.uint64)
    segmentation = relabel(fragments, np.array([0, 1, 2, 3], np.uint64), np.array([7, 5, 5, 3], np.uint64))
    assert segmentation.tolist() == [[[0, 5, 5, 3, 99]]]


def test_bad_thresholds_raise():
    graph = random_graph(10, 20, seed=1)
    for bad in ([1.5], [-0.1], [], [float("nan")]):
        with pytest.raises(InputError, match="threshold"):
            agglomerate(graph, bad)
    with pytest.raises(InputError, match="score is 'max'"):
        agglomerate(graph, [0.5], score="max")
    with pytest.raises(InputError, match="bias is 2"):
        mutex_watershed(graph, bias=2)


def test_merge_block_graphs_then_agglomerate_empty():
    luts = agglomerate(merge_block_graphs([]), [0.5])
    assert len(luts[0].fragment_ids) == 0


@pytest.mark.slow
def test_ten_million_edges():
    import time

    rng = np.random.default_rng(0)
    n_nodes, n_edges = 2_500_000, 10_000_000
    # a 3D-grid-like graph: node i touches i+1, i+136, i+136^2 and random nearby ids
    base = rng.integers(0, n_nodes - 20_000, 2 * n_edges)
    step = rng.choice([1, 2, 3, 136, 137, 138, 18496, 18497, 18498, 18632], 2 * n_edges)
    u, v = base + 1, base + 1 + step
    key = np.unique(u * n_nodes * 2 + v)[:n_edges]
    u, v = key // (n_nodes * 2), key % (n_nodes * 2)
    count = rng.integers(1, 50, len(u))
    graph = RegionGraph(
        node_id=np.arange(1, n_nodes + 20_001, dtype=np.uint64), node_size=np.ones(n_nodes + 20_000, np.int64),
        node_centroid=np.zeros((n_nodes + 20_000, 3)), u=u.astype(np.uint64), v=v.astype(np.uint64),
        aff_sum=count * rng.random(len(u)), count=count.astype(np.int64), area=np.ones(len(u)),
        hist_ptr=np.zeros(len(u) + 1, np.int64), hist_bin=np.zeros(0, np.uint8), hist_count=np.zeros(0, np.uint32),
    )
    start = time.perf_counter()
    luts = agglomerate(graph, [0.2, 0.4, 0.6])
    elapsed = time.perf_counter() - start
    print(f"10M-edge agglomeration: {len(u)} edges in {elapsed:.1f} s")
    assert len(u) == n_edges
    assert len(np.unique(luts[0].segment_ids)) > len(np.unique(luts[2].segment_ids))
    assert elapsed < 300
