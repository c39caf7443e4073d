"""Training on a budget and on another device: ``time_limit_s`` stops with a checkpoint that a
resume continues bit-exactly, ``device`` picks CUDA or names the problem, and ``--set`` overrides
config values with the config's own validation (issue #15: a lent GPU trains for a fixed time)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from axonseg.errors import ConfigError
from axonseg.model import train_loop
from axonseg.model.checkpoint import list_checkpoints, load_model
from axonseg.model.train_loop import train, training_device

from training_helpers import tiny_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class _Clock:
    """A ``time`` stand-in whose ``perf_counter`` advances one second per call."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def test_time_limit_stops_with_a_checkpoint_that_resumes_exactly(tmp_path, volumes, monkeypatch):
    straight = train(tiny_config(tmp_path / "a", checkpoint_every=5, validate_every=6), *volumes)
    monkeypatch.setattr(train_loop, "time", _Clock())
    # the loop starts at t=1 and checks the clock before each step: steps 1 and 2 run (t=2, 3),
    # the check at t=4 is 3 s >= 2.5 s, so it stops after step 2, between checkpoints (every 5)
    stopped = train(tiny_config(tmp_path / "b", checkpoint_every=5, validate_every=6), *volumes, time_limit_s=2.5)
    assert stopped["step"] == 2
    assert [p.name for p in list_checkpoints(tmp_path / "b" / "checkpoints")] == ["step_00000002.pt"]
    latest = load_model(tmp_path / "b" / "model.pt")
    for key, value in stopped["model"].state_dict().items():
        torch.testing.assert_close(latest.state_dict()[key], value, rtol=0, atol=0)
    monkeypatch.undo()
    resumed = train(tiny_config(tmp_path / "b", checkpoint_every=5, validate_every=6), *volumes, resume=True)
    assert resumed["step"] == straight["step"] == 6
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in straight["history"]]
    for key, value in straight["model"].state_dict().items():
        torch.testing.assert_close(resumed["model"].state_dict()[key], value, rtol=0, atol=0)


def test_device_choice(tmp_path, volumes):
    assert training_device(tiny_config(tmp_path, device="cpu")).type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert training_device(tiny_config(tmp_path, device="auto")).type == expected
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the no-GPU error cannot be shown here")
    with pytest.raises(ConfigError, match="device: cuda, but torch sees no CUDA GPU"):
        train(tiny_config(tmp_path / "c", device="cuda"), *volumes)
    assert not (tmp_path / "c" / "checkpoints").exists()


def test_set_overrides_are_validated_like_the_file(tmp_path):
    from axonseg.pipelines.train import load_config, main

    path = CONFIGS / "train_fib_v7.yaml"
    cfg = load_config(path, ["steps=1234", "model.num_fmaps=4", "augment.noise_p=0.1", "device=cpu",
                             "output_shape=[8, 16, 16]"])
    assert (cfg.steps, cfg.model.num_fmaps, cfg.augment.noise_p, cfg.device) == (1234, 4, 0.1, "cpu")
    assert cfg.output_shape == (8, 16, 16)
    assert cfg.augment.gamma_range == (0.6, 1.6)  # the rest stays the file's
    with pytest.raises(ConfigError, match="model.bogus"):
        load_config(path, ["model.bogus=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(path, ["steps"])
    with pytest.raises(ConfigError, match="'steps' is not a section"):
        load_config(path, ["steps.every=3"])
    with pytest.raises(ConfigError, match="device"):
        load_config(path, ["device=tpu"])
    assert main([str(path), "--out-dir", str(tmp_path / "x"), "--time-limit", "0"]) == 1
    assert not (tmp_path / "x").exists()


def test_gpu_recipe_changes_only_what_it_says():
    """configs/train_fib_v7.yaml is fib_v4's recipe (train_fib.yaml) for a GPU: batch, workers,
    device, schedule length, checkpoints and a wider appearance draw; data and network the same."""
    from axonseg.pipelines.train import load_config

    base = load_config(CONFIGS / "train_fib.yaml").model_dump(mode="json")
    gpu = load_config(CONFIGS / "train_fib_v7.yaml").model_dump(mode="json")
    assert gpu["datasets"] == base["datasets"] and gpu["model"] == base["model"]
    changed = {key for key in base if base[key] != gpu[key]}
    assert changed == {"augment", "steps", "batch_size", "lr_warmup_steps", "checkpoint_every", "keep_checkpoints",
                       "out_dir", "num_workers", "device", "segment_validation_every"}
    assert (gpu["device"], gpu["batch_size"]) == ("cuda", 8)
    widened = {key for key in base["augment"] if base["augment"][key] != gpu["augment"][key]}
    assert widened == {"intensity_p", "intensity_scale", "intensity_shift", "gamma_p", "gamma_range",
                       "noise_sigma_range", "blur_p", "blur_sigma_range"}


def test_aniso_gpu_recipe_fine_tunes_aniso_v3_and_changes_only_what_it_says():
    """configs/train_aniso_v4.yaml starts from aniso_v3's shipped weights, with its data, network
    and augmentation; batch, workers, device, learning rate and schedule are the GPU's."""
    from axonseg.model.checkpoint import read_model_state
    from axonseg.pipelines.train import load_config

    base = load_config(CONFIGS / "train_aniso_v3.yaml").model_dump(mode="json")
    gpu = load_config(CONFIGS / "train_aniso_v4.yaml").model_dump(mode="json")
    assert {key for key in base if base[key] != gpu[key]} == {
        "steps", "batch_size", "lr", "lr_warmup_steps", "keep_checkpoints", "out_dir", "num_workers", "n_threads",
        "device", "init_from", "segment_validation_every"}
    assert (gpu["device"], gpu["batch_size"], gpu["init_from"]) == ("cuda", 8, "data/models/aniso_v3/model.pt")
    # init_from is read from the repository root, where scripts/gpu_session.sh runs
    weights = CONFIGS.parent / gpu["init_from"]
    assert "state_dict" in read_model_state(weights)
