"""Benchmark: fragments + agglomeration of axonseg vs waterz (and mwatershed) on one volume.

All methods get the same affinities: ground-truth-derived with gaussian noise from the real
FIB-SEM labels (z 0-127, 128 x 250 x 250 at 10 nm), else the repo's held-out slab
data/fib_medulla_heldout.h5 (70 x 250 x 250), else a synthetic Voronoi volume. Each method sweeps its threshold (bias for mutex watershed) and reports its
best VOI (split + merge) against the labels. Each runs in a forked child for its own peak RSS.
Prints voxels/s, wall times, ratio = waterz time / our time (> 1: we are faster); the last
line is JSON. JIT compile is excluded for
both (a warm-up call on a small crop loads numba's cache / waterz's built module first).
Timings include what each method needs to produce one segmentation per
threshold: fragments, region graph, agglomeration and relabelling for ours; the whole
waterz.agglomerate call for waterz. Both keep one segmentation buffer and update it in place
per threshold (waterz's extractSegmentation maps its previous segmentation; ours relabels the
previous segment ids with the next nested LUT). mwatershed on pixels
is slow (minutes on the full volume): by default it runs on a crop (--mwatershed-shape),
reported as such and not comparable in time; --skip-mwatershed leaves it out.

Threads: ours uses --threads (default 2) for the seeds of watershed_fragments (the distance
transform and its maxima); the rest of fragments, the region graph, agglomeration and
relabelling run on one thread. waterz runs on one thread. Run with --threads 1 for a
one-thread comparison.

Run: .venv/bin/python benchmarks/agglomerate.py [--noise 0.2] [--shape 128 256 256]
     [--skip-mwatershed] [--mwatershed-shape 64 128 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import json
import multiprocessing
import resource
import time
from pathlib import Path

import numpy as np
from skimage.metrics import variation_of_information

# ../shared/data beside the clone; AXONSEG_SHARED_DATA overrides it (as for the tests)
REAL = Path(os.environ.get("AXONSEG_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data") / "fib_medulla_ts2" / "fib_medulla_ts2_250.h5"
HELDOUT = Path(__file__).resolve().parents[1] / "data" / "fib_medulla_heldout.h5"
NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]
LONG_OFFSETS = [(0, -3, 0), (0, 0, -3), (0, -9, 0), (0, 0, -9), (-2, 0, 0)]
THRESHOLDS = [round(t, 3) for t in np.linspace(0.05, 0.95, 19)]
BIASES = [0.3, 0.4, 0.5, 0.6, 0.7]


def load_labels(shape) -> tuple[np.ndarray, str]:
    for path in (REAL, HELDOUT):
        if path.exists():
            import h5py

            with h5py.File(path, "r") as f:
                labels = f["labels"][: shape[0], : shape[1], : shape[2]].astype(np.int64)
            return labels, f"real FIB-SEM labels {path.name} crop {labels.shape}"
    from scipy import ndimage

    rng = np.random.default_rng(0)
    centres = np.zeros(shape, dtype=np.int64)
    centres[tuple(rng.integers(0, s, 400) for s in shape)] = np.arange(1, 401)
    _, nearest = ndimage.distance_transform_edt(centres == 0, return_indices=True)
    return centres[tuple(nearest)], f"synthetic Voronoi volume {shape} (real data absent)"


def affinities_from_labels(labels, offsets, noise, seed):
    affinities = np.zeros((len(offsets),) + labels.shape, dtype=np.float32)
    for channel, offset in enumerate(offsets):
        here = tuple(slice(max(-o, 0), s - max(o, 0)) for o, s in zip(offset, labels.shape))
        there = tuple(slice(max(o, 0), s - max(-o, 0)) for o, s in zip(offset, labels.shape))
        affinities[(channel,) + here] = (labels[here] == labels[there]) & (labels[here] != 0)
    affinities += np.random.default_rng(seed).normal(0, noise, affinities.shape).astype(np.float32)
    return np.clip(affinities, 0, 1, out=affinities)


def voi(labels, segmentation):
    split, merge = variation_of_information(labels, segmentation.astype(np.int64))
    return float(split), float(merge)


def with_context(fragments):
    """The fragments with one voxel of 0 context on the negative z, y, x sides, built as the
    graph pipeline builds it (np.zeros and one copy)."""
    context = np.zeros(tuple(s + 1 for s in fragments.shape), dtype=fragments.dtype)
    context[1:, 1:, 1:] = fragments
    return context


def run_ours(affinities, labels, score, n_threads):
    from axonseg.segment import agglomerate, block_region_graph, relabel, watershed_fragments

    start = time.perf_counter()
    fragments, n_ids = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(10, 10, 10), n_threads=n_threads)
    t_fragments = time.perf_counter() - start
    graph = block_region_graph(with_context(fragments), affinities, NN_OFFSETS, (10, 10, 10))
    t_graph = time.perf_counter() - start - t_fragments
    luts = agglomerate(graph, THRESHOLDS, score=score)
    t_agglomerate = time.perf_counter() - start - t_fragments - t_graph
    # Like waterz's generator: one segmentation buffer, updated in place per threshold (the
    # LUTs are nested, so the previous segment ids map to this threshold's, as waterz's
    # extractSegmentation maps its previous segmentation); VOI is scored between thresholds,
    # outside the timed work (the same for waterz below).
    buffer = np.zeros(fragments.shape, dtype=np.uint64)
    t_relabel, scores, previous = 0.0, [], None
    for lut in luts:
        tick = time.perf_counter()
        if previous is None:
            relabel(fragments, lut.fragment_ids, lut.segment_ids, out=buffer)
        else:
            relabel(buffer, previous, lut.segment_ids, out=buffer)
        previous = lut.segment_ids
        t_relabel += time.perf_counter() - tick
        scores.append(voi(labels, buffer))
    total = t_fragments + t_graph + t_agglomerate + t_relabel
    return total, scores, {"fragments_s": t_fragments, "graph_s": t_graph, "agglomerate_s": t_agglomerate,
                          "relabel_s": t_relabel, "n_fragments": n_ids, "n_edges": graph.n_edges}


def run_ours_mutex(affinities, labels, n_threads):
    from axonseg.segment import block_region_graph, mutex_watershed, relabel, watershed_fragments

    start = time.perf_counter()
    fragments, _ = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(10, 10, 10), n_threads=n_threads)
    graph = block_region_graph(with_context(fragments), affinities, NN_OFFSETS, (10, 10, 10))
    total = time.perf_counter() - start
    buffer = np.zeros(fragments.shape, dtype=np.uint64)
    scores = []
    for bias in BIASES:  # one reused buffer, VOI outside the timed work, as for the others
        tick = time.perf_counter()
        lut = mutex_watershed(graph, bias=bias)
        relabel(fragments, lut.fragment_ids, lut.segment_ids, out=buffer)
        total += time.perf_counter() - tick
        scores.append(voi(labels, buffer))
    return total, scores, {}


def run_waterz(affinities, labels, score):
    import waterz

    function = {
        "mean": "OneMinus<MeanAffinity<RegionGraphType, ScoreValue>>",
        "quantile": "OneMinus<HistogramQuantileAffinity<RegionGraphType, 50, ScoreValue, 256, false>>",
    }[score]
    # waterz yields one segmentation buffer per threshold; time the generator only and score
    # each segmentation between yields, outside the timed work (as for ours above)
    generator = waterz.agglomerate(affinities, THRESHOLDS, scoring_function=function)
    total, scores = 0.0, []
    while True:
        tick = time.perf_counter()
        segmentation = next(generator, None)
        total += time.perf_counter() - tick
        if segmentation is None:
            break
        scores.append(voi(labels, segmentation))
    return total, scores, {}


def run_mwatershed(affinities, labels, long_affinities):
    import mwatershed

    # mwatershed wants affinities of p and p + o for positive o: shift ours (p, p - o) by o
    offsets = NN_OFFSETS + LONG_OFFSETS
    stacked = np.concatenate([affinities, long_affinities])
    shifted = np.zeros_like(stacked)
    for c, offset in enumerate(offsets):
        source = tuple(slice(-o, None) for o in offset)
        target = tuple(slice(0, s + o) for o, s in zip(offset, labels.shape))
        shifted[(c,) + target] = stacked[(c,) + source]
    positive = [[-o for o in offset] for offset in offsets]
    start = time.perf_counter()
    segmentations = [mwatershed.agglom((shifted - bias).astype(np.float64), positive) for bias in BIASES]
    total = time.perf_counter() - start
    return total, [voi(labels, seg) for seg in segmentations], {}


def in_child(function, *args):
    """Run function in a forked child; returns its result and the child's peak RSS in MiB."""
    context = multiprocessing.get_context("fork")
    parent_end, child_end = context.Pipe()

    def target():
        try:
            result = function(*args)
            child_end.send((result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, None))
        except Exception as error:  # reported, not hidden
            child_end.send((None, 0.0, repr(error)))

    process = context.Process(target=target)
    process.start()
    result, rss, error = parent_end.recv()
    process.join()
    return result, rss, error


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", type=int, nargs=3, default=(128, 256, 256))
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--skip-mwatershed", action="store_true", help="leave mwatershed out")
    parser.add_argument("--repeats", type=int, default=3, help="runs per method, interleaved in rotating order; the fastest counts")
    parser.add_argument("--threads", type=int, default=2,
                        help="n_threads of watershed_fragments (threads for the distance transform of its "
                             "seeds and its maxima; the rest of ours and all of waterz run on one thread)")
    parser.add_argument("--mwatershed-shape", type=int, nargs=3, default=(64, 128, 128),
                        help="crop (z y x voxels) for mwatershed on pixels; it is slow")
    args = parser.parse_args()
    labels, source = load_labels(tuple(args.shape))
    affinities = affinities_from_labels(labels, NN_OFFSETS, args.noise, seed=0)
    n_voxels = labels.size
    print(f"data: {source}, noise sigma {args.noise}, {n_voxels} voxels")

    # warm-ups: waterz loads its prebuilt C++ module, numba loads (or compiles) its cache;
    # neither is counted below
    small = np.ascontiguousarray(affinities[:, :16, :32, :32])
    from axonseg.segment import agglomerate, block_region_graph, watershed_fragments

    from axonseg.segment import mutex_watershed, relabel

    for score in ("mean", "quantile"):
        frags, _ = watershed_fragments(small, NN_OFFSETS, n_threads=args.threads)
        graph = block_region_graph(np.pad(frags, ((1, 0), (1, 0), (1, 0))), small, NN_OFFSETS)
        lut = agglomerate(graph, [0.5], score=score)[0]
        relabel(frags, lut.fragment_ids, lut.segment_ids)
        mutex_watershed(graph)
    methods = {
        "axonseg_mean": (run_ours, affinities, labels, "mean", args.threads),
        "axonseg_quantile50": (run_ours, affinities, labels, "quantile", args.threads),
        "axonseg_mutex": (run_ours_mutex, affinities, labels, args.threads),
    }
    print(f"threads: axonseg watershed_fragments(n_threads={args.threads}) uses {args.threads} for the distance "
          "transform of its seeds and its maxima, one for everything else; waterz uses one")
    try:
        import waterz

        for score in ("mean", "quantile"):
            function = "OneMinus<MeanAffinity<RegionGraphType, ScoreValue>>" if score == "mean" else \
                "OneMinus<HistogramQuantileAffinity<RegionGraphType, 50, ScoreValue, 256, false>>"
            list(waterz.agglomerate(small, [0.5], scoring_function=function))
        print("waterz: warm-up call done (prebuilt module load / any compile excluded from timing)")
        methods["waterz_mean"] = (run_waterz, affinities, labels, "mean")
        methods["waterz_quantile50"] = (run_waterz, affinities, labels, "quantile")
    except ImportError as error:
        print(f"waterz: NOT AVAILABLE ({error}); no waterz comparison")
    crop = tuple(slice(0, s) for s in args.mwatershed_shape)
    if args.skip_mwatershed:
        print("mwatershed: skipped (--skip-mwatershed)")
    else:
        try:
            import mwatershed  # noqa: F401

            crop_labels = np.ascontiguousarray(labels[crop])
            long_affinities = affinities_from_labels(crop_labels, LONG_OFFSETS, args.noise, seed=1)
            methods["mwatershed_pixels_crop"] = (
                run_mwatershed, np.ascontiguousarray(affinities[(slice(None),) + crop]),
                crop_labels, long_affinities)
            print(f"mwatershed: on the crop {crop_labels.shape} only (pixels are slow); its time "
                  "and VOI are not comparable with the full-volume methods")
        except ImportError as error:
            print(f"mwatershed: NOT AVAILABLE ({error})")

    # Each method runs --repeats times, interleaved with the others in a rotating order, in a
    # fresh child each time; the fastest run counts. On a shared machine this removes most of the order and load noise.
    runs: dict[str, list] = {}
    names = list(methods)
    for repeat in range(args.repeats):
        order = names[repeat % len(names):] + names[:repeat % len(names)]  # rotate who goes first
        for name in order:
            function, *call_args = methods[name]
            result, rss, error = in_child(function, *call_args)
            if error:
                print(f"{name}: FAILED {error}")
                continue
            runs.setdefault(name, []).append((result, rss))
    figures = {}
    for name, attempts in runs.items():
        median_seconds = float(np.median([attempt[0][0] for attempt in attempts]))
        (seconds, scores, extra), rss = min(attempts, key=lambda attempt: attempt[0][0])
        voxels = n_voxels if "crop" not in name else int(np.prod(labels[crop].shape))
        sweep = BIASES if "mutex" in name or "mwatershed" in name else THRESHOLDS
        best = int(np.argmin([sum(s) for s in scores]))
        figures[name] = {
            "seconds": round(seconds, 3), "median_seconds": round(median_seconds, 3), "voxels": voxels, "voxels_per_s": round(voxels / seconds),
            "peak_rss_mib": round(rss), "best_threshold": sweep[best],
            "voi_split": round(scores[best][0], 4), "voi_merge": round(scores[best][1], 4),
            **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in extra.items()},
        }
        print(f"{name:22s} {seconds:7.2f} s  {voxels / seconds:10.0f} vox/s  peak RSS {rss:6.0f} MiB  "
              f"best @ {sweep[best]}: VOI split {scores[best][0]:.4f} merge {scores[best][1]:.4f}  {extra}")

    ours, peer = figures.get("axonseg_mean"), figures.get("waterz_mean")
    ratio = round(peer["seconds"] / ours["seconds"], 3) if ours and peer else None
    ratio_median = round(peer["median_seconds"] / ours["median_seconds"], 3) if ours and peer else None
    if ratio is not None:
        print(f"ratio (waterz time / axonseg time, mean score, end to end incl. fragments): {ratio} "
              f"fastest runs, {ratio_median} median runs")
    print(json.dumps({"benchmark": "agglomerate", "data": source, "voxels": n_voxels, "noise": args.noise,
                      "axonseg_threads": args.threads, "waterz_threads": 1,
                      "ratio": ratio, "ratio_median": ratio_median, "ratio_peer": "waterz_mean", "methods": figures}))


if __name__ == "__main__":
    main()
