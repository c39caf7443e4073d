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
