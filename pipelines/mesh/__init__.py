"""``axonseg mesh`` (:mod:`.job`, ``configs/mesh.yaml``): a watertight surface mesh of every
segment of a run, blockwise (:mod:`.blocks`) and joined per segment (:mod:`.join`), written as
a neuroglancer precomputed legacy mesh folder ``RUN/meshes``. :func:`read_mesh` and
:func:`mesh_ids` are the readers the viewer and exporters use (meshes come back in nm, zyx).
"""

from axonseg.pipelines.mesh.job import (
    MeshConfig,
    MeshResult,
    load_mesh_config,
    mesh_ids,
    read_mesh,
    run_mesh,
)

__all__ = ["MeshConfig", "MeshResult", "load_mesh_config", "mesh_ids", "read_mesh", "run_mesh"]
