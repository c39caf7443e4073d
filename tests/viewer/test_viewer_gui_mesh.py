"""The selected segment's mesh in 3D (run under ``xvfb-run``; skipped without a display)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a"),
]
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")


@pytest.fixture
def run_copy(demo_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(demo_run, target)
    return target


def _open(make_napari_viewer, run_dir):
    from axonseg.viewer import open_proofread_viewer

    viewer = open_proofread_viewer(run_dir, viewer=make_napari_viewer(show=True), user="tester")
    return viewer, viewer.window._axonseg_controller


def test_selected_segment_mesh_shows_in_3d(make_napari_viewer, run_copy):
    from axonseg.pipelines.mesh import MeshConfig, mesh_ids, read_mesh, run_mesh

    result = run_mesh(run_copy, MeshConfig(block_shape=(8, 32, 32)), show_progress=False)
    viewer, controller = _open(make_napari_viewer, run_copy)
    widget = viewer.window._axonseg_widget
    assert not controller.show_mesh() and controller.message == "mesh: select a segment first"

    segment = int(mesh_ids(run_copy)[len(mesh_ids(run_copy)) // 2])
    controller.selected = [segment]
    viewer.layers["raw"].visible = False
    before = viewer.screenshot(canvas_only=True)
    widget.buttons["mesh 3D"].click()
    assert "mesh" in viewer.layers and viewer.dims.ndisplay == 3
    layer = viewer.layers["mesh"]
    assert type(layer).__name__ == "Surface"
    expected = read_mesh(run_copy, segment)
    assert np.allclose(layer.data[0], expected.vertices_nm) and np.array_equal(layer.data[1], expected.faces)
    # on the label layers' grid: half a voxel back (napari centres voxel i at offset + i * voxel)
    assert np.allclose(layer.translate, -0.5 * controller.run.voxel_size)
    # the mesh lies where the segment's voxels are, in world nm
    voxels = np.argwhere(controller.lut.apply(np.asarray(controller.run.fragments[0].data)) == segment)
    centre = controller.run.offset + (voxels.mean(axis=0) + 0.5) * controller.run.voxel_size
    assert np.allclose(expected.vertices_nm.mean(axis=0), centre, atol=2 * controller.run.voxel_size.max())
    assert np.allclose(layer.vertex_colors[0], viewer.layers["segmentation"].get_color(segment))
    assert f"mesh of segment {segment}" in controller.message and f"{expected.n_faces} triangles" in widget.status.text()
    after = viewer.screenshot(canvas_only=True)
    assert not np.array_equal(before, after)
    assert result.n_segments == len(mesh_ids(run_copy))

    # a segment changed by an edit after meshing: its old mesh is not shown as the new segment
    other = int(mesh_ids(run_copy)[0])
    controller.selected = [segment, other]
    record = controller.merge_selected()
    assert record is not None and controller.selected == [record.children[0]]
    assert not controller.show_mesh()
    assert f"segment {record.children[0]} was changed by a proofreading edit" in controller.message
    assert np.allclose(viewer.layers["mesh"].data[0], expected.vertices_nm)
    # an untouched segment still shows; one without any mesh says so
    untouched = next(int(i) for i in mesh_ids(run_copy)[::-1] if int(i) not in (segment, other))
    controller.selected = [untouched]
    assert controller.show_mesh()
    assert np.allclose(viewer.layers["mesh"].data[0], read_mesh(run_copy, untouched).vertices_nm)
    controller.selected = [int(mesh_ids(run_copy).max()) + 1000]
    assert not controller.show_mesh()
    assert f"no mesh for segment {int(mesh_ids(run_copy).max()) + 1000}" in controller.message


def test_run_without_meshes_says_how_to_make_them(make_napari_viewer, run_copy):
    viewer, controller = _open(make_napari_viewer, run_copy)
    controller.selected = [1]
    assert not controller.show_mesh()
    assert controller.message.startswith("mesh: ") and "run `axonseg mesh" in controller.message
    assert "mesh" not in viewer.layers and viewer.dims.ndisplay == 2
