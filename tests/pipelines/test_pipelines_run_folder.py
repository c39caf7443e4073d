"""The run folder's one rule: relabel, skeletonize, export and the viewer show the same LUT
threshold and the same labels, for even and odd threshold counts, with and without an evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from axonseg.blockwise import Roi
from axonseg.errors import InputError
from axonseg.io import create_multiscale, group_attrs, mark_complete, open_level, write_block
from axonseg.io.luts import write_luts
from axonseg.pipelines import RunFolder
from axonseg.pipelines.export import ExportConfig
from axonseg.pipelines.export.job import _label_source
from axonseg.pipelines.segment.config import SegmentConfig
from axonseg.pipelines.segment.relabel import run_relabel
from axonseg.pipelines.skeletonize import SkeletonizeConfig, read_run_skeletons, run_skeletonize
from axonseg.segment import Lut, apply_lut
from axonseg.skeleton import SkeletonParams
from axonseg.viewer.lut_view import SegmentLut
from axonseg.viewer.run_data import load_run

VOXEL = (30.0, 8.0, 8.0)
SHAPE = (8, 32, 64)  # voxels, zyx: 4 rows (y) x 4 columns (x) of 8 x 8 x 16 fragment boxes
BASE = 2**53  # fragment ids above 2**53: a float round trip anywhere would change them
SMALL = SkeletonParams(const=100.0)


def write_group(run: Path, name: str, data: np.ndarray) -> None:
    store = run / "volume.zarr"
    create_multiscale(store, name, data.shape, data.dtype, VOXEL, chunk_shape=(8, 16, 32))
    write_block(open_level(store, name, 0), data, (0, 0, 0))
    mark_complete(store, name)


def box_fragments() -> np.ndarray:
    row = np.arange(SHAPE[1]) // 8
    column = np.arange(SHAPE[2]) // 16
    index = row[:, None] * 4 + column[None, :]
    return np.broadcast_to(index + 1, SHAPE).astype(np.uint64) + np.uint64(BASE)


def threshold_luts(thresholds: list[float]) -> dict[float, Lut]:
    """The i-th threshold merges each row's boxes in groups of i + 1 along x: every threshold
    gives another segmentation, so the labels show which LUT was applied."""
    fragment_ids = np.arange(1, 17, dtype=np.uint64) + np.uint64(BASE)
    index = np.arange(16)
    luts = {}
    for i, threshold in enumerate(thresholds):
        group = (index % 4) // (i + 1) * (i + 1) + index // 4 * 4
        luts[threshold] = Lut(fragment_ids, fragment_ids[group])
    return luts


def make_run(run: Path, thresholds: list[float]) -> dict[float, Lut]:
    write_group(run, "raw", np.full(SHAPE, 128, np.uint8))
    write_group(run, "fragments", box_fragments())
    luts = threshold_luts(thresholds)
    write_luts(run, luts)
    return luts


def expected_segments(luts: dict[float, Lut], threshold: float) -> np.ndarray:
    return apply_lut(box_fragments(), luts[threshold])


def shown_by_every_job(run: Path) -> dict[str, tuple[float | None, np.ndarray | None]]:
    """The threshold and the labels (where a job exposes them) that each job shows for ``run``."""
    whole = Roi.of((0, 0, 0), SHAPE)
    labels = RunFolder(run).labels()
    viewer = load_run(run)
    shown_in_viewer = SegmentLut(viewer.base_lut.fragment_ids, viewer.base_lut.segment_ids).apply(box_fragments())
    skeletons = run_skeletonize(run, SkeletonizeConfig(block_shape=SHAPE, skeleton=SMALL), scheduler="synchronous",
                                show_progress=False)
    return {
        "run folder": (labels.threshold, labels.read(whole)[labels.keys[0]]),
        "viewer": (viewer.threshold, shown_in_viewer),
        "export": (None, _label_source(RunFolder(run), ExportConfig(), None).read_segments(whole)),
        "skeletonize": (skeletons.threshold, None),
    }


@pytest.mark.parametrize(("thresholds", "median"), [
    ([0.2, 0.4, 0.6, 0.8], 0.4),  # even: the lower of the two middles (thresholds[n // 2] would be 0.6)
    ([0.1, 0.3, 0.5, 0.7, 0.9], 0.5),
])
def test_every_job_shows_the_same_lut(tmp_path: Path, thresholds: list[float], median: float) -> None:
    run = tmp_path / "run"
    luts = make_run(run, thresholds)
    config = SegmentConfig(block_shape=(8, 16, 32))
    for best in (None, thresholds[-1]):
        if best is not None:
            RunFolder(run).write_best_threshold({"threshold": best, "nerl": 1.0})
        chosen = median if best is None else best
        # before relabel the jobs apply the LUT to the fragments; after it they read the cache
        for relabelled in (False, True):
            if relabelled:
                result = run_relabel(run, config, scheduler="synchronous", show_progress=False)
                assert result.details == {"threshold": chosen, "lut_file": f"luts/threshold_{chosen:.4f}.npz"}
                assert group_attrs(run / "volume.zarr", "segmentation")["threshold"] == chosen
            source = "segmentation" if relabelled else "fragments"
            assert RunFolder(run).labels().volume.source.endswith(source)
            shown = shown_by_every_job(run)
            thresholds_shown = {job: threshold for job, (threshold, _) in shown.items() if threshold is not None}
            assert thresholds_shown == {"run folder": chosen, "viewer": chosen, "skeletonize": chosen}
            expected = expected_segments(luts, chosen)
            for job, (_, labels) in shown.items():
                if labels is not None:
                    np.testing.assert_array_equal(labels, expected, err_msg=f"{job}, relabelled={relabelled}")
            assert set(read_run_skeletons(run)) == set(np.unique(expected).tolist())


def test_the_rule_in_order(tmp_path: Path, caplog) -> None:
    run = tmp_path / "run"
    make_run(run, [0.2, 0.4, 0.6, 0.8])
    folder = RunFolder(run)
    assert folder.thresholds() == [0.2, 0.4, 0.6, 0.8]
    assert folder.default_threshold() == folder.choose_threshold() == 0.4
    assert folder.choose_threshold(asked=0.6, configured=0.2) == 0.6
    assert folder.choose_threshold(configured=0.2) == 0.2
    folder.write_best_threshold({"threshold": 0.8})
    assert folder.read_best_threshold() == 0.8 and folder.default_threshold() == 0.8
    assert folder.choose_threshold(configured=0.2) == 0.2  # a configured threshold beats the evaluated best
    folder.write_best_threshold({"threshold": 0.5})  # no LUT for it (LUTs made again since)
    with caplog.at_level("WARNING"):
        assert folder.default_threshold() == 0.4
    assert "has no LUT now; using the median" in caplog.text
    assert folder.lut_file(0.6) == "luts/threshold_0.6000.npz"
    assert folder.lut(0.4 + 1e-12).fragment_ids[0] == BASE + 1


def test_bad_thresholds_are_refused_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, [0.2, 0.4])
    folder = RunFolder(run)
    with pytest.raises(InputError, match=r"^threshold=1.5: expected a value in \[0, 1\]$"):
        folder.choose_threshold(1.5)
    with pytest.raises(InputError, match=r"^threshold=0.45: the run has LUTs only for thresholds \[0.2, 0.4\]$"):
        folder.labels(0.45)
    with pytest.raises(InputError, match=r"^relabel_threshold=0.3: the run has LUTs only for thresholds"):
        folder.choose_threshold(configured=0.3)
    with pytest.raises(InputError, match=r"threshold=0.3: the run has LUTs only"):
        folder.lut(0.3)
    with pytest.raises(InputError, match="not a run folder"):
        RunFolder(tmp_path / "nothing").labels()
    empty = RunFolder(tmp_path)
    (tmp_path / "volume.zarr").mkdir()
    with pytest.raises(InputError, match="no lookup tables"):
        empty.default_threshold()
    with pytest.raises(InputError, match="no segmentation and no fragments with LUTs; run the segment stage first"):
        empty.labels()
    with pytest.raises(InputError, match="no segmentation and no fragments with LUTs to evaluate"):
        empty.labels_for_evaluation()


def test_segmentation_without_luts_and_a_stale_cache(tmp_path: Path) -> None:
    run = tmp_path / "plain"
    write_group(run, "segmentation", box_fragments())
    labels = RunFolder(run).labels()
    assert labels.threshold is None and labels.lut is None and labels.keys == [None]
    assert RunFolder(run).labels_for_evaluation().volume.source.endswith("segmentation")
    with pytest.raises(InputError, match=r"threshold=0.5: the run has LUTs only for thresholds \[\]"):
        RunFolder(run).labels(0.5)

    run = tmp_path / "run"
    luts = make_run(run, [0.3, 0.6])
    run_relabel(run, SegmentConfig(block_shape=(8, 32, 64)), show_progress=False)
    assert RunFolder(run).labels().volume.source.endswith("segmentation")
    evaluation = RunFolder(run).labels_for_evaluation()
    assert evaluation.keys == [0.3, 0.6] and evaluation.volume.source.endswith("fragments")
    # the LUTs were made again with other content: the cache no longer shows the run
    one_segment = {t: Lut(lut.fragment_ids, np.full(16, BASE + 1, np.uint64)) for t, lut in luts.items()}
    write_luts(run, one_segment)
    labels = RunFolder(run).labels()
    assert labels.volume.source.endswith("fragments") and labels.threshold == 0.3
    assert labels.read(Roi.of((0, 0, 0), SHAPE))[0.3].ravel().tolist() == [BASE + 1] * int(np.prod(SHAPE))


def test_recorded_inputs_and_configured_threshold(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, [0.2, 0.4, 0.6])
    folder = RunFolder(run)
    assert folder.inputs() == {"raw": None, "model": None, "gt": None, "voxel_size": None, "synapses": None,
                               "config": None}
    raw = {"address": "/data/raw.zarr/raw", "shape": list(SHAPE), "voxel_size": list(VOXEL)}
    (run / "inputs.json").write_text(json.dumps({"raw": raw, "model": "default", "gt": "/data/gt.npy",
                                                 "voxel_size": list(VOXEL), "synapses": "/data/raw.zarr/synapses"}))
    config = {"job": "segment", "config_hash": "abc", "config": {"segment": {"relabel_threshold": 0.6}}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert folder.inputs() == {"raw": raw, "model": "default", "gt": "/data/gt.npy", "voxel_size": list(VOXEL),
                               "synapses": "/data/raw.zarr/synapses", "config": config}
    # the run's own configured threshold is the default of every job, ahead of the evaluated best
    folder.write_best_threshold({"threshold": 0.2})
    assert folder.configured_threshold() == 0.6 and folder.default_threshold() == 0.6
    assert load_run(run).threshold == 0.6
    assert folder.choose_threshold(asked=0.4) == 0.4 and folder.choose_threshold(configured=0.2) == 0.2
    assert (folder.store, folder.luts_dir, folder.reports_dir, folder.graph_dir, folder.skeletons_dir,
            folder.blocks_dir) == (run / "volume.zarr", run / "luts", run / "reports", run / "graph",
                                   run / "skeletons", run / "blocks")


def test_the_models_calibrated_threshold_beats_the_median(tmp_path: Path) -> None:
    """A model trained with segmentation validation stores the threshold that scored best there;
    a run predicted with it shows that threshold (the nearest LUT) when nothing else is known,
    and relabel applies it."""
    import torch

    run = tmp_path / "run"
    luts = make_run(run, [0.2, 0.4, 0.6, 0.8])
    model = tmp_path / "model.pt"
    torch.save({"model_config": "{}", "state_dict": {}, "extra": {"step": 500, "threshold": 0.65}}, model)
    affinities = np.full((3, *SHAPE), 255, np.uint8)
    store = run / "volume.zarr"
    create_multiscale(store, "affinities", SHAPE, np.uint8, VOXEL, chunk_shape=(8, 16, 32), channels=3,
                      attrs={"model": str(model), "offsets": [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]})
    write_block(open_level(store, "affinities", 0), affinities, (0, 0, 0))
    folder = RunFolder(run)
    assert folder.model_threshold() == 0.65
    states = folder.stage_states()
    assert states["fragments"]["complete"] is True and states["predict"]["complete"] is False
    assert states["graph"] is None and states["relabel"] is None and states["evaluate"] is None
    assert folder.default_threshold() == 0.6  # the nearest LUT, not the median 0.4
    result = run_relabel(run, SegmentConfig(block_shape=(8, 16, 32)), scheduler="synchronous", show_progress=False)
    assert result.details["threshold"] == 0.6
    assert folder.stage_states()["relabel"] == {"complete": True, "config_hash": result.config_hash, "threshold": 0.6,
                                                "lut_file": "luts/threshold_0.6000.npz"}
    labels = folder.labels()
    assert labels.threshold == 0.6
    np.testing.assert_array_equal(labels.read(Roi.of((0, 0, 0), SHAPE))[labels.keys[0]], expected_segments(luts, 0.6))
    folder.write_best_threshold({"threshold": 0.8})  # an evaluation against this run's own labels wins
    assert folder.default_threshold() == 0.8
    model.write_text("not a model")
    assert RunFolder(run).model_threshold() is None


def test_predict_records_the_calibration_so_reading_a_run_never_imports_torch(tmp_path: Path) -> None:
    """Predict stores the model's calibrated threshold on ``affinities``; RunFolder reads it from
    there, so a job that only reads the run (skeletonize, export, the viewer) never imports
    torch for it (torch cost skeletonize ~100 MB of peak RSS per process)."""
    import subprocess
    import sys

    from axonseg.model import ModelConfig, build_model, save_model
    from axonseg.pipelines.segment.predict import PredictConfig, run_predict
    from axonseg.pipelines.synth import write_synth

    write_synth(tmp_path / "in.zarr", (16, 48, 48), (30.0, 8.0, 8.0), seed=0, show_progress=False)
    model = tmp_path / "model.pt"
    config = ModelConfig(num_fmaps=2, fmap_inc_factor=2, downsample_factors=[[1, 2, 2]], voxel_size=(30, 8, 8))
    save_model(build_model(config, seed=0), model, extra={"step": 10, "threshold": 0.45})
    run = tmp_path / "run"
    run_predict(run, f"{tmp_path / 'in.zarr'}/raw", model, PredictConfig(block_shape=(16, 48, 48)),
                scheduler="synchronous", show_progress=False)
    assert group_attrs(run / "volume.zarr", "affinities")["model_threshold"] == 0.45
    code = ("import sys; from axonseg.pipelines import RunFolder; "
            f"print(RunFolder({str(run)!r}).model_threshold(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["0.45", "False"], out.stderr[-2000:]
