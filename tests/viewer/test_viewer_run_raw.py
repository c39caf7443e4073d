"""Proofreading opens a run that ``axonseg segment`` made: raw is read where the run recorded it
(never copied into the run), every level of a multiscale raw is used, and a raw that has moved
is a one-line error that says how to point to it (``--raw``)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.io import create_multiscale, mark_complete, open_volume, write_array, write_block
from axonseg.io.pyramid import downsample
from axonseg.viewer.run_data import load_run


@pytest.fixture
def moved_run(segment_run, tmp_path):
    """A copy of the segment run whose recorded raw (a copy of its input) was moved away afterwards."""
    run = tmp_path / "run"
    shutil.copytree(segment_run["run"], run)
    shutil.copytree(segment_run["root"] / "in.zarr", tmp_path / "in.zarr")
    inputs = json.loads((run / "inputs.json").read_text())
    inputs["raw"]["address"] = str(tmp_path / "in.zarr" / "raw")
    (run / "inputs.json").write_text(json.dumps(inputs))
    (tmp_path / "in.zarr").rename(tmp_path / "moved.zarr")
    return run, tmp_path / "moved.zarr" / "raw"


def test_segment_run_opens_with_the_recorded_raw_in_place(segment_run):
    run = load_run(segment_run["run"])
    assert not (segment_run["run"] / "volume.zarr" / "raw").exists()  # nothing was copied into the run
    raw = open_volume(segment_run["raw"])
    assert len(run.raw) == 1 and Path(run.raw[0].source).parent == segment_run["raw"]
    assert isinstance(run.raw[0].data, da.Array)  # lazy: a teravoxel raw is never read whole
    assert np.array_equal(np.asarray(run.raw[0].data[5]), np.asarray(raw.data[5]))
    fragments = run.fragments[0]
    assert run.raw[0].voxel_size == fragments.voxel_size == (30.0, 8.0, 8.0)
    assert run.raw[0].offset == fragments.offset and run.raw[0].spatial_shape == fragments.spatial_shape


def test_moved_raw_names_the_recorded_path_and_the_raw_option(moved_run, tmp_path):
    run, moved = moved_run
    with pytest.raises(InputError) as caught:
        load_run(run)
    message = str(caught.value)
    assert message == (f"{tmp_path / 'in.zarr'}: the run's raw EM (recorded in {run / 'inputs.json'}) is missing: "
                       "moved or deleted? pass --raw ADDRESS to point to where it is now")
    opened = load_run(run, raw=moved)
    assert Path(opened.raw[0].source).parent == moved


def test_cli_proofread_with_moved_raw_is_one_line(moved_run, tmp_path, monkeypatch, capsys):
    from axonseg.cli import main

    run, _ = moved_run
    monkeypatch.setattr(sys, "argv", ["axonseg", "proofread", str(run)])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--raw" in lines[0]
    assert str(tmp_path / "in.zarr") in lines[0]


def test_raw_on_another_grid_is_refused(segment_run, tmp_path):
    other = write_array(tmp_path / "other.zarr", "raw", np.zeros((16, 32, 64), np.uint8), (30.0, 8.0, 8.0))
    with pytest.raises(InputError, match=r"\(16, 32, 64\) voxels.*expected the raw the run was made from"):
        load_run(segment_run["run"], raw=other)


def test_hdf5_raw_opens_lazily(segment_run, tmp_path):
    """``axonseg demo`` records ``file.h5:raw``: an HDF5 dataset opens in place, one level."""
    import h5py

    raw = np.asarray(open_volume(segment_run["raw"]).data)
    with h5py.File(tmp_path / "raw.h5", "w") as handle:
        handle.create_dataset("raw", data=raw).attrs["resolution"] = [30.0, 8.0, 8.0]
    run = load_run(segment_run["run"], raw=f"{tmp_path / 'raw.h5'}:raw")
    assert len(run.raw) == 1 and isinstance(run.raw[0].data, da.Array)
    assert run.raw[0].voxel_size == (30.0, 8.0, 8.0)
    assert np.array_equal(np.asarray(run.raw[0].data[3]), raw[3])


def test_multiscale_raw_opens_every_level_in_world_coordinates(segment_run, tmp_path):
    raw = np.asarray(open_volume(segment_run["raw"]).data)
    store = tmp_path / "pyramid.zarr"
    factors = [(1, 2, 2), (1, 2, 2)]
    group = create_multiscale(store, "raw", raw.shape, raw.dtype, (30.0, 8.0, 8.0), (0.0, 0.0, 0.0), (16, 64, 64),
                              factors=factors)
    level = raw
    for index in range(3):
        write_block(group[f"s{index}"], level, (0, 0, 0))
        if index < 2:
            level = downsample(level, factors[index])
    mark_complete(store, "raw")
    for address in (store / "raw", store / "raw" / "s0"):
        run = load_run(segment_run["run"], raw=address)
        assert [v.spatial_shape for v in run.raw] == [(16, 64, 64), (16, 32, 32), (16, 16, 16)]
        assert [v.voxel_size for v in run.raw] == [(30.0, 8.0, 8.0), (30.0, 16.0, 16.0), (30.0, 32.0, 32.0)]
        # a coarse voxel sits at the centre of the fine voxels it summarises
        assert run.raw[1].offset == (0.0, 4.0, 4.0) and run.raw[2].offset == (0.0, 12.0, 12.0)


def test_raw_option_to_a_missing_path_names_it(segment_run, tmp_path):
    with pytest.raises(InputError) as caught:
        load_run(segment_run["run"], raw=f"{tmp_path / 'nowhere.h5'}:raw")
    assert str(caught.value) == (f"{tmp_path / 'nowhere.h5'}: no such file or folder (--raw): "
                                 "expected the raw EM the run was made from")


def test_raw_without_voxel_size_takes_the_fragments_grid(segment_run, tmp_path):
    raw = np.asarray(open_volume(segment_run["raw"]).data)
    np.save(tmp_path / "raw.npy", raw)
    run = load_run(segment_run["run"], raw=tmp_path / "raw.npy")
    assert run.raw[0].voxel_size == (30.0, 8.0, 8.0) and run.raw[0].offset == (0.0, 0.0, 0.0)


def test_run_made_stage_by_stage_finds_raw_on_the_affinities_record(segment_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(segment_run["run"], run)
    (run / "inputs.json").unlink()  # `axonseg predict` + `agglomerate` record no inputs.json
    opened = load_run(run)
    assert Path(opened.raw[0].source).parent == segment_run["raw"]


def test_run_without_any_raw_says_to_pass_it(tmp_path):
    from axonseg.pipelines.proofread_demo import write_demo_run

    run = write_demo_run(tmp_path / "run", shape=(8, 32, 32), box=(4, 8, 8))
    shutil.rmtree(run / "volume.zarr" / "raw")
    with pytest.raises(InputError) as caught:
        load_run(run)
    assert str(caught.value) == (f"{run}: the run records no raw EM (no inputs.json, no volume.zarr/raw); "
                                 "pass --raw ADDRESS (the raw EM the run was made from)")


def test_run_without_fragments_says_to_segment_first(tmp_path):
    from axonseg.pipelines.proofread_demo import write_demo_run

    run = write_demo_run(tmp_path / "run", shape=(8, 32, 32), box=(4, 8, 8))
    shutil.rmtree(run / "volume.zarr" / "fragments")
    with pytest.raises(InputError) as caught:
        load_run(run)
    assert str(caught.value) == (f"{run / 'volume.zarr' / 'fragments'}: missing; proofreading needs the fragments: "
                                 "run axonseg segment first")
