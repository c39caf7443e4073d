"""Evaluate stage: run folders and plain arrays scored blockwise against gt labels and skeletons."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from axonseg.errors import ConfigError, InputError
from axonseg.evaluate import evaluate_arrays
from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.io.luts import write_luts
from axonseg.pipelines.evaluate import _blocks as _evaluate_blocks, _gt_skeletons
from axonseg.pipelines.evaluate import (
    EvaluateConfig,
    choose_best,
    evaluate_arrays_blockwise,
    evaluate_run,
    load_evaluate_config,
)
from axonseg.pipelines.synth import write_skeletons
from axonseg.skeleton import SkeletonParams, skeletonize
from shared_data import FIB_PATH as FIB, require_shared

VOXEL = (30.0, 6.0, 6.0)
SHAPE = (12, 40, 96)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SMALL_BLOCKS = EvaluateConfig(block_shape=(5, 16, 40))


def make_tubes(shape=SHAPE, n_tubes=6):
    """gt with straight 3x3-voxel tubes along x (ids 1..n) and their centre-line skeletons (nm, zyx)."""
    gt = np.zeros(shape, dtype=np.uint32)
    skeletons = {}
    centres = [(z, y) for z in range(2, shape[0] - 2, 4) for y in range(3, shape[1] - 2, 6)][:n_tubes]
    x = np.arange(2, shape[2] - 2)
    for tube_id, (z, y) in enumerate(centres, start=1):
        gt[z - 1 : z + 2, y - 1 : y + 2, x[0] : x[-1] + 1] = tube_id
        nodes = np.stack([np.full(len(x), z + 0.5), np.full(len(x), y + 0.5), x + 0.5], 1) * np.asarray(VOXEL)
        skeletons[tube_id] = (nodes, np.stack([np.arange(len(x) - 1), np.arange(1, len(x))], 1))
    return gt, skeletons


def write_array(store: Path, name: str, data: np.ndarray, voxel=VOXEL, offset=(0.0, 0.0, 0.0)) -> str:
    create_multiscale(store, name, data.shape, data.dtype, voxel, offset, chunk_shape=(6, 20, 48))
    write_block(open_level(store, name, 0), data, (0, 0, 0))
    mark_complete(store, name)
    return str(store / name)


def damaged(gt: np.ndarray, seed: int = 0) -> np.ndarray:
    """A prediction with a split of every tube, a merge of tubes 1 and 2 and holes."""
    rng = np.random.default_rng(seed)
    pred = gt.astype(np.uint64) * 3
    pred[:, :, 50:] += (pred[:, :, 50:] > 0).astype(np.uint64)
    pred[pred == 6] = 3
    pred[rng.random(gt.shape) < 0.03] = 0
    return pred


@pytest.fixture
def gt_store(tmp_path: Path):
    """A synth-like store: gt labels plus a ``skeletons`` group."""
    gt, skeletons = make_tubes()
    store = tmp_path / "gt.zarr"
    address = write_array(store, "labels", gt)
    write_skeletons(store, skeletons, VOXEL)
    return address, gt, skeletons


def test_gt_against_itself_is_perfect(tmp_path, gt_store):
    address, gt, _ = gt_store
    run = tmp_path / "run"
    write_array(run / "volume.zarr", "segmentation", gt.astype(np.uint64))
    report = evaluate_run(run, address, SMALL_BLOCKS, show_progress=False)
    summary = json.loads((run / "reports" / "evaluation.json").read_text())
    assert summary["nerl"] == pytest.approx(1.0)
    assert summary["erl_nm"] == pytest.approx(summary["gt_erl_nm"]) and summary["gt_erl_nm"] == pytest.approx(91 * 6.0)
    assert summary["voi_split"] == pytest.approx(0, abs=1e-12) and summary["voi_merge"] == pytest.approx(0, abs=1e-12)
    assert summary["arand"] == pytest.approx(0, abs=1e-12)
    assert summary["n_split"] == 0 and summary["n_merge"] == 0 and summary["best_threshold"] is None
    assert report.gt_skeletons.endswith("gt.zarr/skeletons")
    assert (run / "reports" / "evaluation.html").read_text().count("<img") == 3
    assert (run / "reports" / "evaluate.config.yaml").exists()
    assert not (run / "blocks" / "evaluate").exists() and not (run / "blocks" / "evaluate-stats").exists()
    arrays = evaluate_arrays_blockwise(address, address, json_out=tmp_path / "self.json", show_progress=False)
    assert arrays.best["nerl"] == pytest.approx(1.0) and arrays.best["arand"] == pytest.approx(0, abs=1e-12)


def test_run_with_luts_picks_the_threshold_that_joins_the_split(tmp_path, gt_store):
    address, gt, _ = gt_store
    fragments = gt.astype(np.uint64) * 10
    fragments[:, :, 48:] += (fragments[:, :, 48:] > 0).astype(np.uint64)  # each tube: fragments 10k and 10k+1
    ids = np.unique(fragments[fragments > 0])
    run = tmp_path / "run"
    write_array(run / "volume.zarr", "fragments", fragments)
    write_luts(run, {
        0.2: (ids, ids),  # under-merged: every tube split in two
        0.5: (ids, ids // 10),  # the halves joined: perfect
        0.9: (ids, np.ones_like(ids)),  # over-merged: all tubes one segment
    })
    report = evaluate_run(run, address, SMALL_BLOCKS, show_progress=False)
    by_threshold = {row["threshold"]: row for row in report.rows}
    assert report.best_threshold == 0.5 and by_threshold[0.5]["nerl"] == pytest.approx(1.0)
    assert by_threshold[0.2]["nerl"] < 0.6 and by_threshold[0.2]["n_split"] == 6 and by_threshold[0.2]["voi_merge"] == pytest.approx(0, abs=1e-12)
    assert by_threshold[0.9]["nerl"] == pytest.approx(0.0) and by_threshold[0.9]["n_merge"] == 1
    saved = json.loads((run / "reports" / "best_threshold.json").read_text())
    assert saved["threshold"] == 0.5 and saved["nerl"] == pytest.approx(1.0)
    document = json.loads((run / "reports" / "evaluation.json").read_text())
    assert {"erl_nm", "gt_erl_nm", "nerl", "voi_split", "voi_merge", "arand", "n_split", "n_merge"} <= set(document)
    assert [row["threshold"] for row in document["rows"]] == [0.2, 0.5, 0.9]
    assert document["best_threshold"] == 0.5
    # a tie in NERL goes to the lower VOI
    rows = [{"threshold": 1, "nerl": 0.5, "voi_split": 0.1, "voi_merge": 0.3}, {"threshold": 2, "nerl": 0.5, "voi_split": 0.1, "voi_merge": 0.2}]
    assert choose_best(rows)["threshold"] == 2


def test_run_labels_as_gt_and_resume_after_a_failed_block(tmp_path, monkeypatch):
    gt, _ = make_tubes()
    run = tmp_path / "run"
    write_array(run / "volume.zarr", "labels", gt)
    write_array(run / "volume.zarr", "segmentation", damaged(gt))
    config = EvaluateConfig(block_shape=(6, 20, 48), skeleton=SkeletonParams(const=60.0, dust_threshold=10))
    real, calls = _evaluate_blocks.read_roi, []

    def failing(volume, roi):
        calls.append(roi)
        if len(calls) == 4:
            raise RuntimeError("killed")
        return real(volume, roi)

    monkeypatch.setattr(_evaluate_blocks, "read_roi", failing)
    with pytest.raises(RuntimeError, match="killed"):
        evaluate_run(run, None, config, scheduler="synchronous", show_progress=False)
    assert len(list((run / "blocks" / "evaluate-stats").glob("*.pkl"))) == 3
    resumed = evaluate_run(run, None, config, scheduler="synchronous", show_progress=False)
    assert len(calls) == 4 + 8 - 3  # 8 blocks, the 3 finished ones are read from the spool
    assert (run / "skeletons" / "gt" / "nodes.parquet").exists()  # gt skeletons cached in the run
    monkeypatch.setattr(_evaluate_blocks, "read_roi", real)
    fresh = evaluate_run(run, None, config, show_progress=False)
    assert resumed.rows == fresh.rows and 0 < fresh.best["nerl"] < 1


@pytest.mark.parametrize("block_shape", [(5, 16, 40), (12, 13, 96)])
def test_blockwise_equals_one_shot(tmp_path, gt_store, block_shape):
    address, gt, skeletons = gt_store
    pred = damaged(gt)
    np.save(tmp_path / "pred.npy", pred)
    config = EvaluateConfig(block_shape=block_shape, erl_intervals=[0, 300, 1e9])
    report = evaluate_arrays_blockwise(tmp_path / "pred.npy", address, voxel_size=VOXEL, json_out=tmp_path / "out.json",
                                       config=config, show_progress=False)
    one_shot = evaluate_arrays(pred, gt, skeletons, VOXEL, erl_intervals=[0, 300, 1e9])
    assert report.results[None].to_dict(limit=None) == one_shot.to_dict(limit=None)
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["nerl"] == pytest.approx(one_shot.summary()["nerl"]) and 0 < written["nerl"] < 1
    assert written["n_split"] > 0 and written["n_merge"] > 0 and written["voi_merge"] > 0
    assert (tmp_path / "out.config.yaml").exists()


def test_gt_without_skeletons_is_skeletonized_and_cached(tmp_path, monkeypatch):
    gt, _ = make_tubes()
    with h5py.File(tmp_path / "gt.h5", "w") as f:
        f["labels"] = gt
    pred = damaged(gt)
    np.save(tmp_path / "pred.npy", pred)
    config = EvaluateConfig(block_shape=(12, 40, 48), skeleton=SkeletonParams(const=60.0, dust_threshold=10))
    first = evaluate_arrays_blockwise(tmp_path / "pred.npy", f"{tmp_path / 'gt.h5'}:labels", VOXEL,
                                      tmp_path / "eval.json", config, show_progress=False)
    assert (tmp_path / "eval.gt_skeletons" / "nodes.parquet").exists()
    assert first.best["n_skeletons"] == 6
    # blockwise gt skeletons match one kimimaro call over the whole gt, and run along the tubes
    whole = skeletonize(gt, VOXEL, config.skeleton)
    assert first.best["skeleton_length_nm"] == pytest.approx(sum(g.path_length_nm for g in whole.values()), rel=0.1)
    assert 91 * 6.0 < first.best["skeleton_length_nm"] / 6 < 91 * 6.0 * 1.25

    def no_skeletonizing(*args, **kwargs):
        raise AssertionError("the cached gt skeletons were not used")

    monkeypatch.setattr(_gt_skeletons, "skeletonize_blocks", no_skeletonizing)
    second = evaluate_arrays_blockwise(tmp_path / "pred.npy", f"{tmp_path / 'gt.h5'}:labels", VOXEL,
                                       tmp_path / "eval.json", config, show_progress=False)
    assert second.best == first.best and "cached" in second.gt_skeletons


def test_bad_inputs_give_one_line_errors(tmp_path, gt_store):
    address, gt, _ = gt_store
    np.save(tmp_path / "short.npy", gt[:10])
    with pytest.raises(InputError, match=r"shape \(10, 40, 96\) but gt .* has shape \(12, 40, 96\)"):
        evaluate_arrays_blockwise(tmp_path / "short.npy", address, voxel_size=VOXEL, show_progress=False)
    np.save(tmp_path / "float.npy", gt.astype(np.float32))
    with pytest.raises(InputError, match="gt .* dtype float32: expected an integer dtype"):
        evaluate_arrays_blockwise(address, tmp_path / "float.npy", voxel_size=VOXEL, show_progress=False)
    np.save(tmp_path / "empty.npy", np.zeros_like(gt))
    with pytest.raises(InputError, match="is all zero"):
        evaluate_arrays_blockwise(address, tmp_path / "empty.npy", voxel_size=VOXEL, config=SMALL_BLOCKS, show_progress=False)
    other = write_array(tmp_path / "other.zarr", "labels", gt, voxel=(40.0, 8.0, 8.0))
    with pytest.raises(InputError, match=r"voxel size \[40.0, 8.0, 8.0\] nm but gt .* has \[30.0, 6.0, 6.0\]"):
        evaluate_arrays_blockwise(other, address, show_progress=False)
    with pytest.raises(InputError, match="metadata but --voxel-size"):
        evaluate_arrays_blockwise(other, address, voxel_size=VOXEL, show_progress=False)
    with pytest.raises(InputError, match="voxel size is missing"):
        evaluate_arrays_blockwise(tmp_path / "short.npy", tmp_path / "short.npy", show_progress=False)
    with pytest.raises(InputError, match="no segmentation and no fragments"):
        (tmp_path / "run" / "volume.zarr").mkdir(parents=True)
        evaluate_run(tmp_path / "run", address, show_progress=False)
    for error in (InputError, ConfigError):
        assert "\n" not in str(error("x"))


def test_shipped_config_loads(tmp_path):
    config = load_evaluate_config(CONFIGS / "evaluate.yaml")
    assert config == EvaluateConfig() and config.skeleton == SkeletonParams()
    (tmp_path / "bad.yaml").write_text("block_shape: [0, 64, 64]\n")
    with pytest.raises(ConfigError, match="block_shape"):
        load_evaluate_config(tmp_path / "bad.yaml")


def _real_gt(shape):
    require_shared(FIB)
    with h5py.File(FIB, "r") as f:  # the held-out slab z 180-249
        return f["labels"][180 : 180 + shape[0], 40 : 40 + shape[1], 40 : 40 + shape[2]]


def test_real_held_out_crop_against_a_perturbed_copy(tmp_path):
    gt = _real_gt((48, 96, 96))
    ids, counts = np.unique(gt[gt > 0], return_counts=True)
    # The largest body fills most of the crop (a blob, not an axon); perturb the next three.
    split_id, merge_a, merge_b = ids[np.argsort(counts)[::-1][1:4]]
    pred = gt.astype(np.uint64)
    voxels = np.argwhere(gt == split_id)
    axis = int(np.argmax(np.ptp(voxels, axis=0)))  # cut across the body's longest extent
    cut = voxels[voxels[:, axis] >= np.median(voxels[:, axis])]
    pred[tuple(cut.T)] = 10**9
    pred[gt == merge_b] = merge_a
    with h5py.File(tmp_path / "crop.h5", "w") as f:
        f["gt"], f["pred"] = gt, pred
    config = EvaluateConfig(block_shape=(48, 48, 48), skeleton=SkeletonParams(const=150.0))
    report = evaluate_arrays_blockwise(f"{tmp_path / 'crop.h5'}:pred", f"{tmp_path / 'crop.h5'}:gt", (10.0, 10.0, 10.0),
                                       tmp_path / "real.json", config, show_progress=False)
    best = report.best
    assert best["n_skeletons"] >= 10 and 0.2 < best["nerl"] < 0.99
    assert best["n_split"] >= 1 and best["n_merge"] >= 1
    assert best["voi_split"] > 0.01 and best["voi_merge"] > 0.01
    lists = report.results[None].split_merge
    assert [int(split_id), 10**9] in [row["segment_ids"] for row in lists.splits.to_records()]
    assert int(merge_a) in lists.merges.segment_ids.tolist()
