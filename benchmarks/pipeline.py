"""Benchmark: the whole ``axonseg segment`` pipeline at two volume sizes, stage by stage.

Runs predict -> fragments -> graph -> agglomerate -> relabel -> skeletonize -> export (the
stages of :func:`axonseg.pipelines.segment.pipeline.run_segment`; evaluate is left out because a
production volume has no ground truth) on ``--sizes`` cubed voxels with one block shape, of

- ``--volume synth`` (default): synthetic AxonEM-like volumes (30x8x8 nm, ``axonseg synth``),
  segmented by the default 30x8x8 nm model (``data/models/defaults.yaml``: ``synth_aniso`` for the
  figures in docs/teravoxel.md, ``aniso_v2`` from 2026-12-03, ``aniso_v3`` since 2026-12-04) with
  ``configs/agglomerate_axonem.yaml`` (2D fragments per section);
- ``--volume fib``: crops of the real FIB-SEM medulla (10 nm, ``../shared/data``; at most 250³),
  segmented by the shipped 10 nm model (``data/models/fib_default``) with
  ``configs/agglomerate_fib.yaml``.
 Each stage runs in its own process, forked
from a server that has only imported the libraries, so its peak RSS (ru_maxrss) is its own
and not inherited from an earlier stage. Prints per stage: seconds, voxels/s, peak RSS and
CPU seconds; the peak-RSS ratio largest/smallest size of every stage bounded by the block
(so it should stay near 1): all but the global agglomeration, whose graph grows with the
volume (measured in bytes per edge); the LocalCluster speed-up from 1 to 2 workers on
fragments + graph + relabel; and CPU-hours per teravoxel projected from the per-voxel costs.

``ratio`` in the last JSON line is that speed-up: the named peer is the same pipeline stages
on one LocalCluster worker (``local:1``), ours is two workers (``local:2``), same input and
block shape, measured in the same run. The model is the shipped one for the volume's voxel size
unless ``--model`` is given; ``--random-weights`` takes random weights of the default
architecture instead (predict costs the same, but the segmentation of a random net is nothing
like a real one, so later stages cost something else).

Run: ``.venv/bin/python benchmarks/pipeline.py [--sizes 256 512] [--block 128 128 128]``
(``--workdir DIR --reuse-before skeletonize`` re-measures skeletonize and export only, taking the
earlier stages of a previous run in DIR);
``--quick`` is a smoke run (32^3 and 48^3, a tiny random net) for the tests. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _common import isa_flags, measure as run_measured

STAGES = ("predict", "fragments", "graph", "agglomerate", "relabel", "skeletonize", "export")
# stages whose memory must be bounded by the block; only the global agglomeration holds
# something volume-wide (skeletonize joins a batch of segments at a time, export streams the
# skeletons and keeps only the contact/synapse tables)
BLOCKWISE = ("predict", "fragments", "graph", "relabel", "skeletonize", "export")
# processes each stage keeps busy: torch and the dask threaded scheduler use every core (skeletonize
# through its fork pool, one worker process per thread), the global agglomeration and the connectome
# export run in one thread
SINGLE_CORE = ("agglomerate", "export")
SPEEDUP_STAGES = ("fragments", "graph", "agglomerate", "relabel")
UNTIMED = ("agglomerate",)  # needed by relabel, but it runs in one thread whatever the scheduler
VOXEL_SIZES = {"synth": (30.0, 8.0, 8.0), "fib": (10.0, 10.0, 10.0)}
REPO = Path(__file__).resolve().parents[1]
FIB_MAX = 250
TERAVOXEL = 1e12
PRELOAD = ["numpy", "torch", "dask", "distributed", "zarr", "axonseg.pipelines.segment.pipeline", "axonseg.pipelines.synth"]


# ---------------------------------------------------------------- child side (forked per stage)

def _segment_config(block: tuple[int, int, int], volume: str = "synth"):  # noqa: ANN202
    from axonseg.pipelines.segment.config import load_segment_config

    # what a user segmenting such data runs (the generic defaults cut the synth volume into
    # 3.8M fragments at 256³, 12M edges, and would need ~40 GB to agglomerate 512³)
    name = {"fib": "agglomerate_fib.yaml", "synth": "agglomerate_axonem.yaml"}[volume]
    return load_segment_config(REPO / "configs" / name).model_copy(update={"block_shape": block})


def _write_fib_crop(store: str, size: int) -> dict:
    """The FIB-SEM raw's first ``size``³ voxels as ``store/raw`` (10 nm, uint8, 128³ chunks)."""
    import h5py

    from axonseg.io import write_array

    sys.path.insert(0, str(REPO / "tests"))
    from shared_data import FIB_PATH

    with h5py.File(FIB_PATH, "r") as f:
        raw = f["raw"][:size, :size, :size]
    shutil.rmtree(store, ignore_errors=True)
    write_array(Path(store), "raw", raw, VOXEL_SIZES["fib"])
    return {"source": f"{FIB_PATH.name} raw[:{size}, :{size}, :{size}]"}


