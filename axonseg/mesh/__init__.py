"""Surface meshes of segments: zmesh marching cubes and simplification per block, joined
watertight per segment, seams simplified and the staircase smoothed, in world nm (zyx).

Example::

    from axonseg.mesh import mesh_labels, surface_area_nm2, is_watertight
    meshes = mesh_labels(labels, voxel_size=(30, 8, 8), block_shape=(64, 128, 128))
    surface_area_nm2(meshes[7]), is_watertight(meshes[7])
"""

from axonseg.mesh.block import MeshPiece, mesh_block, pack_grid_keys
from axonseg.mesh.geometry import (
    Mesh,
    boundary_vertices,
    edge_face_counts,
    enclosed_volume_nm3,
    is_watertight,
    surface_area_nm2,
)
from axonseg.mesh.join import finish_mesh, join_pieces, simplify_seams
from axonseg.mesh.params import MeshParams
from axonseg.mesh.smooth import taubin_smooth
from axonseg.mesh.volume import block_grid, mesh_labels

__all__ = [
    "Mesh",
    "MeshParams",
    "MeshPiece",
    "block_grid",
    "boundary_vertices",
    "edge_face_counts",
    "enclosed_volume_nm3",
    "finish_mesh",
    "is_watertight",
    "join_pieces",
    "mesh_block",
    "mesh_labels",
    "pack_grid_keys",
    "simplify_seams",
    "surface_area_nm2",
    "taubin_smooth",
]
