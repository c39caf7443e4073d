"""Neuroglancer's precomputed formats for segment meshes (legacy single-resolution) and skeletons
(unsharded), written and read from numpy arrays.

Our arrays are zyx; neuroglancer's files are x, y, z in nm. The writers reverse the axes (and,
for meshes, the triangle winding, which reversing the axes mirrors, so normals still point
out of the segment); the readers turn them back. Formats:
``neuroglancer/src/datasource/precomputed/meshes.md`` and ``skeletons.md``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from axonseg.errors import InputError

MESH_INFO: dict[str, Any] = {"@type": "neuroglancer_legacy_mesh"}
#: The radius attribute of our skeleton files (nm, one float32 per vertex).
RADIUS_ATTRIBUTE: dict[str, Any] = {"id": "radius", "data_type": "float32", "num_components": 1}
_IDENTITY_TRANSFORM = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
_MANIFEST = re.compile(r"^(\d+):0$")


def _write_bytes(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    _write_bytes(path, json.dumps(payload, indent=1).encode())


def _segment(segment_id: int) -> int:
    value = int(segment_id)
    if value <= 0 or value >= 2**64:
        raise InputError(f"segment id {segment_id}: expected an integer in 1..2^64-1 (0 is background)")
    return value


def _read_info(folder: Path, kind: str) -> dict[str, Any]:
    path = Path(folder) / "info"
    if not path.is_file():
        raise InputError(f"{path}: missing: expected the {kind} info file of a precomputed folder")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error.msg}): expected the {kind} info file") from None
    if not isinstance(info, dict) or info.get("@type") != kind:
        raise InputError(f"{path}: @type is {info.get('@type') if isinstance(info, dict) else None!r}: expected {kind!r}")
    return info


# ---- meshes ----------------------------------------------------------------------------------
def encode_legacy_mesh(vertices_nm: np.ndarray, faces: np.ndarray) -> bytes:
    """One legacy mesh fragment: uint32 vertex count, float32 x y z per vertex (nm), then
    uint32 triangle indices, little-endian.

    Args:
        vertices_nm: ``(N, 3)`` positions in nm, **zyx**.
        faces: ``(M, 3)`` vertex indices, wound outwards in the zyx frame.
    """
    vertices = np.asarray(vertices_nm, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(faces).reshape(-1, 3)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise InputError(f"mesh faces refer to vertices outside 0..{len(vertices) - 1}")
    header = np.asarray([len(vertices)], dtype="<u4").tobytes()
    xyz = vertices[:, ::-1].astype("<f4")
    mirrored = faces[:, [0, 2, 1]].astype("<u4")  # reversing the axes mirrors the winding
    return header + xyz.tobytes() + mirrored.tobytes()


def decode_legacy_mesh(payload: bytes, where: str = "mesh fragment") -> tuple[np.ndarray, np.ndarray]:
    """``(vertices_nm zyx float32 (N, 3), faces uint32 (M, 3))`` of an encoded fragment.

    Raises:
        InputError: the byte count does not fit the format.
    """
    if len(payload) < 4:
        raise InputError(f"{where}: {len(payload)} bytes: expected a uint32 vertex count first")
    n_vertices = int(np.frombuffer(payload[:4], dtype="<u4")[0])
    rest = len(payload) - 4 - 12 * n_vertices
    if rest < 0 or rest % 12:
        raise InputError(f"{where}: {len(payload)} bytes for {n_vertices} vertices: expected 4 + 12 per vertex "
                         "+ 12 per triangle")
    xyz = np.frombuffer(payload, dtype="<f4", count=3 * n_vertices, offset=4).reshape(-1, 3)
    faces = np.frombuffer(payload, dtype="<u4", offset=4 + 12 * n_vertices).reshape(-1, 3)
    if len(faces) and int(faces.max()) >= n_vertices:
        raise InputError(f"{where}: triangles refer to vertex {int(faces.max())} of {n_vertices}")
    return np.ascontiguousarray(xyz[:, ::-1], dtype=np.float32), np.ascontiguousarray(faces[:, [0, 2, 1]], dtype=np.uint32)


def write_mesh_info(folder: str | Path) -> Path:
    """Write ``folder/info`` marking a legacy single-resolution mesh folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "info", MESH_INFO)
    return folder / "info"


def write_legacy_mesh(folder: str | Path, segment_id: int, vertices_nm: np.ndarray, faces: np.ndarray) -> Path:
    """Write one segment's mesh: the fragment ``folder/<id>`` and then its manifest
    ``folder/<id>:0`` (``{"fragments": ["<id>"]}``); each file atomically, so a manifest
    always names a complete fragment.

    Args:
        folder: the mesh folder (created).
        segment_id: the segment's label (1..2^64-1).
        vertices_nm: ``(N, 3)`` world positions in nm, zyx.
        faces: ``(M, 3)`` vertex indices.

    Returns:
        The manifest's path.
    """
    segment = _segment(segment_id)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_bytes(folder / str(segment), encode_legacy_mesh(vertices_nm, faces))
    manifest = folder / f"{segment}:0"
    _write_json(manifest, {"fragments": [str(segment)]})
    return manifest