def _run_stage(stage: str, spec: dict) -> dict:
    """Run one pipeline stage on ``spec['run_dir']``; returns stage-specific figures."""
    run_dir, block = Path(spec["run_dir"]), tuple(spec["block"])
    common = {"scheduler": spec["scheduler"], "restart": True, "show_progress": False}
    if stage == "source":
        from axonseg.model import build_model, save_model
        from axonseg.model.config import ModelConfig
        from axonseg.pipelines.synth import write_synth

        voxel_size = VOXEL_SIZES[spec["volume"]]
        if not Path(spec["model"]).exists():
            # --random-weights; --quick: a two-level, 4-feature-map net that checks plumbing, not cost
            shape = {"num_fmaps": 4, "downsample_factors": [(1, 2, 2)]} if spec["tiny_model"] else {}
            save_model(build_model(ModelConfig(voxel_size=voxel_size, **shape), seed=0), spec["model"])
        if spec["volume"] == "fib":
            return _write_fib_crop(spec["store"], spec["size"])
        result = write_synth(spec["store"], shape=(spec["size"],) * 3, voxel_size=voxel_size, seed=0,
                             overwrite=True, chunk_shape=tuple(min(b, 64) for b in block), show_progress=False)
        return {"axons": result.n_axons, "neurites": result.n_neurites}
    if stage == "predict":
        from axonseg.pipelines.segment.predict import PredictConfig, run_predict

        out = run_predict(run_dir, f"{spec['store']}/raw", spec["model"], PredictConfig(block_shape=block), **common)
        return {"precision": out.precision, "blocks": out.blocks}
    if stage == "skeletonize":
        from axonseg.config import validate_config
        from axonseg.pipelines.skeletonize import SkeletonizeConfig, run_skeletonize

        # its own shipped block (as `axonseg segment` runs it), unless --skeleton-block
        # and full resolution, unless --skeleton-downsample
        update = {"block_shape": tuple(spec["skeleton_block"])} if spec.get("skeleton_block") else {}
        if spec.get("skeleton_downsample"):
            update["downsample"] = tuple(spec["skeleton_downsample"])
        config = validate_config(SkeletonizeConfig, update)
        out = run_skeletonize(run_dir, config, **common)
        return {"segments": out.n_segments}
    if stage == "export":
        from axonseg.pipelines.export import ExportConfig, run_export

        out = run_export(run_dir, ["sonata"], None, overwrite=True, config=ExportConfig(proxy_block_shape=block))
        return {"synapses": out.n_synapses, "edges": out.n_pairs}
    from axonseg.pipelines.segment import agglomerate, fragments, graph, relabel

    runner = {"fragments": fragments.run_fragments, "graph": graph.run_graph,
              "agglomerate": agglomerate.run_agglomerate, "relabel": relabel.run_relabel}[stage]
    out = runner(run_dir, _segment_config(block, spec["volume"]), **common)
    keep = ("n_nodes", "n_edges", "read_seconds", "agglomerate_seconds", "threshold")
    return {"blocks": out.blocks, **{k: v for k, v in (out.details or {}).items() if k in keep}}


