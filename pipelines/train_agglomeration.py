"""Train the edge classifier of agglomerate method ``learned`` for one model (#15).

The training config's datasets say where the labels are, as for ``axonseg train``: the
``split: train`` ROIs teach the classifier and the first ``split: val`` ROI calibrates its
threshold. Each ROI goes through the pipeline a user runs (predict with the model, fragments,
the region graph with node values), so the classifier sees the same features as it will in a
run. Datasets that cut the same raw ROI with different labelled parts (the FIB-SEM config's
two training slabs) are predicted once, their labels joined.

On validation both the mean-affinity agglomeration and the learned one are scored (AxonEM ERL
and VOI at every threshold); the learned one's best threshold by NERL is stored in the file, and
``axonseg segment`` / ``agglomerate`` use it as the default threshold of runs it agglomerates.
The held-out data are never read here: list only training-ROI datasets in the config.

    axonseg train-agglomeration configs/train_fib.yaml --model data/models/fib_default/model.pt
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from axonseg.errors import InputError

logger = logging.getLogger(__name__)

#: Agglomeration thresholds scored on validation (1 - score), for both methods. The learned
#: probabilities are confident, so its best threshold often lies below 0.05.
THRESHOLDS = [0.01, 0.02] + [round(float(t), 2) for t in np.arange(0.05, 1.0, 0.05)]
METRICS = ("threshold", "nerl", "voi_split", "voi_merge", "n_merge")


@dataclass
class Roi:
    """One ROI to segment: raw and labels (zyx, the same shape), voxel size in nm."""

    name: str
    raw: np.ndarray
    labels: np.ndarray
    voxel_size: tuple[float, float, float]


def training_rois(train_volumes: list, val_volumes: list) -> tuple[list[Roi], Roi]:
    """Training ROIs (datasets over the same raw joined, labels by maximum: their labelled parts
    are disjoint) and the validation ROI.

    Raises:
        InputError: no training or no validation dataset.
    """
    if not train_volumes:
        raise InputError("the training config has no dataset with split: train to learn from")
    if not val_volumes:
        raise InputError("the training config has no dataset with split: val to calibrate the threshold on")
    rois: list[Roi] = []
    for volume in train_volumes:
        same = next((r for r in rois if r.raw.shape == volume.raw.shape and np.array_equal(r.raw, volume.raw)), None)
        if same is not None:
            same.labels = np.maximum(same.labels, volume.labels)
        else:
            rois.append(Roi(f"train_{len(rois)}", volume.raw, np.array(volume.labels), tuple(volume.voxel_size)))
    val = val_volumes[0]
    return rois, Roi("val", val.raw, val.labels, tuple(val.voxel_size))


def segment_roi(roi: Roi, model: Path, segment: Any, work: Path) -> tuple[Path, str]:
    """Predict and segment one ROI as one block; returns (run folder, labels address)."""
    from axonseg.io import write_array
    from axonseg.pipelines.segment.predict import PredictConfig, run_predict
    from axonseg.pipelines.segment.stages import run_segment_stages

    store = work / f"{roi.name}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    raw = write_array(store, "raw", np.ascontiguousarray(roi.raw), roi.voxel_size)
    labels = write_array(store, "labels", np.ascontiguousarray(roi.labels), roi.voxel_size)
    run = work / f"{roi.name}_run"
    shutil.rmtree(run, ignore_errors=True)
    block = [int(s) for s in roi.raw.shape]
    run_predict(run, raw, model, PredictConfig(block_shape=block), scheduler="synchronous", show_progress=False)
    run_segment_stages(run, segment.model_copy(update={"block_shape": tuple(block)}), scheduler="synchronous",
                       show_progress=False)
    return run, labels


def edge_data(run: Path, labels: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """(graph, features, targets) of a segmented run against its labels."""
    from axonseg.io import open_volume
    from axonseg.pipelines.segment.graph import read_graph
    from axonseg.segment.edge_classifier import graph_edge_features
    from axonseg.segment.edge_targets import edge_targets

    graph = read_graph(run)
    fragments = np.asarray(open_volume(str(run / "volume.zarr" / "fragments")).data)
    return graph, graph_edge_features(graph), edge_targets(graph, fragments, np.asarray(open_volume(labels).data))


def _rows(report: Any) -> list[dict]:
    return [{k: row.get(k) for k in METRICS} for row in report.rows]


def train_agglomeration(config: str | Path, model: str | Path, out: str | Path | None = None,
                        segment_config: str | Path | None = None, work_dir: str | Path | None = None) -> dict:
    """Train, calibrate and write the edge classifier of ``model``.

    Args:
        config: a training config (``axonseg train``): its train and val datasets.
        model: the model file whose affinities the classifier learns.
        out: the classifier file; default ``edge_classifier.json`` beside the model, where
            ``agglomerate.method: learned`` finds it.
        segment_config: fragment settings (an agglomerate config YAML) the runs will use; the
            classifier learns the edges of those fragments. Default: the defaults.
        work_dir: scratch folder for the ROI runs (default: a temporary folder, removed).

    Returns:
        ``{"classifier": path, "threshold", "edges": counts, "edge_auc": {"mean_affinity",
        "learned"}, "mean": rows, "learned": rows}`` (rows: the validation figures at every
        threshold; edge AUC: how well each score tells merge from split edges on validation).

    Raises:
        InputError: a missing model or config, no train or val dataset, labels without both
            merges and splits.
    """
    from axonseg.pipelines.evaluate import evaluate_run
    from axonseg.pipelines.segment.agglomerate import CLASSIFIER_FILE, run_agglomerate
    from axonseg.pipelines.segment.config import load_segment_config
    from axonseg.pipelines.train import load_config, load_volumes
    from axonseg.segment.edge_classifier import edge_auc, load_classifier, train_classifier

    model = Path(model)
    if not model.is_file():
        raise InputError(f"{model}: no model file")
    out = Path(out) if out is not None else model.parent / CLASSIFIER_FILE
    segment = load_segment_config(segment_config)
    segment = segment.model_copy(update={"graph": segment.graph.model_copy(update={"node_values": True}),
                                         "agglomerate": segment.agglomerate.model_copy(
                                             update={"method": "mean", "classifier": None, "thresholds": THRESHOLDS})})
    cfg = load_config(config)
    rois, val = training_rois(*load_volumes(cfg))
    scratch = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="axonseg-agglo-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        parts = []
        for roi in rois:
            logger.info("train-agglomeration: segmenting %s %s voxels", roi.name, roi.raw.shape)
            _, x, y = edge_data(*segment_roi(roi, model, segment, scratch))
            parts.append((x, y))
        record = {"model": str(model), "config": str(config), "fragments": segment.fragments.model_dump(mode="json"),
                  "train_rois": [list(r.raw.shape) for r in rois]}
        classifier = train_classifier(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                                      record)
        logger.info("train-agglomeration: fitted on %s edges", json.dumps(classifier.record["edges"]))
        val_run, val_labels = segment_roi(val, model, segment, scratch)
        _, xv, yv = edge_data(val_run, val_labels)
        auc = {"mean_affinity": edge_auc(xv[:, 0], yv), "learned": edge_auc(classifier.predict(xv), yv)}
        mean = evaluate_run(val_run, val_labels, show_progress=False)
        draft = classifier.save(scratch / CLASSIFIER_FILE)
        learned_config = segment.model_copy(update={"agglomerate": segment.agglomerate.model_copy(
            update={"method": "learned", "classifier": str(draft)})})
        run_agglomerate(val_run, learned_config, show_progress=False)
        learned = evaluate_run(val_run, val_labels, show_progress=False)
        classifier.threshold = float(learned.best["threshold"])
        classifier.record["validation"] = {"roi": list(val.raw.shape), "edge_auc": auc,
                                           "mean": {k: mean.best.get(k) for k in METRICS},
                                           "learned": {k: learned.best.get(k) for k in METRICS}}
        classifier.save(out)
        load_classifier(out)  # what was written reads back
    finally:
        if work_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return {"classifier": str(out), "threshold": classifier.threshold, "edges": classifier.record["edges"],
            "edge_auc": auc, "mean": _rows(mean), "learned": _rows(learned)}
