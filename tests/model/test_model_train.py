"""Training loop: exact resume, loss files, validation, and the train pipeline on real data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from axonseg.errors import ConfigError, OutputExistsError
from axonseg.model.checkpoint import list_checkpoints, load_model
from axonseg.model.config import ModelConfig
from axonseg.model.sampler import TrainingVolume, make_batch, step_rng, validation_batches
from axonseg.model.train_config import TrainConfig
from axonseg.model.train_loop import evaluation_model, train, validation_loss

from shared_data import FIB_PATH as FIB, require_shared
from training_helpers import tiny_config
TRAIN_YAML = Path(__file__).resolve().parents[2] / "configs" / "train_fib.yaml"


def weights_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_gives_identical_weights(tmp_path, volumes):
    straight = train(tiny_config(tmp_path / "a"), *volumes)
    # interrupted one step after the checkpoint at 3: resuming loses that step and redoes it
    train(tiny_config(tmp_path / "b"), *volumes, stop_at=4)
    assert [p.name for p in list_checkpoints(tmp_path / "b" / "checkpoints")] == ["step_00000003.pt"]
    resumed = train(tiny_config(tmp_path / "b"), *volumes, resume=True)
    assert resumed["step"] == straight["step"] == 6
    for key, value in weights_of(straight["model"]).items():
        torch.testing.assert_close(value, resumed["model"].state_dict()[key], rtol=0, atol=0)
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in straight["history"]]
    # training changed the weights
    fresh = train(tiny_config(tmp_path / "c", steps=1, checkpoint_every=1), *volumes)["model"]
    assert any(not torch.equal(v, fresh.state_dict()[k]) for k, v in straight["model"].state_dict().items())


def test_outputs_and_guards(tmp_path, volumes):
    result = train(tiny_config(tmp_path, steps=3), *volumes)
    rows = list(csv.DictReader(open(tmp_path / "losses.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert rows[0]["val_loss"] == "" and float(rows[2]["val_loss"]) > 0
    # with the LSD head, the affinity part of the validation loss is logged alone too: it is the
    # loss of the same network and batches with lsd_weight 0, below the total
    affinity_only = validation_loss(
        evaluation_model(result["model"], volumes[0], tiny_config(tmp_path, steps=3)),
        validation_batches(volumes[1], tiny_config(tmp_path, steps=3)), tiny_config(tmp_path, steps=3, lsd_weight=0.0))
    assert float(rows[2]["val_affinity_loss"]) == pytest.approx(affinity_only, rel=1e-5)
    assert 0 < affinity_only < float(rows[2]["val_loss"])
    assert np.isfinite([float(r["loss"]) for r in rows]).all()
    assert (tmp_path / "losses.png").stat().st_size > 1000
    # model.pt holds the trained weights with BatchNorm statistics recomputed over the
    # calibration crops (precise BN); the training network keeps its running statistics
    model = load_model(tmp_path / "model.pt")
    cfg = tiny_config(tmp_path, steps=3)
    expected = evaluation_model(result["model"], volumes[0], cfg).state_dict()
    recomputed = 0
    for key, value in result["model"].state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], expected[key], rtol=0, atol=0)
        if key.endswith("running_mean"):
            recomputed += not torch.equal(value, model.state_dict()[key])
        elif not key.endswith(("running_var", "num_batches_tracked")):
            assert torch.equal(value, model.state_dict()[key])
    assert recomputed == sum(k.endswith("running_mean") for k in expected) > 0
    with pytest.raises(OutputExistsError, match="resume"):
        train(tiny_config(tmp_path, steps=3), *volumes)
    other = tiny_config(tmp_path, steps=3, model=ModelConfig(num_fmaps=2, downsample_factors=[(2, 2, 2)]))
    with pytest.raises(ConfigError, match="architecture"):
        train(other, *volumes, resume=True)


def test_validation_hook_is_called(tmp_path, volumes):
    calls = []

    def hook(step, model):
        calls.append(step)
        return {"voi": 1.5}

    result = train(tiny_config(tmp_path, steps=3, validate_every=2), *volumes, validate_hook=hook)
    assert calls == [2, 3]
    assert result["history"][1]["hook_voi"] == 1.5


def test_resume_keeps_a_better_recorded_model(tmp_path, volumes):
    """model.pt re-scored after training (e.g. --recalibrate-bn) records a figure no history row
    holds: a resumed run replaces it only with a validation that beats it."""
    from axonseg.model.checkpoint import read_model_state, save_model

    scores = iter([0.30, 0.40, 0.50, 0.60])

    def hook(step, model):
        return {"nerl": next(scores), "voi_split": 1.0, "voi_merge": 0.5, "threshold": 0.5}

    cfg = tiny_config(tmp_path, steps=8, validate_every=2, checkpoint_every=2)
    train(cfg, *volumes, validate_hook=hook, stop_at=4)  # validations at 2 (0.30) and 4 (0.40)
    assert read_model_state(tmp_path / "model.pt")["extra"]["val_nerl"] == 0.40
    rescored = load_model(tmp_path / "model.pt")
    save_model(rescored, tmp_path / "model.pt", extra={"step": 4, "val_nerl": 0.55, "threshold": 0.3})
    train(cfg, *volumes, validate_hook=hook, resume=True)  # 0.50 at step 6, 0.60 at step 8
    extra = read_model_state(tmp_path / "model.pt")["extra"]
    assert extra["step"] == 8 and extra["val_nerl"] == 0.60
    scores = iter([0.30, 0.40, 0.45, 0.50])
    cfg = tiny_config(tmp_path / "b", steps=8, validate_every=2, checkpoint_every=2)
    train(cfg, *volumes, validate_hook=hook, stop_at=4)
    save_model(load_model(tmp_path / "b" / "model.pt"), tmp_path / "b" / "model.pt", extra={"step": 4, "val_nerl": 0.55})
    train(cfg, *volumes, validate_hook=hook, resume=True)
    assert read_model_state(tmp_path / "b" / "model.pt")["extra"] == {"step": 4, "val_nerl": 0.55}


def test_resume_may_add_a_voxel_size_range(tmp_path, volumes):
    """A run whose checkpoint predates ``voxel_size_range`` (its model_config JSON has no such
    key) resumes with a config that adds one: the same network, bit-exact, and the files written
    after the resume carry the range; another architecture is still refused."""
    from axonseg.model.checkpoint import load_training_state

    straight = train(tiny_config(tmp_path / "a"), *volumes)
    train(tiny_config(tmp_path / "b"), *volumes, stop_at=4)
    checkpoint = list_checkpoints(tmp_path / "b" / "checkpoints")[-1]
    state = load_training_state(checkpoint)
    state["model_config"] = state["model_config"].replace(',"voxel_size_range":null', "")
    assert "voxel_size_range" not in state["model_config"]
    torch.save(state, checkpoint)
    base = tiny_config(tmp_path / "b").model
    ranged = base.model_copy(update={"voxel_size_range": ((9.0, 12.0), (9.0, 12.0), (9.0, 12.0))})
    resumed = train(tiny_config(tmp_path / "b", model=ranged), *volumes, resume=True)
    for key, value in straight["model"].state_dict().items():
        torch.testing.assert_close(value, resumed["model"].state_dict()[key], rtol=0, atol=0)
    assert load_model(tmp_path / "b" / "model.pt").config.accepts_voxel_size((12.0, 11.0, 9.0))
    assert '"voxel_size_range":[[9.0,12.0]' in load_training_state(list_checkpoints(tmp_path / "b" / "checkpoints")[-1])["model_config"]


def test_batches_are_a_function_of_seed_and_step(tmp_path, volumes):
    cfg = tiny_config(tmp_path, batch_size=2)
    a = make_batch(volumes[0], cfg, step_rng(3, 5))
    b = make_batch(volumes[0], cfg, step_rng(3, 5))
    c = make_batch(volumes[0], cfg, step_rng(3, 6))
    assert a["raw"].shape == (2, 1, 20, 20, 20) and a["lsds"].shape == (2, 10, 4, 4, 4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["raw"], c["raw"])
    # weights are zero exactly where the mask is (unlabelled voxels), positive elsewhere
    assert (a["weights"] >= 0).all() and (a["weights"] > 0).any()


def test_workers_give_the_same_losses(tmp_path, volumes):
    zero = train(tiny_config(tmp_path / "w0", num_workers=0), *volumes)
    two = train(tiny_config(tmp_path / "w2", num_workers=2), *volumes)
    assert [r["loss"] for r in zero["history"]] == [r["loss"] for r in two["history"]]


def test_pipeline_on_fib_data(tmp_path):
    require_shared(FIB)
    import yaml

    from axonseg.pipelines.train import load_config, run

    cfg = load_config(TRAIN_YAML).model_dump(mode="json")  # dataset paths resolved against configs/
    cfg.update(steps=2, checkpoint_every=2, validate_every=2, val_crops=1, num_workers=0, output_shape=[4, 4, 4],
               bn_calibration_crops=2)
    cfg["model"].update(num_fmaps=2)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert [d.split for d in load_config(TRAIN_YAML).datasets] == ["train", "train", "val"]
    result = run(path, out_dir=str(tmp_path / "out"))
    assert result["step"] == 2
    assert (tmp_path / "out" / "config.yaml").exists() and (tmp_path / "out" / "model.pt").exists()
    assert np.isfinite(result["history"][-1]["val_loss"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**cfg, "stepz": 3}))
    with pytest.raises(ConfigError, match="stepz"):
        load_config(bad)


def test_ablation_configs_change_one_thing():
    """configs/train_fib_lsd.yaml (fib_v5) is the fib_v4 recipe with the LSD head, and
    train_fib_malis.yaml (fib_v6) with the MALIS term: any other difference would make the #15
    ablation compare two things at once."""
    from axonseg.pipelines.train import load_config

    base = load_config(TRAIN_YAML).model_dump(mode="json")
    assert base.pop("out_dir") == "runs/train_fib"
    lsd = load_config(TRAIN_YAML.with_name("train_fib_lsd.yaml")).model_dump(mode="json")
    assert lsd["model"].pop("lsd") is True and lsd.pop("out_dir") == "data/models/fib_v5"
    malis = load_config(TRAIN_YAML.with_name("train_fib_malis.yaml")).model_dump(mode="json")
    assert (base["malis_weight"], malis["malis_weight"]) == (0.0, 1.0)
    malis["malis_weight"] = 0.0
    assert malis.pop("out_dir") == "data/models/fib_v6"
    assert malis == base
    assert base["model"].pop("lsd") is False
    assert lsd == base


def test_augmentation_ablation_config_changes_only_the_draw():
    """configs/train_fib_aug.yaml (fib_aug) is fib_v4's recipe with the wider appearance draw of
    the GPU recipe (train_fib_v7.yaml) and nothing else that changes what is learnt (n_threads
    changes speed only)."""
    from axonseg.pipelines.train import load_config

    base = load_config(TRAIN_YAML).model_dump(mode="json")
    aug = load_config(TRAIN_YAML.with_name("train_fib_aug.yaml")).model_dump(mode="json")
    gpu = load_config(TRAIN_YAML.with_name("train_fib_v7.yaml")).model_dump(mode="json")
    assert {key for key in base if base[key] != aug[key]} == {"augment", "out_dir", "n_threads"}
    assert aug["augment"] == gpu["augment"] != base["augment"]
    assert aug["out_dir"] == "data/models/fib_aug"
