"""The ``axonseg`` command line: a thin typer app over the pipelines.

Library errors (:mod:`axonseg.errors`) are printed as one line naming the file, dataset or
parameter at fault, with a non-zero exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import typer

from axonseg.errors import AxonsegError

app = typer.Typer(
    name="axonseg",
    help="EM connectomics: segment volumes, evaluate against ground truth, export connectomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_state = {"debug": False}

VOXEL_HELP = "voxel size in nm, three numbers z y x (e.g. 30 8 8)"
SCHEDULER_HELP = "synchronous, threads[:N], local[:N] (dask LocalCluster) or tcp://host:port"


def _setup_logging(level: int) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    # stderr=True: the console looks sys.stderr up at each write, so a replaced stream (pytest
    # capture, a notebook) is followed instead of a closed one being written to
    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False, markup=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    for noisy in ("distributed", "numcodecs", "h5py", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="show full tracebacks on errors"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and errors"),
) -> None:
    _state["debug"] = debug
    _setup_logging(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


def _locked(run_dir: Path, job: str):  # noqa: ANN202 - a context manager
    """Hold the run folder's lock (``RUN/.lock``) while a job writes into it."""
    from axonseg.pipelines.run_lock import run_lock

    return run_lock(run_dir, job)


def _triple(values: Optional[Tuple[float, float, float]], name: str) -> Optional[tuple[float, float, float]]:
    from axonseg.io.volume import check_voxel_size

    return None if values is None else check_voxel_size(values, name)


