"""Mesh measures (area, volume, watertightness) on meshes with known answers, and smoothing."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from axonseg.errors import InputError
from axonseg.mesh import Mesh, MeshParams, enclosed_volume_nm3, is_watertight, surface_area_nm2, taubin_smooth
from axonseg.mesh.geometry import drop_unused_vertices


def _box(size=(3.0, 4.0, 5.0)) -> Mesh:
    """A closed box of ``size`` nm (zyx) with outward triangles."""
    corners = np.array([[z, y, x] for z in (0, 1) for y in (0, 1) for x in (0, 1)], dtype=np.float64) * size
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [tri for a, b, c, d in quads for tri in ((a, b, c), (a, c, d))]
    mesh = Mesh(corners, np.asarray(faces))
    if enclosed_volume_nm3(mesh) < 0:  # the quads above are wound one way; make them outward
        mesh = Mesh(corners, np.asarray(faces)[:, ::-1])
    return mesh


def test_box_measures():
    box = _box()
    assert surface_area_nm2(box) == pytest.approx(2 * (3 * 4 + 4 * 5 + 3 * 5))
    assert enclosed_volume_nm3(box) == pytest.approx(60.0)
    assert is_watertight(box)
    assert not is_watertight(Mesh(box.vertices_nm, box.faces[:-1]))  # a hole
    doubled = Mesh(box.vertices_nm, np.concatenate([box.faces, box.faces[:1]]))
    assert not is_watertight(doubled)  # an edge of three faces
    assert not is_watertight(Mesh.empty())
    # measures do not depend on where the box is
    moved = Mesh(box.vertices_nm + 1e5, box.faces)
    assert enclosed_volume_nm3(moved) == pytest.approx(60.0, rel=1e-3)


def test_smoothing_keeps_topology_and_rounds_a_box():
    box = _box((10.0, 10.0, 10.0))
    smooth = taubin_smooth(box, iterations=5)
    assert np.array_equal(smooth.faces, box.faces) and is_watertight(smooth)
    assert surface_area_nm2(smooth) < surface_area_nm2(box)  # corners pulled in
    assert np.allclose(smooth.vertices_nm.mean(axis=0), box.vertices_nm.mean(axis=0), atol=1e-3)
    assert taubin_smooth(box, iterations=0) is box


def test_unused_vertices_are_dropped_and_bad_faces_refused():
    vertices = np.arange(15, dtype=np.float32).reshape(5, 3)
    kept, faces = drop_unused_vertices(vertices, np.array([[0, 2, 4]]))
    assert np.array_equal(kept, vertices[[0, 2, 4]]) and faces.tolist() == [[0, 1, 2]]
    with pytest.raises(InputError, match="outside 0..4"):
        Mesh(vertices, np.array([[0, 1, 5]]))


def test_taubin_steps_are_checked():
    with pytest.raises(ValidationError, match="smooth_mu"):
        MeshParams(smooth_lambda=0.6, smooth_mu=-0.5)
    with pytest.raises(ValidationError):
        MeshParams(reduction_factor=-1)
