"""Benchmark axonseg.evaluate: VOI + adapted Rand on a 256^3 volume with ~500 objects, and
ERL + split/merge lists on 10,000 random-walk skeletons (1M nodes) whose node -> segment ids
are generated with random splits and merges (random walks through a 500-object volume would
all be merged, ERL 0, which tests nothing).

Peer: scikit-image's ``variation_of_information`` + ``adapted_rand_error`` on the same arrays.
``ratio`` = skimage time / our time (our speed over theirs). Last line printed: one JSON object.

Run: .venv/bin/python benchmarks/evaluate.py [--size 256] [--skeletons 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
from scipy.spatial import cKDTree

from axonseg.evaluate import (
    EvaluationAccumulator,
    adapted_rand_from_contingency,
    classify_edges,
    contingency_block,
    erl_from_classification,
    flat_skeletons,
    lists_from_classification,
    lookup_segments,
    voi_from_contingency,
)

VOXEL_SIZE = (8.0, 8.0, 8.0)


def voronoi_gt(size: int, n_objects: int, rng: np.random.Generator) -> np.ndarray:
    """Voronoi cells of random seeds (computed at half resolution), with 0-valued boundaries."""
    half = size // 2
    seeds = rng.uniform(0, half, (n_objects, 3))
    grid = np.stack(np.meshgrid(*[np.arange(half) + 0.5] * 3, indexing="ij"), -1).reshape(-1, 3)
    _, nearest = cKDTree(seeds).query(grid, workers=2)
    cells = (nearest + 1).astype(np.uint32).reshape(half, half, half)
    gt = cells.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    boundary = np.zeros(gt.shape, bool)
    for axis in range(3):
        front = [slice(None)] * 3
        front[axis] = slice(1, None)
        back = [slice(None)] * 3
        back[axis] = slice(None, -1)
        boundary[tuple(front)] |= gt[tuple(front)] != gt[tuple(back)]
    gt[boundary] = 0
    return gt


def perturbed_prediction(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """gt with ~20% of objects split by a plane, ~10% merged into a neighbour id, holes."""
    n = int(gt.max())
    pred = gt.astype(np.uint32)
    lut = np.arange(n + 1, dtype=np.uint32)
    merged = rng.choice(np.arange(1, n + 1), n // 10, replace=False)
    lut[merged] = rng.integers(1, n + 1, len(merged))
    pred = lut[pred]
    split = np.zeros(n + 1, bool)
    split[rng.choice(np.arange(1, n + 1), n // 5, replace=False)] = True
    half = np.zeros(gt.shape, bool)
    half[:, :, gt.shape[2] // 2 :] = True
    pred = np.where(split[gt] & half, pred + np.uint32(n + 1), pred)
    pred[rng.random(gt.shape) < 0.001] = 0
    ids = np.unique(pred)
    remap = np.zeros(int(ids.max()) + 1, np.uint32)
    remap[ids[ids > 0]] = rng.permutation(len(ids) - 1).astype(np.uint32) + 1000
    return remap[pred]


def random_skeletons(n_skeletons: int, nodes_each: int, size: int, rng: np.random.Generator):
    """Random-walk paths in nm inside the volume; returns the flat form."""
    steps = rng.normal(0, 2.0 * VOXEL_SIZE[0], (n_skeletons, nodes_each, 3))
    starts = rng.uniform(0, size * VOXEL_SIZE[0], (n_skeletons, 1, 3))
    positions = np.clip(starts + np.cumsum(steps, axis=1), 0, size * VOXEL_SIZE[0] - 1e-3).reshape(-1, 3)
    local = np.stack([np.arange(nodes_each - 1), np.arange(1, nodes_each)], 1)
    edges = (local[None] + (np.arange(n_skeletons) * nodes_each)[:, None, None]).reshape(-1, 2)
    return flat_skeletons(positions, edges, np.repeat(np.arange(n_skeletons), nodes_each))


def synthetic_node_segments(skeletons, nodes_each: int, rng: np.random.Generator) -> np.ndarray:
    """A plausible segmentation of the skeletons: each path is cut into runs (a split with
    probability 2% per edge), 5% of the runs are given another skeleton's id (merges), and
    0.5% of the nodes fall on background."""
    n_nodes = skeletons.n_nodes
    cut = rng.random(n_nodes) < 0.02
    cut[::nodes_each] = True  # every skeleton starts a new run
    run = np.cumsum(cut)
    segments = run.astype(np.uint64) + np.uint64(1)
    n_runs = int(run[-1])
    stolen = rng.random(n_runs + 1) < 0.05
    donor = rng.integers(1, n_runs + 1, n_runs + 1).astype(np.uint64)
    segments = np.where(stolen[run], donor[run], segments)
    segments[rng.random(n_nodes) < 0.005] = 0
    return segments


def timed(function, *args, repeats: int = 1):
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function(*args)
        best = min(best, time.perf_counter() - start)
    return value, best


def ours_voi_rand(pred, gt):
    table = contingency_block(gt, pred)
    return voi_from_contingency(table), adapted_rand_from_contingency(table)


def skimage_voi_rand(pred, gt):
    from skimage.metrics import adapted_rand_error, variation_of_information

    return variation_of_information(gt, pred, ignore_labels=(0,)), adapted_rand_error(gt, pred, ignore_labels=(0,))


def ours_erl(skeletons, node_segments):
    classification = classify_edges(skeletons, node_segments)
    return erl_from_classification(classification), lists_from_classification(classification)


def blockwise(pred, gt, skeletons, block: int):
    accumulator = EvaluationAccumulator(skeletons, VOXEL_SIZE)
    for z in range(0, gt.shape[0], block):
        for y in range(0, gt.shape[1], block):
            for x in range(0, gt.shape[2], block):
                region = np.s_[z : z + block, y : y + block, x : x + block]
                accumulator.add_block(pred[region], gt[region], (z, y, x))
    return accumulator.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--skeletons", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    gt = voronoi_gt(args.size, args.objects, rng)
    pred = perturbed_prediction(gt, rng)
    n_voxels = gt.size
    print(f"volume {gt.shape}, {len(np.unique(gt)) - 1} gt objects, {len(np.unique(pred)) - 1} predicted")

    (voi, rand), ours_s = timed(ours_voi_rand, pred, gt, repeats=args.repeats)
    (sk_voi, sk_rand), skimage_s = timed(skimage_voi_rand, pred, gt, repeats=args.repeats)
    print(f"ours    VOI split {voi.split:.4f} merge {voi.merge:.4f} bits, ARAND {rand.arand:.4f}: "
          f"{ours_s:.2f} s, {n_voxels / ours_s / 1e6:.1f} Mvoxel/s")
    print(f"skimage VOI split {sk_voi[0]:.4f} merge {sk_voi[1]:.4f} bits, ARAND {sk_rand[0]:.4f}: "
          f"{skimage_s:.2f} s, {n_voxels / skimage_s / 1e6:.1f} Mvoxel/s")
    # same VOI definition; skimage's ARAND counts distinct pairs and treats pred 0 as a label
    voi_gap = max(abs(voi.split - sk_voi[0]), abs(voi.merge - sk_voi[1]))

    skeletons = random_skeletons(args.skeletons, args.nodes, args.size, rng)
    _, lookup_s = timed(lookup_segments, pred, skeletons.positions_nm, VOXEL_SIZE)
    print(f"node lookup of {skeletons.n_nodes} nodes in the volume: {lookup_s:.2f} s")
    node_segments = synthetic_node_segments(skeletons, args.nodes, rng)
    (erl, lists), erl_s = timed(ours_erl, skeletons, node_segments, repeats=args.repeats)
    print(f"ERL on {args.skeletons} skeletons / {skeletons.n_nodes} nodes / {skeletons.n_edges} edges: "
          f"ERL {erl.erl_nm:.0f} nm, GT ERL {erl.gt_erl_nm:.0f} nm, NERL {erl.nerl:.4f}, "
          f"{lists.n_split} splits, {lists.n_merge} merges: {erl_s:.2f} s "
          f"({skeletons.n_edges / erl_s / 1e6:.2f} M edges/s)")

    block = args.size // 2
    result, block_s = timed(blockwise, pred, gt, skeletons, block)
    one_shot = EvaluationAccumulator(skeletons, VOXEL_SIZE)
    one_shot.add_block(pred, gt)
    assert result.summary() == one_shot.finish().summary()
    print(f"blockwise ({block}^3 blocks; VOI, ARAND, lookups, ERL of the random walks in the "
          f"volume): {block_s:.2f} s, identical to one block")

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = skimage_s / ours_s
    print(f"peak RSS {peak_mb:.0f} MB; ratio (skimage time / our time, VOI + ARAND) {ratio:.2f}")
    print(json.dumps({
        "benchmark": "evaluate",
        "volume_shape": list(gt.shape),
        "n_gt_objects": int(len(np.unique(gt)) - 1),
        "ours_voi_arand_s": round(ours_s, 3),
        "skimage_voi_arand_s": round(skimage_s, 3),
        "ours_voxels_per_s": round(n_voxels / ours_s),
        "skimage_voxels_per_s": round(n_voxels / skimage_s),
        "voi_max_abs_diff_vs_skimage": voi_gap,
        "erl_s": round(erl_s, 3),
        "erl_nerl": round(erl.nerl, 4),
        "node_lookup_s": round(lookup_s, 3),
        "erl_n_skeletons": args.skeletons,
        "erl_n_nodes": skeletons.n_nodes,
        "blockwise_total_s": round(block_s, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "ratio": round(ratio, 3),
    }))


if __name__ == "__main__":
    main()