@app.command()
def synth(
    out: Path = typer.Argument(..., help="output .zarr store (raw, labels, neurites, skeletons)"),
    shape: Tuple[int, int, int] = typer.Option((64, 256, 256), "--shape", help="volume shape in voxels, z y x"),
    voxel_size: Tuple[float, float, float] = typer.Option((30.0, 8.0, 8.0), "--voxel-size", help=VOXEL_HELP),
    seed: int = typer.Option(0, "--seed", help="random seed; the same seed gives identical volumes"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output"),
    option: Optional[List[str]] = typer.Option(None, "--option", help="generator option KEY=VALUE (repeatable; lengths in nm), e.g. membrane_nm=20 noise=30 texture=0.5; see axonseg/synth/options.py"),
) -> None:
    """Generate AxonEM-like serial-section EM with dense ground truth (default 30x8x8 nm)."""
    from axonseg.pipelines.synth import parse_synth_options, write_synth

    result = write_synth(out, tuple(shape), _triple(voxel_size, "--voxel-size"), seed, overwrite=overwrite,
                         options=parse_synth_options(option or []))
    typer.echo(f"wrote {result.store}: raw, labels ({result.n_axons} axons), neurites ({result.n_neurites}), skeletons")


@app.command()
def ingest(
    input: str = typer.Argument(..., help="input array: store.zarr/dataset, file.h5:dataset, tif file/folder, .npy, store.n5/dataset"),
    out: Path = typer.Argument(..., help="output .zarr store"),
    voxel_size: Optional[Tuple[float, float, float]] = typer.Option(None, "--voxel-size", help=VOXEL_HELP + "; required if the input has none"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="dataset inside the input file (h5 key, zarr path)"),
    name: str = typer.Option("raw", "--name", help="name of the image group in the output store"),
    labels: bool = typer.Option(False, "--labels", help="the input is a label volume (integer ids; mode pyramid)"),
    chunks: Tuple[int, int, int] = typer.Option((64, 64, 64), "--chunks", help="chunk shape in voxels, z y x"),
    levels: int = typer.Option(4, "--levels", help="coarser pyramid levels to build (at most)"),
    scheduler: str = typer.Option("threads", "--scheduler", help=SCHEDULER_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output (else an interrupted ingest resumes)"),
) -> None:
    """Convert any supported array into chunked zarr v3 with an OME-Zarr pyramid."""
    from axonseg.config import IngestConfig, validate_config
    from axonseg.pipelines.ingest import ingest as run_ingest

    config = validate_config(
        IngestConfig,
        {"voxel_size": voxel_size, "chunk_shape": chunks, "levels": levels, "kind": "labels" if labels else "raw"},
        "command line",
    )
    result = run_ingest(input, out, name, config, dataset=dataset, overwrite=overwrite, scheduler=scheduler)
    typer.echo(
        f"wrote {result.store}/{result.name}: shape {result.shape} at {result.voxel_size} nm, "
        f"{len(result.factors) + 1} levels (config {result.config_hash})"
    )


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="output folder of the demo run"),
    overwrite: bool = typer.Option(True, "--overwrite/--no-overwrite", help="replace an earlier demo run"),
    source: str = typer.Option("fib", "--source", help="fib (the shipped real FIB-SEM crop, 10 nm, held out from training) or synth (AxonEM-like 30x8x8 nm, with GT synapses; needs a 30x8x8 model)"),
    model: Optional[Path] = typer.Option(None, "--model", help="U-Net .pt; default: the shipped model for the input's voxel size"),
    scheduler: str = typer.Option("threads", "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """Run the whole pipeline on the embedded default: real FIB-SEM crop -> segment (shipped model) -> evaluate -> export -> Brian2."""
    from axonseg.errors import InputError

    if source not in ("synth", "fib"):
        raise InputError(f"--source {source!r}: expected synth or fib")
    # the imports below (torch, dask) take seconds: say at once that the command has started
    logging.getLogger("axonseg.cli").info("demo: the %s volume -> %s: loading the pipeline", source, out)
    from axonseg.pipelines.demo import run_demo

    run_demo(out, overwrite=overwrite, source=source, scheduler=scheduler, model=model)  # type: ignore[arg-type]


@app.command()
def train(
    config: Path = typer.Argument(..., help="training config YAML (see configs/train_fib.yaml; ROIs in voxels, voxel sizes in nm)"),
    resume: bool = typer.Option(False, "--resume", help="continue exactly from the newest checkpoint (weights, optimizer, RNG, step)"),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="override the config's out_dir"),
    overrides: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="override one config value (repeatable; dotted keys reach into sections: --set model.num_fmaps=16 --set device=cuda)"),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="stop after this many minutes of training, with a checkpoint that --resume continues from"),
    recalibrate_bn: Optional[Path] = typer.Option(None, "--recalibrate-bn", help="do not train: recompute this model file's BatchNorm statistics over the config's training crops (precise BN), in place"),
) -> None:
    """Train the affinity U-Net (on a CUDA GPU when present: device in the config); writes
    checkpoints, losses.csv, losses.png and model.pt."""
    from axonseg.pipelines.train import recalibrate_model_file, run

    if recalibrate_bn is not None:
        used = recalibrate_model_file(config, recalibrate_bn)
        typer.echo(f"{recalibrate_bn}: BatchNorm statistics recomputed over {used} training crops")
        return
    result = run(config, resume=resume, out_dir=str(out_dir) if out_dir else None, overrides=overrides,
                 time_limit_s=None if time_limit is None else 60.0 * time_limit)
    typer.echo(f"finished at step {result['step']}")


@app.command("train-agglomeration")
def train_agglomeration(
    config: Path = typer.Argument(..., help="training config YAML (its split: train datasets teach, the first split: val one calibrates)"),
    model: Path = typer.Option(..., "--model", help="model file whose affinities the classifier learns"),
    out: Optional[Path] = typer.Option(None, "--out", help="classifier file; default: edge_classifier.json beside the model, where agglomerate method learned finds it"),
    segment_config: Optional[Path] = typer.Option(None, "--segment-config", help="agglomerate config YAML whose fragment settings the runs will use (default: the defaults)"),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="keep the training and validation runs here (default: a temporary folder)"),
) -> None:
    """Train the edge classifier of agglomerate method `learned` for a model, and calibrate its threshold on validation."""
    from axonseg.pipelines.train_agglomeration import train_agglomeration as train_classifier

    result = train_classifier(config, model, out, segment_config, work_dir)
    rows = {"mean affinity": result["mean"], "learned": result["learned"]}
    for name, table in rows.items():
        best = max(table, key=lambda row: (row["nerl"] or 0.0))
        typer.echo(f"validation, {name}: best NERL {best['nerl']:.3f} at threshold {best['threshold']} "
                   f"(VOI split {best['voi_split']:.2f}, merge {best['voi_merge']:.2f})")
    edges, auc = result["edges"], result["edge_auc"]
    if auc["learned"] is not None and auc["mean_affinity"] is not None:
        typer.echo(f"validation edges: AUC {auc['learned']:.3f} learned against {auc['mean_affinity']:.3f} for mean affinity")
    typer.echo(f"wrote {result['classifier']}: trained on {edges['merge']} merge and {edges['split']} split edges, "
               f"threshold {result['threshold']}")


@app.command()
def predict(
    input: str = typer.Argument(..., help="raw EM array: store.zarr/dataset, file.h5:dataset, tif, .npy or store.n5/dataset, with its voxel size (nm) in the metadata (see `axonseg ingest`)"),
    out: Path = typer.Option(..., "--out", help="run folder; affinities go to RUN_DIR/volume.zarr/affinities (c z y x, uint8 0-255)"),
    model: Optional[Path] = typer.Option(None, "--model", help="model file (.pt written by `axonseg train`); default: the shipped model trained at the input's voxel size (nm)"),
    config: Optional[Path] = typer.Option(None, "--config", help="predict config YAML (see configs/predict.yaml)"),
    block_shape: Optional[Tuple[int, int, int]] = typer.Option(None, "--block-shape", help="output block shape in voxels, z y x (rounded up to the network's shape step)"),
    scheduler: str = typer.Option("threads", "--scheduler", help=SCHEDULER_HELP),
    restart: bool = typer.Option(False, "--restart", help="discard an interrupted run made with another config and start again"),
) -> None:
    """Predict affinities blockwise (one channel per offset, offsets in voxels z y x) with the default or a given model."""
    from axonseg.config import validate_config
    from axonseg.pipelines.segment.predict import PredictConfig, load_predict_config, run_predict

    settings = load_predict_config(config)
    if block_shape is not None:
        settings = validate_config(PredictConfig, {**settings.model_dump(), "block_shape": block_shape}, "command line")
    result = run_predict(out, input, model, settings, scheduler=scheduler, restart=restart)
    done = "up to date" if result.up_to_date else f"{result.blocks} blocks ({result.skipped} resumed) in {result.seconds:.1f} s"
    typer.echo(f"wrote {result.store}/affinities: {len(result.offsets)} channels x {result.shape} voxels (z y x), {done}")


@app.command()
def segment(
    input: str = typer.Argument(..., help="raw EM array (store.zarr/dataset, file.h5:dataset, ...), voxel size in nm in its metadata or --voxel-size"),
    out: Path = typer.Option(..., "--out", help="run folder"),
    config: Optional[Path] = typer.Option(None, "--config", help="pipeline config YAML, one section per stage (see configs/pipeline.yaml)"),
    model: Optional[Path] = typer.Option(None, "--model", help="U-Net .pt; default: the shipped model for the input's voxel size (nm)"),
    gt: Optional[str] = typer.Option(None, "--gt", help="ground-truth labels: evaluate every threshold and keep the best"),
    synapses: Optional[str] = typer.Option(None, "--synapses", help="synapse table for the export (points in nm) or a synth store STORE.zarr/synapses; default: the input's own synth store synapses, else contact PROXY"),
    voxel_size: Optional[Tuple[float, float, float]] = typer.Option(None, "--voxel-size", help=VOXEL_HELP + "; only for an input or --gt whose file carries none"),
    scheduler: str = typer.Option("threads", "--scheduler", help=SCHEDULER_HELP),
    restart: bool = typer.Option(False, "--restart", help="start stages again after a config change"),
) -> None:
    """Run predict, fragments, agglomeration, relabel, (evaluate,) skeletonize and export on one volume."""
    # the imports below (torch, dask) take seconds: say at once that the command has started
    logging.getLogger("axonseg.cli").info("segment: checking the inputs and the config")
    from axonseg.pipelines.segment.pipeline import load_pipeline_config, run_segment
    from axonseg.pipelines.segment.summary import print_segment_summary

    result = run_segment(input, out, load_pipeline_config(config), model, gt, synapses, scheduler=scheduler, restart=restart,
                         voxel_size=_triple(voxel_size, "--voxel-size"))
    print_segment_summary(result)


@app.command()
def evaluate(
    run_dir: Optional[Path] = typer.Argument(None, help="run folder (evaluates every agglomeration threshold)"),
    gt: Optional[str] = typer.Option(None, "--gt", help="ground-truth label array; in a run defaults to volume.zarr/labels"),
    pred: Optional[str] = typer.Option(None, "--pred", help="score any plain segmentation array instead of a run"),
    voxel_size: Optional[Tuple[float, float, float]] = typer.Option(None, "--voxel-size", help=VOXEL_HELP + "; only for arrays whose files carry none"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the summary JSON here (erl_nm, gt_erl_nm, nerl and its 90% bootstrap interval nerl_low, nerl_high, voi_split, voi_merge, arand, n_split, n_merge)"),
    mask: Optional[str] = typer.Option(None, "--mask", help="ground-truth mask of non-axon voxels (nonzero = not an axon)"),
    config: Optional[Path] = typer.Option(None, "--config", help="evaluation config YAML (see configs/evaluate.yaml)"),
    scheduler: str = typer.Option("threads", "--scheduler", help=SCHEDULER_HELP),
    restart: bool = typer.Option(False, "--restart", help="discard partial results of an earlier, different evaluation"),
) -> None:
    """Score a segmentation against ground truth: ERL/NERL (nm), VOI split/merge (bits), adapted Rand."""
    import shutil

    from axonseg.errors import InputError
    from axonseg.pipelines.evaluate import evaluate_arrays_blockwise, evaluate_run, load_evaluate_config
    from axonseg.pipelines.evaluate.report import print_summary

    if (run_dir is None) == (pred is None):
        raise InputError("evaluate: give exactly one of RUN_DIR or --pred ARRAY")
    if pred is not None and gt is None:
        raise InputError("evaluate --pred: --gt GT_ARRAY is required")
    settings = load_evaluate_config(config)
    if pred is not None:
        report = evaluate_arrays_blockwise(pred, gt, _triple(voxel_size, "--voxel-size"), json_out, settings,
                                           scheduler=scheduler, mask=mask)
    else:
        with _locked(run_dir, "evaluate"):
            report = evaluate_run(run_dir, gt, settings, scheduler=scheduler, restart=restart, mask=mask,
                                  voxel_size=_triple(voxel_size, "--voxel-size"))
        if json_out is not None:
            shutil.copyfile(report.json_path, json_out)
    print_summary(report.rows, report.best)
    typer.echo(f"report: {report.html_path or report.json_path}")


@app.command()
def skeletonize(
    run_dir: Path = typer.Argument(..., help="run folder"),
    config: Optional[Path] = typer.Option(None, "--config", help="skeleton config YAML (see configs/skeletonize.yaml)"),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="agglomeration threshold whose LUT to use; default the best evaluated, else the median"),
    block_shape: Optional[Tuple[int, int, int]] = typer.Option(None, "--block-shape", help="block shape in voxels, z y x"),
    scheduler: str = typer.Option("threads", "--scheduler", help=SCHEDULER_HELP),
    restart: bool = typer.Option(False, "--restart", help="start again after a config change"),
) -> None:
    """Skeletonize every segment with kimimaro (AxonEM TEASAR parameters; nodes in nm, zyx)."""
    from axonseg.config import validate_config
    from axonseg.pipelines.skeletonize import SkeletonizeConfig, load_skeletonize_config, run_skeletonize

    settings = load_skeletonize_config(config)
    overrides = {k: v for k, v in {"threshold": threshold, "block_shape": block_shape}.items() if v is not None}
    if overrides:
        settings = validate_config(SkeletonizeConfig, {**settings.model_dump(), **overrides}, "command line")
    with _locked(run_dir, "skeletonize"):
        result = run_skeletonize(run_dir, settings, scheduler=scheduler, restart=restart)
    typer.echo(f"wrote {result.skeleton_dir}: {result.n_segments} skeletons, {result.total_length_nm / 1000:.1f} um")


@app.command()
def mesh(
    run_dir: Path = typer.Argument(..., help="run folder; writes RUN_DIR/meshes (neuroglancer precomputed legacy meshes, nm)"),
    config: Optional[Path] = typer.Option(None, "--config", help="mesh config YAML (see configs/mesh.yaml)"),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="agglomeration threshold whose LUT to use; default the best evaluated, else the median"),
    block_shape: Optional[Tuple[int, int, int]] = typer.Option(None, "--block-shape", help="block shape in voxels, z y x"),
    scheduler: str = typer.Option("threads", "--scheduler", help=SCHEDULER_HELP),
    restart: bool = typer.Option(False, "--restart", help="start again after a config change, or re-mesh up-to-date meshes"),
) -> None:
    """Mesh every segment with zmesh, blockwise, joined watertight per segment (vertices in nm)."""
    from axonseg.config import validate_config
    from axonseg.pipelines.mesh import MeshConfig, load_mesh_config, run_mesh

    settings = load_mesh_config(config)
    overrides = {k: v for k, v in {"threshold": threshold, "block_shape": block_shape}.items() if v is not None}
    if overrides:
        settings = validate_config(MeshConfig, {**settings.model_dump(), **overrides}, "command line")
    result = run_mesh(run_dir, settings, scheduler=scheduler, restart=restart)
    state = "up to date" if result.up_to_date else "wrote"
    typer.echo(f"{state} {result.mesh_dir}: {result.n_segments} meshes, {result.n_faces} triangles, "
               f"{result.not_watertight} not watertight")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="run folder (volume.zarr, skeletons/); writes RUN_DIR/connectome"),
    synapses: Optional[str] = typer.Option(None, "--synapses", help="synapse table (CSV/parquet, points in nm; presets axonseg, xyz, cave) or a synth store STORE.zarr/synapses; default: the ones `segment` used (RUN_DIR/inputs.json), else contact PROXY"),
    formats: List[str] = typer.Option(["sonata"], "--format", help="sonata, nir, csv, pynn or all (repeat for several); or neuroglancer alone: the run as a static web folder (--out DIR)"),
    target: Optional[str] = typer.Option(None, "--target", help="hardware limits: brainscales2 (no delays, integer weights 0-63, <= 512 neurons); written to RUN_DIR/connectome-brainscales2"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier `axonseg export` (one that `segment` wrote is replaced anyway), or a non-empty --out DIR"),
    config: Optional[Path] = typer.Option(None, "--config", help="export config YAML (see configs/export.yaml: delays in ms, velocity in m/s)"),
    out: Optional[Path] = typer.Option(None, "--out", help="--format neuroglancer only (required): the folder to write (raw, segmentation with proofreading edits, meshes, skeletons, state.json)"),
    url: str = typer.Option("http://localhost:8000", "--url", help="--format neuroglancer: the base URL DIR will be served at (DIR/serve.py serves it at the default); state.json names its data under it"),
) -> None:
    """Export the connectome: synapses -> weighted, delayed edges (delay ms = 0.5 + path um / velocity) as SONATA, NIR, CSV, PyNN; or the run for neuroglancer."""
    from axonseg.errors import ConfigError

    if "neuroglancer" in formats:
        if len(formats) > 1 or out is None or synapses or target or config:
            raise ConfigError("--format neuroglancer: expected it alone with --out DIR (no other --format, --synapses, "
                              "--target or --config)")
        from axonseg.pipelines.view.export import export_neuroglancer

        shared = export_neuroglancer(run_dir, out, url, overwrite=overwrite)
        typer.echo(f"wrote {shared.folder}: {', '.join(shared.layers)}; serve it at {url} ({shared.serve}) "
                   f"and open {shared.link}")
        return
    if out is not None:
        raise ConfigError(f"--out {out}: only for --format neuroglancer; the connectome goes to RUN_DIR/connectome")
    from axonseg.pipelines.export import load_export_config, run_export

    with _locked(run_dir, "export"):
        result = run_export(run_dir, formats, synapses, target=target, overwrite=overwrite, config=load_export_config(config))
    kind = "contact PROXY synapses" if result.proxy else "synapses"
    typer.echo(f"wrote {result.folder}: {result.n_nodes} neurons, {result.n_synapses} {kind}, {result.n_pairs} pairs; "
               f"dropped {result.drops['dropped']}" + ("; EMPTY (see the warning above)" if result.empty_reason else ""))


@app.command()
def simulate(
    run_dir: Path = typer.Argument(..., help="run folder with connectome/sonata (from `axonseg export`)"),
    duration_ms: Optional[float] = typer.Option(None, "--duration-ms", help="simulated time in ms (default 100)"),
    rate_hz: Optional[float] = typer.Option(None, "--rate-hz", help="rate of each Poisson input source in Hz (default 10)"),
    config: Optional[Path] = typer.Option(None, "--config", help="simulation config YAML (see configs/simulate.yaml)"),
) -> None:
    """Run the SONATA export in Brian2 (LIF neurons, Poisson input); writes a spike raster PNG and rates CSV."""
    from axonseg.config import validate_config
    from axonseg.pipelines.simulate import SimulateConfig, load_simulate_config, run_simulate

    settings = load_simulate_config(config)
    overrides = {k: v for k, v in {"duration_ms": duration_ms, "rate_hz": rate_hz}.items() if v is not None}
    if overrides:
        settings = validate_config(SimulateConfig, {**settings.model_dump(), **overrides}, "command line")
    result = run_simulate(run_dir, settings)
    typer.echo(f"wrote {result.raster_path} and {result.rates_path}: {len(result.result.spike_index)} spikes, "
               f"mean rate {result.result.rates_hz.mean():.2f} Hz")


@app.command()
def agglomerate(
    run_dir: Path = typer.Argument(..., help="run folder whose volume.zarr/affinities exist (czyx, offsets in the group attrs)"),
    config: Optional[Path] = typer.Option(None, "--config", help="agglomerate config YAML (see configs/agglomerate.yaml; configs/agglomerate_fib.yaml, configs/agglomerate_axonem.yaml)"),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="LUT threshold in [0, 1] (1 - affinity) written to segmentation/; default: the config's, else reports/best_threshold.json, else the median"),
    block_shape: Optional[Tuple[int, int, int]] = typer.Option(None, "--block-shape", help="block shape in voxels, z y x"),
    scheduler: str = typer.Option("threads", "--scheduler", help=SCHEDULER_HELP),
    restart: bool = typer.Option(False, "--restart", help="start every stage again (also after a config change of an interrupted run)"),
) -> None:
    """Fragments -> region graph -> agglomeration LUTs -> segmentation, from a run's affinities (blockwise, resumable)."""
    from axonseg.config import validate_config
    from axonseg.pipelines.segment.config import SegmentConfig, load_segment_config
    from axonseg.pipelines.segment.stages import run_segment_stages

    settings = load_segment_config(config)
    if block_shape is not None:
        settings = validate_config(SegmentConfig, {**settings.model_dump(), "block_shape": block_shape}, "command line")
    results = run_segment_stages(run_dir, settings, scheduler=scheduler, restart=restart, threshold=threshold)
    graph = results["agglomerate"].details or {}
    typer.echo(
        f"wrote {run_dir / 'volume.zarr' / 'segmentation'} (threshold {results['relabel'].details['threshold']}); "
        f"graph {graph.get('n_nodes')} fragments, {graph.get('n_edges')} edges; "
        f"LUTs for thresholds {graph.get('thresholds')} in {run_dir / 'luts'}"
    )


@app.command()
def proofread(
    run_dir: Path = typer.Argument(..., help="run folder"),
    user: Optional[str] = typer.Option(None, "--user", help="name recorded in the edit log (default: login)"),
    raw: Optional[str] = typer.Option(None, "--raw", help="raw EM address, when it has moved from where the run recorded it (RUN/inputs.json)"),
) -> None:
    """Open the run in napari for merge/split/undo proofreading (edits go to RUN/edits.sqlite)."""
    from axonseg.viewer import open_proofread_viewer

    open_proofread_viewer(run_dir, show=True, user=user, raw=raw)
    import napari

    napari.run()


@app.command()
def view(
    run_dir: Path = typer.Argument(..., help="run folder: its raw EM, segmentation (with proofreading edits), meshes and skeletons"),
    port: int = typer.Option(0, "--port", help="port of the viewer; 0 picks a free one"),
    bind: str = typer.Option("127.0.0.1", "--bind", help="address to listen on; 0.0.0.0 shares the viewer on the network"),
    raw: Optional[str] = typer.Option(None, "--raw", help="raw EM address, when it has moved from where the run recorded it (RUN/inputs.json)"),
    screenshot: Optional[Path] = typer.Option(None, "--screenshot", help="write a PNG of the view (headless Chromium) and exit"),
    size: Tuple[int, int] = typer.Option((1280, 720), "--size", help="screenshot width and height in pixels"),
) -> None:
    """Open the run in neuroglancer (nm, zyx data shown as x y z): prints the URL and serves until Ctrl-C."""
    from axonseg.pipelines.view import open_view, screenshot_run, serve_until_interrupted

    if screenshot is not None:
        path, shown = screenshot_run(run_dir, screenshot, size, port=port, bind=bind, raw=raw)
        typer.echo(f"wrote {path}: {len(shown.segments)} segments in 3D")
        return
    shown = open_view(run_dir, port=port, bind=bind, raw=raw)
    typer.echo(f"neuroglancer on {run_dir}: {shown.url}  (Ctrl-C stops it)")
    serve_until_interrupted(shown)
    typer.secho("viewer stopped", err=True, fg=typer.colors.YELLOW)
    raise typer.Exit(130)  # Ctrl-C ends a viewer: nothing to resume


INTERRUPTED = "interrupted; re-run the same command to resume"


def _caused_by_interrupt(error: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


_TRIPLE = re.compile(r"^\s*-?[0-9.]+\s*(,\s*-?[0-9.]+\s*){2}$")


def split_triples(args: list[str]) -> list[str]:
    """Let every three-number option take ``z,y,x`` as well as ``z y x``.

    ``--block-shape 64,128,128`` and ``--voxel-size=30,8,8`` become the three tokens click
    expects; anything else is left as it is (click then names what is wrong).
    """
    if not any("," in arg for arg in args):
        return args  # the usual case: no command tree to build at start-up
    import typer.main

    triples = {name for command in typer.main.get_command(app).commands.values()
               for param in command.params if param.nargs == 3 for name in param.opts}
    out: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        name, equals, value = token.partition("=")
        if name in triples and equals and _TRIPLE.match(value):
            out += [name, *(part.strip() for part in value.split(","))]
        elif token in triples and index + 1 < len(args) and _TRIPLE.match(args[index + 1]):
            out += [token, *(part.strip() for part in args[index + 1].split(","))]
            index += 1
        else:
            out.append(token)
        index += 1
    return out


def main() -> None:
    """Entry point: run the app and turn library errors into one line and exit code 1; Ctrl-C
    exits with 130 and says how to resume."""
    try:
        app(args=split_triples(sys.argv[1:]))
    except AxonsegError as err:
        if _state["debug"]:
            raise
        typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho(INTERRUPTED, err=True, fg=typer.colors.YELLOW)
        sys.exit(130)
    except SystemExit as stop:
        # typer turns Ctrl-C into a silent exit 130 (SystemExit <- Exit <- KeyboardInterrupt)
        if stop.code == 130 and _caused_by_interrupt(stop):
            typer.secho(INTERRUPTED, err=True, fg=typer.colors.YELLOW)
        raise
    except OSError as err:
        if _state["debug"]:
            raise
        from axonseg.blockwise.executor import is_disk_full

        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        # blockwise writes name their block (StageError); this covers tables, LUTs and reports
        hint = ": free space and re-run the same command to resume" if is_disk_full(err) else ""
        typer.secho(f"error: {where}{err.strerror or err}{hint}", err=True, fg=typer.colors.RED)
        sys.exit(1)


if __name__ == "__main__":
    main()
