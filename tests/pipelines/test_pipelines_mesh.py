"""``axonseg mesh``: a run's labels -> blockwise pieces -> one watertight precomputed mesh per
segment in RUN/meshes; resume after a failed block; refusals with one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mesh_shapes import paint_sphere, paint_tube

from axonseg.errors import ConfigError, InputError, StageError
from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.io.luts import write_luts
from axonseg.mesh import enclosed_volume_nm3, is_watertight, surface_area_nm2
from axonseg.pipelines.mesh import MeshConfig, load_mesh_config, mesh_ids, read_mesh, run_mesh
from axonseg.pipelines.mesh import blocks as mesh_blocks_module

VOXEL = (30.0, 8.0, 8.0)
OFFSET = (300.0, 80.0, 0.0)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
BLOCKS = (8, 32, 32)


def write_run_array(run: Path, name: str, data: np.ndarray, offset=OFFSET) -> None:
    """``run/volume.zarr/name`` (one level, chunks that tile BLOCKS), marked complete."""
    store = run / "volume.zarr"
    create_multiscale(store, name, data.shape, data.dtype, VOXEL, offset, chunk_shape=BLOCKS)
    write_block(open_level(store, name, 0), data, (0, 0, 0))
    mark_complete(store, name)


@pytest.fixture
def shapes_run(tmp_path: Path):
    """A run whose segmentation holds a sphere (id 5) and an oblique tube (id 2**40 + 9)."""
    labels = np.zeros((24, 96, 96), np.uint64)
    areas = {5: paint_sphere(labels, VOXEL, (360, 250, 250), 210.0, 5),
             2**40 + 9: paint_tube(labels, VOXEL, (150, 560, 120), (570, 640, 650), 90.0, 2**40 + 9)}
    run = tmp_path / "run"
    write_run_array(run, "segmentation", labels)
    return run, labels, areas


def test_meshes_of_a_run_are_watertight_precomputed_files(shapes_run):
    run, labels, areas = shapes_run
    result = run_mesh(run, MeshConfig(block_shape=BLOCKS), show_progress=False)  # 27 blocks
    assert (result.n_segments, result.not_watertight, result.threshold, result.up_to_date) == (2, 0, None, False)
    mesh_dir = run / "meshes"
    assert json.loads((mesh_dir / "info").read_text()) == {"@type": "neuroglancer_legacy_mesh"}
    assert mesh_ids(run).tolist() == sorted(areas)
    total_faces = 0
    for segment_id, area in areas.items():
        assert json.loads((mesh_dir / f"{segment_id}:0").read_text()) == {"fragments": [str(segment_id)]}
        mesh = read_mesh(run, segment_id)
        total_faces += mesh.n_faces
        assert is_watertight(mesh)
        assert surface_area_nm2(mesh) == pytest.approx(area, rel=0.05)
        assert enclosed_volume_nm3(mesh) == pytest.approx((labels == segment_id).sum() * np.prod(VOXEL), rel=0.05)
        # the fragment file holds x y z in world nm: the run's offset is in, the axes reversed
        payload = (mesh_dir / str(segment_id)).read_bytes()
        xyz = np.frombuffer(payload, "<f4", count=3 * mesh.n_vertices, offset=4).reshape(-1, 3)
        assert np.array_equal(xyz, mesh.vertices_nm[:, ::-1])
        inside = np.argwhere(labels == segment_id)
        centre_nm = np.asarray(OFFSET) + (inside.mean(axis=0) + 0.5) * VOXEL
        assert np.allclose(mesh.vertices_nm.mean(axis=0), centre_nm, atol=2 * VOXEL[0])
    assert result.n_faces == total_faces
    config = yaml.safe_load((mesh_dir / "config.yaml").read_text())
    assert config["job"] == "mesh" and config["config"]["block_shape"] == list(BLOCKS)
    # block pieces and done markers are gone; a second run finds everything up to date
    assert not (mesh_dir / "blocks").exists() and not (run / "blocks").exists()
    before = (mesh_dir / "5").stat().st_mtime_ns
    again = run_mesh(run, MeshConfig(block_shape=BLOCKS), show_progress=False)
    assert again.up_to_date and again.n_faces == result.n_faces
    assert (mesh_dir / "5").stat().st_mtime_ns == before
    # another config meshes again and replaces the files
    sphere_faces = read_mesh(run, 5).n_faces
    coarse = run_mesh(run, MeshConfig(block_shape=BLOCKS, reduction_factor=0, smooth_iterations=0), show_progress=False)
    assert not coarse.up_to_date and coarse.n_faces > 3 * result.n_faces
    assert read_mesh(run, 5).n_faces == coarse.n_faces - read_mesh(run, 2**40 + 9).n_faces > 3 * sphere_faces


def test_result_does_not_depend_on_the_block_shape(shapes_run):
    run, _, _ = shapes_run
    run_mesh(run, MeshConfig(block_shape=(24, 96, 96)), show_progress=False)
    whole = {i: surface_area_nm2(read_mesh(run, i)) for i in mesh_ids(run).tolist()}
    run_mesh(run, MeshConfig(block_shape=(10, 40, 24)), show_progress=False)
    for segment_id, area in whole.items():
        mesh = read_mesh(run, segment_id)
        assert is_watertight(mesh)
        assert surface_area_nm2(mesh) == pytest.approx(area, rel=0.015)


def test_fragments_with_lut_and_resume_after_a_failed_block(tmp_path, monkeypatch):
    labels = np.zeros((12, 64, 96), np.uint64)
    paint_tube(labels, VOXEL, (180, 256, 40), (180, 256, 720), 90.0, 1)
    fragments = labels.copy()
    fragments[:, :, 48:][fragments[:, :, 48:] == 1] = 2  # the tube is two fragments
    run = tmp_path / "run"
    write_run_array(run, "fragments", fragments)
    write_luts(run, {0.3: (np.array([1, 2]), np.array([1, 2])), 0.7: (np.array([1, 2]), np.array([5, 5]))})
    config = MeshConfig(block_shape=(12, 32, 32))
    # two LUTs and no evaluation: the run folder's one rule takes the median (the lower middle one)
    result = run_mesh(run, config, show_progress=False)
    assert result.threshold == 0.3 and mesh_ids(run).tolist() == [1, 2]
    assert all(is_watertight(read_mesh(run, i)) for i in (1, 2))

    real = mesh_blocks_module.mesh_block
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(mesh_blocks_module, "mesh_block", failing)
    merged = config.model_copy(update={"threshold": 0.7})
    with pytest.raises(RuntimeError, match="killed"):
        run_mesh(run, merged, scheduler="synchronous", show_progress=False)
    assert len(calls) == 4
    # the finished meshes of threshold 0.3 are still up to date; another config may not resume
    assert run_mesh(run, config, show_progress=False).up_to_date
    with pytest.raises(StageError, match="changed: .*threshold"):
        run_mesh(run, config.model_copy(update={"smooth_iterations": 5}), scheduler="synchronous", show_progress=False)
    result = run_mesh(run, merged, scheduler="synchronous", show_progress=False)
    assert len(calls) == 4 + 6 - 3  # 6 blocks: the 3 finished ones are not redone
    assert result.threshold == 0.7 and mesh_ids(run).tolist() == [5]
    resumed = read_mesh(run, 5)
    assert is_watertight(resumed)  # the two fragments' surfaces are one closed tube now
    monkeypatch.setattr(mesh_blocks_module, "mesh_block", real)
    fresh = run_mesh(run, merged, restart=True, show_progress=False)
    assert not fresh.up_to_date
    again = read_mesh(run, 5)
    assert np.array_equal(again.faces, resumed.faces) and np.allclose(again.vertices_nm, resumed.vertices_nm)


def test_bad_inputs_fail_in_one_line_before_writing(tmp_path, shapes_run):
    with pytest.raises(InputError, match="not a run folder"):
        run_mesh(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    (empty / "volume.zarr").mkdir(parents=True)
    with pytest.raises(InputError, match="no segmentation and no fragments with LUTs"):
        run_mesh(empty)
    assert not (empty / "meshes").exists()
    run, _, _ = shapes_run
    with pytest.raises(InputError, match=r"no finished meshes in .*meshes; run `axonseg mesh"):
        read_mesh(run, 5)
    with pytest.raises(InputError, match="LUTs only for thresholds"):
        run_mesh(run, MeshConfig(threshold=0.5))
    run_mesh(run, MeshConfig(block_shape=BLOCKS), show_progress=False)
    with pytest.raises(InputError, match=r"no mesh for segment 77: the meshes hold 2 segments"):
        read_mesh(run, 77)
    with pytest.raises(InputError, match="0 is background"):
        read_mesh(run, 0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("block_shape: [8, 32, 32]\nsmoothing: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'smoothing'"):
        load_mesh_config(bad)
    bad.write_text("smooth_lambda: 0.6\nsmooth_mu: -0.5\n")
    with pytest.raises(ConfigError, match="smooth_mu"):
        load_mesh_config(bad)
    bad.write_text("block_shape: [8, 0, 32]\n")
    with pytest.raises(ConfigError, match="block_shape"):
        load_mesh_config(bad)


def test_shipped_config_is_the_default():
    assert load_mesh_config(CONFIGS / "mesh.yaml") == MeshConfig()


def test_cli_meshes_a_run_and_errors_in_one_line(shapes_run, tmp_path):
    from typer.testing import CliRunner

    from axonseg.cli import app

    run, _, _ = shapes_run
    done = CliRunner().invoke(app, ["mesh", str(run), "--block-shape", "12", "48", "48"])
    assert done.exit_code == 0, done.output
    assert "2 meshes" in done.output and "0 not watertight" in done.output
    assert mesh_ids(run).tolist() == [5, 2**40 + 9]
    assert yaml.safe_load((run / "meshes" / "config.yaml").read_text())["config"]["block_shape"] == [12, 48, 48]
    failed = subprocess.run([sys.executable, "-m", "axonseg.cli", "mesh", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, timeout=300)
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert failed.returncode == 1 and lines == [f"error: {tmp_path / 'nowhere'}: not a run folder (no volume.zarr inside)"]
