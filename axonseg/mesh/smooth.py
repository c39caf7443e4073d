"""Taubin smoothing of a mesh: alternating shrink and inflate steps towards the mean of each
vertex's neighbours, which flattens marching cubes' voxel staircase without shrinking the
object the way plain Laplacian smoothing does (Taubin 1995). Topology is unchanged, so a
watertight mesh stays watertight.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from axonseg.mesh.geometry import Mesh


def neighbour_mean_operator(faces: np.ndarray, n_vertices: int) -> sp.csr_matrix:
    """Sparse ``(N, N)`` matrix that maps vertex positions to the mean of each vertex's
    edge neighbours (a vertex without neighbours maps to zero)."""
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    both = np.concatenate([pairs, pairs[:, ::-1]])
    adjacency = sp.coo_matrix((np.ones(len(both)), (both[:, 0], both[:, 1])), shape=(n_vertices, n_vertices)).tocsr()
    adjacency.data[:] = 1.0  # an edge of two faces counts once
    degree = np.asarray(adjacency.sum(axis=1)).reshape(-1)
    scale = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return sp.diags(scale) @ adjacency


def taubin_smooth(mesh: Mesh, iterations: int = 10, lam: float = 0.5, mu: float = -0.53) -> Mesh:
    """Smooth ``mesh`` with ``iterations`` Taubin passes (one ``lam`` and one ``mu`` step each).

    Args:
        mesh: the mesh (world nm, zyx); faces are kept as they are.
        iterations: passes (0 returns the mesh unchanged).
        lam: shrinking step, 0 < lam < 1.
        mu: inflating step, negative with ``|mu| > lam``.

    Returns:
        A new :class:`Mesh` with moved vertices (nm, zyx).
    """
    if iterations <= 0 or mesh.n_faces == 0:
        return mesh
    mean = neighbour_mean_operator(mesh.faces, mesh.n_vertices)
    moved = (mean @ np.ones(mesh.n_vertices)) > 0  # isolated vertices stay where they are
    vertices = mesh.vertices_nm.astype(np.float64)
    # positions relative to the centre: float64 steps stay exact far from the origin
    centre = vertices.mean(axis=0)
    vertices -= centre
    for _ in range(iterations):
        for step in (lam, mu):
            delta = mean @ vertices - vertices
            vertices[moved] += step * delta[moved]
    return Mesh((vertices + centre).astype(np.float32), mesh.faces)