def _speedup(spec: dict) -> dict:
    """Seconds of fragments + graph + relabel on a LocalCluster of 1 and of 2 worker processes.

    The cluster is started once per worker count (as ``local:N`` would start it: one thread
    per worker) and each count runs the stages twice; the first run warms the workers up
    (imports, numba cache loads) and only the second is timed, so cluster start-up is not counted.
    """
    from distributed import LocalCluster

    seconds = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            stage_spec = {**spec, "scheduler": cluster.scheduler_address}
            for _attempt in range(2):
                seconds[workers] = 0.0
                for stage in SPEEDUP_STAGES:
                    started = time.perf_counter()
                    _run_stage(stage, stage_spec)
                    if stage not in UNTIMED:
                        seconds[workers] += time.perf_counter() - started
    return {"local1_s": seconds[1], "local2_s": seconds[2], "speedup": seconds[1] / seconds[2]}


def _child(stage: str, spec: dict, queue) -> None:  # noqa: ANN001
    """Measure one stage in this fresh process: wall and CPU seconds, peak RSS (own and of children)."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    base_rss = psutil.Process().memory_info().rss
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    try:
        details = _speedup(spec) if stage == "speedup" else _run_stage(stage, spec)
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which stops the run
        queue.put({"error": f"{stage}: {type(err).__name__}: {err}"})
        return
    seconds = time.perf_counter() - started
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (own.ru_utime + own.ru_stime - before.ru_utime - before.ru_stime) + children.ru_utime + children.ru_stime
    result = {"stage": stage, "seconds": seconds, "cpu_seconds": cpu, "base_rss_mb": base_rss / 2**20,
              # ru_maxrss is KiB on Linux; a forked child's high-water mark starts at its RSS at fork
              "peak_rss_mb": own.ru_maxrss / 1024, "children_peak_rss_mb": children.ru_maxrss / 1024,
              "details": details}
    # also on disk beside the runs, so that an interrupted benchmark keeps what it measured
    Path(spec["run_dir"]).parent.joinpath(f"stage_{spec['size']}_{stage}.json").write_text(json.dumps(result))
    queue.put(result)


# ---------------------------------------------------------------- parent side

def measure(context, stage: str, spec: dict) -> dict:  # noqa: ANN001
    return run_measured(context, _child, stage, spec)


def run_size(context, size: int, args: argparse.Namespace, workdir: Path, model: Path) -> dict:  # noqa: ANN001
    spec = {"size": size, "block": list(args.block), "store": str(workdir / f"{args.volume}_{size}.zarr"),
            "run_dir": str(workdir / f"run_{size}"), "model": str(model), "scheduler": args.scheduler,
            "tiny_model": args.quick and args.model is None, "volume": args.volume, "skeleton_block": args.skeleton_block,
            "skeleton_downsample": args.skeleton_downsample}
    reuse = STAGES[: STAGES.index(args.reuse_before)] if args.reuse_before else ()

    def stage_row(stage: str) -> dict:
        saved = workdir / f"stage_{size}_{stage}.json"
        if stage in reuse or (stage == "source" and reuse):
            if not saved.exists():
                raise SystemExit(f"--reuse-before {args.reuse_before}: {saved} is missing; run those stages first")
            return {**json.loads(saved.read_text()), "reused": True}
        return measure(context, stage, spec)

    source = stage_row("source")
    print(f"{size}^3: {args.volume} volume written in {source['seconds']:.1f} s ({source['details']})", flush=True)
    stages = {}
    for stage in args.stages:
        stages[stage] = stage_row(stage)
        row = stages[stage]
        note = "  (reused from an earlier run in --workdir)" if row.get("reused") else ""
        print(f"  {size}^3 {stage:<12} {row['seconds']:8.1f} s  peak {peak_mb(row):7.0f} MB{note}", flush=True)
    return {"spec": spec, "stages": stages}


def copy_affinities(run_dir: Path, target: Path) -> None:
    """A run folder holding only a copy of ``run_dir``'s affinities (the speed-up runs rewrite stages)."""
    shutil.rmtree(target, ignore_errors=True)
    source = run_dir / "volume.zarr"
    shutil.copytree(source, target / "volume.zarr",
                    ignore=lambda folder, names: [n for n in names if Path(folder) == source and n not in ("zarr.json", "affinities")])


