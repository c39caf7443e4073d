"""ERL (AxonEM protocol) on hand-computable skeletons and against a per-edge reference."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.evaluate import (
    classify_edges,
    evaluate_arrays,
    expected_run_length,
    flat_skeletons,
    lookup_segments,
    node_voxel_indices,
)


def test_straight_skeleton_split_in_two_equal_halves_gives_half_length(line):
    # 11 nodes at 0..10 nm; nodes 5 and 6 share a position, so the split edge has length 0
    # and each half keeps 5 nm: ERL = (5^2 + 5^2) / 10 = L / 2.
    nodes = np.concatenate([line(6)[0], line(6, start=(0, 0, 5))[0]])
    edges = np.stack([np.arange(11), np.arange(1, 12)], 1)
    segments = np.array([1] * 6 + [2] * 6)
    result = expected_run_length({3: (nodes, edges)}, segments)
    assert result.total_length_nm == pytest.approx(10.0)
    assert result.erl_nm == pytest.approx(5.0)
    assert result.gt_erl_nm == pytest.approx(10.0)
    assert result.nerl == pytest.approx(0.5)
    assert result.n_split == 1


def test_split_edge_length_is_lost(line):
    # 21 nodes 1 nm apart, nodes 0..9 in segment 1, 10..20 in segment 2: runs of 9 and 10 nm,
    # the 1 nm split edge counts for nobody (AxonEM).
    nodes, edges = line(21)
    segments = np.array([1] * 10 + [2] * 11)
    result = expected_run_length({1: (nodes, edges)}, segments)
    assert result.erl_nm == pytest.approx((9**2 + 10**2) / 20)
    assert sorted(result.run_lengths_nm.tolist()) == pytest.approx([9.0, 10.0])
    assert result.split_length_nm == pytest.approx(1.0)


def test_two_skeletons_merged_into_one_segment_have_erl_zero(line):
    skeletons = {1: line(10), 2: line(10, start=(0, 50, 0))}
    result = expected_run_length(skeletons, np.full(20, 7), merge_threshold=0)
    assert result.erl_nm == 0.0
    assert result.skeleton_erl_nm.tolist() == [0.0, 0.0]
    assert result.n_merged == 18
    assert result.gt_erl_nm == pytest.approx(9.0)


def test_merge_threshold_ignores_a_skeleton_that_barely_enters(line):
    # skeleton 2 has 2 of its 10 nodes in segment 7: a merge at threshold 0 and 1, not at 2
    skeletons = {1: line(10), 2: line(10, start=(0, 50, 0))}
    segments = np.array([7] * 10 + [7, 7] + [8] * 8)
    # threshold 1: segment 7 merges both, so skeleton 1 loses all and skeleton 2 keeps its 7 nm run
    assert expected_run_length(skeletons, segments, merge_threshold=1).erl_nm == pytest.approx(7 * 7 / 18)
    relaxed = expected_run_length(skeletons, segments, merge_threshold=2)
    assert relaxed.skeleton_erl_nm.tolist() == pytest.approx([9.0, (1 + 49) / 9])


def test_background_nodes_omit_their_edges(line):
    nodes, edges = line(5)
    result = expected_run_length({1: (nodes, edges)}, np.array([4, 4, 0, 4, 4]))
    assert result.n_omitted == 2
    assert result.n_split == 0
    # AxonEM sums correct edges per (skeleton, segment), not per connected piece: C = 2 nm
    assert result.erl_nm == pytest.approx(2**2 / 4)


def test_mask_voxels_above_threshold_make_a_segment_merging(line):
    nodes, edges = line(5)
    segments = np.full(5, 9)
    clean = expected_run_length({1: (nodes, edges)}, segments, mask_counts=(np.array([9]), np.array([3])), mask_threshold=3)
    dirty = expected_run_length({1: (nodes, edges)}, segments, mask_counts=(np.array([9]), np.array([4])), mask_threshold=3)
    assert clean.erl_nm == pytest.approx(4.0)
    assert dirty.erl_nm == 0.0
    assert dirty.n_merged == 4


def test_anisotropic_skeleton_along_z_is_30_nm_per_step(line):
    nodes, edges = line(8, step_nm=30.0, axis=0, start=(0, 12, 18))
    skeletons = flat_skeletons(nodes, edges, np.zeros(8, np.int64))
    assert skeletons.skeleton_lengths_nm()[1].tolist() == [30.0 * 7]
    voxels = node_voxel_indices(nodes, (30, 6, 6))
    assert voxels.tolist() == [[z, 2, 3] for z in range(8)]
    pred = np.zeros((8, 4, 4), np.uint16)
    pred[:, 2, 3] = 5
    result = expected_run_length(skeletons, lookup_segments(pred, nodes, (30, 6, 6)))
    assert result.erl_nm == pytest.approx(210.0)


def test_offset_shifts_the_lookup(line):
    nodes, _ = line(3, step_nm=6.0, start=(100.0, 60.0, 60.0))
    pred = np.arange(2 * 3 * 4, dtype=np.uint32).reshape(2, 3, 4) + 1
    segments = lookup_segments(pred, nodes, (10, 6, 6), offset_nm=(90, 54, 54))
    assert segments.tolist() == [pred[1, 1, 1], pred[1, 1, 2], pred[1, 1, 3]]
    outside = lookup_segments(pred, nodes + 1000, (10, 6, 6), offset_nm=(90, 54, 54))
    assert outside.tolist() == [0, 0, 0]


def test_erl_intervals_split_skeletons_by_length(line):
    skeletons = {1: line(11), 2: line(101, start=(0, 9, 0))}
    segments = np.r_[np.full(11, 1), np.full(50, 2), np.full(51, 3)]
    result = expected_run_length(skeletons, segments, erl_intervals=[0, 50, np.inf])
    short, long = result.intervals
    assert (short.n_skeletons, long.n_skeletons) == (1, 1)
    assert short.erl_nm == pytest.approx(10.0) and short.nerl == pytest.approx(1.0)
    assert long.erl_nm == pytest.approx((49**2 + 50**2) / 100)
    assert long.gt_erl_nm == pytest.approx(100.0)
    assert result.erl_nm == pytest.approx((100 + 49**2 + 50**2) / 110)


def test_gt_against_itself_gives_nerl_one(tubes):
    gt, skeletons = tubes
    result = evaluate_arrays(gt, gt, skeletons, voxel_size=(30, 6, 6))
    assert result.erl.nerl == pytest.approx(1.0)
    assert result.erl.erl_nm == pytest.approx(35 * 6.0)
    assert result.summary()["n_split"] == 0 and result.summary()["n_merge"] == 0


def test_dict_and_flat_forms_agree(tubes):
    _, skeletons = tubes

    class Skeleton:  # the attribute form axonseg.skeleton objects may take
        def __init__(self, nodes, edges):
            self.nodes_nm, self.edges = nodes, edges

    rng = np.random.default_rng(3)
    n_nodes = sum(len(n) for n, _ in skeletons.values())
    segments = rng.integers(0, 4, n_nodes)
    from_tuples = expected_run_length(skeletons, segments)
    from_objects = expected_run_length({k: Skeleton(*v) for k, v in skeletons.items()}, segments)
    assert from_tuples.erl_nm == from_objects.erl_nm
    assert from_tuples.n_split == from_objects.n_split


def _reference_erl(skeletons: dict, lut: dict, merge_threshold: int) -> float:
    """Per-edge loop after funlib.evaluate / AxonEM, with ``count > threshold``."""
    node_skeleton, node_ids, positions, edge_list = {}, [], {}, []
    for sid, (nodes, edges) in skeletons.items():
        base = len(node_ids)
        for i, position in enumerate(nodes):
            node_skeleton[base + i] = sid
            positions[base + i] = position
            node_ids.append(base + i)
        edge_list += [(base + u, base + v) for u, v in edges]
    pair_count = {}
    for n in node_ids:
        key = (node_skeleton[n], lut[n])
        pair_count[key] = pair_count.get(key, 0) + 1
    kept = [key for key, count in pair_count.items() if count > merge_threshold]
    per_segment = {}
    for sid, seg in kept:
        per_segment.setdefault(seg, set()).add(sid)
    merging = {seg for seg, sids in per_segment.items() if len(sids) > 1}
    merged_skeletons = {sid for sid, seg in kept if seg in merging}
    lengths, correct = {}, {}
    for u, v in edge_list:
        sid = node_skeleton[u]
        length = float(np.linalg.norm(positions[u] - positions[v]))
        lengths[sid] = lengths.get(sid, 0.0) + length
        su, sv = lut[u], lut[v]
        if su == 0 or sv == 0 or su != sv:
            continue
        if sid in merged_skeletons and su in merging:
            continue
        correct[(sid, su)] = correct.get((sid, su), 0.0) + length
    total = sum(lengths.values())
    return sum(c * c for c in correct.values()) / total


@pytest.mark.parametrize("merge_threshold", [0, 3])
def test_vectorised_erl_matches_per_edge_reference(merge_threshold):
    rng = np.random.default_rng(merge_threshold)
    skeletons = {}
    for sid in range(1, 25):
        n = int(rng.integers(2, 40))
        nodes = np.cumsum(rng.normal(0, 20, (n, 3)), axis=0)
        parents = np.array([rng.integers(0, i) for i in range(1, n)])  # a random tree
        skeletons[sid * 7] = (nodes, np.stack([parents, np.arange(1, n)], 1))
    n_nodes = sum(len(n) for n, _ in skeletons.values())
    # runs of equal ids along the node order, shared ids between skeletons, some zeros
    segments = np.repeat(rng.integers(0, 30, n_nodes // 5 + 1), 5)[:n_nodes]
    expected = _reference_erl(skeletons, dict(enumerate(segments.tolist())), merge_threshold)
    result = expected_run_length(skeletons, segments, merge_threshold=merge_threshold)
    assert result.erl_nm == pytest.approx(expected, rel=1e-12)
    assert result.n_merged > 0 and result.n_split > 0


def test_classification_counts_add_up(tubes):
    _, skeletons = tubes
    rng = np.random.default_rng(5)
    n_nodes = sum(len(n) for n, _ in skeletons.values())
    from axonseg.evaluate import as_flat_skeletons

    c = classify_edges(as_flat_skeletons(skeletons), rng.integers(0, 6, n_nodes))
    assert np.bincount(c.category, minlength=4).sum() == sum(len(e) for _, e in skeletons.values())
    assert c.skeleton_lengths_nm.tolist() == pytest.approx([210.0] * 6)


@pytest.mark.slow
def test_ten_thousand_skeletons_take_seconds():
    import time

    rng = np.random.default_rng(0)
    n_skeletons, n_each = 10_000, 100
    positions = np.cumsum(rng.normal(0, 10, (n_skeletons, n_each, 3)), axis=1).reshape(-1, 3)
    local = np.stack([np.arange(n_each - 1), np.arange(1, n_each)], 1)
    edges = (local[None] + (np.arange(n_skeletons) * n_each)[:, None, None]).reshape(-1, 2)
    skeletons = flat_skeletons(positions, edges, np.repeat(np.arange(n_skeletons), n_each))
    segments = np.cumsum(rng.random(len(positions)) < 0.02).astype(np.uint64) + 1
    start = time.perf_counter()
    result = expected_run_length(skeletons, segments)
    assert time.perf_counter() - start < 10.0
    assert 0 < result.nerl < 1 and result.n_skeletons == n_skeletons


def test_axonem_flags_skeletons_through_background(line):
    # threshold 2: skeleton 1 has 4 background nodes and only 2 in segment 9, so its pair with
    # 9 does not count, but skeletons 1 and 2 both pass in background (id 0), which AxonEM
    # treats as a merging segment when flagging skeletons: skeleton 1's edge in 9 is lost.
    skeletons = {1: line(6), 2: line(8, start=(0, 20, 0)), 3: line(5, start=(0, 40, 0))}
    segments = np.r_[[0, 0, 0, 0, 9, 9], [0, 0, 0, 9, 9, 9, 9, 9], [9] * 5]
    result = expected_run_length(skeletons, segments, merge_threshold=2)
    assert result.skeleton_erl_nm.tolist() == [0.0, 0.0, 0.0]
    assert result.n_merged == 1 + 4 + 4
    expected = _reference_erl(skeletons, dict(enumerate(segments.tolist())), 2)
    assert result.erl_nm == expected == 0.0
