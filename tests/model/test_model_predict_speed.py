"""The fast CPU inference path: the oneDNN network equals the eager one and falls back cleanly,
and the bf16 timing's warm-up decides at a small size."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from axonseg.model import shapes
from axonseg.model.config import ModelConfig
from axonseg.model.onednn import (
    OneDnnAffinityNet,
    _fold_upsampling,
    _Workspace,
    onednn_network,
)
from axonseg.model.predict import Predictor
from axonseg.model.unet import build_model

ANISO = {
    "downsample_factors": [(1, 2, 2), (1, 2, 2)],
    "kernel_size_down": [[(1, 3, 3), (1, 3, 3)], [(1, 3, 3), (1, 3, 3)], [(3, 3, 3), (3, 3, 3)]],
    "kernel_size_up": [[(1, 3, 3), (1, 3, 3)], [(3, 3, 3), (3, 3, 3)]],
    "voxel_size": (30.0, 8.0, 8.0),
}
CONFIGS = {
    "iso, batch norm": {"downsample_factors": [(2, 2, 2), (2, 2, 2)]},
    "anisotropic": ANISO,
    "nearest, no norm": {"downsample_factors": [(2, 2, 2)], "upsample": "nearest", "norm": "none"},
    "3x (not folded)": {"downsample_factors": [(3, 3, 3)], "norm": "none"},
}

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch without oneDNN")


def _model(name: str, seed: int = 1) -> torch.nn.Module:
    model = build_model(ModelConfig(num_fmaps=3, fmap_inc_factor=2, **CONFIGS[name]), seed=seed).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # running statistics away from 0 / 1, so a wrong BatchNorm fold shows
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)
    return model


@needs_onednn
@pytest.mark.parametrize("name", list(CONFIGS))
def test_onednn_network_equals_eager(name):
    model = _model(name)
    fused = onednn_network(model)
    assert isinstance(fused, OneDnnAffinityNet)
    x = torch.rand((2, 1) + shapes.valid_input_shape(model.config, (4, 8, 8)), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        eager = model(x)
        first, second = fused(x), fused(x)  # the second forward reuses the workspace's buffers
    assert first.shape == eager.shape
    assert float((first - eager).abs().max()) < 1e-4 * max(1.0, float(eager.abs().max()))
    assert torch.equal(first, second)  # a returned output is not a buffer the next forward overwrites


@needs_onednn
def test_upsampling_folds_only_where_every_subgrid_has_one_size():
    up, bias = torch.randn(4, 4, 2, 2, 2), torch.randn(4)
    assert _fold_upsampling(up, bias, torch.randn(3, 4, 3, 3, 3), (2, 2, 2)) is not None
    assert _fold_upsampling(up, bias, torch.randn(3, 4, 2, 2, 2), (2, 2, 2)) is None
    weight, folded_bias = _fold_upsampling(up, bias, torch.randn(3, 4, 3, 3, 3), (2, 2, 2))
    assert weight.shape == (8 * 3, 4, 2, 2, 2) and folded_bias.shape == (3,)


def test_workspace_reuses_and_drops_unused_buffers():
    workspace = _Workspace()
    workspace.start()
    a = workspace.take((1, 2, 4, 4, 4))
    assert a.is_contiguous(memory_format=torch.channels_last_3d)
    workspace.give(a)
    b = workspace.take((1, 1, 4, 4, 4))  # fits in a's buffer
    assert b.data_ptr() == a.data_ptr()
    workspace.give(b)
    workspace.finish()
    held = workspace.nbytes
    workspace.start()
    workspace.give(workspace.take((1, 8, 8, 8, 8)))  # a bigger shape: a new buffer, the old one unused
    workspace.finish()
    assert workspace.nbytes == 8 * 8**3 * 4 and held == 2 * 4**3 * 4


@needs_onednn
def test_onednn_network_is_one_forward_at_a_time():
    model = _model("iso, batch norm")
    fused = onednn_network(model)
    x = torch.rand((1, 1) + shapes.valid_input_shape(model.config, (4, 8, 8)))
    with torch.inference_mode():
        expected = fused(x)
    results = []

    def run():
        with torch.inference_mode():
            results.append(fused(x))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and all(torch.equal(result, expected) for result in results)


def test_predictor_falls_back_to_eager_without_onednn(monkeypatch):
    model = _model("iso, batch norm")
    raw = (np.random.default_rng(0).random(shapes.valid_input_shape(model.config, (4, 8, 8))) * 255).astype(np.uint8)
    eager = Predictor(model, device="cpu", precision="float32", output_dtype="float16", freeze=False)(raw)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert onednn_network(model) is None
    predictor = Predictor(model, device="cpu", precision="float32", output_dtype="float16")
    assert predictor._fused is None
    np.testing.assert_allclose(predictor(raw).astype(np.float32), eager.astype(np.float32), atol=1e-3)


@needs_onednn
def test_a_failing_fused_op_falls_back_to_eager(monkeypatch, caplog):
    def broken(self, x):
        raise RuntimeError("no such primitive")

    monkeypatch.setattr(OneDnnAffinityNet, "forward", broken)
    with caplog.at_level("INFO", logger="axonseg.model.onednn"):
        assert onednn_network(_model("anisotropic")) is None
    assert "using eager" in caplog.text


def test_bf16_warm_up_times_float32_as_the_predictor_runs_it():
    from axonseg.model.predict import _onednn_conv

    conv = torch.nn.Conv3d(32, 32, 3).eval()
    x = torch.randn(1, 32, 10, 18, 18).contiguous(memory_format=torch.channels_last_3d)
    fused = _onednn_conv(conv)
    with torch.no_grad():
        np.testing.assert_allclose(fused(x).numpy(), conv(x).numpy(), atol=1e-4)
    identity = torch.nn.Identity()
    assert _onednn_conv(identity) is identity  # nothing to fuse: timed as it is
