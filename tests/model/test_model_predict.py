"""Inference: block invariance, output formats, and clear errors for bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy import ndimage

from axonseg.errors import InputError
from axonseg.model import shapes
from axonseg.model.predict import (
    BF16_MAX_ERROR,
    Predictor,
    bf16_affinity_error,
    normalize_raw,
    predict_volume,
    raw_tensor,
)
from axonseg.model.unet import build_model


def smooth_raw(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = ndimage.gaussian_filter(rng.random(shape), 1.5)
    raw = (raw - raw.min()) / (raw.max() - raw.min())
    return (raw * 255).astype(np.uint8)


@pytest.fixture
def predictor(iso_config):
    torch.manual_seed(0)
    model = build_model(iso_config, seed=0)
    with torch.no_grad():  # sharpen the random head so affinities spread over 0..255
        model.head.weight.mul_(20.0)
    return Predictor(model, device="cpu", precision="float32", freeze=False)


def test_block_invariance(predictor):
    raw = smooth_raw((12, 13, 16))
    small = predict_volume(raw, predictor, (8, 8, 8), batch_size=3)
    large = predict_volume(raw, predictor, (4, 16, 12))
    whole = predict_volume(raw, predictor, raw.shape)
    assert small.shape == (8, 12, 13, 16) and small.dtype == np.uint8
    assert small.std() > 5  # not a constant output
    assert np.abs(small.astype(int) - large.astype(int)).max() <= 1
    assert np.abs(small.astype(int) - whole.astype(int)).max() <= 1


def test_block_invariance_anisotropic(aniso_config):
    predictor = Predictor(build_model(aniso_config, seed=2), device="cpu", precision="float32", output_dtype="float16", freeze=False)
    raw = smooth_raw((6, 14, 20), seed=1)
    a = predict_volume(raw, predictor, (3, 8, 8), voxel_size=(30, 8, 8))
    b = predict_volume(raw, predictor, (4, 12, 20), voxel_size=(30, 8, 8))
    assert a.dtype == np.float16 and a.shape == (8, 6, 14, 20)
    assert np.abs(a.astype(np.float32) - b.astype(np.float32)).max() <= 1 / 255


def test_predictor_returns_the_centre(predictor, iso_config):
    in_shape = shapes.valid_input_shape(iso_config, (4, 4, 8))
    raw = smooth_raw(in_shape, seed=3)
    out = predictor(raw)
    assert out.shape == (iso_config.num_affinities,) + shapes.valid_output_shape(iso_config, in_shape)
    # the same voxels through predict_volume (which pads the volume) agree in the interior
    full = predict_volume(raw, predictor, raw.shape)
    c = shapes.context(iso_config)
    inner = full[:, c[0] : c[0] + out.shape[1], c[1] : c[1] + out.shape[2], c[2] : c[2] + out.shape[3]]
    assert np.abs(inner.astype(int) - out.astype(int)).max() <= 1


def test_small_volume_is_reflect_padded(predictor, caplog):
    raw = smooth_raw((5, 6, 7))
    with caplog.at_level(logging.WARNING):
        out = predict_volume(raw, predictor, (8, 8, 8))
    assert out.shape == (8, 5, 6, 7)
    assert "smaller than the network context" in caplog.text


def test_bad_inputs_raise_input_error(predictor, iso_config):
    in_shape = shapes.valid_input_shape(iso_config, (4, 4, 4))
    good = np.zeros(in_shape, dtype=np.uint8)
    with pytest.raises(InputError, match="2 channel.*in_channels=1"):
        predictor(np.zeros((2,) + in_shape, dtype=np.uint8))
    with pytest.raises(InputError, match=r"voxel_size \[30.0, 8.0, 8.0\] nm but the model was trained at 10 10 10 nm"):
        predictor(good, voxel_size=(30, 8, 8))
    nan = good.astype(np.float32)
    nan[3, 3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        predictor(nan)
    with pytest.raises(InputError, match="not valid along z"):
        predictor(good[1:])
    with pytest.raises(InputError, match="dtype int8"):
        normalize_raw(np.zeros(3, dtype=np.int8))


def test_bf16_error_is_measured_against_float32(iso_config):
    """bf16 autocast moves affinities by a weight-dependent amount: the measured error equals a
    direct float32-vs-bf16 comparison, and a model with sharp logits exceeds 2/255."""
    model = build_model(iso_config, seed=4)
    raw = smooth_raw(shapes.valid_input_shape(iso_config, (8, 8, 8)), seed=5)
    with torch.no_grad():  # spread affinities over [0, 1] (logit std 2) so errors are not hidden near 0.5
        logits = model(torch.from_numpy(raw.astype(np.float32) / 255.0)[None, None])
        model.head.weight.mul_(2.0 / float(logits.std()))
    f32 = Predictor(model, device="cpu", precision="float32", output_dtype="float16")(raw).astype(np.float32)
    b16 = Predictor(model, device="cpu", precision="bfloat16", output_dtype="float16")(raw).astype(np.float32)
    assert f32.std() > 0.05
    direct = float(np.abs(f32 - b16).max())
    assert 1e-4 < direct < 0.1
    measured = bf16_affinity_error(model)
    assert 1e-4 < measured < 0.1
    with torch.no_grad():
        model.head.weight.mul_(10.0)
    assert bf16_affinity_error(model) > BF16_MAX_ERROR


def test_auto_precision_keeps_float32_when_bf16_error_is_too_large(iso_config, monkeypatch):
    """Even on a CPU where bf16 is fast, "auto" keeps float32 for a model whose bf16 error is
    above 2/255, and picks bf16 for one below it."""
    import axonseg.model.predict as predict_module

    monkeypatch.setattr(predict_module, "cpu_bf16_is_fast", lambda *a: True)
    model = build_model(iso_config, seed=4)
    with torch.no_grad():
        model.head.weight.mul_(50.0)
    assert Predictor(model, device="cpu").precision == "float32"
    with torch.no_grad():
        model.head.weight.mul_(1e-4)  # near-constant affinities: bf16 rounding cannot move them
    assert Predictor(model, device="cpu").precision == "bfloat16"


def test_frozen_network_matches_eager(iso_config):
    model = build_model(iso_config, seed=6)
    raw = smooth_raw(shapes.valid_input_shape(iso_config, (4, 8, 8)), seed=6)
    eager = Predictor(model, device="cpu", precision="float32", output_dtype="float16", freeze=False)(raw)
    frozen = Predictor(model, device="cpu", precision="float32", output_dtype="float16", freeze=True)
    assert frozen.freeze is True
    np.testing.assert_allclose(frozen(raw).astype(np.float32), eager.astype(np.float32), atol=1e-3)
    np.testing.assert_allclose(frozen(raw).astype(np.float32), eager.astype(np.float32), atol=1e-3)  # cached trace
    auto = Predictor(model, device="cpu", precision="float32", output_dtype="float16")
    assert auto.freeze == "auto"
    np.testing.assert_allclose(auto(raw).astype(np.float32), eager.astype(np.float32), atol=1e-3)


def test_bf16_speed_check_trusts_native_flags_and_otherwise_measures(monkeypatch):
    """A CPU with AVX512-BF16 or AMX is fast without timing anything (timings under load
    misjudged it); without those flags the decision comes from the timing."""
    import axonseg.model.predict as predict_module

    monkeypatch.setattr(predict_module, "_CPU_BF16_FAST", {})
    monkeypatch.setattr(predict_module, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})

    def no_timing():
        raise AssertionError("timed although the flags decide")

    monkeypatch.setattr(predict_module.time, "perf_counter", no_timing)
    assert predict_module.cpu_bf16_is_fast(1) is True
    monkeypatch.undo()

    ticks = iter(np.arange(0.0, 100.0, 1.0))  # each timed call "takes" 1 s: bf16 is not 1.3x faster
    monkeypatch.setattr(predict_module, "_CPU_BF16_FAST", {})
    monkeypatch.setattr(predict_module, "_cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(predict_module.time, "perf_counter", lambda: float(next(ticks)))
    assert predict_module.cpu_bf16_is_fast(1) is False


def test_tta_flips_keep_shape_and_are_flip_equivariant(iso_config):
    """TTA averages the passes a channel may use: its output has the plain shape, differs from
    one pass, and commutes with a y (x) flip on every channel without a y (x) component."""
    from axonseg.model.predict import flip_sets

    model = build_model(iso_config, seed=0)
    with torch.no_grad():
        model.head.weight.mul_(20.0)
    plain = Predictor(model, device="cpu", precision="float32", output_dtype="float16", freeze=False)
    tta = Predictor(model, device="cpu", precision="float32", output_dtype="float16", freeze=False, tta="flips")
    raw = smooth_raw(shapes.valid_input_shape(iso_config, (4, 8, 8)), seed=5)
    once, averaged = plain(raw).astype(np.float32), tta(raw).astype(np.float32)
    assert averaged.shape == once.shape and np.abs(averaged - once).max() > 0.01
    offsets = np.asarray(iso_config.offsets)
    for axis, dim in ((1, -2), (2, -1)):
        flipped = tta(np.flip(raw, axis=dim).copy()).astype(np.float32)
        keep = offsets[:, axis] == 0
        assert keep.any() and not keep.all()
        np.testing.assert_allclose(np.flip(flipped, axis=dim)[keep], averaged[keep], atol=2e-3)
    # which passes each channel averages: z channels all four, y/x channels the two that keep their axis
    valid = np.array([v for _, v in flip_sets(iso_config.offsets)])
    assert valid.sum(axis=0).tolist() == [4 if o[1] == 0 and o[2] == 0 else 2 for o in iso_config.offsets]
    with pytest.raises(InputError, match="tta='rot90'"):
        Predictor(model, device="cpu", tta="rot90")


def test_tta_is_block_invariant(iso_config):
    model = build_model(iso_config, seed=0)
    with torch.no_grad():
        model.head.weight.mul_(20.0)
    tta = Predictor(model, device="cpu", precision="float32", freeze=False, tta="flips")
    raw = smooth_raw((12, 13, 16))
    small = predict_volume(raw, tta, (8, 8, 8), batch_size=3)
    whole = predict_volume(raw, tta, raw.shape)
    assert small.shape == (8, 12, 13, 16) and small.std() > 5
    assert np.abs(small.astype(int) - whole.astype(int)).max() <= 1


@pytest.mark.parametrize("raw", [
    np.arange(256, dtype=np.uint8).reshape(1, 4, 8, 8),  # every uint8 value: scaled on the device
    np.arange(0, 65536, 64, dtype=np.uint16).reshape(1, 4, 16, 16),
    np.linspace(0, 1, 256, dtype=np.float32).reshape(1, 4, 8, 8),
])
def test_raw_tensor_equals_normalize_raw(raw):
    x = raw_tensor(raw, torch.device("cpu"))
    assert x.dtype == torch.float32 and np.array_equal(x.numpy(), normalize_raw(raw))
