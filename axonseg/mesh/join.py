"""Join one segment's pieces from neighbouring blocks into one mesh, and finish it (seam
simplification and smoothing).

Pieces meet on the planes of voxel centres that neighbouring blocks share; their rim vertices
there have equal half-voxel grid keys (:class:`axonseg.mesh.block.MeshPiece`), and merging
vertices of equal keys closes the seams exactly, with no distance tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from axonseg.mesh.block import MeshPiece
from axonseg.mesh.geometry import Mesh, drop_unused_vertices, is_watertight
from axonseg.mesh.params import MeshParams
from axonseg.mesh.smooth import taubin_smooth


# zmesh's FQMR defaults: the error threshold of pass i is alpha * (i + K) ** aggressiveness (nm²)
_FQMR_ALPHA, _FQMR_K, _FQMR_AGGRESSIVENESS = 1e-9, 3, 7.0


def _merge(pieces: Sequence[MeshPiece]) -> tuple[Mesh, int]:
    """:func:`join_pieces` and the number of seam vertices it merged."""
    pieces = [piece for piece in pieces if piece.mesh.n_faces]
    if not pieces:
        return Mesh.empty(), 0
    if len(pieces) == 1 and len(pieces[0].rim) == 0:
        return pieces[0].mesh, 0
    starts = np.cumsum([0] + [piece.mesh.n_vertices for piece in pieces])
    vertices = np.concatenate([piece.mesh.vertices_nm for piece in pieces])
    faces = np.concatenate([piece.mesh.faces.astype(np.int64) + start for piece, start in zip(pieces, starts)])
    rim = np.concatenate([piece.rim + start for piece, start in zip(pieces, starts)])
    keys = np.concatenate([piece.rim_keys for piece in pieces])
    remap = np.arange(len(vertices), dtype=np.int64)
    n_seam = 0
    if len(rim):
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        remap[rim] = rim[first][inverse.reshape(-1)]
        n_seam = len(first)
    faces = remap[faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])
    vertices, faces = drop_unused_vertices(vertices, faces[keep])
    return Mesh(vertices, faces), n_seam


def join_pieces(pieces: Sequence[MeshPiece]) -> Mesh:
    """One mesh from a segment's pieces: concatenated, with rim vertices of equal grid keys
    merged into one (the first piece's), unused vertices dropped and degenerate faces removed.

    Args:
        pieces: the segment's pieces from any number of blocks (world nm, zyx).

    Returns:
        The joined :class:`Mesh`; watertight when the pieces cover the whole segment.
    """
    return _merge(pieces)[0]


def simplify_seams(mesh: Mesh, n_seam: int, reduction_factor: int, max_error_nm: float) -> Mesh:
    """Simplify away what the blocks could not: their seam vertices, kept exact for the join.

    Each block's simplifier leaves the vertices on its cut faces where marching cubes put
    them, so a joined mesh carries dense bands of unsimplified triangles along the seams
    (about two per seam vertex), and smoothing, which works per edge, hardly moves them.
    A fast quadric simplification (zmesh's FQMR) of the joined mesh removes about as many
    triangles as simplifying those vertices with the rest would have; it acts where the
    error is smallest, which is in those dense bands. Its error threshold grows each pass
    (``alpha * (pass + K) ** aggressiveness``, in nm² of summed squared plane distances); the
    passes stop where it would exceed ``max_error_nm²``. Its result is kept only when it is as
    watertight as the joined mesh.

    Args:
        mesh: a joined mesh (nm, zyx).
        n_seam: seam vertices merged by the join.
        reduction_factor: the blocks' reduction factor (<= 1: nothing is done).
        max_error_nm: the blocks' simplification error bound (nm).

    Returns:
        The simplified mesh, or ``mesh`` itself.
    """
    if reduction_factor <= 1 or n_seam == 0 or mesh.n_faces == 0:
        return mesh
    import zmesh  # compiled extension: only where meshes are made

    target = mesh.n_faces - int(round(2 * n_seam * (1 - 1 / reduction_factor)))
    if target < 4 or target >= mesh.n_faces:
        return mesh
    passes = int((max_error_nm**2 / _FQMR_ALPHA) ** (1 / _FQMR_AGGRESSIVENESS) - _FQMR_K)
    if passes < 1:
        return mesh
    centre = mesh.vertices_nm.astype(np.float64).mean(axis=0)  # float32 quadrics stay exact near 0
    centred = zmesh.Mesh((mesh.vertices_nm - centre).astype(np.float32), mesh.faces.copy(), None)
    simplified = zmesh.simplify_fqmr(centred, target_count=target, max_iterations=passes, alpha=_FQMR_ALPHA,
                                     K=_FQMR_K, aggressiveness=_FQMR_AGGRESSIVENESS)
    result = Mesh(simplified.vertices.astype(np.float64) + centre, simplified.faces)
    if result.n_faces == 0 or (is_watertight(mesh) and not is_watertight(result)):
        return mesh
    return result


def finish_mesh(pieces: Sequence[MeshPiece], voxel_size: Sequence[float], params: MeshParams | None = None) -> Mesh:
    """:func:`join_pieces`, then :func:`simplify_seams` (when ``params.simplify_seams``), then
    ``params.smooth_iterations`` Taubin passes.

    Args:
        pieces: one segment's pieces (world nm, zyx).
        voxel_size: nm, zyx (the default simplification error bound is the largest).
        params: the meshing settings.

    Returns:
        The finished :class:`Mesh` (nm, zyx).
    """
    params = params or MeshParams()
    mesh, n_seam = _merge(pieces)
    if params.simplify_seams:
        mesh = simplify_seams(mesh, n_seam, params.reduction_factor, params.error_bound_nm(voxel_size))
    if params.smooth_iterations and mesh.n_faces:
        mesh = taubin_smooth(mesh, params.smooth_iterations, params.smooth_lambda, params.smooth_mu)
    return mesh
