"""synth writes raw, labels, neurites and skeletons as OME-Zarr; the same seed gives the same store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from axonseg.errors import OutputExistsError
from axonseg.io import open_volume
from axonseg.pipelines.demo import run_demo
from axonseg.pipelines.synth import read_skeletons, write_skeletons, write_synth

SHAPE = (16, 96, 96)


def test_synth_store_roundtrip_and_determinism(tmp_path: Path) -> None:
    first = write_synth(tmp_path / "a.zarr", SHAPE, (30, 8, 8), seed=3, show_progress=False)
    second = write_synth(tmp_path / "b.zarr", SHAPE, (30, 8, 8), seed=3, show_progress=False)
    for name in ("raw", "labels", "neurites"):
        a = open_volume(first.store / name)
        b = open_volume(second.store / name)
        assert a.shape == SHAPE and a.voxel_size == (30.0, 8.0, 8.0)
        np.testing.assert_array_equal(a.data.compute(), b.data.compute())
    labels = open_volume(first.store / "labels").data.compute()
    neurites = open_volume(first.store / "neurites").data.compute()
    assert labels.dtype == np.uint64 and open_volume(first.store / "raw").dtype == np.uint8
    assert (neurites[labels > 0] > 0).all()  # every axon voxel is a neurite voxel
    skeletons = read_skeletons(first.store)
    assert set(skeletons) <= set(np.unique(labels)) - {0}
    assert len(skeletons) == first.n_axons > 0
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_synth(first.store, SHAPE, (30, 8, 8), seed=3, show_progress=False)


def test_skeleton_store_roundtrip(tmp_path: Path) -> None:
    skeletons = {
        5: (np.array([[0, 0, 0], [30, 0, 0], [60, 8, 0]], float), np.array([[0, 1], [1, 2]])),
        2**40: (np.array([[0, 16, 16], [0, 24, 16]], float), np.array([[0, 1]])),
    }
    write_skeletons(tmp_path / "s.zarr", skeletons, (30, 8, 8))
    back = read_skeletons(tmp_path / "s.zarr")
    assert sorted(back) == [5, 2**40]
    for key, (nodes, edges) in skeletons.items():
        np.testing.assert_array_equal(back[key][0], nodes)
        np.testing.assert_array_equal(back[key][1], edges)


def test_demo_runs_the_whole_pipeline_with_the_shipped_model(tmp_path: Path, capsys) -> None:
    """FIB crop -> segment with the shipped 10 nm model -> evaluate -> export -> Brian2, one table."""
    summary = run_demo(tmp_path / "demo", shape=(70, 128, 128), show_progress=False)
    out = capsys.readouterr().out
    assert "axonseg demo" in out and "NERL" in out and "spikes" in out and "PROXY" in out
    assert 0.0 <= summary["nerl"] <= 1.0 and summary["erl_nm"] > 0
    assert summary["voi_split"] >= 0 and summary["voi_merge"] >= 0
    assert summary["skeletons"] > 0 and summary["synapses"] > 0 and summary["proxy_synapses"]
    assert summary["spikes"] > 0
    for key in ("report", "sonata", "raster"):
        assert Path(summary[key]).exists(), key
    assert (Path(summary["sonata"]) / "edges.h5").exists()
    raw = open_volume(tmp_path / "demo" / "fib_crop.zarr" / "raw")
    assert raw.shape == (70, 128, 128) and raw.voxel_size == (10.0, 10.0, 10.0)


def test_huge_shape_is_refused_before_the_store_is_touched(tmp_path: Path) -> None:
    import subprocess
    import sys

    from axonseg.errors import InputError

    store = write_synth(tmp_path / "s.zarr", (8, 32, 32), (30, 8, 8), seed=0, show_progress=False).store
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    with pytest.raises(InputError, match=r"--shape 100000 100000 100000: a synthetic volume of "
                                         r"1,000,000,000,000,000 voxels needs about .* GiB of memory but .* GiB are "
                                         r"available: expected at most about .* voxels"):
        write_synth(store, (100000, 100000, 100000), (30, 8, 8), overwrite=True, show_progress=False)
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before  # --overwrite deleted nothing
    result = subprocess.run([sys.executable, "-m", "axonseg.cli", "synth", str(tmp_path / "big.zarr"),
                             "--shape", "100000", "100000", "100000"], check=False, capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: --shape 100000 100000 100000: a synthetic volume of")
    assert not (tmp_path / "big.zarr").exists()


def test_memory_estimate_covers_the_measured_peak() -> None:
    import tracemalloc

    from axonseg.errors import InputError
    from axonseg.synth import check_synth_size, generate_synth
    from axonseg.synth.generate import SYNTH_BYTES_PER_VOXEL

    shape = (16, 128, 128)
    generate_synth((4, 32, 32), (30, 8, 8), seed=0)  # first-call allocations (numba, caches) off the books
    tracemalloc.start()
    try:
        generate_synth(shape, (30, 8, 8), seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    per_voxel = peak / np.prod(shape)
    assert 20 < per_voxel <= SYNTH_BYTES_PER_VOXEL  # the check neither under- nor wildly over-estimates
    needed = int(np.prod(shape)) * SYNTH_BYTES_PER_VOXEL
    assert check_synth_size(shape, available_bytes=needed) == shape
    with pytest.raises(InputError, match=r"--shape 16 128 128: a synthetic volume of 262,144 voxels needs about 18 MiB of memory but 18 MiB"):
        check_synth_size(shape, available_bytes=needed - 1)


@pytest.mark.parametrize("shape", [(0, 32, 32), (8, 32), (8, 32.5, 32)])
def test_bad_shape_is_one_line_and_writes_nothing(tmp_path: Path, shape) -> None:
    from axonseg.errors import InputError

    with pytest.raises(InputError, match=r"^shape=\[.*\]: expected three positive integers \(z y x, voxels\)$"):
        write_synth(tmp_path / "s.zarr", shape, (30, 8, 8), show_progress=False)
    assert not (tmp_path / "s.zarr").exists()


def test_synth_options_from_the_command_line(tmp_path: Path) -> None:
    from axonseg.errors import ConfigError
    from axonseg.pipelines.synth import parse_synth_options, write_synth

    assert parse_synth_options(["membrane_nm=20", "axon_diameter_nm=80,250", "gap=false", "noise=7"]) == {
        "membrane_nm": 20, "axon_diameter_nm": (80, 250), "gap": False, "noise": 7}
    for bad in ("noise", "=3", "noise=loud", "axon_diameter_nm=1,2,3"):
        with pytest.raises(ConfigError, match="--option"):
            parse_synth_options([bad])
    # a bad option is refused before an existing store is touched
    (tmp_path / "keep.zarr").mkdir()
    (tmp_path / "keep.zarr" / "marker").write_text("mine")
    with pytest.raises(ConfigError, match="membrane_depth"):
        write_synth(tmp_path / "keep.zarr", (8, 32, 32), overwrite=True, options={"membrane_depth": 2.0})
    assert (tmp_path / "keep.zarr" / "marker").read_text() == "mine"
    result = write_synth(tmp_path / "s.zarr", (8, 48, 48), seed=2, show_progress=False, options={"texture": 0.5})
    import zarr

    assert zarr.open_group(str(result.store), mode="r").attrs["axonseg"]["synth"]["options"] == {"texture": 0.5}
