"""``axonseg demo``: the whole pipeline on the embedded default, nothing downloaded, no services.

The real FIB-SEM crop shipped in ``data/`` (Drosophila medulla, z 180-249 of the FlyEM cube,
held out from training, 10 nm isotropic, CC-BY) -> ``axonseg segment`` with the shipped model
for that voxel size (predict -> fragments -> region graph -> agglomeration -> relabel ->
evaluate against its dense labels -> skeletonize -> export; the crop has no synapse
annotations, so the export uses the contact PROXY) -> a short Brian2 simulation of the exported
SONATA circuit. Ends with one summary table. ``--source synth`` runs the same on an AxonEM-like
synthetic volume (30x8x8 nm, with ground-truth synapses), which needs a model trained at that
voxel size (``--model`` or one in ``data/models/``).
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from axonseg.errors import InputError, OutputExistsError
from axonseg.pipelines.segment.pipeline import PipelineConfig, run_segment
from axonseg.pipelines.simulate import SimulateConfig, run_simulate
from axonseg.pipelines.synth import write_synth

logger = logging.getLogger(__name__)

DEMO_SHAPE = (64, 256, 256)
DEMO_VOXEL_SIZE = (30.0, 8.0, 8.0)
FIB_CROP = Path(__file__).resolve().parents[1] / "data" / "fib_medulla_heldout.h5"
THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@dataclass
class DemoInput:
    """What the pipeline runs on: raw and ground-truth addresses, a synapse table or None."""

    raw: str
    gt: str
    synapses: str | None
    detail: str


def demo_config(source: Literal["synth", "fib"]) -> PipelineConfig:
    """Block shapes sized so each stage has a few blocks (progress and resume show) on the demo volume."""
    block = [64, 128, 128] if source == "synth" else [70, 128, 128]
    return PipelineConfig.model_validate({
        "predict": {"block_shape": block},
        "segment": {"block_shape": block, "agglomerate": {"thresholds": THRESHOLDS}},
        "skeletonize": {"block_shape": [block[0], 256, 256]},
        "formats": ["sonata", "csv"],
    })


def _prepare_input(out: Path, source: str, seed: int, shape: tuple[int, int, int] | None) -> DemoInput:
    if source == "synth":
        synth = write_synth(out / "synth.zarr", shape or DEMO_SHAPE, DEMO_VOXEL_SIZE, seed, show_progress=False)
        return DemoInput(f"{synth.store}/raw", f"{synth.store}/labels", f"{synth.store}/synapses",
                         f"synth {shape or DEMO_SHAPE} voxels at {DEMO_VOXEL_SIZE} nm: {synth.n_axons} axons, "
                         f"{synth.n_neurites} neurites, {synth.n_synapses} synapses")
    if not FIB_CROP.exists():
        raise InputError(f"{FIB_CROP}: the shipped FIB-SEM crop is missing from this checkout")
    detail = "real FIB-SEM, Drosophila medulla, z 180-249 (held out from training), 10 nm"
    if shape is None:
        return DemoInput(f"{FIB_CROP}:raw", f"{FIB_CROP}:labels", None, f"{detail}, 70x250x250 voxels")
    import h5py

    from axonseg.io import write_array

    window = tuple(slice(0, s) for s in shape)
    with h5py.File(FIB_CROP, "r") as handle:
        raw, labels = handle["raw"][window], handle["labels"][window]
    store = out / "fib_crop.zarr"
    return DemoInput(write_array(store, "raw", raw, (10.0, 10.0, 10.0)), write_array(store, "labels", labels, (10.0, 10.0, 10.0)),
                     None, f"{detail}, {raw.shape[0]}x{raw.shape[1]}x{raw.shape[2]} voxels")


def run_demo(out: Path, overwrite: bool = True, seed: int = 0, source: Literal["synth", "fib"] = "fib",
             scheduler: str = "threads", show_progress: bool = True,
             shape: tuple[int, int, int] | None = None, model: str | Path | None = None) -> dict[str, object]:
    """Run the whole pipeline on the demo volume and print a summary table.

    Args:
        out: the demo folder (``synth.zarr`` and ``run/``).
        overwrite: replace an earlier demo in ``out``.
        seed: synth seed.
        source: "fib" (default: the shipped real crop) or "synth".
        scheduler: dask scheduler for the blockwise stages.
        show_progress: draw progress bars.
        shape: voxels zyx: the synth shape (default ``DEMO_SHAPE``), or a corner crop of the FIB
            crop (default: all of it).
        model: the U-Net; default: the shipped model for the input's voxel size.

    Returns:
        The summary: metrics, counts, paths and per-stage seconds.
    """
    out = Path(out)
    if out.exists():
        if not overwrite:
            raise OutputExistsError(f"{out} exists already; pass --overwrite to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    data = _prepare_input(out, source, seed, shape)
    seconds["input"] = time.perf_counter() - start
    run_dir = out / "run"
    start = time.perf_counter()
    result = run_segment(data.raw, run_dir, demo_config(source), model=model, gt=data.gt, synapses=data.synapses,
                         scheduler=scheduler, show_progress=show_progress)
    seconds["segment"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        simulation = run_simulate(run_dir, SimulateConfig(duration_ms=200.0))
        spikes: object = int(len(simulation.result.spike_index))
        raster = str(simulation.raster_path)
    except InputError as err:  # an empty circuit (no segment with a synapse): say so in the table
        logger.warning("demo: simulation skipped: %s", err)
        spikes, raster = "skipped: the circuit has no neurons", "-"
    seconds["simulate"] = time.perf_counter() - start
    summary = dict(result.summary)
    summary.update({
        "source": data.detail, "threshold": result.threshold, "spikes": spikes,
        "report": str(run_dir / "reports" / "evaluation.html"),
        "sonata": str(run_dir / "connectome" / "sonata"), "raster": raster,
        "seconds": seconds,
    })
    print_summary(summary)
    return summary


def _fmt(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def print_summary(summary: dict) -> None:
    """The demo's closing table: quality, counts, paths, times."""
    table = Table(title="axonseg demo", show_header=True)
    table.add_column("")
    table.add_column("value")
    erl_um = summary.get("erl_nm")
    gt_um = summary.get("gt_erl_nm")
    kind = "contact PROXY synapses" if summary.get("proxy_synapses") else "synapses"
    rows = [
        ("input", summary["source"]),
        ("best threshold", _fmt(summary.get("threshold"))),
        ("ERL", f"{erl_um / 1000:.2f} um of {gt_um / 1000:.2f} um (ground truth)" if erl_um is not None else "-"),
        ("NERL", _fmt(summary.get("nerl"))),
        ("VOI split / merge", f"{_fmt(summary.get('voi_split'))} / {_fmt(summary.get('voi_merge'))} bits"),
        ("adapted Rand error", _fmt(summary.get("arand"))),
        ("segments (skeletonized)", _fmt(summary.get("skeletons"))),
        (kind, _fmt(summary.get("synapses"))),
        ("connectome edges (pairs)", _fmt(summary.get("edges"))),
        ("neurons in the connectome", _fmt(summary.get("neurons"))),
        ("spikes (Brian2, 200 ms)", _fmt(summary.get("spikes"))),
        ("evaluation report", summary["report"]),
        ("SONATA circuit", summary["sonata"]),
        ("raster plot", summary["raster"]),
        ("time", ", ".join(f"{k} {v:.0f} s" for k, v in summary["seconds"].items())),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console(file=sys.stdout).print(table)


__all__ = ["DEMO_SHAPE", "DEMO_VOXEL_SIZE", "demo_config", "print_summary", "run_demo"]
