"""The training recipe that keeps every level alive: BatchNorm, the transposed-conv init, the
learning-rate schedule with clipping, dead-layer monitoring, class balance on the output crop,
and the validation split of the training ROI (labels_roi)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from axonseg.errors import StageError
from axonseg.model.activity import active_fractions, dead_layers
from axonseg.model.checkpoint import load_model
from axonseg.model.config import ModelConfig
from axonseg.model.sampler import TrainingVolume, make_batch
from axonseg.model.schedule import learning_rate
from axonseg.model.train_config import DatasetSpec, TrainConfig
from axonseg.model.train_loop import train
from axonseg.model.unet import AffinityNet

REPO = Path(__file__).resolve().parents[2]
from shared_data import FIB_PATH as FIB, SKIP_REASON, shared_missing  # noqa: E402


def config(**update) -> TrainConfig:
    values = dict(datasets=[DatasetSpec(raw="memory", labels="memory")], steps=1000, lr=1e-3)
    values.update(update)
    return TrainConfig(**values)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = config(lr_warmup_steps=100, lr_min_factor=0.1)
    assert learning_rate(0, cfg) == pytest.approx(1e-5)
    assert learning_rate(50, cfg) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
    assert learning_rate(100, cfg) == pytest.approx(1e-3)
    assert learning_rate(550, cfg) == pytest.approx(1e-4 + 0.5 * 9e-4)
    assert learning_rate(1000, cfg) == pytest.approx(1e-4)
    rates = [learning_rate(s, cfg) for s in range(100, 1000)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert learning_rate(900, config(lr_schedule="constant", lr_warmup_steps=0)) == 1e-3


def test_transposed_convolution_keeps_the_signal_variance():
    """Each output voxel of a stride-2, 2x2x2 transposed conv sums one tap per input channel, so
    its fan-in is in_channels. With the Kaiming (ReLU) gain every convolution doubles the second
    moment of a ReLU output (halved again by the next ReLU); PyTorch's fan of out_channels * 8
    made the transposed conv give 2/8 of it instead."""
    torch.manual_seed(0)
    net = AffinityNet(ModelConfig(num_fmaps=16, fmap_inc_factor=2))
    up = net.unet.up[0]
    x = torch.relu(torch.randn(4, up.in_channels, 8, 8, 8))
    with torch.no_grad():
        ratio = float((up(x) ** 2).mean() / (x**2).mean())
        conv = net.unet.down[1][0]
        conv_ratio = float((conv(torch.relu(torch.randn(4, conv.in_channels, 10, 10, 10))) ** 2).mean())
        conv_ratio /= float((torch.relu(torch.randn(10**6)) ** 2).mean())
    assert 1.6 < ratio < 2.5
    assert ratio == pytest.approx(conv_ratio, rel=0.25)


def test_batch_norm_is_the_default_and_old_files_load_without_it():
    net = AffinityNet(ModelConfig())
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in net.modules()) == 10
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in AffinityNet(ModelConfig(norm="none")).modules())
    shipped = load_model(REPO / "data" / "models" / "fib_default" / "model.pt")
    assert shipped.config.norm == "none"
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in shipped.modules())


def test_class_balance_is_measured_on_the_output_crop():
    """Positives and negatives carry equal total weight inside the crop the loss sees."""
    labels = np.ones((40, 40, 40), dtype=np.uint64)
    labels[:, :, 26:] = 2  # the boundary sits off-centre: the input crop and output crop differ
    raw = np.where(labels == 1, 200, 60).astype(np.uint8)
    cfg = config(model=ModelConfig(num_fmaps=2, fmap_inc_factor=2, downsample_factors=[(2, 2, 2)]),
                 output_shape=(8, 8, 8), balance=True, augment={"flip_transpose": False, "elastic_p": 0,
                 "intensity_p": 0, "gamma_p": 0, "noise_p": 0, "misalign_p": 0, "missing_section_p": 0,
                 "blurred_section_p": 0})
    batch = make_batch([TrainingVolume(raw, labels, (10, 10, 10))], cfg, np.random.default_rng(5), augmented=False)
    affinities, weights = batch["affinities"][0], batch["weights"][0]
    for channel in range(affinities.shape[0]):
        positive = weights[channel][affinities[channel] > 0.5].sum()
        negative = weights[channel][affinities[channel] <= 0.5].sum()
        if negative > 0:  # channels that cross the boundary inside the crop
            fraction = (affinities[channel] <= 0.5).mean()
            if 0.05 < fraction < 0.95:
                assert positive == pytest.approx(negative, rel=1e-4)


def test_activity_names_dead_layers():
    net = AffinityNet(ModelConfig(num_fmaps=4, fmap_inc_factor=2, downsample_factors=[(2, 2, 2)]))
    with torch.no_grad():
        net.unet.down[1][1].bias.fill_(-1e3)  # the bottom level's first BatchNorm shifts all below 0
    fractions = active_fractions(net, [torch.rand(1, 1, 44, 44, 44)])
    assert len(fractions) == 6
    # the second conv of that level sees only zeros, so it is dead too; the level above lives
    assert dead_layers(fractions, 0.05) == ["unet.down.1.2", "unet.down.1.5"]
    assert fractions["unet.down.0.2"] > 0.2


def test_stop_on_dead_layer(tmp_path, make_blob_labels):
    labels = make_blob_labels((44, 20, 20), seed=1, sigma=2.0)
    raw = np.where(labels > 0, 180, 60).astype(np.uint8)
    volume = TrainingVolume(raw, labels, (10, 10, 10))
    cfg = config(model=ModelConfig(num_fmaps=3, fmap_inc_factor=2, downsample_factors=[(2, 2, 2)]),
                 output_shape=(4, 4, 4), steps=2, validate_every=2, checkpoint_every=2, val_crops=1,
                 out_dir=str(tmp_path), n_threads=1, amp="off", dead_fraction=1.0, stop_on_dead_layer=True)
    with pytest.raises(StageError, match="fire on fewer than 100%"):
        train(cfg, [volume], [volume])


@pytest.mark.skipif(shared_missing(FIB), reason=f"{SKIP_REASON}: {FIB} not found")
def test_no_level_dies_on_real_fib_data(tmp_path):
    """A 3-level BatchNorm net trained on a real FIB crop at the shipped recipe's peak lr keeps
    every ReLU above 5% active (the old recipe's bottom level fell to 1.8% by step 600)."""
    import h5py

    with h5py.File(FIB, "r") as handle:
        raw, labels = handle["raw"][:100, :100, :100], handle["labels"][:100, :100, :100].astype(np.uint64)
    volume = TrainingVolume(raw, labels, (10, 10, 10), name="fib z0-99")
    cfg = config(model=ModelConfig(num_fmaps=4, fmap_inc_factor=2, downsample_factors=[(2, 2, 2)] * 3),
                 output_shape=(4, 4, 4), steps=60, lr=5e-4, lr_warmup_steps=10, validate_every=20,
                 checkpoint_every=60, val_crops=2, out_dir=str(tmp_path), n_threads=2, amp="off")
    history = train(cfg, [volume], [volume])["history"]
    checked = [row for row in history if "active_min" in row]
    assert len(checked) == 3
    layers = [key for key in checked[-1] if key.startswith("active_unet")]
    assert len(layers) == 14
    assert min(row["active_min"] for row in checked) > 0.05
    losses = [row["loss"] for row in history]
    assert np.mean(losses[-20:]) < np.mean(losses[:20])


def test_labels_roi_keeps_raw_context_and_cuts_labels(tmp_path):
    import h5py
    import yaml

    from axonseg.pipelines.train import load_config, load_volumes

    path = tmp_path / "vol.h5"
    labels = np.arange(1, 41, dtype=np.uint64).repeat(100).reshape(40, 10, 10)
    with h5py.File(path, "w") as handle:
        handle["raw"] = np.full((40, 10, 10), 7, dtype=np.uint8)
        handle["labels"] = labels
    spec = {"raw": "vol.h5:raw", "labels": "vol.h5:labels", "roi": "0:30,:,:", "voxel_size": [10, 10, 10]}
    yaml_path = tmp_path / "train.yaml"
    yaml_path.write_text(yaml.safe_dump({
        "datasets": [{**spec, "labels_roi": "0:10,:,:"}, {**spec, "labels_roi": "20:25,:,:", "split": "val"}],
        "model": {"voxel_size": [10, 10, 10]},
    }))
    train_volumes, val_volumes = load_volumes(load_config(yaml_path))  # relative paths: the YAML's folder
    assert train_volumes[0].raw.shape == val_volumes[0].raw.shape == (30, 10, 10)
    assert np.unique(train_volumes[0].labels[:10]).tolist() == list(range(1, 11))
    assert not train_volumes[0].labels[10:].any()
    assert not val_volumes[0].labels[:20].any() and not val_volumes[0].labels[25:].any()
    assert np.unique(val_volumes[0].labels[20:25]).tolist() == list(range(21, 26))


def test_recorded_config_names_data_relative_to_the_model_folder(tmp_path):
    """config.yaml in a model folder names the data relative to that folder, so the committed
    record works from any clone (no machine's absolute path), and reads back to the same file."""
    import yaml

    from axonseg.pipelines.train import load_config, relative_addresses

    data = tmp_path / "shared" / "data"
    data.mkdir(parents=True)
    (data / "vol.h5").write_bytes(b"")
    yaml_path = tmp_path / "repo" / "configs" / "train.yaml"
    yaml_path.parent.mkdir(parents=True)
    yaml_path.write_text(yaml.safe_dump({
        "datasets": [{"raw": "../../shared/data/vol.h5:raw", "labels": "../../shared/data/vol.h5:labels",
                      "voxel_size": [10, 10, 10]}],
        "model": {"voxel_size": [10, 10, 10]},
    }))
    cfg = load_config(yaml_path)
    assert cfg.datasets[0].raw == f"{(data / 'vol.h5').resolve()}:raw"
    out_dir = tmp_path / "repo" / "data" / "models" / "m"
    out_dir.mkdir(parents=True)
    recorded = relative_addresses(cfg, out_dir)
    assert recorded.datasets[0].raw == "../../../../shared/data/vol.h5:raw"
    assert recorded.datasets[0].labels == "../../../../shared/data/vol.h5:labels"
    (out_dir / "config.yaml").write_text(yaml.safe_dump(recorded.model_dump(mode="json")))
    assert load_config(out_dir / "config.yaml").datasets[0].raw == cfg.datasets[0].raw


def test_model_file_is_the_best_validation_with_its_calibrated_threshold(tmp_path, make_blob_labels):
    """With a segmentation validation, model.pt holds the weights of the best validation NERL and
    records that step's threshold (the pipeline's default for the model), not the latest."""
    labels = make_blob_labels((44, 20, 20), seed=1, sigma=2.0)
    raw = np.where(labels > 0, 180, 60).astype(np.uint8)
    volume = TrainingVolume(raw, labels, (10, 10, 10))
    scores = {2: (0.2, 0.3), 4: (0.6, 0.45), 6: (0.4, 0.7)}
    kept = {}

    def hook(step, model):  # noqa: ANN001, ANN202
        kept[step] = {k: v.clone() for k, v in model.state_dict().items()}
        nerl, threshold = scores[step]
        return {"nerl": nerl, "threshold": threshold, "voi_split": 1.0, "voi_merge": 0.5}

    cfg = config(model=ModelConfig(num_fmaps=3, fmap_inc_factor=2, downsample_factors=[(2, 2, 2)]),
                 output_shape=(4, 4, 4), steps=6, validate_every=2, checkpoint_every=2, val_crops=1,
                 out_dir=str(tmp_path), n_threads=1, amp="off")
    train(cfg, [volume], [volume], validate_hook=hook)
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["extra"] == {"step": 4, "threshold": 0.45, "val_nerl": 0.6, "val_voi_split": 1.0, "val_voi_merge": 0.5,
                              "threshold_batchnorm": "volume"}  # the statistics the segmentation validation used
    for key, value in kept[4].items():
        assert torch.equal(saved["state_dict"][key], value)


def test_train_config_addresses_expand_environment_variables(tmp_path, monkeypatch):
    from axonseg.pipelines.train import resolve_address

    (tmp_path / "vol.h5").write_bytes(b"")
    monkeypatch.setenv("AXONSEG_SHARED_DATA", str(tmp_path))
    assert resolve_address("${AXONSEG_SHARED_DATA}/vol.h5:raw", Path("/elsewhere")) == f"{tmp_path / 'vol.h5'}:raw"
