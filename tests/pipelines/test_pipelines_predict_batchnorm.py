"""Predict with the volume's BatchNorm statistics (``batchnorm: volume``, the default)."""

from __future__ import annotations

import numpy as np
import torch

from axonseg.config import load_config
from axonseg.model import Predictor, load_model, predict_volume
from axonseg.model.adapt import adapt_to_volume
from axonseg.model.checkpoint import calibrated_threshold, read_model_state, save_model
from axonseg.pipelines.segment import _predict_adapt
from axonseg.pipelines.segment.predict import PredictConfig, run_predict

from predict_helpers import CONFIGS, affinities, smooth_raw, tiny_model, write_raw

FAST = dict(precision="float32", n_threads=1)

ADAPTED = "model_batchnorm.pt"


def test_statistics_are_computed_once_per_run_and_recorded(tmp_path, monkeypatch):
    raw = smooth_raw((24, 40, 40))
    address = write_raw(tmp_path, raw)
    model_path = tiny_model(tmp_path)
    state = read_model_state(model_path)
    save_model(load_model(model_path), model_path, extra={**state["extra"], "threshold": 0.4})
    first = run_predict(tmp_path / "run", address, model_path, PredictConfig(block_shape=(8, 16, 16), **FAST),
                        show_progress=False)
    adapted_path = tmp_path / "run" / ADAPTED
    record = read_model_state(adapted_path)["extra"]["batchnorm"]
    assert record["crops"] == 16 and record["raw"].endswith("in.zarr/raw") and record["seed"] == 0
    assert calibrated_threshold(adapted_path) == 0.4  # the model's calibration travels with it
    # every block ran the adapted network: the whole volume through it gives the same affinities
    whole = predict_volume(raw, Predictor(load_model(adapted_path), precision="float32", freeze=False), raw.shape)
    assert np.abs(affinities(tmp_path / "run").astype(int) - whole.astype(int)).max() <= 1
    # the in-memory API adapts the same way: the same crops give the same statistics as the file
    in_memory, used = adapt_to_volume(load_model(model_path), raw)
    assert used == 16
    statistics = [(ours, stage) for (name, ours), (_, stage) in zip(in_memory.named_buffers(), load_model(adapted_path).named_buffers())
                  if name.endswith(("running_mean", "running_var"))]
    assert len(statistics) >= 4
    for ours, stage in statistics:
        torch.testing.assert_close(ours, stage, rtol=1e-5, atol=1e-6)

    # a re-run (here a resume after the affinities were dropped) reuses the file, never recomputes it
    monkeypatch.setattr(_predict_adapt, "adapt_batchnorm", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    again = run_predict(tmp_path / "run", address, model_path, PredictConfig(block_shape=(8, 16, 16), **FAST),
                        show_progress=False)
    assert again.up_to_date and again.config_hash == first.config_hash


def test_other_settings_recompute_and_model_statistics_are_the_old_behaviour(tmp_path):
    raw = smooth_raw((24, 40, 40))
    address = write_raw(tmp_path, raw)
    model_path = tiny_model(tmp_path)
    volume = run_predict(tmp_path / "v", address, model_path, PredictConfig(block_shape=(8, 16, 16), **FAST),
                         show_progress=False)
    fewer = run_predict(tmp_path / "v4", address, model_path,
                        PredictConfig(block_shape=(8, 16, 16), batchnorm_crops=4, **FAST), show_progress=False)
    assert read_model_state(tmp_path / "v4" / ADAPTED)["extra"]["batchnorm"]["crops"] == 4
    stored = run_predict(tmp_path / "m", address, model_path,
                         PredictConfig(block_shape=(8, 16, 16), batchnorm="model", **FAST), show_progress=False)
    assert not (tmp_path / "m" / ADAPTED).exists()
    assert len({volume.config_hash, fewer.config_hash, stored.config_hash}) == 3
    # the stored statistics give what the model file alone gives, and differ from the volume's
    whole = predict_volume(raw, Predictor(load_model(model_path), precision="float32", freeze=False), raw.shape)
    assert np.abs(affinities(tmp_path / "m").astype(int) - whole.astype(int)).max() <= 1
    assert np.abs(affinities(tmp_path / "m").astype(int) - affinities(tmp_path / "v").astype(int)).mean() > 1


def test_a_model_without_batchnorm_is_untouched(tmp_path):
    address = write_raw(tmp_path, smooth_raw((24, 40, 40)))
    model_path = tiny_model(tmp_path, norm="none")
    default = run_predict(tmp_path / "a", address, model_path, PredictConfig(block_shape=(8, 16, 16), **FAST),
                          show_progress=False)
    stored = run_predict(tmp_path / "b", address, model_path,
                         PredictConfig(block_shape=(8, 16, 16), batchnorm="model", **FAST), show_progress=False)
    assert not (tmp_path / "a" / ADAPTED).exists()
    assert default.config_hash == stored.config_hash  # runs predicted before the option keep their hash
    assert np.array_equal(affinities(tmp_path / "a"), affinities(tmp_path / "b"))


def test_a_changed_model_file_is_never_served_stale_statistics(tmp_path):
    address = write_raw(tmp_path, smooth_raw((24, 40, 40)))
    model_path = tiny_model(tmp_path)
    run_predict(tmp_path / "run", address, model_path, PredictConfig(block_shape=(8, 16, 16), **FAST),
                show_progress=False)
    before = read_model_state(tmp_path / "run" / ADAPTED)["extra"]["batchnorm"]["source_sha256"]
    model = load_model(model_path)
    with torch.no_grad():
        model.head.bias.add_(1.0)
    save_model(model, model_path)
    run_predict(tmp_path / "run", address, model_path, PredictConfig(block_shape=(8, 16, 16), **FAST),
                show_progress=False, restart=True)
    adapted = tmp_path / "run" / ADAPTED
    assert read_model_state(adapted)["extra"]["batchnorm"]["source_sha256"] != before
    assert torch.equal(load_model(adapted).head.bias, model.head.bias)


def test_shipped_config_states_the_default():
    config = load_config(CONFIGS / "predict.yaml", PredictConfig)
    assert config.batchnorm == "volume" and config.batchnorm_crops == 16


def test_a_threshold_calibrated_with_other_statistics_is_named(tmp_path, caplog):
    """The best threshold moves with the statistics, so predict says when the model's threshold
    was calibrated with the others; a model calibrated by today's training hook is silent."""
    address = write_raw(tmp_path, smooth_raw((24, 40, 40)))
    model_path = tiny_model(tmp_path)
    model = load_model(model_path)
    save_model(model, model_path, extra={"threshold": 0.4})  # an older file: stored statistics
    config = PredictConfig(block_shape=(8, 16, 16), **FAST)
    with caplog.at_level("WARNING"):
        run_predict(tmp_path / "a", address, model_path, config, show_progress=False)
    assert "threshold 0.4 was calibrated with the model's stored BatchNorm statistics" in caplog.text
    assert "batchnorm: model" in caplog.text and f"--recalibrate-bn {model_path}" in caplog.text
    caplog.clear()
    save_model(model, model_path, extra={"threshold": 0.4, "threshold_batchnorm": "volume"})
    with caplog.at_level("WARNING"):
        run_predict(tmp_path / "b", address, model_path, config, show_progress=False)
        assert "was calibrated" not in caplog.text
        run_predict(tmp_path / "c", address, model_path, config.model_copy(update={"batchnorm": "model"}),
                    show_progress=False)
    assert "calibrated with the volume's BatchNorm statistics, but predict uses the model's" in caplog.text
