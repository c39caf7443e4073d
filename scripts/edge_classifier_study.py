"""Learned agglomeration study (#15): does an edge classifier beat mean affinity on validation?

The model's affinities of the training ROI (labels of the ``split: train`` datasets) and of the
validation ROI (the first ``split: val`` dataset) go through fragments and the region graph.
A gradient-boosted classifier (scikit-learn's HistGradientBoostingClassifier) learns from the
training edges whether the two fragments are one body (:mod:`axonseg.segment.edge_features`,
:mod:`axonseg.segment.edge_targets`); on validation its merge probability p replaces the mean
affinity in the same hierarchical agglomeration (score 1 - p, area-weighted on merges), and both
are scored with AxonEM ERL/VOI at 19 thresholds. The held-out slab is never read.

    python scripts/edge_classifier_study.py --config configs/train_fib.yaml \\
        --model data/models/fib_v4/model.pt --out /tmp/edge_study

Needs scikit-learn (``pip install scikit-learn``), which the package itself does not.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
from pathlib import Path

import numpy as np

from axonseg.io import open_volume, write_array
from axonseg.io.luts import write_luts
from axonseg.pipelines.evaluate import evaluate_run
from axonseg.pipelines.segment.config import SegmentConfig
from axonseg.pipelines.segment.graph import read_graph
from axonseg.pipelines.segment.predict import PredictConfig, run_predict
from axonseg.pipelines.segment.stages import run_segment_stages
from axonseg.pipelines.train import load_config, load_volumes
from axonseg.segment import agglomerate
from axonseg.segment.edge_features import edge_features, feature_names, node_means
from axonseg.segment.edge_targets import edge_targets

THRESHOLDS = [round(t, 2) for t in np.arange(0.05, 1.0, 0.05)]
KEYS = ("nerl", "voi_split", "voi_merge", "n_merge")


def segmented_run(out: Path, name: str, raw: np.ndarray, labels: np.ndarray, voxel_size, model: Path,
                  fragments: dict) -> tuple[Path, str, str]:
    """Predict and segment one ROI (one block); returns (run, raw address, labels address)."""
    store = out / f"{name}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    raw_address = write_array(store, "raw", np.ascontiguousarray(raw), voxel_size)
    labels_address = write_array(store, "labels", np.ascontiguousarray(labels), voxel_size)
    run = out / f"{name}_run"
    shutil.rmtree(run, ignore_errors=True)
    block = [int(s) for s in raw.shape]
    run_predict(run, raw_address, model, PredictConfig(block_shape=block), scheduler="synchronous", show_progress=False)
    config = SegmentConfig.model_validate({"block_shape": block, "fragments": fragments,
                                           "agglomerate": {"thresholds": THRESHOLDS}})
    run_segment_stages(run, config, scheduler="synchronous", show_progress=False)
    return run, raw_address, labels_address


def graph_features(run: Path, raw_address: str, labels_address: str):  # noqa: ANN201
    """(graph, features, targets) of a segmented run; node values: mean raw and mean boundary."""
    graph = read_graph(run)
    fragments = np.asarray(open_volume(str(run / "volume.zarr" / "fragments")).data)
    affinities = np.asarray(open_volume(str(run / "volume.zarr" / "affinities")).data)
    boundary = 255.0 - affinities[:3].min(axis=0).astype(np.float32)
    values = {"raw": node_means(fragments, np.asarray(open_volume(raw_address).data), graph.node_id),
              "boundary": node_means(fragments, boundary, graph.node_id)}
    labels = np.asarray(open_volume(labels_address).data)
    return graph, edge_features(graph, values), edge_targets(graph, fragments, labels)


def learned_run(run: Path, graph, probability: np.ndarray, target: Path) -> Path:
    """A run folder beside ``run`` (fragments and skeletons linked) whose LUTs merge by 1 - p."""
    shutil.rmtree(target, ignore_errors=True)
    (target / "volume.zarr").mkdir(parents=True)
    shutil.copy(run / "volume.zarr" / "zarr.json", target / "volume.zarr")
    for group in ("affinities", "fragments"):
        (target / "volume.zarr" / group).symlink_to((run / "volume.zarr" / group).resolve())
    for part in ("graph", "skeletons"):
        if (run / part).exists():
            (target / part).symlink_to((run / part).resolve())
    scored = copy.copy(graph)
    scored.aff_sum = probability * graph.count  # the mean kernel then merges by area-weighted 1 - p
    write_luts(target, {lut.threshold: lut.lut for lut in agglomerate(scored, THRESHOLDS)}, method="learned")
    return target


def row(report) -> dict:  # noqa: ANN001
    best = report.best
    return {"threshold": best["threshold"], **{k: best.get(k) for k in KEYS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="training config (its train and val datasets)")
    parser.add_argument("--model", type=Path, required=True, help="model file whose affinities are studied")
    parser.add_argument("--out", type=Path, default=Path("edge_study"))
    parser.add_argument("--fragments", action="append", default=None,
                        help='fragment settings as JSON, e.g. \'{"boundary_threshold": 0.3}\' (repeatable; default {})')
    args = parser.parse_args()
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.metrics import roc_auc_score
    except ImportError:
        raise SystemExit("scripts/edge_classifier_study.py needs scikit-learn: pip install scikit-learn") from None
    cfg = load_config(args.config)
    train_volumes, val_volumes = load_volumes(cfg)
    if not val_volumes:
        raise SystemExit(f"{args.config}: no dataset with split: val to score on")
    shapes = {v.raw.shape for v in train_volumes}
    if len(shapes) != 1:
        raise SystemExit(f"{args.config}: the train datasets cut different ROIs {sorted(shapes)}: expected one ROI")
    train_labels = np.max(np.stack([v.labels for v in train_volumes]), axis=0)  # labels_roi parts are disjoint
    val = val_volumes[0]
    results = {}
    for settings in [json.loads(s) for s in (args.fragments or ["{}"])]:
        tag = "_".join(f"{k}{v}" for k, v in settings.items()) or "default"
        out = args.out / tag
        out.mkdir(parents=True, exist_ok=True)
        train = segmented_run(out, "train", train_volumes[0].raw, train_labels, train_volumes[0].voxel_size,
                              args.model, settings)
        check = segmented_run(out, "val", val.raw, val.labels, val.voxel_size, args.model, settings)
        _, x, y = graph_features(*train)
        graph, xv, yv = graph_features(*check)
        known, known_v = y >= 0, yv >= 0
        classifier = HistGradientBoostingClassifier(max_iter=200, max_leaf_nodes=31, class_weight="balanced",
                                                    random_state=0).fit(x[known], y[known])
        probability = classifier.predict_proba(xv)[:, 1]
        mean = evaluate_run(check[0], check[2], show_progress=False)
        learned = evaluate_run(learned_run(check[0], graph, probability, out / "val_learned"), check[2],
                               show_progress=False)
        results[tag] = {
            "train_edges": {"merge": int((y == 1).sum()), "split": int((y == 0).sum()), "unknown": int((y < 0).sum())},
            "val_auc_mean_affinity": float(roc_auc_score(yv[known_v], xv[known_v, 0])),
            "val_auc_learned": float(roc_auc_score(yv[known_v], probability[known_v])),
            "mean": row(mean), "learned": row(learned),
        }
        r = results[tag]
        print(f"{tag}: AUC {r['val_auc_mean_affinity']:.3f} -> {r['val_auc_learned']:.3f}; best NERL mean "
              f"{r['mean']['nerl']:.3f} ({r['mean']['voi_split']:.2f}/{r['mean']['voi_merge']:.2f} at "
              f"{r['mean']['threshold']}), learned {r['learned']['nerl']:.3f} ({r['learned']['voi_split']:.2f}/"
              f"{r['learned']['voi_merge']:.2f} at {r['learned']['threshold']})", flush=True)
    print(json.dumps({"features": list(feature_names(("raw", "boundary"))), "results": results}))


if __name__ == "__main__":
    main()
