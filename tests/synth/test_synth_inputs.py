"""Bad inputs, options, imaging defects and the speed of the synthetic generator."""

from __future__ import annotations

import time

import numpy as np
import pytest

from axonseg.errors import ConfigError, InputError
from axonseg.synth import generate_synth, make_options


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"shape": (0, 64, 64)}, "shape"),
        ({"shape": (16, 64)}, "shape"),
        ({"shape": (16.5, 64, 64)}, "shape"),
        ({"shape": "big"}, "shape"),
        ({"shape": None}, "shape"),
        ({"voxel_size": (0.0, 8.0, 8.0)}, "voxel_size"),
        ({"voxel_size": (30.0, 8.0)}, "voxel_size"),
        ({"voxel_size": "thirty"}, "voxel_size"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_inputs_raise_input_error(kwargs, match) -> None:
    args = {"shape": (8, 32, 32), "voxel_size": (30.0, 8.0, 8.0), "seed": 0, **kwargs}
    with pytest.raises(InputError, match=match) as info:
        generate_synth(**args)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "options,match",
    [
        ({"colour": "blue"}, "unknown synth option 'colour'"),
        ({"fill_fraction": 1.5}, "fill_fraction"),
        ({"noise": -1.0}, "noise"),
        ({"axon_diameter_nm": (300.0, 100.0)}, "axon_diameter_nm"),
        ({"dendrite_fraction": 0.95}, "dendrite_fraction"),
        ({"skeleton_step_nm": 0.0}, "skeleton_step_nm"),
        ({"membrane_depth": 1.2}, "membrane_depth"),
        ({"texture": -0.5}, "texture"),
    ],
)
def test_bad_options_raise_config_error(options, match) -> None:
    with pytest.raises(ConfigError, match=match):
        generate_synth(shape=(8, 32, 32), **options)


def test_options_are_recorded() -> None:
    assert make_options(noise=3.0).noise == 3.0
    vol = generate_synth(shape=(8, 48, 48), seed=1, noise=0.0, skeleton_step_nm=20.0)
    assert vol.options.noise == 0.0 and vol.seed == 1
    nodes, edges = next(iter(vol.skeletons.values()))
    steps = np.linalg.norm(nodes[edges[:, 0]] - nodes[edges[:, 1]], axis=1)
    assert 15.0 < np.median(steps) <= 20.5


def test_missing_and_misaligned_sections() -> None:
    clean = generate_synth(shape=(12, 96, 96), seed=9, misaligned_rate=0.0, missing_rate=0.0)
    assert clean.defects.missing == [] and clean.defects.misaligned == {}
    missing = generate_synth(shape=(12, 96, 96), seed=9, misaligned_rate=0.0, missing_rate=1.0)
    assert missing.defects.missing == list(range(12))
    assert all(missing.raw[z].std() == 0 for z in range(12))
    shifted = generate_synth(shape=(12, 96, 96), seed=9, misaligned_rate=1.0, missing_rate=0.0, noise=0.0)
    flat = generate_synth(shape=(12, 96, 96), seed=9, misaligned_rate=0.0, missing_rate=0.0, noise=0.0)
    assert len(shifted.defects.misaligned) >= 9 and 0 not in shifted.defects.misaligned
    # The labels keep the true geometry; only the raw section moves, by the recorded shift.
    assert np.array_equal(shifted.labels, flat.labels)
    z, (dy, dx) = next(iter(shifted.defects.misaligned.items()))
    assert abs(dy) <= 20 and abs(dx) <= 20
    inner = (slice(20, 76), slice(20, 76))
    moved = np.roll(flat.raw[z], (dy, dx), axis=(0, 1))[inner].astype(float)
    assert np.abs(moved - shifted.raw[z][inner]).mean() < 3.0
    assert np.abs(flat.raw[z][inner].astype(float) - shifted.raw[z][inner]).mean() > 10.0


def test_default_volume_is_fast() -> None:
    generate_synth(shape=(8, 32, 32), seed=0)  # compile or load the numba kernels first
    start = time.perf_counter()
    vol = generate_synth(shape=(64, 256, 256), voxel_size=(30.0, 8.0, 8.0), seed=0)
    seconds = time.perf_counter() - start
    print(f"64x256x256 generated in {seconds:.1f} s")
    assert vol.raw.shape == (64, 256, 256)
    assert seconds < 60.0


def test_membrane_darkness_and_texture_change_the_look() -> None:
    """membrane_depth scales the membranes' contrast and texture the cytoplasm grain; the
    geometry (labels) stays that of the seed, and the defaults give the stock look bit for bit."""
    common = dict(shape=(8, 96, 96), seed=5, noise=0.0, misaligned_rate=0.0, missing_rate=0.0, section_jitter=0.0)
    stock = generate_synth(**common)
    np.testing.assert_array_equal(generate_synth(**common, membrane_depth=0.74, texture=1.0).raw, stock.raw)
    faint = generate_synth(**common, membrane_depth=0.3)
    flat = generate_synth(**common, texture=0.0)
    np.testing.assert_array_equal(faint.neurites, stock.neurites)
    # membranes: the 5% darkest voxels of the cells' boundary band rise towards the cytoplasm grey
    boundary = np.zeros(stock.neurites.shape, bool)
    boundary[:, 1:] |= stock.neurites[:, 1:] != stock.neurites[:, :-1]
    boundary[:, :, 1:] |= stock.neurites[:, :, 1:] != stock.neurites[:, :, :-1]
    dark = lambda v: float(np.percentile(v.raw[boundary], 5))  # noqa: E731
    assert dark(faint) > dark(stock) + 20
    # texture is cytoplasm grain: it moves the neurites' grey levels in proportion to its scale
    # (measured 4.2 grey levels from 0 to 1 and 8.5 from 0 to 2) and leaves the extracellular
    # space clear (0.3, the blur carrying some grain across membranes)
    double = generate_synth(**common, texture=2.0)
    change = lambda v: np.abs(v.raw.astype(np.float64) - flat.raw.astype(np.float64))  # noqa: E731
    cells = stock.neurites > 0
    assert change(stock)[cells].mean() > 3.0 and change(stock)[~cells].mean() < 0.5
    assert 1.8 < change(double)[cells].mean() / change(stock)[cells].mean() < 2.2
