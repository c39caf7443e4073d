"""The neuroglancer state of a shared run, for the live viewer and the exported folder alike:
the raw EM and the segmentation (with meshes and skeletons as extra sources) in nm, the xy
cross-section showing the y-x plane at the volume's centre, zoomed so the volume fills it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the panels: the xy cross-section beside the 3D view
LAYOUT = "xy-3d"
#: segment opacity in the cross-section for the segments shown in 3D, and for all others
SELECTED_ALPHA = 0.5
NOT_SELECTED_ALPHA = 0.3
#: the 3D view: tilted 30 degrees about x and 20 about y (a unit quaternion x y z w)
PROJECTION_ORIENTATION = (-0.255, 0.168, 0.045, 0.951)
#: the 3D view's height over the volume's diagonal
PROJECTION_MARGIN = 1.2


@dataclass(frozen=True)
class Geometry:
    """Where a run's voxels sit in the world.

    Attributes:
        shape: voxels, zyx.
        voxel_size: nm, zyx.
        offset: world position of voxel (0, 0, 0) in nm, zyx.
    """

    shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    offset: tuple[float, float, float]

    @classmethod
    def of(cls, volume: Any) -> Geometry:
        """The geometry of a :class:`axonseg.io.Volume` (its last three axes)."""
        return cls(tuple(int(s) for s in volume.spatial_shape), tuple(float(v) for v in volume.voxel_size),
                   tuple(float(v) for v in volume.offset))

    @property
    def voxel_offset(self) -> tuple[int, int, int]:
        """``offset`` in voxels, zyx (the run's offsets are whole voxels)."""
        return tuple(round(o / v) for o, v in zip(self.offset, self.voxel_size))  # type: ignore[return-value]

    def centre_xyz(self) -> list[float]:
        """The centre of the volume's middle voxel, in voxels of the global x, y, z axes (a
        voxel's centre, so the cross-section cuts through one plane of voxels)."""
        return [float(o + s // 2 + 0.5) for o, s in zip(self.voxel_offset[::-1], self.shape[::-1])]

    def cross_section_scale(self, panel_px: Sequence[int]) -> float:
        """Zoom of the xy panel (``panel_px`` = width, height in pixels) that fits the volume's
        x-y extent, in neuroglancer's units: canonical voxels (the smaller xy voxel size) per pixel."""
        extent_nm = np.asarray(self.shape[1:][::-1], np.float64) * np.asarray(self.voxel_size[1:][::-1])
        nm_per_pixel = float(np.max(extent_nm / np.maximum(np.asarray(panel_px, np.float64), 1)))
        return nm_per_pixel / min(self.voxel_size[1:])

    def projection_scale(self) -> float:
        """Zoom of the 3D view that shows the whole volume: the viewport's height in canonical
        voxels (the smaller xy voxel size), a little more than the volume's diagonal."""
        extent_nm = np.asarray(self.shape, np.float64) * np.asarray(self.voxel_size)
        return PROJECTION_MARGIN * float(np.linalg.norm(extent_nm)) / min(self.voxel_size[1:])


def layer_dimensions(geometry: Geometry) -> Any:
    """The coordinate space of a zyx array: axes named z, y, x, scales in nm."""
    import neuroglancer

    return neuroglancer.CoordinateSpace(names=["z", "y", "x"], units="nm", scales=list(geometry.voxel_size))


def view_state(geometry: Geometry, raw_source: Any | None, segmentation_source: Any,
               extra_sources: Sequence[str] = (), segments: Sequence[int] = (),
               merged: dict[int, list[int]] | None = None, panel_px: Sequence[int] = (640, 720)) -> Any:
    """A ``neuroglancer.ViewerState`` showing one run.

    Args:
        geometry: the segmentation's grid (the global axes take its voxel size).
        raw_source: the raw EM layer's source (a URL or a ``LocalVolume``), or None for no raw.
        segmentation_source: the segmentation's source (URL, ``LocalVolume`` or ``LayerDataSource``).
        extra_sources: more sources of the segmentation layer (precomputed meshes, skeletons).
        segments: segment ids shown in 3D (meshes, skeletons); the cross-section shows every
            segment, these more opaque.
        merged: ``{segment id: base ids merged into it}``: made equivalent, so a merged
            segment's meshes and skeletons from before the merge show together.
        panel_px: the xy panel's width and height in pixels, for the zoom.
    """
    import neuroglancer

    state = neuroglancer.ViewerState()
    state.dimensions = neuroglancer.CoordinateSpace(names=["x", "y", "z"], units="nm",
                                                    scales=list(geometry.voxel_size[::-1]))
    state.position = geometry.centre_xyz()
    state.cross_section_scale = geometry.cross_section_scale(panel_px)
    state.projection_orientation = list(PROJECTION_ORIENTATION)
    state.projection_scale = geometry.projection_scale()
    state.layout = LAYOUT
    if raw_source is not None:
        state.layers["raw"] = neuroglancer.ImageLayer(source=raw_source)
    layer = neuroglancer.SegmentationLayer(source=[segmentation_source, *extra_sources],
                                           selected_alpha=SELECTED_ALPHA, not_selected_alpha=NOT_SELECTED_ALPHA)
    groups = [[segment, *bases] for segment, bases in (merged or {}).items()]
    if groups:
        layer.equivalences = groups
    # with equivalences a class is named by its smallest id
    representative = {member: min(group) for group in groups for member in group}
    layer.segments = sorted({representative.get(int(s), int(s)) for s in segments})
    state.layers["segmentation"] = layer
    state.selected_layer.layer = "segmentation"
    return state