def read_legacy_mesh(folder: str | Path, segment_id: int) -> tuple[np.ndarray, np.ndarray]:
    """One segment's mesh from a legacy mesh folder, all its fragments concatenated.

    Returns:
        ``(vertices_nm, faces)``: ``(N, 3)`` float32 nm, zyx; ``(M, 3)`` uint32.

    Raises:
        InputError: no manifest for the segment, or a manifest or fragment that does not fit
            the format.
    """
    folder = Path(folder)
    segment = _segment(segment_id)
    manifest = folder / f"{segment}:0"
    if not manifest.is_file():
        raise InputError(f"{manifest}: missing: no mesh for segment {segment} in {folder}")
    try:
        fragments = json.loads(manifest.read_text())["fragments"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InputError(f"{manifest}: expected a JSON object with a 'fragments' list") from None
    vertices, faces, count = [], [], 0
    for name in fragments:
        path = folder / str(name)
        if not path.is_file():
            raise InputError(f"{path}: missing: the manifest {manifest.name} names it")
        fragment_vertices, fragment_faces = decode_legacy_mesh(path.read_bytes(), str(path))
        vertices.append(fragment_vertices)
        faces.append(fragment_faces.astype(np.int64) + count)
        count += len(fragment_vertices)
    if not vertices:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32)
    return np.concatenate(vertices), np.concatenate(faces).astype(np.uint32)


def legacy_mesh_ids(folder: str | Path) -> np.ndarray:
    """Sorted uint64 ids of the segments with a manifest ``<id>:0`` in ``folder`` (empty when
    the folder does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return np.zeros(0, dtype=np.uint64)
    ids = [int(match.group(1)) for name in os.listdir(folder) if (match := _MANIFEST.match(name))]
    return np.asarray(sorted(ids), dtype=np.uint64)


# ---- skeletons -------------------------------------------------------------------------------
def skeleton_info() -> dict[str, Any]:
    """The ``info`` of our skeleton folders: identity transform (files are in nm) and a radius
    attribute (nm)."""
    return {"@type": "neuroglancer_skeletons", "transform": list(_IDENTITY_TRANSFORM),
            "vertex_attributes": [dict(RADIUS_ATTRIBUTE)]}


def write_skeleton_info(folder: str | Path) -> Path:
    """Write ``folder/info`` for skeletons (:func:`skeleton_info`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "info", skeleton_info())
    return folder / "info"


def encode_skeleton(nodes_nm: np.ndarray, edges: np.ndarray, radii_nm: np.ndarray) -> bytes:
    """One skeleton file: uint32 vertex and edge counts, float32 x y z per vertex (nm), uint32
    edge pairs, then the float32 radius of every vertex (nm), little-endian.

    Args:
        nodes_nm: ``(N, 3)`` positions in nm, **zyx**.
        edges: ``(E, 2)`` node indices.
        radii_nm: ``(N,)`` radius of each node in nm.
    """
    nodes = np.asarray(nodes_nm, dtype=np.float64).reshape(-1, 3)
    edges = np.asarray(edges).reshape(-1, 2)
    radii = np.asarray(radii_nm, dtype=np.float64).reshape(-1)
    if len(radii) != len(nodes):
        raise InputError(f"skeleton has {len(radii)} radii for {len(nodes)} nodes: expected one per node")
    if len(edges) and (edges.min() < 0 or edges.max() >= len(nodes)):
        raise InputError(f"skeleton edges refer to nodes outside 0..{len(nodes) - 1}")
    header = np.asarray([len(nodes), len(edges)], dtype="<u4").tobytes()
    return header + nodes[:, ::-1].astype("<f4").tobytes() + edges.astype("<u4").tobytes() + radii.astype("<f4").tobytes()


def decode_skeleton(payload: bytes, where: str = "skeleton") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(nodes_nm zyx float32 (N, 3), edges uint32 (E, 2), radii_nm float32 (N,))`` of a file
    written with :func:`skeleton_info`'s attributes.

    Raises:
        InputError: the byte count does not fit the format.
    """
    if len(payload) < 8:
        raise InputError(f"{where}: {len(payload)} bytes: expected uint32 vertex and edge counts first")
    n_nodes, n_edges = (int(v) for v in np.frombuffer(payload[:8], dtype="<u4"))
    expected = 8 + 12 * n_nodes + 8 * n_edges + 4 * n_nodes
    if len(payload) != expected:
        raise InputError(f"{where}: {len(payload)} bytes: expected {expected} for {n_nodes} vertices, {n_edges} "
                         "edges and a float32 radius per vertex")
    xyz = np.frombuffer(payload, dtype="<f4", count=3 * n_nodes, offset=8).reshape(-1, 3)
    edges = np.frombuffer(payload, dtype="<u4", count=2 * n_edges, offset=8 + 12 * n_nodes).reshape(-1, 2)
    radii = np.frombuffer(payload, dtype="<f4", count=n_nodes, offset=8 + 12 * n_nodes + 8 * n_edges)
    return np.ascontiguousarray(xyz[:, ::-1]), edges.copy(), radii.copy()


def write_skeleton(folder: str | Path, segment_id: int, nodes_nm: np.ndarray, edges: np.ndarray,
                   radii_nm: np.ndarray) -> Path:
    """Write one segment's skeleton as ``folder/<id>`` (atomically); see :func:`encode_skeleton`."""
    segment = _segment(segment_id)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / str(segment)
    _write_bytes(path, encode_skeleton(nodes_nm, edges, radii_nm))
    return path


def read_skeleton(folder: str | Path, segment_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One segment's skeleton from a folder with our ``info`` (nodes nm zyx, edges, radii nm).

    Raises:
        InputError: the folder's ``info`` is not a skeleton info with the radius attribute
            alone, or the segment's file is missing or malformed.
    """
    folder = Path(folder)
    info = _read_info(folder, "neuroglancer_skeletons")
    if info.get("vertex_attributes") != [RADIUS_ATTRIBUTE]:
        raise InputError(f"{folder / 'info'}: vertex_attributes {info.get('vertex_attributes')!r}: expected "
                         f"[{RADIUS_ATTRIBUTE}]")
    path = folder / str(_segment(segment_id))
    if not path.is_file():
        raise InputError(f"{path}: missing: no skeleton for segment {segment_id} in {folder}")
    return decode_skeleton(path.read_bytes(), str(path))
