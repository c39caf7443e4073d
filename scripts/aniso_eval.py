"""Score an anisotropic model on the randomised-appearance volumes of scripts/aniso_training_set.py.

Each volume goes through the full pipeline (predict -> fragments -> region graph -> agglomeration
at every threshold -> AxonEM ERL/VOI against skeletons of its axons). Every volume is presented at
the model's 30x8x8 nm, as in training (raw and labels are copied with that voxel size, and the
ground-truth skeletons are traced from the copied labels, so both sides use the same units).

The row "calibrated" is at the threshold the pipeline picks itself: the one stored in the model
file (chosen on val_00 during training), or an edge classifier's own calibrated threshold when
``--segment-config`` asks for ``agglomerate.method: learned``; "best" is chosen with the volume's
own labels and is for scale only. The test_* volumes have looks outside the training ranges and
are never used to choose anything.

    python scripts/aniso_eval.py --model data/models/aniso_v2/model.pt --data runs/aniso --out /tmp/aniso_eval
    python scripts/aniso_eval.py --model data/models/aniso_v3/model.pt --data runs/aniso_v3 \
        --segment-config configs/agglomerate_learned.yaml      # fragments/agglomeration other than the defaults
    python scripts/aniso_eval.py --baseline --data runs/aniso_v3  # the classic baseline: no network

``--baseline`` scores the inverted, Gaussian-smoothed raw as nearest-neighbour affinities
(:func:`axonseg.segment.baseline.baseline_affinities`, sigma 1 voxel) through the same stages. It
has no calibrated threshold; its "calibrated" row is at the threshold that is best on the first
volume named (val_00 by default), the same rule training uses for a model.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from axonseg.io import open_volume, write_array
from axonseg.pipelines.evaluate import evaluate_run
from axonseg.pipelines.run_folder import RunFolder
from axonseg.pipelines.segment.config import SegmentConfig, load_segment_config
from axonseg.pipelines.segment.predict import PredictConfig, run_predict
from axonseg.pipelines.segment.stages import run_segment_stages
from axonseg.pipelines.train_agglomeration import THRESHOLDS as LEARNED_THRESHOLDS  # down to 0.01: confident scores
from axonseg.segment.affinities import NEAREST_NEIGHBOUR_OFFSETS
from axonseg.segment.baseline import baseline_affinities

THRESHOLDS = [round(t, 2) for t in np.arange(0.05, 1.0, 0.05)]
DECLARED_NM = (30.0, 8.0, 8.0)
KEYS = ("threshold", "nerl", "voi_split", "voi_merge", "arand", "n_split", "n_merge")


def declared_copy(source: Path, store: Path) -> None:
    """raw and labels (axons) of a synth store, written at DECLARED_NM voxel size."""
    for name in ("raw", "labels"):
        write_array(store, name, np.asarray(open_volume(f"{source}/{name}").data.compute()), DECLARED_NM)


def sweep_config(segment_config: Path | None, shape: tuple[int, ...]) -> SegmentConfig:
    """The segment config of one volume: ``segment_config`` (default: the defaults; method learned
    turns on the graph's node values itself) as one block, agglomerated at every threshold of the sweep."""
    segment = load_segment_config(segment_config)
    thresholds = LEARNED_THRESHOLDS if segment.agglomerate.method == "learned" else THRESHOLDS
    return segment.model_copy(update={"block_shape": tuple(shape),
                                      "agglomerate": segment.agglomerate.model_copy(update={"thresholds": thresholds})})


def write_baseline(run: Path, raw_address: str) -> None:
    """The classic baseline's affinities (no network) as the run's ``volume.zarr/affinities``."""
    raw = open_volume(raw_address)
    write_array(run / "volume.zarr", "affinities", baseline_affinities(np.asarray(raw.data.compute())), raw.voxel_size,
                raw.offset, attrs={"offsets": [list(o) for o in NEAREST_NEIGHBOUR_OFFSETS]})


def score_volume(model: Path | None, source: Path, work: Path, tta: str = "none",
                 segment_config: Path | None = None, threshold: float | None = None) -> tuple[dict[str, dict], float]:
    """({"calibrated": row, "best": row}, best threshold) of one volume (rows hold KEYS); ``model``
    None scores the classic baseline; ``tta`` as in ``PredictConfig``; ``segment_config``: an
    agglomerate config YAML (default: the defaults); ``threshold``: the calibrated row's threshold
    when the run has none of its own (the baseline)."""
    store = work / "volume.zarr"
    declared_copy(source, store)
    run = work / "run"
    shape = open_volume(f"{store}/raw").spatial_shape
    if model is None:
        write_baseline(run, f"{store}/raw")
    else:
        run_predict(run, f"{store}/raw", model, PredictConfig(block_shape=tuple(shape), tta=tta), show_progress=False)
    segment = sweep_config(segment_config, shape)
    if model is None:
        segment = segment.model_copy(update={"offsets": None})
    run_segment_stages(run, segment, show_progress=False)
    report = evaluate_run(run, f"{store}/labels", show_progress=False)
    rows = {"best": report.best}
    own = RunFolder(run).model_threshold()  # the model's, or the edge classifier's own
    threshold = own if own is not None else threshold
    if threshold is not None:
        rows["calibrated"] = min(report.rows, key=lambda row: abs(row["threshold"] - threshold))
    return {name: {k: row.get(k) for k in KEYS} for name, row in rows.items()}, float(report.best["threshold"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--model", type=Path)
    chosen.add_argument("--baseline", action="store_true", help="score the classic baseline (no network) instead")
    parser.add_argument("--data", type=Path, default=Path("runs/aniso"))
    parser.add_argument("--out", type=Path, default=Path("aniso_eval"))
    parser.add_argument("--volumes", nargs="*", default=["val_00", "val_01", "test_00", "test_01", "test_02"])
    parser.add_argument("--tta", choices=["none", "flips"], default="none", help="test-time augmentation of predict")
    parser.add_argument("--segment-config", type=Path, default=None,
                        help="agglomerate config YAML (fragments, method); default: the defaults")
    args = parser.parse_args()
    results = {}
    chosen_threshold = None  # the baseline's: best on the first volume named
    for name in args.volumes:
        work = args.out / name
        shutil.rmtree(work, ignore_errors=True)
        results[name], best = score_volume(args.model, args.data / f"{name}.zarr", work, args.tta, args.segment_config,
                                           chosen_threshold)
        if args.baseline and chosen_threshold is None:
            chosen_threshold = best
            results[name]["calibrated"] = results[name]["best"]
        for kind, row in results[name].items():
            print(f"{name:8s} {kind:10s} " + "  ".join(f"{k} {row[k]:.4g}" if isinstance(row[k], float) else f"{k} {row[k]}"
                                                       for k in KEYS), flush=True)
    print(json.dumps({"model": "baseline" if args.baseline else str(args.model), "tta": args.tta,
                      "segment_config": None if args.segment_config is None else str(args.segment_config),
                      "results": results}))


if __name__ == "__main__":
    main()
