"""`axonseg train-agglomeration` and agglomerate method ``learned`` end to end (#15): a classifier
trained for the shipped 30x8x8 nm model on one synthetic volume, calibrated on another, then
used by a run of a third through the segment stages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from axonseg.cli import app
from axonseg.errors import ConfigError, InputError
from axonseg.pipelines.evaluate import evaluate_run
from axonseg.pipelines.run_folder import RunFolder
from axonseg.pipelines.segment.config import SegmentConfig
from axonseg.pipelines.segment.predict import PredictConfig, run_predict
from axonseg.pipelines.segment.stages import run_segment_stages
from axonseg.pipelines.synth import write_synth
from axonseg.segment.edge_classifier import load_classifier

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "data" / "models" / "aniso_v2" / "model.pt"
SHAPE = (24, 128, 128)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("train_agglo")
    for name, seed in (("train", 11), ("val", 12), ("test", 13)):
        write_synth(work / f"{name}.zarr", SHAPE, (30.0, 8.0, 8.0), seed, show_progress=False)
    config = yaml.safe_load((ROOT / "configs" / "train_aniso.yaml").read_text())
    config["datasets"] = [{"raw": str(work / f"{n}.zarr/raw"), "labels": str(work / f"{n}.zarr/neurites"),
                           "voxel_size": [30, 8, 8], "split": n} for n in ("train", "val")]
    (work / "train.yaml").write_text(yaml.safe_dump(config))
    out = work / "edge_classifier.json"
    result = CliRunner().invoke(app, ["train-agglomeration", str(work / "train.yaml"), "--model", str(MODEL),
                                      "--out", str(out), "--work-dir", str(work / "runs")])
    assert result.exit_code == 0, result.output
    return {"work": work, "out": out, "output": result.output}


def _voi(rows_run: Path, labels: str, threshold: float) -> float:
    report = evaluate_run(rows_run, labels, show_progress=False)
    row = min(report.rows, key=lambda r: abs(r["threshold"] - threshold))
    return row["voi_split"] + row["voi_merge"]


def test_classifier_is_trained_calibrated_and_recorded(trained):
    classifier = load_classifier(trained["out"])
    assert "validation, learned: best NERL" in trained["output"] and str(trained["out"]) in trained["output"]
    assert classifier.threshold is not None and 0.05 <= classifier.threshold <= 0.95
    record = classifier.record
    assert record["model"] == str(MODEL) and record["edges"]["merge"] > 1000 and record["edges"]["split"] > 1000
    mean, learned = record["validation"]["mean"], record["validation"]["learned"]
    # measured 2026-12-03: VOI 0.65 + 0.11 learned against 1.00 + 0.27 mean affinity, NERL 0.78 and 0.82
    assert learned["voi_split"] + learned["voi_merge"] < 0.8 * (mean["voi_split"] + mean["voi_merge"])
    assert learned["nerl"] > 0.6
    auc = record["validation"]["edge_auc"]
    assert auc["learned"] > auc["mean_affinity"] and "validation edges: AUC" in trained["output"]


def test_a_run_agglomerates_with_the_classifier_and_defaults_to_its_threshold(trained):
    work, classifier = trained["work"], load_classifier(trained["out"])
    run = work / "test_run"
    run_predict(run, str(work / "test.zarr/raw"), MODEL, PredictConfig(block_shape=SHAPE), scheduler="synchronous",
                show_progress=False)
    learned = SegmentConfig.model_validate({"block_shape": list(SHAPE), "agglomerate": {
        "method": "learned", "classifier": str(trained["out"]), "thresholds": [0.3, 0.4, 0.5, 0.6]}})
    assert learned.graph.node_values  # method learned turns the node values on
    run_segment_stages(run, learned, scheduler="synchronous", show_progress=False)
    nodes = pq.read_table(next((run / "graph" / "nodes").glob("*.parquet")))
    assert {"sum_raw", "sum_boundary"} <= set(nodes.column_names)
    state = json.loads((run / "luts" / "agglomerate.json").read_text())
    assert state["config"]["classifier"]["path"] == str(trained["out"])
    folder = RunFolder(run)
    assert folder.model_threshold() == classifier.threshold
    assert folder.default_threshold() == classifier.threshold  # its LUT is made even when not configured
    # on a third volume too, fewer bits of VOI than mean affinity at the model's own threshold
    learned_voi = _voi(run, str(work / "test.zarr/neurites"), folder.default_threshold())
    mean_run = work / "test_mean"
    run_predict(mean_run, str(work / "test.zarr/raw"), MODEL, PredictConfig(block_shape=SHAPE),
                scheduler="synchronous", show_progress=False)
    run_segment_stages(mean_run, SegmentConfig.model_validate({"block_shape": list(SHAPE)}), scheduler="synchronous",
                       show_progress=False)
    mean_voi = _voi(mean_run, str(work / "test.zarr/neurites"), RunFolder(mean_run).default_threshold())
    assert learned_voi < mean_voi


def test_learned_settings_are_checked(trained, tmp_path):
    with pytest.raises(ConfigError, match="classifier"):
        from axonseg.config import validate_config

        validate_config(SegmentConfig, {"agglomerate": {"method": "mean", "classifier": "x.json"}}, "test")
    work = trained["work"]
    run = tmp_path / "run"
    run_predict(run, str(work / "test.zarr/raw"), MODEL, PredictConfig(block_shape=SHAPE), scheduler="synchronous",
                show_progress=False)
    missing = SegmentConfig.model_validate({"block_shape": list(SHAPE), "agglomerate": {
        "method": "learned", "classifier": str(tmp_path / "none.json")}})
    with pytest.raises(InputError, match="train-agglomeration"):
        run_segment_stages(run, missing, scheduler="synchronous", show_progress=False)
    # no file given and none beside the model (data/models/aniso_v2 ships none)
    beside = SegmentConfig.model_validate({"block_shape": list(SHAPE), "agglomerate": {"method": "learned"}})
    if not (MODEL.parent / "edge_classifier.json").exists():
        with pytest.raises(InputError, match="no edge_classifier.json beside"):
            run_segment_stages(run, beside, scheduler="synchronous", show_progress=False)
    assert np.isfinite(load_classifier(trained["out"]).threshold)


def test_a_missing_model_is_one_line_before_any_work(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "axonseg.cli", "train-agglomeration",
                             str(ROOT / "configs" / "train_fib.yaml"), "--model", str(tmp_path / "none.pt"),
                             "--work-dir", str(tmp_path / "work")], capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "none.pt: no model file" in lines[0]
    assert not (tmp_path / "work").exists()


def test_on_a_real_fib_crop_the_classifier_separates_edges_better_than_mean_affinity(tmp_path):
    """fib_default's classifier from a small crop of the FIB-SEM training ROI (labels of z 0-39),
    calibrated on z 70-99 of the same ROI; the held-out slab is not read."""
    from axonseg.pipelines.train_agglomeration import train_agglomeration
    from shared_data import FIB_PATH, require_shared

    require_shared(FIB_PATH)
    config = yaml.safe_load((ROOT / "configs" / "train_fib.yaml").read_text())
    address = {"raw": f"{FIB_PATH}:raw", "labels": f"{FIB_PATH}:labels", "voxel_size": [10, 10, 10]}
    config["datasets"] = [{**address, "roi": "0:32,60:188,60:188", "split": "train"},
                          {**address, "roi": "70:100,60:188,60:188", "split": "val"}]
    (tmp_path / "fib.yaml").write_text(yaml.safe_dump(config))
    model = ROOT / "data" / "models" / "fib_default" / "model.pt"
    result = train_agglomeration(tmp_path / "fib.yaml", model, tmp_path / "fib_edges.json")
    # measured 2026-12-03: validation edge AUC 0.748 learned against 0.700 for mean affinity
    # (the study on the whole ROIs: 0.719 against 0.694); 215k merge and 67k split edges
    assert result["edge_auc"]["learned"] > result["edge_auc"]["mean_affinity"] + 0.02
    assert result["edges"]["merge"] > 100_000 and result["edges"]["split"] > 30_000
    best = next(r for r in result["learned"] if r["threshold"] == result["threshold"])
    assert best["nerl"] == max(r["nerl"] for r in result["learned"])  # calibrated by validation NERL
    assert load_classifier(tmp_path / "fib_edges.json").record["model"] == str(model)


def test_the_shipped_fib_classifier_is_found_beside_its_model(tmp_path):
    from axonseg.pipelines.segment.agglomerate import classifier_path
    from axonseg.pipelines.segment.config import AgglomerateConfig

    model = ROOT / "data" / "models" / "fib_default" / "model.pt"
    (tmp_path / "inputs.json").write_text(json.dumps({"model": str(model)}))
    found = classifier_path(tmp_path, AgglomerateConfig(method="learned"))
    assert found == model.parent / "edge_classifier.json"
    classifier = load_classifier(found)
    assert classifier.threshold == 0.02 and classifier.record["validation"]["edge_auc"]["learned"] > 0.75
