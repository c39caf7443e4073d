"""Benchmark: ``axonseg skeletonize`` (blockwise kimimaro + join, resumable) against kimimaro on
the whole volume, on real labels, with the two sides' skeletons compared.

Label sets (both 250³ at 10 nm unless ``--crop``):

- ``gt``: the FIB-SEM medulla ground truth (``../shared/data/fib_medulla_ts2``, found as the
  tests find it: ``tests/shared_data.py``, ``AXONSEG_SHARED_DATA`` overrides);
- ``model``: a segmentation of the same raw made by the shipped model
  (``data/models/fib_default``): ``axonseg predict`` and ``axonseg agglomerate --config
  configs/agglomerate_fib.yaml`` into ``WORKDIR/model_run`` (a few minutes, not timed), at the
  run's default threshold; ``--model-run RUN`` takes an existing run folder's labels instead.

Each label set is written as the ``segmentation`` of a bare run folder. For each set, each side
runs in its own fresh process (forked from a server that has only imported the libraries), so
its peak RSS (ru_maxrss) and CPU seconds are its own:

- ours: :func:`axonseg.pipelines.skeletonize.run_skeletonize` on that run folder, i.e. what
  ``axonseg skeletonize RUN`` does (blocks, parquet pieces, join, tables and SWC files), with
  the default config (``--block`` / ``--context`` override it), scheduler ``threads``;
- peer: kimimaro on the whole volume as one igneous-style task: read the whole segmentation,
  renumber, ``kimimaro.skeletonize`` with the same TEASAR parameters, anisotropy, dust
  threshold, fix_branching / fix_borders and ``parallel=1`` (``--peer-parallel``). Its
  skeletons are not written anywhere (ours are: parquet tables and SWC files).
- pooled peer (``--no-pooled-peer`` skips it): kimimaro on the whole volume with its own
  ``parallel`` = the machine's cores, the same cores ours gets under its default scheduler
  (``threads``: one forked worker process per core);
- reference (``--no-reference`` skips it): the peer again on the volume mirrored in x
  (coordinates mirrored back). kimimaro's own result moves under that, so its agreement with
  the peer is the floor for what ours can be expected to reach.

Agreement (ours against the peer, and the mirrored peer against the peer): relative difference
of the total skeleton length, of the ERL of the labels as their own segmentation (sum of
squared skeleton lengths over their sum, the "GT ERL" of :mod:`axonseg.evaluate.erl`), and, for
the ground truth, of the ERL of the model segmentation scored on each side's GT skeletons
(what ``axonseg evaluate`` reports).

``ratio`` in the last JSON line is the peer's seconds over ours for the set where ours does
worst (above 1: we are faster on both); ``cpu_ratio`` the same with CPU seconds, which is the
figure to read on a shared machine; ``pooled_ratio`` the pooled peer's seconds over ours (same cores).

Run: ``.venv/bin/python benchmarks/skeletonize.py [--sets gt model] [--model-run RUN]``;
``--quick`` is a smoke run (a 48x64x64 crop in two 24x64x64 blocks) for the tests. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import isa_flags, measure as run_measured, task_child

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from shared_data import FIB_PATH  # noqa: E402  (the one place that knows where the shared data lives)

VOXEL_SIZE = (10.0, 10.0, 10.0)
SETS = ("gt", "model")
SIDES = ("peer", "ours", "pooled", "mirror")
PRELOAD = ["numpy", "zarr", "kimimaro", "fastremap", "cc3d", "pandas", "pyarrow.parquet",
           "axonseg.pipelines.skeletonize", "axonseg.evaluate"]
def _config(spec: dict):  # noqa: ANN202
    from axonseg.config import validate_config
    from axonseg.pipelines.skeletonize import SkeletonizeConfig

    update = {}
    if spec.get("block"):
        update["block_shape"] = tuple(spec["block"])
    if spec.get("context") is not None:
        update["context"] = tuple(spec["context"])
    if spec.get("downsample"):
        update["downsample"] = tuple(spec["downsample"])
    if spec.get("parallel"):
        update["skeleton"] = {"parallel": spec["parallel"]}
    return validate_config(SkeletonizeConfig, update)


# ---------------------------------------------------------------- child side (forked per task)

def cpu_seconds() -> float:
    """CPU seconds of this process (all threads) plus its reaped children (kimimaro's
    ``parallel`` pool, a LocalCluster's workers once closed)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _write_run(run_dir: Path, labels) -> None:  # noqa: ANN001
    import numpy as np

    from axonseg.io import write_array

    shutil.rmtree(run_dir, ignore_errors=True)
    write_array(run_dir / "volume.zarr", "segmentation", labels.astype(np.uint64), VOXEL_SIZE)


def _prepare(spec: dict) -> dict:
    """The label sets as bare run folders (``WORKDIR/<set>/volume.zarr/segmentation``)."""
    import h5py
    import numpy as np

    from axonseg.pipelines.run_folder import RunFolder

    workdir, crop = Path(spec["workdir"]), tuple(spec["crop"])
    region = tuple(slice(0, c) for c in crop)
    with h5py.File(spec["fib"], "r") as f:
        gt = f["labels"][region]
        raw = f["raw"][region] if "model" in spec["sets"] and not spec["model_run"] else None
    details: dict = {}
    if "gt" in spec["sets"]:
        _write_run(workdir / "gt", gt)
    if "model" in spec["sets"]:
        model_run = spec["model_run"]
        if not model_run:
            model_run = str(workdir / "model_run")
            source = f"{spec['fib']}:raw"
            if crop != (250, 250, 250):
                source_file = workdir / "raw_crop.h5"
                with h5py.File(source_file, "w") as f:
                    f.create_dataset("raw", data=raw).attrs["resolution_nm_zyx"] = np.array(VOXEL_SIZE)
                source = f"{source_file}:raw"
            started = time.perf_counter()
            axonseg = str(Path(sys.executable).parent / "axonseg")
            for command in ([axonseg, "-q", "predict", source, "--out", model_run, "--restart"],
                            [axonseg, "-q", "agglomerate", model_run, "--config", str(REPO / "configs" / "agglomerate_fib.yaml"),
                             "--restart"]):
                subprocess.run(command, check=True, cwd=REPO)
            details["model_seconds"] = time.perf_counter() - started
        labels = RunFolder(Path(model_run)).labels()
        from axonseg.blockwise import Roi

        volume = labels.volume
        shape = tuple(volume.spatial_shape)
        segmentation = labels.read(Roi.of((0, 0, 0), shape))[labels.keys[0]]
        segmentation = segmentation[tuple(slice(0, min(c, s)) for c, s in zip(crop, shape))]
        np.save(workdir / "model_labels.npy", segmentation)
        _write_run(workdir / "model", segmentation)
        details["model_run"] = model_run
        details["model_threshold"] = labels.threshold
    for name in spec["sets"]:
        ids = np.unique(gt if name == "gt" else np.load(workdir / "model_labels.npy"), return_counts=True)
        details[name] = {"shape": list(crop), "segments": int((ids[0] != 0).sum()),
                         "segments_over_dust": int(((ids[0] != 0) & (ids[1] > 100)).sum())}
    return details


def _graphs_file(spec: dict, side: str) -> Path:
    return Path(spec["workdir"]) / f"{spec['set']}_{side}.pkl"


def _ours(spec: dict) -> dict:
    import axonseg.pipelines.skeletonize.job as job
    from axonseg.pipelines.skeletonize import read_run_skeletons, run_skeletonize

    join_seconds, join_cpu = [], []
    real_join = job.join_to_disk

    def timed_join(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return real_join(*args, **kwargs)
        finally:
            join_seconds.append(time.perf_counter() - started)
            join_cpu.append(time.process_time() - cpu)

    job.join_to_disk = timed_join
    config = _config(spec)
    cpu, started = cpu_seconds(), time.perf_counter()
    result = run_skeletonize(spec["run_dir"], config, scheduler=spec["scheduler"], restart=True, show_progress=False)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    graphs = read_run_skeletons(spec["run_dir"])
    with open(_graphs_file(spec, "ours"), "wb") as handle:
        pickle.dump(graphs, handle)
    return {"timed_seconds": seconds, "timed_cpu_seconds": cpu, "join_seconds": sum(join_seconds), "join_cpu_seconds": sum(join_cpu),
            "skeletons": result.n_segments, "block": list(config.block_shape),
            "context": None if config.context is None else list(config.context)}


def _peer(spec: dict) -> dict:
    """kimimaro on the whole volume (``mirror``: mirrored in x, coordinates mirrored back)."""
    import fastremap
    import kimimaro
    import numpy as np

    from axonseg.io import open_level
    from axonseg.skeleton import AxonGraph

    params = _config({}).skeleton  # the defaults (kimimaro's `parallel` is --peer-parallel)
    voxel = np.asarray(VOXEL_SIZE)
    cpu, started = cpu_seconds(), time.perf_counter()
    labels = open_level(Path(spec["run_dir"]) / "volume.zarr", "segmentation", 0)[:]
    if spec.get("mirror"):
        labels = np.ascontiguousarray(labels[:, :, ::-1])
    labels, mapping = fastremap.renumber(labels, preserve_zero=True, in_place=True)
    shape = labels.shape
    skeletons = kimimaro.skeletonize(
        labels.T, in_place=True, teasar_params=params.teasar_params(), anisotropy=tuple(voxel[::-1]),
        dust_threshold=params.dust_threshold, fix_branching=params.fix_branching, fix_borders=params.fix_borders,
        fill_holes=params.fill_holes, parallel=spec.get("pooled") or spec["peer_parallel"], progress=False,
    )
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    original = {new: old for old, new in mapping.items()}
    graphs = {}
    for label, skeleton in skeletons.items():
        nodes = np.asarray(skeleton.vertices, dtype=np.float64)[:, ::-1] + voxel / 2  # voxel centres, as ours
        if spec.get("mirror"):
            nodes[:, 2] = shape[2] * voxel[2] - nodes[:, 2]
        edges = np.asarray(skeleton.edges, dtype=np.int64).reshape(-1, 2)
        segment = int(original[int(label)])
        graphs[segment] = AxonGraph(segment, nodes, edges[edges[:, 0] != edges[:, 1]], np.asarray(skeleton.radius))
    with open(_graphs_file(spec, spec.get("side", "peer")), "wb") as handle:
        pickle.dump(graphs, handle)
    return {"timed_seconds": seconds, "timed_cpu_seconds": cpu, "skeletons": len(graphs)}


def _compare(spec: dict) -> dict:
    """Agreement of ours (and of the mirrored peer) with the peer: lengths and ERL."""
    import numpy as np

    from axonseg.evaluate.erl import expected_run_length
    from axonseg.evaluate.lookup import lookup_segments

    sides = {}
    for side in SIDES:
        path = _graphs_file(spec, side)
        if path.exists():
            with open(path, "rb") as handle:
                sides[side] = pickle.load(handle)
    model = np.load(Path(spec["workdir"]) / "model_labels.npy") if spec["set"] == "gt" and spec["has_model"] else None
    figures = {}
    for side, graphs in sides.items():
        lengths = np.array([g.path_length_nm for g in graphs.values()])
        row = {"skeletons": len(graphs), "total_length_nm": float(lengths.sum()),
               "label_erl_nm": float((lengths**2).sum() / lengths.sum()) if len(lengths) else 0.0,
               "components": int(sum(g.n_components() for g in graphs.values()))}
        if model is not None and graphs:
            nodes = np.concatenate([g.nodes_nm for g in graphs.values()])
            row["model_erl_on_gt_nm"] = float(expected_run_length(graphs, lookup_segments(model, nodes, VOXEL_SIZE)).erl_nm)
        figures[side] = row
    peer = figures["peer"]
    for side in ("ours", "mirror", "pooled"):
        if side in figures:
            row = figures[side]
            for key in ("total_length_nm", "label_erl_nm", "model_erl_on_gt_nm"):
                if key in row:
                    row[key.replace("_nm", "") + "_rel_diff"] = row[key] / peer[key] - 1
    return figures


TASKS = {"prepare": _prepare, "ours": _ours, "peer": _peer, "compare": _compare}


def measure(context, task: str, spec: dict) -> dict:  # noqa: ANN001
    return run_measured(context, task_child, TASKS, task, spec)


# ---------------------------------------------------------------- parent side

def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="label sets to run")
    parser.add_argument("--model-run", type=Path, default=None, help="run folder whose labels are the model set "
                        "(default: segment the FIB raw with the shipped model into WORKDIR/model_run)")
    parser.add_argument("--crop", type=int, nargs=3, default=[250, 250, 250], help="crop of the FIB volume, voxels zyx")
    parser.add_argument("--block", type=int, nargs=3, default=None, help="our block shape (default: configs/skeletonize.yaml's)")
    parser.add_argument("--context", type=int, nargs=3, default=None, help="our context per side (default: the config's rule)")
    parser.add_argument("--downsample", type=int, nargs=3, default=None, help="ours traces labels downsampled by "
                        "this factor (zyx; the config's `downsample`); the peer stays at full resolution")
    parser.add_argument("--parallel", type=int, default=None, help="kimimaro's `parallel` for ours (default: the config's)")
    parser.add_argument("--scheduler", default="threads", help="our scheduler (default threads: one forked worker "
                        "process per core; local:N: N dask worker processes, whose CPU seconds are not counted)")
    parser.add_argument("--peer-parallel", type=int, default=1, help="kimimaro's `parallel` for the peer")
    parser.add_argument("--no-reference", action="store_true", help="skip kimimaro on the mirrored volume")
    parser.add_argument("--no-pooled-peer", action="store_true", help="skip kimimaro with parallel = the machine's cores")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temp folder, removed)")
    parser.add_argument("--quick", action="store_true", help="smoke run: a 48x64x64 crop in 24x64x64 blocks")
    args = parser.parse_args()
    if args.quick:
        args.crop, args.block = [48, 64, 64], args.block or [24, 64, 64]
    if not FIB_PATH.exists():
        raise SystemExit(f"{FIB_PATH}: the FIB-SEM labels are missing (set AXONSEG_SHARED_DATA)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="axonseg_bench_skeletonize_"))
    workdir.mkdir(parents=True, exist_ok=True)
    flags = isa_flags()
    print(f"sets {args.sets}; crop {args.crop}; block {args.block or 'default'}; context {args.context or 'default'}; "
          f"downsample {args.downsample or [1, 1, 1]}; scheduler {args.scheduler}; parallel {args.parallel or 'default'}; "
          f"{os.cpu_count()} cores; ISA {' '.join(flags) or '?'}; load average {os.getloadavg()[0]:.1f}; "
          f"workdir {workdir}", flush=True)
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    started = time.perf_counter()
    spec = {"workdir": str(workdir), "crop": args.crop, "sets": args.sets, "fib": str(FIB_PATH),
            "model_run": str(args.model_run) if args.model_run else None, "block": args.block,
            "context": args.context, "downsample": args.downsample, "peer_parallel": args.peer_parallel, "parallel": args.parallel,
            "scheduler": args.scheduler}
    prepared = measure(context, "prepare", spec)["details"]
    for name in args.sets:
        print(f"{name}: {prepared[name]['segments']} segments, {prepared[name]['segments_over_dust']} over the dust "
              f"threshold", flush=True)
    if "model" in prepared:
        made = f", made in {prepared['model_seconds']:.0f} s" if "model_seconds" in prepared else ""
        print(f"model segmentation: {prepared['model_run']} at threshold {prepared['model_threshold']}{made}", flush=True)
    voxels = args.crop[0] * args.crop[1] * args.crop[2]
    rows: dict[str, dict] = {}
    for name in args.sets:
        run = {**spec, "set": name, "run_dir": str(workdir / name), "has_model": "model" in args.sets}
        rows[name] = {}
        order = ("ours", "peer") if len(rows) % 2 else ("peer", "ours")  # alternate which side runs first
        for side in order:
            rows[name][side] = measure(context, side, run)
        if not args.no_pooled_peer:
            rows[name]["pooled"] = measure(context, "peer", {**run, "pooled": os.cpu_count() or 1, "side": "pooled"})
        if not args.no_reference:
            rows[name]["mirror"] = measure(context, "peer", {**run, "mirror": True, "side": "mirror"})
        rows[name]["compare"] = measure(context, "compare", run)["details"]
        for side in SIDES:
            if side in rows[name]:
                row = rows[name][side]
                pooled = side == "pooled" or (side == "ours" and row["children_peak_rss_mb"] > 0)
                workers = f" (each worker process up to {row['children_peak_rss_mb']:.0f} MB)" if pooled else ""
                print(f"  {name:<5} {side:<6} {row['details']['timed_seconds']:8.1f} s  CPU "
                      f"{row['details']['timed_cpu_seconds']:7.1f} s  peak {row['peak_rss_mb']:6.0f} MB{workers}", flush=True)

    print(f"\n{'set':<6} {'side':<7} {'seconds':>8} {'CPU s':>7} {'Mvox/s':>7} {'CPU Mvox/s':>10} {'peak MB':>8} "
          f"{'skeletons':>9} {'length um':>10} {'vs peer':>8} {'label ERL um':>12} {'vs peer':>8} "
          f"{'model ERL nm':>12} {'vs peer':>8}")
    summary = {}
    for name, sides in rows.items():
        compare = sides["compare"]
        for side in SIDES:
            if side not in sides:
                continue
            row, figures = sides[side], compare[side]
            seconds, cpu = row["details"]["timed_seconds"], row["details"]["timed_cpu_seconds"]
            model_erl = figures.get("model_erl_on_gt_nm")
            print(f"{name:<6} {side:<7} {seconds:8.1f} {cpu:7.1f} {voxels / seconds / 1e6:7.3f} {voxels / cpu / 1e6:10.3f} "
                  f"{row['peak_rss_mb']:8.0f} {figures['skeletons']:9d} {figures['total_length_nm'] / 1000:10.1f} "
                  f"{_pct(figures.get('total_length_rel_diff')):>8} {figures['label_erl_nm'] / 1000:12.2f} "
                  f"{_pct(figures.get('label_erl_rel_diff')):>8} "
                  f"{'' if model_erl is None else f'{model_erl:.1f}':>12} {_pct(figures.get('model_erl_on_gt_rel_diff')):>8}")
        ours, peer = sides["ours"]["details"], sides["peer"]["details"]
        summary[name] = {
            "ratio": peer["timed_seconds"] / ours["timed_seconds"],
            "cpu_ratio": peer["timed_cpu_seconds"] / ours["timed_cpu_seconds"],
            "pooled_ratio": sides["pooled"]["details"]["timed_seconds"] / ours["timed_seconds"] if "pooled" in sides else None,
            "join_seconds": ours["join_seconds"], "join_cpu_seconds": ours["join_cpu_seconds"], "block": ours["block"], "context": ours["context"],
            "sides": {side: {"seconds": sides[side]["details"]["timed_seconds"],
                             "cpu_seconds": sides[side]["details"]["timed_cpu_seconds"],
                             "voxels_per_s": voxels / sides[side]["details"]["timed_seconds"],
                             "peak_rss_mb": sides[side]["peak_rss_mb"],
                             "children_peak_rss_mb": sides[side]["children_peak_rss_mb"], **compare[side]}
                      for side in SIDES if side in sides},
        }
    print()
    for name, figures in summary.items():
        print(f"{name}: ratio (kimimaro whole-volume seconds / ours) {figures['ratio']:.2f}, CPU {figures['cpu_ratio']:.2f} "
              f"(above 1: we are faster)"
              + ("" if figures["pooled_ratio"] is None else f"; against kimimaro parallel={os.cpu_count()} {figures['pooled_ratio']:.2f}")
              + f"; our join + tables + SWC {figures['join_seconds']:.1f} s, "
              f"CPU {figures['join_cpu_seconds']:.1f} s; block {figures['block']}, context {figures['context'] or 'default'}")
    worst = min(summary, key=lambda name: summary[name]["ratio"])
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "benchmark": "skeletonize", "sets": args.sets, "crop": args.crop, "voxels": voxels,
        "ratio": summary[worst]["ratio"], "ratio_set": worst,
        "cpu_ratio": min(figures["cpu_ratio"] for figures in summary.values()),
        "pooled_ratio": None if args.no_pooled_peer else min(figures["pooled_ratio"] for figures in summary.values()),
        "scheduler": args.scheduler, "downsample": args.downsample or [1, 1, 1],
        "ratio_peer": "kimimaro.skeletonize on the whole volume (same TEASAR parameters, dust, parallel=1), not written",
        "isa": flags, "cores": os.cpu_count(), "load_average": os.getloadavg()[0],
        "per_set": summary, "total_seconds": time.perf_counter() - started,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
