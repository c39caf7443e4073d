"""The anisotropic model's training sets (scripts/aniso_training_set.py, issue #15): recipe v2
must keep reproducing aniso_v2's volumes, and recipe v3 must draw inside its ranges, keep its
validation and held-out volumes apart from training, and keep its new held-out looks outside
the ranges it trains on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from axonseg.synth import generate_synth, make_options

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recipes():
    spec = importlib.util.spec_from_file_location("aniso_training_set", ROOT / "scripts" / "aniso_training_set.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_v2_still_makes_aniso_v2s_volumes(recipes) -> None:
    """Values copied from the settings.json of aniso_v2's training set (2026-12-03)."""
    volumes = recipes.plan(8, 2, "v2")
    assert volumes["train_00"]["seed"] == 2000 and volumes["train_00"]["voxel_size"] == [35.75, 8.63, 8.63]
    assert volumes["train_00"]["options"]["noise"] == 33.882
    assert volumes["train_00"]["options"]["axon_diameter_nm"] == (76.3, 306.9)
    assert set(volumes) == {f"train_{i:02d}" for i in range(8)} | {"val_00", "val_01", "test_00", "test_01", "test_02"}
    assert all("gap" not in v["options"] and "fill_fraction" not in v["options"] for v in volumes.values())


def test_v3_draws_inside_its_ranges_and_every_look_is_valid(recipes) -> None:
    ranges = recipes.RECIPES["v3"]
    volumes = recipes.plan(16, 2, "v3")
    drawn = [v for name, v in volumes.items() if not name.startswith("test")]
    for v in drawn:
        make_options(**v["options"])  # a bad key or value would raise ConfigError
        z, y, x = v["voxel_size"]
        assert ranges["voxel_z"][0] <= z <= ranges["voxel_z"][1] and ranges["voxel_yx"][0] <= y == x <= ranges["voxel_yx"][1]
        for key in ("noise", "texture", "membrane_depth", "fill_fraction", "mitochondria_per_um"):
            low, high = ranges[key]
            assert low <= v["options"][key] <= high, key
    gaps = [v["options"]["gap"] for v in drawn]
    assert 0 < sum(gaps) < len(gaps)  # both kinds of boundary are in the set
    seeds = {name: v["seed"] for name, v in volumes.items()}
    v2_seeds = {v["seed"] for name, v in recipes.plan(8, 2, "v2").items() if not name.startswith("test")}
    assert not v2_seeds & {s for n, s in seeds.items() if not n.startswith("test")}
    assert len(set(seeds.values())) == len(seeds)


def test_v3_held_out_looks_lie_outside_the_v3_ranges(recipes) -> None:
    ranges = recipes.RECIPES["v3"]
    for name, look in recipes.TEST_LOOKS_V3.items():
        make_options(**look["options"])
        outside = [key for key, value in look["options"].items()
                   if key in ranges and not ranges[key][0] <= float(value) <= ranges[key][1]]
        assert len(outside) >= 4, (name, outside)


def test_touching_neurites_without_a_gap_have_no_extracellular_space_between_them() -> None:
    """v3 draws `gap`; without it two neurites touch directly, which changes what a boundary looks like."""
    kwargs = dict(shape=(8, 96, 96), voxel_size=(30.0, 8.0, 8.0), seed=4, fill_fraction=0.95)
    with_gap = generate_synth(**kwargs, gap=True).neurites
    without = generate_synth(**kwargs, gap=False).neurites
    # voxels whose y neighbour belongs to another neurite (both labelled): the gap removes them all
    def touching(lab: np.ndarray) -> int:
        a, b = lab[:, 1:, :], lab[:, :-1, :]
        return int(((a != b) & (a > 0) & (b > 0)).sum())
    assert touching(with_gap) == 0
    assert touching(without) > 100


def test_parallel_jobs_make_the_same_volumes(tmp_path) -> None:
    """--jobs N makes each volume in its own process: the volumes depend on their seed and look
    only, so they equal the one-at-a-time ones; --only skips the other sets."""
    import subprocess
    import sys

    import zarr

    def make(out: Path, *extra: str) -> None:
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "aniso_training_set.py"), "--out", str(out),
                               "--n-train", "2", "--n-val", "1", "--shape", "16", "64", "64", *extra],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]

    make(tmp_path / "one", "--only", "train")
    make(tmp_path / "two", "--only", "train", "val", "--jobs", "2")
    assert sorted(p.name for p in (tmp_path / "one").glob("*.zarr")) == ["train_00.zarr", "train_01.zarr"]
    assert sorted(p.name for p in (tmp_path / "two").glob("*.zarr")) == ["train_00.zarr", "train_01.zarr", "val_00.zarr"]
    assert not list((tmp_path / "two").glob(".*.tmp"))  # each volume's own work folder is gone
    for name in ("train_00", "train_01"):
        for array in ("raw/s0", "neurites/s0"):
            one = zarr.open_array(str(tmp_path / "one" / f"{name}.zarr" / array), mode="r")[:]
            two = zarr.open_array(str(tmp_path / "two" / f"{name}.zarr" / array), mode="r")[:]
            assert one.any() and np.array_equal(one, two), (name, array)