def peak_mb(row: dict) -> float:
    """A stage's peak RSS: its own process's, or one of its worker processes' where larger (MB)."""
    return max(row["peak_rss_mb"], row.get("children_peak_rss_mb", 0.0))


def print_table(results: dict[int, dict]) -> None:
    print(f"\n{'size':>6} {'stage':<12} {'seconds':>9} {'Mvoxels/s':>10} {'peak RSS MB':>12} {'base MB':>8} {'CPU s':>8}")
    for size, result in results.items():
        for stage, row in result["stages"].items():
            print(f"{size:>5}^3 {stage:<12} {row['seconds']:9.1f} {size**3 / row['seconds'] / 1e6:10.3f} "
                  f"{peak_mb(row):12.0f} {row['base_rss_mb']:8.0f} {row['cpu_seconds']:8.1f}")


def cores_used(stage: str, scheduler: str, cores: int) -> int:
    """Cores a stage keeps busy under ``scheduler`` on a machine of ``cores``."""
    from axonseg.blockwise.forkpool import can_fork

    if stage in SINGLE_CORE or (stage == "skeletonize" and scheduler.startswith("threads") and not can_fork()):
        return 1  # without the fork pool skeletonize traces one block at a time (kimimaro holds the GIL)
    return cores


def projection(stages: dict, voxels: int, cores: int, scheduler: str = "threads") -> tuple[float, float, list[str]]:
    """CPU-hours per 1e12 voxels: (wall seconds x cores used) and measured CPU seconds, per voxel."""
    wall = sum(row["seconds"] * cores_used(stage, scheduler, cores) for stage, row in stages.items())
    cpu = sum(row["cpu_seconds"] for row in stages.values())
    many = [s for s in STAGES if s in stages and cores_used(s, scheduler, cores) > 1]
    assumptions = [
        f"per-voxel cost of the {round(voxels ** (1 / 3))}^3 run scaled linearly to 1e12 voxels",
        f"cores used: {cores} for {'/'.join(many)} (torch and dask threads), 1 for the others; "
        "wall time x cores is an upper bound (other jobs may share the cores)",
        f"predict on CPU ({stages.get('predict', {}).get('details', {}).get('precision', '?')}); "
        "a GPU node replaces most of the predict share",
        "stages not run (see --stages) are not in the total: " + (", ".join(s for s in STAGES if s not in stages) or "none"),
        "the global agglomeration is assumed linear in edges (it is ~n log n) and to fit one node's memory",
        "no I/O contention from other jobs on the shared file system; excludes synthetic data generation",
    ]
    return wall / voxels * TERAVOXEL / 3600, cpu / voxels * TERAVOXEL / 3600, assumptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volume", choices=tuple(VOXEL_SIZES), default="synth",
                        help="synth: axonseg synth at 30x8x8 nm; fib: crops of the FIB-SEM medulla at 10 nm (../shared)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="volume edge lengths, voxels (default: 256 512 for synth, 128 250 for fib)")
    parser.add_argument("--block", type=int, nargs=3, default=[128, 128, 128],
                        help="block shape of every stage but skeletonize, voxels zyx")
    parser.add_argument("--skeleton-block", type=int, nargs=3, default=None,
                        help="skeletonize's block shape (default: configs/skeletonize.yaml's, as axonseg segment runs it)")
    parser.add_argument("--skeleton-downsample", type=int, nargs=3, default=None,
                        help="skeletonize traces labels downsampled by this factor (zyx; the config's `downsample`, "
                             "as igneous traces a coarser mip); default: full resolution")
    parser.add_argument("--model", type=Path, default=None,
                        help="model .pt at the volume's voxel size; default: the shipped one (data/models)")
    parser.add_argument("--random-weights", action="store_true",
                        help="random weights of the default architecture instead of the shipped model")
    parser.add_argument("--scheduler", default="threads", help="scheduler of the stage runs")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temp folder, removed)")
    parser.add_argument("--quick", action="store_true", help="smoke run: sizes 32 48, block 48^3, a tiny random model")
    parser.add_argument("--skip-speedup", action="store_true", help="leave out the local:1 vs local:2 runs")
    parser.add_argument("--reuse-before", choices=STAGES[1:], default=None,
                        help="with --workdir of an earlier run: take the stages before this one from its "
                             "stage_*.json (and its run folders) and measure only this stage and later ones")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="stages to run, in pipeline order (each needs the ones before it)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.block, args.random_weights = [32, 48], [48, 48, 48], args.model is None
    sizes = sorted(args.sizes or ([128, FIB_MAX] if args.volume == "fib" else [256, 512]))
    if args.volume == "fib":
        sys.path.insert(0, str(REPO / "tests"))
        from shared_data import FIB_PATH

        if not FIB_PATH.exists():
            parser.error(f"--volume fib: {FIB_PATH} is missing (set AXONSEG_SHARED_DATA)")
        if sizes[-1] > FIB_MAX:
            parser.error(f"--sizes: the FIB-SEM volume is {FIB_MAX}^3 voxels; got {sizes[-1]}")
    args.stages = [s for s in STAGES if s in args.stages]
    if not set(STAGES[:5]) <= set(args.stages):
        parser.error(f"--stages must include {', '.join(STAGES[:5])}: the memory and cost figures need them")
    if args.reuse_before and args.workdir is None:
        parser.error("--reuse-before needs --workdir (the folder of the earlier run)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="axonseg_bench_pipeline_"))
    workdir.mkdir(parents=True, exist_ok=True)
    voxel_size = VOXEL_SIZES[args.volume]
    if args.model is None and not args.random_weights:
        from axonseg.pipelines.segment.predict import default_model_path

        args.model = default_model_path(voxel_size)
    model = args.model or workdir / "random_model.pt"
    if args.model is None:
        model.unlink(missing_ok=True)  # a random net is made afresh, of this run's voxel size
    cores = os.cpu_count() or 1
    voxels_name = "x".join(f"{v:g}" for v in voxel_size)
    model_name = (f"{args.model.relative_to(REPO) if args.model.is_relative_to(REPO) else args.model}" if args.model else
                  "random weights, " + ("a tiny 2-level net (--quick)" if args.quick else "default ModelConfig architecture")
                  + f" at {voxels_name} nm")
    print(f"volume: {args.volume} ({voxels_name} nm); model: {model_name}; block {args.block}; skeletonize block "
          f"{args.skeleton_block or 'default'}, downsample {args.skeleton_downsample or [1, 1, 1]}; sizes {sizes}; scheduler {args.scheduler}; {cores} cores; "
          f"ISA {' '.join(isa_flags()) or '?'}; workdir {workdir}", flush=True)

    # stages fork from a server that has imported the libraries only, so each starts small and clean
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    started = time.perf_counter()
    results = {size: run_size(context, size, args, workdir, model) for size in sizes}
    print_table(results)

    small, large = results[sizes[0]]["stages"], results[sizes[-1]]["stages"]
    # skeletonize's fork-pool workers are its children: the larger of its own and a worker's peak
    rss_ratios = {s: peak_mb(large[s]) / peak_mb(small[s]) for s in args.stages}
    rss_ratio = max(rss_ratios[s] for s in BLOCKWISE if s in rss_ratios)
    print(f"\npeak RSS {sizes[-1]}^3 / {sizes[0]}^3 per stage: "
          + ", ".join(f"{s} {r:.2f}" for s, r in rss_ratios.items()))
    print(f"bounded stages ({', '.join(s for s in BLOCKWISE if s in rss_ratios)}): worst ratio {rss_ratio:.2f} (issue #8 asks <= 1.3)")
    agg_small, agg_large = small["agglomerate"], large["agglomerate"]
    edges_small, edges_large = agg_small["details"]["n_edges"], agg_large["details"]["n_edges"]
    grown = (agg_large["peak_rss_mb"] - agg_small["peak_rss_mb"]) * 2**20
    bytes_per_edge = grown / max(edges_large - edges_small, 1)
    print(f"agglomerate (global): {agg_small['details']['n_nodes']:,} -> {agg_large['details']['n_nodes']:,} nodes, "
          f"{edges_small:,} -> {edges_large:,} edges; peak RSS {agg_small['peak_rss_mb']:.0f} -> "
          f"{agg_large['peak_rss_mb']:.0f} MB = {bytes_per_edge:.0f} bytes per extra edge")

    speed = None
    if not args.skip_speedup:
        speed_dir = workdir / f"speedup_{sizes[0]}"
        copy_affinities(Path(results[sizes[0]]["spec"]["run_dir"]), speed_dir)
        spec = {**results[sizes[0]]["spec"], "run_dir": str(speed_dir)}
        speed = measure(context, "speedup", spec)["details"]
        timed = [s for s in SPEEDUP_STAGES if s not in UNTIMED]
        print(f"LocalCluster {' + '.join(timed)} at {sizes[0]}^3: 1 worker {speed['local1_s']:.1f} s, "
              f"2 workers {speed['local2_s']:.1f} s, speed-up {speed['speedup']:.2f}x on {cores} cores "
              f"(load average {os.getloadavg()[0]:.1f} after the run)")

    voxels = sizes[-1] ** 3
    cpu_h_wall, cpu_h_measured, assumptions = projection(large, voxels, cores, args.scheduler)
    print(f"projected: {cpu_h_wall:,.0f} CPU-hours per teravoxel (wall x cores); {cpu_h_measured:,.0f} from measured "
          "CPU time. Assumptions:\n  - " + "\n  - ".join(assumptions))
    predict_share = large["predict"]["seconds"] * cores / sum(
        r["seconds"] * cores_used(s, args.scheduler, cores) for s, r in large.items())
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {
        "benchmark": "pipeline", "volume": args.volume, "voxel_size_nm": list(voxel_size), "isa": isa_flags(), "sizes": sizes, "block": list(args.block), "scheduler": args.scheduler,
        "model": model_name, "skeleton_downsample": args.skeleton_downsample or [1, 1, 1],
        "ratio": speed["speedup"] if speed else None,
        "ratio_peer": "the same fragments+graph+relabel stages (agglomerate untimed) on a 1-worker LocalCluster (local:1 vs local:2)",
        "local1_s": speed["local1_s"] if speed else None, "local2_s": speed["local2_s"] if speed else None,
        "rss_ratio_512_vs_256": rss_ratio, "rss_ratio_sizes": [sizes[-1], sizes[0]],
        "rss_ratio_per_stage": rss_ratios,
        "agglomerate_bytes_per_edge": bytes_per_edge,
        "stages": {str(size): {stage: {"seconds": row["seconds"], "voxels_per_s": size**3 / row["seconds"],
                                        "peak_rss_mb": peak_mb(row), "cpu_seconds": row["cpu_seconds"],
                                        **{k: v for k, v in row["details"].items() if isinstance(v, (int, float, str))}}
                                for stage, row in result["stages"].items()}
                   for size, result in results.items()},
        "cpu_hours_per_tv": cpu_h_wall, "cpu_hours_per_tv_measured_cpu": cpu_h_measured,
        "predict_share_of_cost": predict_share, "cores": cores,
        "total_seconds": time.perf_counter() - started,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
