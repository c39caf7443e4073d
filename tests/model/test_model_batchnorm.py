"""Precise BatchNorm: statistics recomputed over fixed crops, for validation and model.pt."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import yaml

from axonseg.errors import ConfigError, InputError
from axonseg.model.batchnorm import batchnorm_layers, recalibrate_batchnorm
from axonseg.model.checkpoint import load_model, read_model_state, save_model
from axonseg.model.config import ModelConfig
from axonseg.model.sampler import TrainingVolume, calibration_inputs
from axonseg.model.train_config import DatasetSpec, TrainConfig
from axonseg.model.unet import AffinityNet


def small_model(norm: str = "batch") -> AffinityNet:
    torch.manual_seed(0)
    return AffinityNet(ModelConfig(num_fmaps=3, fmap_inc_factor=2, downsample_factors=[(2, 2, 2)], norm=norm))


def crops(n: int, seed: int = 0) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    # crops of different brightness and contrast: their statistics differ a lot
    return [torch.from_numpy((rng.random((1, 1, 20, 20, 20)) * (0.2 + 0.3 * i) + 0.1 * i).astype(np.float32)) for i in range(n)]


def batch_means(model: AffinityNet, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The first BatchNorm's per-channel input mean for each input, in training mode."""
    seen: list[torch.Tensor] = []
    layer = batchnorm_layers(model)[0]
    handle = layer.register_forward_hook(lambda _m, args, _out: seen.append(args[0].mean(dim=(0, 2, 3, 4))))
    model.train()
    with torch.no_grad():
        for x in inputs:
            model(x)
    handle.remove()
    return seen


