"""Meshes of a sphere and a tube, cut by block faces: area within 5% of the analytic value,
watertight after the blockwise join, and the same surface as meshing the volume whole."""

from __future__ import annotations

import numpy as np
import pytest
from mesh_shapes import paint_sphere, paint_tube

from axonseg.mesh import MeshParams, enclosed_volume_nm3, is_watertight, mesh_labels, surface_area_nm2

OFFSET = (1000.0, -200.0, 50.0)
# voxel size (nm), volume shape (voxels), sphere centre and radius, tube ends and radius (nm);
# both objects lie inside the volume, apart from each other
CASES = {
    "anisotropic": ((30.0, 8.0, 8.0), (32, 128, 112), ((480, 330, 400), 300.0), ((290, 820, 130), (670, 870, 760), 120.0)),
    "isotropic": ((8.0, 8.0, 8.0), (64, 80, 80), ((256, 200, 260), 180.0), ((150, 480, 100), (360, 520, 540), 72.0)),
}


def _shapes(voxel, shape, sphere, tube):
    labels = np.zeros(shape, np.uint64)
    areas = {
        11: paint_sphere(labels, voxel, *sphere, 11),
        # an oblique tube: not aligned with any axis, so no face of it is a plane of voxels
        22: paint_tube(labels, voxel, *tube, 22),
    }
    assert not (labels[0].any() or labels[-1].any() or labels[:, 0].any() or labels[:, -1].any()
                or labels[..., 0].any() or labels[..., -1].any()), "the shapes must not touch the volume border"
    return labels, areas


@pytest.mark.parametrize("case", sorted(CASES))
def test_blockwise_sphere_and_tube_are_watertight_with_analytic_area(case):
    voxel, shape, sphere, tube = CASES[case]
    labels, areas = _shapes(voxel, shape, sphere, tube)
    blocks = tuple(-(-s // 3) for s in shape)  # 27 blocks: block faces cut both objects
    meshes = mesh_labels(labels, voxel, OFFSET, block_shape=blocks)
    whole = mesh_labels(labels, voxel, OFFSET)
    assert sorted(meshes) == sorted(whole) == [11, 22]
    for segment_id, area in areas.items():
        mesh = meshes[segment_id]
        assert is_watertight(mesh), (case, segment_id)
        assert surface_area_nm2(mesh) == pytest.approx(area, rel=0.05), (case, segment_id)
        # same surface as one block over the whole volume
        assert surface_area_nm2(mesh) == pytest.approx(surface_area_nm2(whole[segment_id]), rel=0.01)
        # the enclosed volume is the voxels' (outward winding, no shrinking by the smoothing)
        voxels_nm3 = (labels == segment_id).sum() * np.prod(voxel)
        assert enclosed_volume_nm3(mesh) == pytest.approx(voxels_nm3, rel=0.03)
        # world nm: the offset is applied, and the surface hugs the voxels it encloses (voxel i
        # spans offset + [i, i + 1) * voxel; smoothing moves the poles by less than a voxel)
        inside = np.argwhere(labels == segment_id)
        low = np.asarray(OFFSET) + inside.min(axis=0) * voxel
        high = np.asarray(OFFSET) + (inside.max(axis=0) + 1) * voxel
        assert np.all(np.abs(mesh.vertices_nm.min(axis=0) - low) < np.asarray(voxel))
        assert np.all(np.abs(mesh.vertices_nm.max(axis=0) - high) < np.asarray(voxel))
        # simplification kept ~1/10 of the triangles even with the seams' exact vertices
        assert mesh.n_faces < 0.35 * surface_area_nm2(mesh) / (0.5 * voxel[1] * voxel[2])


def test_without_simplification_blocks_give_exactly_the_whole_volume_mesh():
    voxel, shape, sphere, tube = CASES["anisotropic"]
    labels, _ = _shapes(voxel, shape, sphere, tube)
    exact = MeshParams(reduction_factor=0, smooth_iterations=0)
    whole = mesh_labels(labels, voxel, OFFSET, exact)
    blocks = mesh_labels(labels, voxel, OFFSET, exact, block_shape=(10, 40, 36))
    for segment_id in whole:
        assert blocks[segment_id].n_faces == whole[segment_id].n_faces
        assert blocks[segment_id].n_vertices == whole[segment_id].n_vertices
        assert surface_area_nm2(blocks[segment_id]) == pytest.approx(surface_area_nm2(whole[segment_id]), rel=1e-9)
        assert is_watertight(blocks[segment_id])


def test_marching_cubes_alone_overestimates_the_area_and_smoothing_fixes_it():
    """Why smoothing is on by default: the voxel staircase is ~10-20% too large."""
    voxel, shape, sphere, tube = CASES["anisotropic"]
    labels, areas = _shapes(voxel, shape, sphere, tube)
    rough = mesh_labels(labels, voxel, params=MeshParams(smooth_iterations=0))
    smooth = mesh_labels(labels, voxel)
    for segment_id, area in areas.items():
        assert surface_area_nm2(rough[segment_id]) > 1.07 * area
        assert abs(surface_area_nm2(smooth[segment_id]) / area - 1) < 0.05
