"""The selected segment's surface mesh in 3D: a napari Surface layer, in world nm like the other
layers, read from the run's ``RUN/meshes`` (``axonseg mesh``) through the pipelines' reader.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from axonseg.errors import AxonsegError
from axonseg.pipelines.mesh import read_mesh

logger = logging.getLogger(__name__)

LAYER = "mesh"


def show_segment_mesh(viewer, run_dir: Path, segment_id: int, voxel_size, colour=None) -> str:  # noqa: ANN001
    """Put ``segment_id``'s mesh into the ``mesh`` Surface layer and switch to 3D.

    Our meshes place voxel ``i``'s centre at ``offset + (i + 0.5) * voxel_size`` (nm); napari
    draws the image and label layers (scale = voxel size, translate = offset) with that centre
    at ``offset + i * voxel_size``, so the layer is translated by half a voxel to sit on them.

    Args:
        viewer: the napari viewer.
        run_dir: the run folder.
        segment_id: the segment to show.
        voxel_size: nm, zyx (of the segmentation layer).
        colour: RGBA of the segment in the segmentation layer (default: light grey).

    Returns:
        A one-line message for the status bar: what is shown, or why nothing is (no meshes
        yet, no mesh for this segment).
    """
    try:
        mesh = read_mesh(run_dir, segment_id)
    except AxonsegError as error:
        return f"mesh: {error}"
    if mesh.n_faces == 0:
        return f"mesh: segment {segment_id} has an empty mesh"
    rgba = np.asarray(colour if colour is not None else (0.85, 0.85, 0.85, 1.0), dtype=np.float32)[:4]
    colours = np.broadcast_to(rgba, (mesh.n_vertices, 4)).copy()
    data = (mesh.vertices_nm.astype(np.float32), mesh.faces.astype(np.int64))
    translate = tuple(-0.5 * float(v) for v in voxel_size)
    if LAYER in viewer.layers:
        # replaced, not updated: new data with the old per-vertex colours fails to draw
        viewer.layers.remove(LAYER)
    viewer.add_surface(data, name=LAYER, vertex_colors=colours, translate=translate, shading="smooth")
    viewer.dims.ndisplay = 3
    return f"mesh of segment {segment_id}: {mesh.n_faces} triangles (3D view; Ctrl-Y toggles 2D/3D)"
