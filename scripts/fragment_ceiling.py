"""Fragment settings and their perfect-agglomeration ceiling, on a run's affinities (#15).

For each fragment setting, the run's affinities go through fragments -> region graph ->
agglomeration at every threshold -> AxonEM ERL/VOI; beside it, two references: every fragment
given its majority ground-truth body (:func:`axonseg.evaluate.ceiling.majority_lut`; the
reference for VOI), and the same with fragments that hold two bodies left alone (the
reference for ERL, where joining a mixed fragment to either body merges whole skeletons). Use a
validation run, never the held-out slab, to choose a setting:

    python scripts/fragment_ceiling.py --run data/models/fib_v4/validation/run \\
        --labels data/models/fib_v4/validation/heldout.zarr/labels --out /tmp/ceiling
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from axonseg.evaluate import evaluate_arrays
from axonseg.evaluate.ceiling import majority_lut
from axonseg.io import open_volume
from axonseg.pipelines.evaluate import evaluate_run
from axonseg.pipelines.run_folder import RunFolder
from axonseg.pipelines.segment.config import SegmentConfig
from axonseg.pipelines.segment.stages import run_segment_stages
from axonseg.pipelines.skeletonize.blocks import read_skeletons
from axonseg.segment import apply_lut

QUANTILE = {"method": "quantile", "quantile": 50.0}
#: name -> (fragment settings, agglomeration settings; {} = mean affinity, the validation hook's)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "default": ({}, {}),
    "flood": ({"flood": True}, {}),
    "flood, boundary 0.3": ({"flood": True, "boundary_threshold": 0.3}, {}),
    "boundary 0.4": ({"boundary_threshold": 0.4}, {}),
    "boundary 0.3": ({"boundary_threshold": 0.3}, {}),
    "boundary 0.2": ({"boundary_threshold": 0.2}, {}),
    "seed radius 2": ({"seed_radius": 2}, {}),
    "seed radius 6": ({"seed_radius": 6}, {}),      # fewer, larger seeds: fewer splits where splits dominate
    "seed radius 8": ({"seed_radius": 8}, {}),
    "min_size 20": ({"min_size": 20}, {}),
    "boundary 0.3, attach 0.5": ({"boundary_threshold": 0.3, "attach_threshold": 0.5}, {}),
    "boundary 0.4, attach 0.5": ({"boundary_threshold": 0.4, "attach_threshold": 0.5}, {}),
    "boundary 0.3, attach 0.7": ({"boundary_threshold": 0.3, "attach_threshold": 0.7}, {}),
    "default, quantile": ({}, QUANTILE),
    "boundary 0.3, quantile": ({"boundary_threshold": 0.3}, QUANTILE),
    "boundary 0.3, mutex": ({"boundary_threshold": 0.3}, {"method": "mutex"}),
}
THRESHOLDS = [round(t, 2) for t in np.arange(0.05, 1.0, 0.05)]
KEYS = ("nerl", "voi_split", "voi_merge", "n_merge")


def fresh_run(source: Path, target: Path) -> Path:
    """A run folder holding only ``source``'s affinities (and its inputs record)."""
    shutil.rmtree(target, ignore_errors=True)
    (target / "volume.zarr").mkdir(parents=True)
    shutil.copy(source / "volume.zarr" / "zarr.json", target / "volume.zarr")
    shutil.copytree(source / "volume.zarr" / "affinities", target / "volume.zarr" / "affinities")
    if (source / "inputs.json").exists():
        shutil.copy(source / "inputs.json", target)
    return target


def score_variant(run: Path, labels: str, settings: dict, agglomerate: dict) -> dict:
    """Pipeline figures (best row, and the row at the model's calibrated threshold) and the
    ceiling of one fragment setting (and agglomeration setting; default mean affinity)."""
    folder = RunFolder(run)
    spatial = list(open_volume(str(run / "volume.zarr" / "affinities")).spatial_shape)
    segment = SegmentConfig.model_validate({"block_shape": spatial, "fragments": settings,
                                            "agglomerate": {"thresholds": THRESHOLDS, **agglomerate}})
    results = run_segment_stages(run, segment, show_progress=False)
    report = evaluate_run(run, labels, show_progress=False)
    calibrated = folder.model_threshold()
    at_model = min(report.rows, key=lambda row: abs(row["threshold"] - calibrated)) if calibrated is not None else {}
    fragments = np.asarray(open_volume(str(run / "volume.zarr" / "fragments")).data)
    gt_volume = open_volume(labels)
    gt = np.asarray(gt_volume.data)
    sizes = np.bincount(np.unique(fragments, return_inverse=True)[1].ravel())
    skeletons = read_skeletons(run / "skeletons" / "gt")
    ceiling, ceiling_erl = (
        evaluate_arrays(apply_lut(fragments, majority_lut(fragments, gt, isolate_mixed=isolate)), gt,
                        skeletons, gt_volume.voxel_size, gt_volume.offset).summary()
        for isolate in (False, True))
    graph = results["agglomerate"].details or {}
    return {
        "fragments": int(len(sizes) - (1 if (fragments == 0).any() else 0)),
        "single_voxel_share": float((sizes == 1).sum() / max(len(sizes), 1)),
        "graph_edges": graph.get("n_edges"),
        "best": {"threshold": report.best["threshold"], **{k: report.best.get(k) for k in KEYS}},
        "at_model_threshold": {"threshold": at_model.get("threshold"), **{k: at_model.get(k) for k in KEYS}},
        "ceiling": {k: ceiling.get(k) for k in KEYS},
        "ceiling_erl": {k: ceiling_erl.get(k) for k in KEYS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="run folder with volume.zarr/affinities")
    parser.add_argument("--labels", required=True, help="ground-truth labels address over the same grid")
    parser.add_argument("--out", type=Path, default=Path("fragment_ceiling"))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    rows = {name: score_variant(fresh_run(args.run, args.out / name.replace(", ", "_").replace(" ", "")), args.labels,
                                *VARIANTS[name]) for name in args.variants}
    print(f"{'setting':22s}{'fragments':>10s}{'1-voxel':>9s}{'edges':>10s}  best NERL (thr) VOI s/m   "
          "calibrated NERL VOI s/m   majority NERL VOI s/m   mixed alone NERL VOI s/m")
    for name, row in rows.items():
        best, model, ceil, alone = row["best"], row["at_model_threshold"], row["ceiling"], row["ceiling_erl"]
        fmt = lambda r: f"{r['nerl'] or 0:.3f} {r['voi_split'] or 0:.2f}/{r['voi_merge'] or 0:.2f}"  # noqa: E731
        print(f"{name:22s}{row['fragments']:>10d}{row['single_voxel_share']:>9.1%}{row['graph_edges'] or 0:>10}  "
              f"{fmt(best)} ({best['threshold']})   {fmt(model) if model['nerl'] is not None else '-':>20s}   {fmt(ceil)}   "
              f"{fmt(alone)}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
