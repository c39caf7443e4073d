"""Score an anisotropic model on the randomised-appearance volumes of scripts/aniso_training_set.py.

Each volume goes through the full pipeline (predict -> fragments -> region graph -> agglomeration
at every threshold -> AxonEM ERL/VOI against skeletons of its axons). Every volume is presented at
the model's 30x8x8 nm, as in training (raw and labels are copied with that voxel size, and the
ground-truth skeletons are traced from the copied labels, so both sides use the same units).

The row "calibrated" is at the threshold stored in the model file (chosen on val_00 during
training); "best" is chosen with the volume's own labels and is for scale only. The test_*
volumes have looks outside the training ranges and are never used to choose anything.

    python scripts/aniso_eval.py --model data/models/aniso_v2/model.pt --data runs/aniso --out /tmp/aniso_eval
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from axonseg.io import open_volume, write_array
from axonseg.model.checkpoint import calibrated_threshold
from axonseg.pipelines.evaluate import evaluate_run
from axonseg.pipelines.segment.config import SegmentConfig
from axonseg.pipelines.segment.predict import PredictConfig, run_predict
from axonseg.pipelines.segment.stages import run_segment_stages

THRESHOLDS = [round(t, 2) for t in np.arange(0.05, 1.0, 0.05)]
DECLARED_NM = (30.0, 8.0, 8.0)
KEYS = ("threshold", "nerl", "voi_split", "voi_merge", "arand", "n_split", "n_merge")


def declared_copy(source: Path, store: Path) -> None:
    """raw and labels (axons) of a synth store, written at DECLARED_NM voxel size."""
    for name in ("raw", "labels"):
        write_array(store, name, np.asarray(open_volume(f"{source}/{name}").data.compute()), DECLARED_NM)


def score_volume(model: Path, source: Path, work: Path, tta: str = "none") -> dict[str, dict]:
    """{"calibrated": row, "best": row} of one volume (rows hold KEYS); ``tta`` as in ``PredictConfig``."""
    store = work / "volume.zarr"
    declared_copy(source, store)
    run = work / "run"
    shape = open_volume(f"{store}/raw").spatial_shape
    run_predict(run, f"{store}/raw", model, PredictConfig(block_shape=tuple(shape), tta=tta), show_progress=False)
    segment = SegmentConfig.model_validate({"block_shape": list(shape), "agglomerate": {"thresholds": THRESHOLDS}})
    run_segment_stages(run, segment, show_progress=False)
    report = evaluate_run(run, f"{store}/labels", show_progress=False)
    rows = {"best": report.best}
    threshold = calibrated_threshold(model)
    if threshold is not None:
        rows["calibrated"] = min(report.rows, key=lambda row: abs(row["threshold"] - threshold))
    return {name: {k: row.get(k) for k in KEYS} for name, row in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("runs/aniso"))
    parser.add_argument("--out", type=Path, default=Path("aniso_eval"))
    parser.add_argument("--volumes", nargs="*", default=["val_00", "val_01", "test_00", "test_01", "test_02"])
    parser.add_argument("--tta", choices=["none", "flips"], default="none", help="test-time augmentation of predict")
    args = parser.parse_args()
    results = {}
    for name in args.volumes:
        work = args.out / name
        shutil.rmtree(work, ignore_errors=True)
        results[name] = score_volume(args.model, args.data / f"{name}.zarr", work, args.tta)
        for kind, row in results[name].items():
            print(f"{name:8s} {kind:10s} " + "  ".join(f"{k} {row[k]:.4g}" if isinstance(row[k], float) else f"{k} {row[k]}"
                                                       for k in KEYS), flush=True)
    print(json.dumps({"model": str(args.model), "tta": args.tta, "results": results}))


if __name__ == "__main__":
    main()