def test_statistics_are_the_mean_over_the_crops():
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = crops(3)
    calibrated, used = recalibrate_batchnorm(model, iter(inputs))
    assert used == 3 and not calibrated.training
    # the caller's network is untouched
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    expected = torch.stack(batch_means(small_model(), inputs)).mean(dim=0)
    torch.testing.assert_close(batchnorm_layers(calibrated)[0].running_mean, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(batchnorm_layers(model)[0].running_mean, expected)
    # only statistics change: the learnt weights are the same
    for key, value in calibrated.state_dict().items():
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(value, before[key])


def test_one_crop_makes_eval_equal_training_mode():
    """Calibrated on one crop, the eval-mode network normalises that crop as training did."""
    model = small_model()
    x = torch.from_numpy(np.random.default_rng(5).random((1, 1, 40, 40, 40)).astype(np.float32) * 0.5 + 0.3)
    calibrated, _ = recalibrate_batchnorm(model, [x])
    with torch.no_grad():
        train_mode = model.train()(x)
        eval_mode = calibrated(x)
        running = model.eval()(x)
    # not exactly equal: training mode divides by the biased variance, the running statistics
    # keep the unbiased one (n / (n - 1) on the few voxels of the bottom level)
    calibrated_error = float((eval_mode - train_mode).abs().max())
    assert calibrated_error < 0.05 * float(train_mode.abs().max())
    assert float((running - train_mode).abs().max()) > 10 * calibrated_error


def test_without_batchnorm_nothing_is_read():
    model = small_model(norm="none")

    def never():
        raise AssertionError("an input was read")
        yield

    calibrated, used = recalibrate_batchnorm(model, never())
    assert used == 0
    for key, value in model.state_dict().items():
        assert torch.equal(value, calibrated.state_dict()[key])
    with pytest.raises(ValueError, match="no inputs"):
        recalibrate_batchnorm(small_model(), [])


def test_calibration_crops_are_fixed_and_unaugmented(make_blob_labels):
    labels = make_blob_labels((30, 24, 24), seed=2)
    raw = np.where(labels > 0, 200, 40).astype(np.uint8)
    volume = TrainingVolume(raw, labels, (10, 10, 10))
    cfg = TrainConfig(datasets=[DatasetSpec(raw="memory", labels="memory")],
                      model=ModelConfig(num_fmaps=3, downsample_factors=[(2, 2, 2)]), output_shape=(4, 4, 4))
    a, b = list(calibration_inputs([volume], cfg, 3)), list(calibration_inputs([volume], cfg, 3))
    assert [tuple(x.shape) for x in a] == [(1, 1, 20, 20, 20)] * 3
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    # un-augmented: the values are the raw's two grey levels / 255, nothing else
    np.testing.assert_allclose(np.unique(a[0].numpy()), np.array([40, 200], np.float32) / 255, rtol=1e-6)


def test_recalibrate_model_file(tmp_path, make_blob_labels):
    from axonseg.pipelines.train import recalibrate_model_file

    labels = make_blob_labels((30, 24, 24), seed=4)
    with h5py.File(tmp_path / "vol.h5", "w") as f:
        f["raw"] = np.where(labels > 0, 190, 50).astype(np.uint8)
        f["labels"] = labels
    model_cfg = {"num_fmaps": 3, "fmap_inc_factor": 2, "downsample_factors": [[2, 2, 2]]}
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "datasets": [{"raw": "vol.h5:raw", "labels": "vol.h5:labels", "voxel_size": [10, 10, 10]}],
        "model": model_cfg, "output_shape": [4, 4, 4], "bn_calibration_crops": 3,
    }))
    model = AffinityNet(ModelConfig(**model_cfg))
    save_model(model, tmp_path / "model.pt", extra={"step": 7, "threshold": 0.3})
    assert recalibrate_model_file(config, tmp_path / "model.pt") == 3
    extra = read_model_state(tmp_path / "model.pt")["extra"]
    assert extra == {"step": 7, "threshold": 0.3, "bn_calibration_crops": 3}  # no validation set: kept
    calibrated = load_model(tmp_path / "model.pt")
    # a fresh network's running statistics are 0 / 1; the crops' are not
    assert float(batchnorm_layers(calibrated)[0].running_mean.abs().max()) > 1e-3
    # with a validation set the file's threshold is re-calibrated through the pipeline
    validated = tmp_path / "validated.yaml"
    validated.write_text(yaml.safe_dump({
        **yaml.safe_load(config.read_text()), "segment_validation_every": 100, "validate_every": 100,
        "segment_validation_thresholds": [0.3, 0.6],
        "datasets": [{"raw": "vol.h5:raw", "labels": "vol.h5:labels", "voxel_size": [10, 10, 10], "split": split}
                     for split in ("train", "val")],
    }))
    assert recalibrate_model_file(validated, tmp_path / "model.pt", crops=2) == 2
    extra = read_model_state(tmp_path / "model.pt")["extra"]
    assert extra["bn_calibration_crops"] == 2 and extra["step"] == 7
    assert extra["threshold"] in (0.3, 0.6) and 0.0 <= extra["val_nerl"] <= 1.0 and extra["val_voi_split"] >= 0.0
    assert extra["threshold_batchnorm"] == "volume"  # recalibrated for predict's default statistics
    # the config's voxel_size_range (not part of the architecture) is recorded in the file
    ranged = tmp_path / "ranged.yaml"
    voxel_range = [[9.0, 12.0], [8.0, 10.0], [8.0, 10.0]]
    ranged.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()),
                                      "model": {**model_cfg, "voxel_size_range": voxel_range}}))
    assert not load_model(tmp_path / "model.pt").config.accepts_voxel_size((12.0, 8.0, 8.0))
    assert recalibrate_model_file(ranged, tmp_path / "model.pt") == 3
    assert load_model(tmp_path / "model.pt").config.accepts_voxel_size((12.0, 8.0, 8.0))
    save_model(AffinityNet(ModelConfig(**{**model_cfg, "norm": "none"})), tmp_path / "plain.pt")
    with pytest.raises(ConfigError, match="architecture"):
        recalibrate_model_file(config, tmp_path / "plain.pt")
    with pytest.raises(InputError, match="does not exist"):
        recalibrate_model_file(config, tmp_path / "missing.pt")
