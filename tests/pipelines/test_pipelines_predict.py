"""Predict stage: raw zarr -> RUN/volume.zarr/affinities, block invariant, resumable, clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from axonseg.config import load_config
from axonseg.errors import InputError, StageError
from axonseg.io import create_multiscale, group_attrs, mark_complete, open_level, write_block
from axonseg.model import ModelConfig, Predictor, build_model, load_model, predict_volume, save_model
from axonseg.model.predict import Predictor as PredictorClass
from axonseg.pipelines.segment import predict as predict_module
from axonseg.io.border import mirror_indices
from axonseg.pipelines.segment._predict_blocks import predict_grid
from axonseg.pipelines.segment.predict import PredictConfig, default_model_path, run_predict

from predict_helpers import CONFIGS, TINY, VOXEL, affinities, smooth_raw, tiny_model, write_raw  # noqa: F401

FAST = dict(precision="float32", n_threads=1)


def test_mirror_indices_match_numpy_pad():
    for size in (1, 2, 3, 7):
        for mode in ("reflect", "symmetric"):
            expected = np.pad(np.arange(size), (45, 50), mode=mode if size > 1 else "symmetric")
            assert np.array_equal(mirror_indices(-45, size + 50, size, mode if size > 1 else "symmetric"), expected)


def test_block_invariance_through_zarr(tmp_path):
    raw = smooth_raw((14, 22, 19))
    address = write_raw(tmp_path, raw)
    model_path = tiny_model(tmp_path)
    small = run_predict(tmp_path / "a", address, model_path, PredictConfig(block_shape=(8, 8, 8), batch_size=3, **FAST),
                        show_progress=False)
    large = run_predict(tmp_path / "b", address, model_path, PredictConfig(block_shape=(12, 16, 20), **FAST),
                        show_progress=False)
    assert small.blocks == 2 * 3 * 3 and large.blocks == 2 * 2 * 1
    a, b = affinities(tmp_path / "a"), affinities(tmp_path / "b")
    assert a.shape == (8, 14, 22, 19) and a.dtype == np.uint8
    assert a.std() > 5  # not a constant output
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    # both runs normalise with the volume's BatchNorm statistics (the default), computed once per run
    # from the same crops whatever the block shape: the same network
    adapted_a, adapted_b = (load_model(tmp_path / run / "model_batchnorm.pt") for run in "ab")
    for key, value in adapted_a.state_dict().items():
        assert torch.equal(value, adapted_b.state_dict()[key]), key
    # the same as the in-memory reference, run on the whole volume at once with that network
    whole = predict_volume(raw, Predictor(adapted_a, precision="float32", freeze=False), raw.shape)
    assert np.abs(a.astype(int) - whole.astype(int)).max() <= 1
    attrs = group_attrs(tmp_path / "a" / "volume.zarr", "affinities")
    assert attrs["complete"] is True and attrs["offsets"] == [list(o) for o in ModelConfig().offsets]
    assert attrs["model"] == str(model_path) and attrs["config_hash"] == small.config_hash
    array = open_level(tmp_path / "a" / "volume.zarr", "affinities", 0, mode="r")
    assert array.chunks == (8, 8, 8, 8)  # chunks tile the blocks: no two blocks write one chunk
    assert not (tmp_path / "a" / "blocks").exists()


def test_float16_output_and_multichannel_model(tmp_path):
    raw = np.stack([smooth_raw((9, 10, 11), seed=1), smooth_raw((9, 10, 11), seed=2)])
    address = write_raw(tmp_path, raw)
    model_path = tiny_model(tmp_path, in_channels=2)
    run_predict(tmp_path / "run", address, model_path, PredictConfig(output_dtype="float16", **FAST), show_progress=False)
    values = affinities(tmp_path / "run")
    assert values.dtype == np.float16 and values.shape == (8, 9, 10, 11)
    assert 0.0 <= values.min() and values.max() <= 1.0 and values.std() > 0.02


def test_killed_run_resumes_and_a_changed_config_is_refused(tmp_path, monkeypatch):
    raw = smooth_raw((8, 16, 16), seed=3)
    address = write_raw(tmp_path, raw)
    model_path = tiny_model(tmp_path, seed=1)
    config = PredictConfig(block_shape=(8, 8, 8), **FAST)
    original = PredictorClass.predict_batch
    calls = {"n": 0}

    def dying(self, raws, voxel_size=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise MemoryError("killed")
        return original(self, raws, voxel_size)

    monkeypatch.setattr(PredictorClass, "predict_batch", dying)
    with pytest.raises(MemoryError):
        run_predict(tmp_path / "run", address, model_path, config, show_progress=False)
    monkeypatch.setattr(PredictorClass, "predict_batch", original)
    assert group_attrs(tmp_path / "run" / "volume.zarr", "affinities")["complete"] is False
    with pytest.raises(StageError, match="changed: block_shape"):
        run_predict(tmp_path / "run", address, model_path, PredictConfig(block_shape=(4, 8, 8), **FAST), show_progress=False)
    resumed = run_predict(tmp_path / "run", address, model_path, config, show_progress=False)
    assert resumed.blocks == 4 and resumed.skipped == 2
    fresh = run_predict(tmp_path / "fresh", address, model_path, config, show_progress=False)
    assert np.array_equal(affinities(tmp_path / "run"), affinities(tmp_path / "fresh"))
    again = run_predict(tmp_path / "run", address, model_path, config, show_progress=False)
    assert again.up_to_date and fresh.config_hash != "" and again.config_hash == fresh.config_hash


def test_model_mismatch_names_both(tmp_path):
    raw = smooth_raw((6, 6, 6))
    address = write_raw(tmp_path, raw)
    two_channels = tiny_model(tmp_path, name="two.pt", in_channels=2)
    with pytest.raises(InputError, match=r"raw .*in\.zarr/raw has 1 channel\(s\) but model .*two\.pt expects in_channels=2"):
        run_predict(tmp_path / "run", address, two_channels, show_progress=False)
    aniso = tiny_model(tmp_path, name="aniso.pt", voxel_size=(30.0, 8.0, 8.0))
    with pytest.raises(InputError, match=r"voxel size \[10\.0, 10\.0, 10\.0\] nm but model .*aniso\.pt was trained at 30 8 8 nm"):
        run_predict(tmp_path / "run", address, aniso, show_progress=False)
    assert not (tmp_path / "run" / "volume.zarr").exists()  # refused before writing anything


def test_volume_smaller_than_context_is_reflect_padded(tmp_path, caplog):
    raw = smooth_raw((3, 5, 7), seed=4)
    address = write_raw(tmp_path, raw)
    model_path = tiny_model(tmp_path, seed=2)
    with caplog.at_level(logging.WARNING):
        run_predict(tmp_path / "run", address, model_path, PredictConfig(**FAST), show_progress=False)
    assert "smaller than the network context" in caplog.text and "reflection" in caplog.text
    values = affinities(tmp_path / "run")
    assert values.shape == (8, 3, 5, 7) and values.std() > 1
    # the network of the run: the model with the statistics of this (reflect-padded) volume
    network = load_model(tmp_path / "run" / "model_batchnorm.pt")
    expected = predict_volume(raw, Predictor(network, precision="float32", freeze=False), (8, 8, 8))
    assert np.abs(values.astype(int) - expected.astype(int)).max() <= 1


def test_volume_reads_mirror_like_numpy(tmp_path):
    raw = smooth_raw((5, 9, 6), seed=5)
    address = write_raw(tmp_path, raw)
    from axonseg.io import open_volume

    volume = open_volume(address)
    grid = predict_grid(ModelConfig(**TINY), volume.spatial_shape, (4, 4, 4))
    padded = np.pad(raw, 60, mode="reflect")
    for block in grid.blocks:
        got = volume.read_roi(block.read_roi, border="mirror")
        expected = padded[tuple(slice(o + 60, o + 60 + s) for o, s in zip(block.read_roi.offset, block.read_roi.shape))]
        assert np.array_equal(got, expected)
        # the same box in world units (nm), read by the same rule
        begin = np.asarray(volume.offset) + np.asarray(block.read_roi.offset) * np.asarray(volume.voxel_size)
        end = begin + np.asarray(block.read_roi.shape) * np.asarray(volume.voxel_size)
        assert np.array_equal(volume.read_nm(begin, end, border="mirror"), expected)


def test_nan_in_float_raw_is_an_input_error(tmp_path):
    raw = smooth_raw((6, 8, 8)).astype(np.float32) / 255
    raw[2, 3, 4] = np.nan
    address = write_raw(tmp_path, raw)
    with pytest.raises(InputError, match="contains NaN or inf"):
        run_predict(tmp_path / "run", address, tiny_model(tmp_path), PredictConfig(**FAST), show_progress=False)


def test_missing_and_default_models(tmp_path, monkeypatch):
    raw = smooth_raw((6, 8, 8))
    address = write_raw(tmp_path, raw)
    models = tmp_path / "models"
    monkeypatch.setattr(predict_module, "MODELS_DIR", models)
    with pytest.raises(StageError, match="no default model is shipped yet.*--model"):
        run_predict(tmp_path / "run", address, show_progress=False)
    with pytest.raises(InputError, match="does not exist"):
        run_predict(tmp_path / "run", address, tmp_path / "nope.pt", show_progress=False)
    (models / "aniso").mkdir(parents=True)
    tiny_model(models / "aniso", voxel_size=(30.0, 8.0, 8.0))
    with pytest.raises(StageError, match=r"no shipped model is trained at voxel size \[10\.0, 10\.0, 10\.0\].*aniso \(30 8 8 nm\)"):
        run_predict(tmp_path / "run", address, show_progress=False)
    (models / "iso").mkdir()
    iso = tiny_model(models / "iso")
    assert default_model_path(VOXEL) == iso
    result = run_predict(tmp_path / "run", address, config=PredictConfig(**FAST), show_progress=False)
    assert result.model_path == iso and affinities(tmp_path / "run").shape == (8, 6, 8, 8)


def test_defaults_file_names_the_default_among_models_of_one_voxel_size(tmp_path):
    """Two models at 10 nm (a shipped one and one in training): without data/models/defaults.yaml
    the choice would hang on folder names, so it is refused; with it, the listed one is used."""
    models = tmp_path / "models"
    for name in ("a_in_training", "b_shipped"):
        (models / name).mkdir(parents=True)
        tiny_model(models / name)
    with pytest.raises(StageError, match=r"several models .* \(a_in_training, b_shipped\): list one in .*defaults.yaml"):
        default_model_path(VOXEL, models)
    (models / "defaults.yaml").write_text("defaults: [b_shipped]\n")
    assert default_model_path(VOXEL, models).parent.name == "b_shipped"
    with pytest.raises(StageError, match=r"no default model is trained at voxel size \[30\.0, 8\.0, 8\.0\].*b_shipped"):
        default_model_path((30.0, 8.0, 8.0), models)
    (models / "defaults.yaml").write_text("defaults: b_shipped\n")
    with pytest.raises(StageError, match="defaults.yaml: `defaults` must be a list"):
        default_model_path(VOXEL, models)


def test_a_model_trained_on_a_range_of_voxel_sizes_runs_inside_it(tmp_path):
    """A model whose training drew voxel sizes from a range (aniso_v2: 30-40 x 6-10 x 6-10 nm,
    all presented as 30x8x8) predicts any volume inside it, unchanged; outside it is refused,
    naming the range. As a default, a model trained at the very voxel size wins over one whose
    range merely holds it."""
    ranged_range = ((30.0, 40.0), (6.0, 10.0), (6.0, 10.0))
    models = tmp_path / "models"
    (models / "ranged").mkdir(parents=True)
    ranged = tiny_model(models / "ranged", voxel_size=(35.0, 8.0, 8.0), voxel_size_range=ranged_range)
    raw = smooth_raw((6, 8, 8), seed=6)
    address = write_raw(tmp_path, raw, voxel=(36.0, 7.0, 7.0))
    result = run_predict(tmp_path / "run", address, ranged, PredictConfig(**FAST), show_progress=False)
    network = load_model(tmp_path / "run" / "model_batchnorm.pt")  # the model with this volume's statistics
    expected = predict_volume(raw, Predictor(network, precision="float32", freeze=False), (8, 8, 8))
    assert result.model_path == ranged
    assert np.abs(affinities(tmp_path / "run").astype(int) - expected.astype(int)).max() <= 1
    assert default_model_path((36.0, 7.0, 7.0), models) == ranged
    (models / "stock").mkdir()
    stock = tiny_model(models / "stock", voxel_size=(30.0, 8.0, 8.0))
    assert default_model_path((36.0, 7.0, 7.0), models) == ranged
    assert default_model_path((30.0, 8.0, 8.0), models) == stock
    with pytest.raises(InputError, match=r"voxel size \[36\.0, 7\.0, 7\.0\] nm but model .*stock.*was trained at 30 8 8 nm"):
        run_predict(tmp_path / "run2", address, stock, show_progress=False)
    outside = write_raw(tmp_path / "b", raw, voxel=(28.0, 5.5, 5.5))
    with pytest.raises(InputError, match=r"was trained at 30-40 6-10 6-10 nm \(z y x\)"):
        run_predict(tmp_path / "run3", outside, ranged, show_progress=False)
    with pytest.raises(StageError, match=r"ranged \(30-40 6-10 6-10 nm \(z y x\)\), stock \(30 8 8 nm\)"):
        default_model_path((28.0, 5.5, 5.5), models)
    with pytest.raises(InputError, match=r"trained at 30-40 6-10 6-10 nm"):
        Predictor(load_model(ranged), precision="float32")(raw, voxel_size=(28.0, 5.5, 5.5))
    assert not (tmp_path / "run2" / "volume.zarr").exists() and not (tmp_path / "run3" / "volume.zarr").exists()


def test_shipped_config_file_loads():
    config = load_config(CONFIGS / "predict.yaml", PredictConfig)
    assert config == PredictConfig(block_shape=config.block_shape, batch_size=config.batch_size)
    assert PredictConfig(precision="bf16").precision == "bfloat16"
    with pytest.raises(Exception, match="sizes must be positive"):
        PredictConfig(block_shape=(0, 8, 8))


def test_shipped_models_are_chosen_by_voxel_size():
    """data/models ships one default per voxel size: 10 nm FIB-SEM and 30x8x8 nm serial-section
    (defaults.yaml; fib_v4, in training at 10 nm, and aniso_v2 and synth_aniso, the previous 30x8x8
    nm defaults, are not)."""
    from axonseg.model import load_model

    iso, aniso = default_model_path((10.0, 10.0, 10.0)), default_model_path((30.0, 8.0, 8.0))
    assert iso.parent.name == "fib_default" and aniso.parent.name == "aniso_v3"
    for path, voxel in ((iso, (10.0, 10.0, 10.0)), (aniso, (30.0, 8.0, 8.0))):
        assert (path.parent / "README.md").exists() and path.stat().st_size < 8_000_000
        model = load_model(path)
        assert tuple(model.config.voxel_size) == voxel and len(model.config.offsets) == 8
    # aniso_v3 was trained on 30-40 x 6-10 x 6-10 nm volumes: it is the default across that range
    assert default_model_path((38.0, 6.5, 6.5)) == aniso
    with pytest.raises(StageError, match=r"aniso_v3 \(30-40 6-10 6-10 nm \(z y x\)\), fib_default \(10 10 10 nm\)"):
        default_model_path((40.0, 4.0, 4.0))
