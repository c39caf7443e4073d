"""Neuroglancer precomputed legacy meshes and skeletons: byte layout (x y z in nm, little-endian),
round trips back to zyx, and clear errors for damaged files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.io.precomputed import (
    decode_legacy_mesh,
    encode_legacy_mesh,
    legacy_mesh_ids,
    read_legacy_mesh,
    read_skeleton,
    write_legacy_mesh,
    write_mesh_info,
    write_skeleton,
    write_skeleton_info,
)

# a tetrahedron in zyx nm, wound outwards in the zyx frame (positive signed volume)
VERTICES = np.array([[100.0, 200.0, 300.0], [130.0, 200.0, 300.0], [100.0, 208.0, 300.0], [100.0, 200.0, 308.0]])
FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.uint32)


def _signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    corners = vertices.astype(np.float64)[faces.astype(np.int64)]
    return float(np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6)


def test_mesh_file_layout_is_xyz_nm_and_stays_outward():
    assert _signed_volume(VERTICES, FACES) > 0
    payload = encode_legacy_mesh(VERTICES, FACES)
    assert len(payload) == 4 + 12 * 4 + 12 * 4
    assert int(np.frombuffer(payload[:4], "<u4")[0]) == 4
    xyz = np.frombuffer(payload, "<f4", count=12, offset=4).reshape(4, 3)
    assert np.array_equal(xyz, VERTICES[:, ::-1].astype(np.float32))  # x y z, as neuroglancer reads
    triangles = np.frombuffer(payload, "<u4", offset=52).reshape(-1, 3)
    # still outward in neuroglancer's x y z frame: reversing the axes mirrored the winding back
    assert _signed_volume(xyz, triangles) > 0
    vertices, faces = decode_legacy_mesh(payload)
    assert np.array_equal(vertices, VERTICES.astype(np.float32)) and np.array_equal(faces, FACES)


def test_mesh_folder_round_trip(tmp_path):
    folder = tmp_path / "meshes"
    write_mesh_info(folder)
    assert json.loads((folder / "info").read_text()) == {"@type": "neuroglancer_legacy_mesh"}
    manifest = write_legacy_mesh(folder, 2**40 + 7, VERTICES, FACES)
    write_legacy_mesh(folder, 12, VERTICES + 1000, FACES)
    assert manifest.name == f"{2**40 + 7}:0"
    assert json.loads(manifest.read_text()) == {"fragments": [str(2**40 + 7)]}
    vertices, faces = read_legacy_mesh(folder, 12)
    assert np.allclose(vertices, VERTICES + 1000) and np.array_equal(faces, FACES)
    assert legacy_mesh_ids(folder).tolist() == [12, 2**40 + 7]
    assert legacy_mesh_ids(tmp_path / "absent").tolist() == []
    assert not list(folder.glob("*.tmp"))


def test_mesh_errors_name_the_file(tmp_path):
    folder = tmp_path / "meshes"
    write_legacy_mesh(folder, 5, VERTICES, FACES)
    with pytest.raises(InputError, match=r"6:0: missing: no mesh for segment 6"):
        read_legacy_mesh(folder, 6)
    with pytest.raises(InputError, match="0 is background"):
        write_legacy_mesh(folder, 0, VERTICES, FACES)
    (folder / "5").write_bytes((folder / "5").read_bytes()[:-4])  # truncated
    with pytest.raises(InputError, match=r"5: 96 bytes for 4 vertices: expected 4 \+ 12 per vertex"):
        read_legacy_mesh(folder, 5)
    (folder / "5:0").write_text("not json")
    with pytest.raises(InputError, match="'fragments' list"):
        read_legacy_mesh(folder, 5)
    with pytest.raises(InputError, match="outside 0..3"):
        encode_legacy_mesh(VERTICES, FACES + 1)


def test_skeleton_round_trip_with_radius(tmp_path):
    folder = tmp_path / "skeletons"
    info = json.loads(write_skeleton_info(folder).read_text())
    assert info["@type"] == "neuroglancer_skeletons"
    assert info["vertex_attributes"] == [{"id": "radius", "data_type": "float32", "num_components": 1}]
    assert info["transform"] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    nodes = np.array([[30.0, 8.0, 16.0], [60.0, 16.0, 16.0], [90.0, 24.0, 40.0]])
    edges = np.array([[0, 1], [1, 2]])
    radii = np.array([50.0, 60.0, 45.5])
    path = write_skeleton(folder, 9, nodes, edges, radii)
    payload = path.read_bytes()
    assert np.frombuffer(payload[:8], "<u4").tolist() == [3, 2]
    assert np.array_equal(np.frombuffer(payload, "<f4", count=9, offset=8).reshape(3, 3), nodes[:, ::-1])
    assert np.frombuffer(payload, "<u4", count=4, offset=44).tolist() == [0, 1, 1, 2]
    assert np.array_equal(np.frombuffer(payload, "<f4", offset=60), radii.astype(np.float32))
    back_nodes, back_edges, back_radii = read_skeleton(folder, 9)
    assert np.allclose(back_nodes, nodes) and np.array_equal(back_edges, edges) and np.allclose(back_radii, radii)


def test_skeleton_errors(tmp_path):
    folder = tmp_path / "skeletons"
    with pytest.raises(InputError, match="info: missing"):
        read_skeleton(folder, 1)
    write_skeleton_info(folder)
    with pytest.raises(InputError, match="no skeleton for segment 1"):
        read_skeleton(folder, 1)
    with pytest.raises(InputError, match="2 radii for 3 nodes"):
        write_skeleton(folder, 1, np.zeros((3, 3)), np.zeros((0, 2)), np.ones(2))
    write_skeleton(folder, 1, np.zeros((3, 3)), np.array([[0, 2]]), np.ones(3))
    (folder / "1").write_bytes((folder / "1").read_bytes() + b"\0")
    with pytest.raises(InputError, match="expected 64 for 3 vertices, 1 edges"):
        read_skeleton(folder, 1)
    (folder / "info").write_text(json.dumps({"@type": "neuroglancer_legacy_mesh"}))
    with pytest.raises(InputError, match="expected 'neuroglancer_skeletons'"):
        read_skeleton(folder, 1)
