"""Voxel faces between different fragments: the raw material of region-graph edges.

One face joins voxel p of the write ROI and its negative neighbour p - e_axis, which may lie in
a 1-voxel context on the negative side; its affinity is the channel of offset -e_axis at p.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class FacePairs(NamedTuple):
    """Faces whose two voxels carry different, non-zero fragment ids.

    Attributes:
        here: fragment id of the voxel p inside the write ROI, per face.
        there: fragment id of p's negative neighbour (maybe in the context), per face.
        values: affinity at p for that face (dtype of the affinities).
        axis: 0, 1 or 2 (z, y, x): the axis the face is normal to, per face (uint8).
    """

    here: np.ndarray
    there: np.ndarray
    values: np.ndarray
    axis: np.ndarray


def face_pairs(
    fragments_context: np.ndarray, affinities: np.ndarray, nn_channels: np.ndarray
) -> FacePairs:
    """Collect the faces between different fragments, each counted once (by the voxel p).

    Args:
        fragments_context: (Z+1, Y+1, X+1) fragment ids: the write ROI extended by one voxel
            towards negative z, y and x. Use 0 where that context lies outside the volume.
        affinities: (C, Z, Y, X) affinities of the write ROI.
        nn_channels: channels of the offsets (-1,0,0), (0,-1,0), (0,0,-1), in that order.

    Returns:
        FacePairs with one row per face between two different non-zero fragments.
    """
    here = fragments_context[1:, 1:, 1:]
    neighbours = (
        fragments_context[:-1, 1:, 1:],
        fragments_context[1:, :-1, 1:],
        fragments_context[1:, 1:, :-1],
    )
    nonzero_here = here != 0
    parts_here, parts_there, parts_values, parts_axis = [], [], [], []
    for axis, there in enumerate(neighbours):
        selected = (here != there) & nonzero_here & (there != 0)
        parts_here.append(here[selected])
        parts_there.append(there[selected])
        parts_values.append(affinities[nn_channels[axis]][selected])
        parts_axis.append(np.full(parts_here[-1].shape, axis, dtype=np.uint8))
    return FacePairs(
        np.concatenate(parts_here),
        np.concatenate(parts_there),
        np.concatenate(parts_values),
        np.concatenate(parts_axis),
    )
