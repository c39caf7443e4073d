"""Shape arithmetic of the U-Net agrees with real forward passes, for iso and aniso configs."""

from __future__ import annotations

import pytest
import torch

from axonseg.errors import InputError
from axonseg.model import shapes
from axonseg.model.config import ModelConfig
from axonseg.model.unet import build_model, count_parameters


@pytest.mark.parametrize("which", ["iso_config", "aniso_config"])
def test_forward_matches_computed_shapes(which, request):
    cfg = request.getfixturevalue(which)
    model = build_model(cfg, seed=0).eval()
    ctx = shapes.context(cfg)
    for wanted in [(1, 1, 1), (6, 9, 13), (8, 16, 16)]:
        in_shape = shapes.valid_input_shape(cfg, wanted)
        out_shape = shapes.valid_output_shape(cfg, in_shape)
        assert all(o >= w for o, w in zip(out_shape, wanted))
        assert out_shape == tuple(i - 2 * c for i, c in zip(in_shape, ctx))
        with torch.no_grad():
            y = model(torch.zeros(1, 1, *in_shape))
        assert tuple(y.shape) == (1, cfg.num_outputs) + out_shape
        # smallest: one step less along any axis would not reach the wanted output
        step = shapes.shape_step(cfg)
        for axis in range(3):
            smaller = list(in_shape)
            smaller[axis] -= step[axis]
            if shapes.is_valid_input_shape(cfg, tuple(smaller)):
                assert shapes.valid_output_shape(cfg, tuple(smaller))[axis] < wanted[axis]


def test_known_geometry(iso_config, aniso_config):
    # 2 levels of (2,2,2), two 3x3x3 convs per pass: 4 + 2*4 + 4*4 (bottom) + 2*4 + 4 = 40 -> 20 per side
    assert shapes.context(iso_config) == (20, 20, 20)
    assert shapes.shape_step(iso_config) == (4, 4, 4)
    assert shapes.valid_input_shape(iso_config, (1, 1, 1)) == (44, 44, 44)
    # anisotropic: only the bottom level convolves in z
    assert shapes.context(aniso_config) == (4, 20, 20)
    assert shapes.shape_step(aniso_config) == (1, 4, 4)


def test_invalid_input_shape_names_a_valid_one(iso_config):
    with pytest.raises(InputError, match="not valid along y"):
        shapes.valid_output_shape(iso_config, (44, 45, 44))


def test_translation_equivariance(iso_config):
    """Shifting the input by the shape step shifts the output by the same amount."""
    model = build_model(iso_config, seed=1).eval()
    step = shapes.shape_step(iso_config)[0]
    x = torch.rand(1, 1, 44, 44, 44 + step)
    with torch.no_grad():
        a = model(x[..., :44])
        b = model(x[..., step:])
    torch.testing.assert_close(a[..., step:], b[..., :-step], atol=1e-5, rtol=1e-4)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="odd"):
        ModelConfig(kernel_size_down=[[(2, 3, 3)]] * 3)
    with pytest.raises(ValueError, match="extra"):
        ModelConfig(num_fmap=3)
    with pytest.raises(ValueError, match="levels"):
        ModelConfig(downsample_factors=[(2, 2, 2)], kernel_size_down=[[(3, 3, 3)]] * 3)
    with pytest.raises(ValueError, match="non-zero"):
        ModelConfig(offsets=[(0, 0, 0)])


def test_lsd_head_and_parameter_growth(iso_config):
    with_lsd = iso_config.model_copy(update={"lsd": True})
    assert with_lsd.num_outputs == iso_config.num_affinities + 10
    wider = iso_config.model_copy(update={"num_fmaps": 6})
    assert count_parameters(build_model(wider)) > 3 * count_parameters(build_model(iso_config))
