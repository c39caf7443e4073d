"""Per-block meshing and the join: rims on shared block faces coincide exactly, simplification
never moves them, and merging equal grid keys is what closes the seams."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from axonseg.errors import InputError
from axonseg.mesh import (
    Mesh,
    MeshParams,
    MeshPiece,
    boundary_vertices,
    edge_face_counts,
    enclosed_volume_nm3,
    is_watertight,
    join_pieces,
    mesh_block,
    mesh_labels,
    pack_grid_keys,
    surface_area_nm2,
)

VOXEL = (30.0, 8.0, 8.0)


def _ball(shape=(20, 40, 40), radius=7.0):
    z, y, x = np.indices(shape)
    centre = (np.asarray(shape) - 1) / 2
    # radius in z voxels of 30 nm; in y/x voxels of 8 nm the ball is as wide in nm
    distance = np.sqrt(((z - centre[0]) * 30) ** 2 + ((y - centre[1]) * 8) ** 2 + ((x - centre[2]) * 8) ** 2)
    return (distance <= radius * 30).astype(np.uint32)


def _two_halves(labels, cut, params):
    """Pieces of the blocks [0, cut) and [cut, end) along z (the first reads one plane more)."""
    closed_low = ((True, True, True), (False, True, True))
    closed_high = ((False, True, True), (True, True, True))
    low = mesh_block(labels[: cut + 1], VOXEL, (0, 0, 0), (0, 0, 0), params, closed_low)
    high = mesh_block(labels[cut:], VOXEL, (0, 0, 0), (cut, 0, 0), params, closed_high)
    return low, high


@pytest.mark.parametrize("params", [MeshParams(reduction_factor=0), MeshParams(reduction_factor=50, max_error_nm=60)])
def test_rims_of_neighbour_blocks_coincide_and_simplification_keeps_them(params):
    labels = _ball()
    low, high = _two_halves(labels, 10, params)
    a, b = low[1], high[1]
    assert len(a.rim) > 20 and len(a.rim) == len(b.rim)
    # both rims lie on the shared plane of voxel centres z = 10 (world: (10 + 0.5) * 30 nm)
    for piece in (a, b):
        assert np.allclose(piece.mesh.vertices_nm[piece.rim, 0], 10.5 * 30)
        assert set(piece.rim.tolist()) == set(boundary_vertices(piece.mesh.faces).tolist())
    # same keys, same positions: the two blocks made the very same rim vertices
    order_a, order_b = np.argsort(a.rim_keys), np.argsort(b.rim_keys)
    assert np.array_equal(a.rim_keys[order_a], b.rim_keys[order_b])
    assert np.array_equal(a.mesh.vertices_nm[a.rim[order_a]], b.mesh.vertices_nm[b.rim[order_b]])


def test_join_merges_the_seam_and_concatenation_alone_leaks():
    labels = _ball()
    low, high = _two_halves(labels, 10, MeshParams(reduction_factor=20))
    pieces = [low[1], high[1]]
    concatenated = Mesh(np.concatenate([p.mesh.vertices_nm for p in pieces]),
                        np.concatenate([pieces[0].mesh.faces, pieces[1].mesh.faces + pieces[0].mesh.n_vertices]))
    assert not is_watertight(concatenated)  # two open cups
    joined = join_pieces(pieces)
    assert is_watertight(joined)
    assert joined.n_vertices == concatenated.n_vertices - len(pieces[0].rim)
    assert joined.n_faces == concatenated.n_faces
    assert surface_area_nm2(joined) == pytest.approx(surface_area_nm2(concatenated), rel=1e-6)
    assert enclosed_volume_nm3(joined) > 0  # wound outwards
    # the whole ball in one block is closed by itself and needs no join
    whole = mesh_block(labels, VOXEL, params=MeshParams(reduction_factor=0))[1]
    assert len(whole.rim) == 0 and is_watertight(whole.mesh)


def test_dense_touching_segments_are_all_watertight_and_match_the_whole_volume():
    """Voronoi cells with speckle holes: every segment touches others and the block faces."""
    rng = np.random.default_rng(0)
    shape = (24, 64, 64)
    seeds = np.zeros(shape, np.uint64)
    seeds[tuple(rng.integers(0, np.asarray(shape)[:, None], (3, 30)))] = np.arange(1, 31) * 1000
    _, nearest = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[tuple(nearest)]
    labels[rng.random(shape) < 0.02] = 0
    exact = MeshParams(reduction_factor=0, smooth_iterations=0)
    whole = mesh_labels(labels, VOXEL, params=exact)
    blocks = mesh_labels(labels, VOXEL, params=exact, block_shape=(8, 20, 24))
    assert sorted(blocks) == sorted(whole) == sorted(int(i) for i in np.unique(labels) if i)
    for segment_id, mesh in blocks.items():
        assert is_watertight(mesh), segment_id
        assert mesh.n_faces == whole[segment_id].n_faces
        assert enclosed_volume_nm3(mesh) == pytest.approx(enclosed_volume_nm3(whole[segment_id]), rel=1e-9)
    simplified = mesh_labels(labels, VOXEL, block_shape=(8, 20, 24))
    assert all(is_watertight(mesh) for mesh in simplified.values())


def test_volume_border_closes_a_segment_cut_by_it():
    labels = np.zeros((6, 10, 12), np.uint8)
    labels[:, 3:7, 4:9] = 5  # touches the z faces of the volume
    mesh = mesh_labels(labels, VOXEL, params=MeshParams(reduction_factor=0, smooth_iterations=0),
                       block_shape=(3, 5, 6))[5]
    assert is_watertight(mesh)
    # a box of voxels: the marching-cubes surface lies on the voxels' faces except at the
    # edges and corners, where it cuts the corner; the volume is the box minus those cuts
    assert enclosed_volume_nm3(mesh) == pytest.approx(labels.astype(bool).sum() * np.prod(VOXEL), rel=0.2)
    assert mesh.vertices_nm[:, 0].min() == pytest.approx(0.0) and mesh.vertices_nm[:, 0].max() == pytest.approx(180.0)


def test_grid_keys_are_unique_and_bounded():
    points = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, -1, -1], [2_000_000, 3, 4]])
    keys = pack_grid_keys(points)
    assert len(np.unique(keys)) == len(points)
    with pytest.raises(InputError, match="voxels per axis"):
        pack_grid_keys(np.array([[0, 0, 2**21]]))


def test_bad_blocks_are_refused():
    with pytest.raises(InputError, match="dtype float32"):
        mesh_block(np.zeros((4, 4, 4), np.float32), VOXEL)
    with pytest.raises(InputError, match="2 dimensions"):
        mesh_block(np.zeros((4, 4), np.uint8), VOXEL)
    with pytest.raises(InputError, match="negative"):
        mesh_block(-np.ones((4, 4, 4), np.int32), VOXEL)
    with pytest.raises(InputError, match="voxel_size"):
        mesh_block(np.ones((4, 4, 4), np.uint8), (30.0, 0.0, 8.0))
    with pytest.raises(InputError, match="block_shape"):
        mesh_labels(np.ones((4, 4, 4), np.uint8), VOXEL, block_shape=(4, 0, 4))
    assert mesh_block(np.zeros((4, 4, 4), np.uint8), VOXEL) == {}


def test_edge_counts_and_join_of_nothing():
    tetra = np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    edges, counts = edge_face_counts(tetra)
    assert len(edges) == 6 and np.all(counts == 2)
    assert join_pieces([]).n_faces == 0
    single = MeshPiece(Mesh(np.eye(4, 3), tetra), np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert join_pieces([single]) is single.mesh


def test_seam_simplification_removes_the_blocks_exact_seams_and_stays_watertight(monkeypatch):
    labels = _ball((20, 48, 48), radius=8.0)
    whole = mesh_labels(labels, VOXEL, params=MeshParams(smooth_iterations=0))[1]
    kept = mesh_labels(labels, VOXEL, params=MeshParams(smooth_iterations=0, simplify_seams=False), block_shape=(5, 12, 12))[1]
    cleaned = mesh_labels(labels, VOXEL, params=MeshParams(smooth_iterations=0), block_shape=(5, 12, 12))[1]
    # 64 blocks leave dense bands of exact seam vertices; their simplification removes most
    assert kept.n_faces > 1.5 * whole.n_faces
    assert cleaned.n_faces < 0.7 * kept.n_faces and is_watertight(cleaned)
    assert surface_area_nm2(cleaned) == pytest.approx(surface_area_nm2(kept), rel=0.03)
    assert enclosed_volume_nm3(cleaned) == pytest.approx(enclosed_volume_nm3(kept), rel=0.03)

    import zmesh

    real = zmesh.simplify_fqmr

    def leaky(mesh, **kwargs):  # a simplifier result with a hole must not be used
        result = real(mesh, **kwargs)
        return zmesh.Mesh(result.vertices, result.faces[1:], None)

    monkeypatch.setattr(zmesh, "simplify_fqmr", leaky)
    guarded = mesh_labels(labels, VOXEL, params=MeshParams(smooth_iterations=0), block_shape=(5, 12, 12))[1]
    assert guarded.n_faces == kept.n_faces and is_watertight(guarded)
