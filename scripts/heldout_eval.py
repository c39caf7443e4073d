"""Score a model on the held-out FIB-SEM slab (z 180-249) through the full pipeline, beside the
classic baseline (inverted, Gaussian-smoothed raw as the boundary map).

Both go through the same stages: affinities -> fragments -> region graph -> mean-affinity
agglomeration at every threshold -> AxonEM ERL/VOI/ARAND against ground-truth skeletons.

    python scripts/heldout_eval.py --model data/models/fib_default/model.pt --out /tmp/heldout
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from axonseg.model.checkpoint import calibrated_threshold
from axonseg.io import open_volume, write_array
from axonseg.pipelines.evaluate import evaluate_run
from axonseg.pipelines.segment.config import SegmentConfig
from axonseg.pipelines.segment.predict import PredictConfig, run_predict
from axonseg.pipelines.segment.stages import run_segment_stages
from axonseg.segment.affinities import NEAREST_NEIGHBOUR_OFFSETS
from axonseg.segment.baseline import baseline_affinities

HELDOUT = Path(__file__).resolve().parents[1] / "data" / "fib_medulla_heldout.h5"
NN = [list(o) for o in NEAREST_NEIGHBOUR_OFFSETS]
THRESHOLDS = [round(t, 2) for t in np.arange(0.05, 1.0, 0.05)]


def score(run: Path, labels_address: str, segment: SegmentConfig):  # noqa: ANN201
    """The run's evaluation report: every threshold's row, and the best one."""
    run_segment_stages(run, segment, show_progress=False)
    return evaluate_run(run, labels_address, show_progress=False)


def at_threshold(report, threshold: float) -> dict:  # noqa: ANN001
    """The report's row at ``threshold`` (the nearest one evaluated)."""
    return min(report.rows, key=lambda row: abs(row["threshold"] - threshold))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("heldout_eval"))
    parser.add_argument("--skip-baseline", action="store_true", help="score the model only (e.g. comparing checkpoints)")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    raw = open_volume(f"{HELDOUT}:raw")
    labels = f"{HELDOUT}:labels"
    segment = SegmentConfig.model_validate({"block_shape": [70, 128, 128], "agglomerate": {"thresholds": THRESHOLDS}})
    rows = {}
    model_run = args.out / "model"
    run_predict(model_run, f"{HELDOUT}:raw", args.model, PredictConfig(block_shape=(70, 128, 128)), show_progress=False)
    report = score(model_run, labels, segment)
    calibrated = calibrated_threshold(args.model)
    if calibrated is not None:  # the pipeline's own threshold, chosen on validation data: the held-out figure
        rows["model (calibrated)"] = at_threshold(report, calibrated)
    rows["model (best on slab)"] = report.best  # chosen with the slab's labels: for scale only
    if not args.skip_baseline:
        base_run = args.out / "baseline"
        affinities = baseline_affinities(raw.data.compute())
        write_array(base_run / "volume.zarr", "affinities", affinities, raw.voxel_size, raw.offset, attrs={"offsets": NN})
        rows["baseline (best on slab)"] = score(base_run, labels, segment.model_copy(update={"offsets": None})).best
    keys = ("threshold", "nerl", "erl_nm", "gt_erl_nm", "voi_split", "voi_merge", "arand", "n_split", "n_merge")
    print(f"{'':20s}" + "".join(f"{k:>12s}" for k in keys))
    for name, row in rows.items():
        print(f"{name:20s}" + "".join(f"{row.get(k):>12.4g}" if isinstance(row.get(k), float) else f"{row.get(k)!s:>12s}" for k in keys))
    print(json.dumps({name: {k: row.get(k) for k in keys} for name, row in rows.items()}))


if __name__ == "__main__":
    main()
