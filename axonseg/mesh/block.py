"""Mesh every segment of one block of labels with zmesh (marching cubes + quadric simplification),
in world nm, keeping the vertices on the block's cut faces exactly where the neighbours put theirs.

A block owns the marching cubes whose lowest corner lies in its write region, so it reads one
voxel past its write region on each axis (igneous's one-voxel overlap): two neighbours then
make the same vertices on their shared plane of voxel centres, and :func:`axonseg.mesh.join.join_pieces`
merges them. At the volume border a zero layer is added so that surfaces close there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import fastremap
import numpy as np

from axonseg.errors import InputError
from axonseg.io.volume import check_labels, check_voxel_size
from axonseg.mesh.geometry import Mesh, boundary_vertices
from axonseg.mesh.params import MeshParams

logger = logging.getLogger(__name__)

#: Bits per axis of a packed half-voxel grid position (:func:`pack_grid_keys`).
KEY_BITS = 21
_KEY_BIAS = 4  # grid positions start at -1 (a surface closed before voxel 0)

Faces = tuple[tuple[bool, bool, bool], tuple[bool, bool, bool]]


@dataclass(frozen=True, eq=False)
class MeshPiece:
    """One segment's surface inside one block, ready to be joined with its neighbours' pieces.

    Attributes:
        mesh: the piece (world nm, zyx); open where the block's region is cut by a neighbour.
        rim: ``(R,)`` int64 indices of the mesh's vertices on those cut faces.
        rim_keys: ``(R,)`` int64 packed positions of the rim vertices on the volume's half-voxel
            grid (:func:`pack_grid_keys`); equal keys are the same point in every block.
    """

    mesh: Mesh
    rim: np.ndarray
    rim_keys: np.ndarray


def pack_grid_keys(half_voxels: np.ndarray) -> np.ndarray:
    """Pack ``(R, 3)`` int64 positions on the volume's half-voxel grid (zyx; voxel ``i``'s centre
    is ``2 i``) into one int64 each.

    Raises:
        InputError: a position outside ``-4 .. 2^21 - 5`` (a volume over ~1M voxels per axis).
    """
    shifted = np.asarray(half_voxels, dtype=np.int64).reshape(-1, 3) + _KEY_BIAS
    if len(shifted) and (shifted.min() < 0 or shifted.max() >= 1 << KEY_BITS):
        raise InputError(f"mesh rim positions reach {int(shifted.max()) - _KEY_BIAS} half-voxels: "
                         f"expected volumes under {(1 << KEY_BITS) // 2 - _KEY_BIAS} voxels per axis")
    return (shifted[:, 0] << (2 * KEY_BITS)) | (shifted[:, 1] << KEY_BITS) | shifted[:, 2]




def _triple(values: Sequence[float], what: str, kind: type) -> np.ndarray:
    try:
        array = np.asarray([kind(v) for v in values])
    except (TypeError, ValueError):
        raise InputError(f"{what}={values!r}: expected three numbers (z y x)") from None
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise InputError(f"{what}={values!r}: expected three finite numbers (z y x)")
    return array


def _rim(mesh_nm: np.ndarray, faces: np.ndarray, voxel: np.ndarray, shape: np.ndarray,
         open_faces: Faces) -> np.ndarray | None:
    """Indices of the open-rim vertices, or None when one of them is not on an open face's
    half-voxel grid plane (the simplifier moved it)."""
    rim = boundary_vertices(faces)
    if len(rim) == 0:
        return rim
    grid = mesh_nm[rim].astype(np.float64) / voxel * 2.0
    snapped = np.rint(grid)
    if np.abs(grid - snapped).max() > 1e-3:
        return None
    on_open = np.zeros(len(rim), dtype=bool)
    for axis in range(3):
        if open_faces[0][axis]:
            on_open |= snapped[:, axis] == 0
        if open_faces[1][axis]:
            on_open |= snapped[:, axis] == 2 * (shape[axis] - 1)
    return rim if on_open.all() else None


def mesh_block(
    labels: np.ndarray,
    voxel_size: Sequence[float],
    offset_nm: Sequence[float] = (0.0, 0.0, 0.0),
    block_offset: Sequence[int] = (0, 0, 0),
    params: MeshParams | None = None,
    closed: Faces = ((True, True, True), (True, True, True)),
) -> dict[int, MeshPiece]:
    """Mesh every non-zero segment of a block.

    Args:
        labels: the block's labels, zyx, integers (0 = background): its write region plus one
            voxel after it on each axis that has a neighbour block there.
        voxel_size: nm, zyx.
        offset_nm: world position of the volume's voxel ``(0, 0, 0)`` corner (nm, zyx): voxel
            ``i`` is centred at ``offset_nm + (i + 0.5) * voxel_size``.
        block_offset: index of ``labels[0, 0, 0]`` in the volume (voxels, zyx).
        params: simplification settings (smoothing happens after the join).
        closed: ``(before, after)`` per axis (zyx): True where the block's face is the volume's
            border, so surfaces are closed there; False where a neighbour block continues them.

    Returns:
        ``{segment_id: MeshPiece}`` with vertices in world nm (zyx).

    Raises:
        InputError: ``labels`` is not a 3D integer array, or a bad voxel size or offset.
    """
    import zmesh  # compiled extension: only where meshes are made

    labels = check_labels(labels)
    voxel = np.asarray(check_voxel_size(voxel_size), dtype=np.float64)
    origin = _triple(offset_nm, "offset_nm", float)
    start = _triple(block_offset, "block_offset", int).astype(np.int64)
    params = params or MeshParams()
    if not labels.any():
        return {}
    # zmesh copies the labels into its own structures; small ids keep those small
    compact, mapping = fastremap.renumber(labels, preserve_zero=True, in_place=False)
    original_id = {new: old for old, new in mapping.items()}
    pad = [(int(closed[0][axis]), int(closed[1][axis])) for axis in range(3)]
    if any(before or after for before, after in pad):
        compact = np.pad(compact, pad)
    open_faces: Faces = (tuple(not c for c in closed[0]), tuple(not c for c in closed[1]))  # type: ignore[assignment]
    shape = np.asarray(compact.shape)
    first_voxel = start - np.asarray([before for before, _ in pad])  # volume index of compact[0, 0, 0]
    to_world = origin + (first_voxel + 0.5) * voxel
    mesher = zmesh.Mesher(tuple(voxel))
    mesher.mesh(compact)
    del compact
    max_error = params.error_bound_nm(voxel)
    simplify = params.reduction_factor > 1
    pieces: dict[int, MeshPiece] = {}
    for label in mesher.ids():
        surface = mesher.get(label, reduction_factor=params.reduction_factor if simplify else 0,
                             max_error=max_error if simplify else 0)
        rim = _rim(surface.vertices, surface.faces, voxel, shape, open_faces)
        if rim is None:  # never seen: zmesh keeps open-rim vertices; stay exact if it does not
            logger.warning("segment %s: simplification moved a vertex on a block face; kept unsimplified",
                           original_id[int(label)])
            surface = mesher.get(label, reduction_factor=0, max_error=0)
            rim = _rim(surface.vertices, surface.faces, voxel, shape, open_faces)
        mesher.erase(label)
        local = surface.vertices.astype(np.float64)
        keys = pack_grid_keys(np.rint(local[rim] / voxel * 2.0).astype(np.int64) + 2 * first_voxel)
        mesh = Mesh((local + to_world).astype(np.float32), surface.faces)
        pieces[int(original_id[int(label)])] = MeshPiece(mesh, rim.astype(np.int64), keys)
    mesher.clear()
    return pieces
