"""Segmentation validation during training: NERL/VOI through the real pipeline stages."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from pydantic import ValidationError

from axonseg.model.config import ModelConfig
from axonseg.model.sampler import TrainingVolume
from axonseg.model.train_config import DatasetSpec, TrainConfig
from axonseg.model.train_loop import train
from axonseg.pipelines.train_validation import segmentation_validation_hook


def tube_volume() -> TrainingVolume:
    """Six parallel tubes along z (radius 4 voxels) in bright cytoplasm with dark membranes."""
    shape = (24, 40, 40)
    labels = np.zeros(shape, np.uint64)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    centres = [(8, 8), (8, 20), (8, 32), (24, 8), (24, 20), (24, 32)]
    owner = np.zeros(shape[1:], np.uint64)
    distance = np.full(shape[1:], np.inf)
    for i, (cy, cx) in enumerate(centres, start=1):
        d = np.hypot(yy[0] - cy, xx[0] - cx)
        owner[d < distance] = i
        distance = np.minimum(distance, d)
    labels[:] = owner[None]
    boundary = np.zeros(shape, bool)
    boundary[:, 1:, :] |= labels[:, 1:, :] != labels[:, :-1, :]
    boundary[:, :, 1:] |= labels[:, :, 1:] != labels[:, :, :-1]
    raw = np.where(boundary, 40, 200).astype(np.uint8)
    return TrainingVolume(raw, labels, (10.0, 10.0, 10.0), name="tubes")


def config(tmp_path, **update) -> TrainConfig:
    values = dict(
        datasets=[DatasetSpec(raw="memory", labels="memory")],
        model=ModelConfig(num_fmaps=3, fmap_inc_factor=2, downsample_factors=[(2, 2, 2)]),
        output_shape=(4, 4, 4), steps=2, checkpoint_every=2, validate_every=2, val_crops=1,
        out_dir=str(tmp_path / "train"), n_threads=1, amp="off", segment_validation_every=2,
        segment_validation_thresholds=[0.3, 0.6],
    )
    values.update(update)
    return TrainConfig(**values)


@pytest.mark.slow
def test_hook_scores_the_model_through_the_pipeline(tmp_path):
    volume = tube_volume()
    cfg = config(tmp_path)
    result = train(cfg, [volume], [volume], validate_hook=segmentation_validation_hook(volume, cfg, tmp_path / "val"))
    rows = list(csv.DictReader(open(tmp_path / "train" / "losses.csv")))
    last = rows[-1]
    assert result["step"] == 2
    assert 0.0 <= float(last["hook_nerl_low"]) <= float(last["hook_nerl"]) <= float(last["hook_nerl_high"]) <= 1.0
    assert float(last["hook_voi_split"]) >= 0 and float(last["hook_voi_merge"]) >= 0
    assert float(last["hook_threshold"]) in (0.3, 0.6)
    assert rows[0]["hook_nerl"] == ""  # only validation steps carry it
    assert (tmp_path / "val" / "run" / "reports" / "evaluation.json").exists()


def test_hook_on_perfect_affinities_gives_full_nerl(tmp_path, monkeypatch):
    """A 'model' that outputs the ground-truth affinities scores NERL 1 and no merge error."""
    from axonseg.model.targets import compute_affinities

    volume = tube_volume()
    cfg = config(tmp_path)
    truth, _ = compute_affinities(volume.labels.astype(np.int64), cfg.model.offsets, zero_is_unlabelled=False)

    import axonseg.pipelines.segment.predict as predict_pipeline

    def fake_predict(run, raw_address, model_path, predict_config, **kwargs):
        from axonseg.io import create_multiscale, mark_complete, open_level, write_block

        store = run / "volume.zarr"
        create_multiscale(store, "affinities", volume.raw.shape, np.uint8, volume.voxel_size, (0, 0, 0),
                          volume.raw.shape, channels=len(cfg.model.offsets),
                          attrs={"offsets": [list(o) for o in cfg.model.offsets]})
        write_block(open_level(store, "affinities"), (truth * 255).astype(np.uint8), (0, 0, 0))
        mark_complete(store, "affinities")

    monkeypatch.setattr(predict_pipeline, "run_predict", fake_predict)
    from axonseg.model.unet import build_model

    hook = segmentation_validation_hook(volume, cfg, tmp_path / "val")
    metrics = hook(2, build_model(cfg.model, seed=0))
    assert metrics["nerl"] == pytest.approx(1.0, abs=0.02)
    assert metrics["nerl_low"] <= metrics["nerl"] <= metrics["nerl_high"] and metrics["nerl_low"] > 0.9
    assert metrics["voi_merge"] == pytest.approx(0.0, abs=1e-6)
    assert hook(3, build_model(cfg.model, seed=0)) == {}


def test_segment_validation_must_fall_on_validation_steps(tmp_path):
    with pytest.raises(ValidationError, match="not a multiple of validate_every"):
        config(tmp_path, validate_every=3, segment_validation_every=4)
    with pytest.raises(ValidationError, match=r"in \[0, 1\]"):
        config(tmp_path, segment_validation_thresholds=[1.5])
    assert math.isfinite(config(tmp_path).lr)
