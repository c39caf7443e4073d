"""Label arrays shared by the jobs: the boundary checks (dtype, shape, voxel size, grid) every
label input of a blockwise stage must pass, and reading a block of one. Which labels and LUT
threshold a run shows is decided by :mod:`axonseg.pipelines.run_folder`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from axonseg.blockwise import Roi
from axonseg.errors import InputError
from axonseg.io import Volume, open_volume

logger = logging.getLogger(__name__)


def check_label_volume(volume: Volume, what: str) -> None:
    """Refuse a label volume that is not 3D or not of an integer dtype (reads no voxels).

    Args:
        volume: the opened array.
        what: its role in messages, e.g. ``"gt"`` or ``"pred"``.
    """
    if volume.data.ndim != 3:
        raise InputError(f"{what} {volume.source} has shape {volume.shape}: expected a 3D (z, y, x) label volume")
    if volume.dtype == bool or volume.dtype.kind not in "ui":
        raise InputError(f"{what} {volume.source} has dtype {volume.dtype}: expected an integer dtype")


def open_labels(address: str | Path, what: str, voxel_size: Sequence[float] | None = None) -> Volume:
    """Open a label array; ``voxel_size`` (nm, zyx) is used only where the file has none.

    Args:
        address: any address :func:`axonseg.io.open_volume` takes.
        what: the array's role in messages (``"gt"``, ``"pred"``).
        voxel_size: fallback voxel size in nm (zyx).

    Raises:
        InputError: unreadable array, missing voxel size, a file voxel size that contradicts
            ``voxel_size``, not 3D, or not integer.
    """
    try:
        volume = open_volume(address)
    except InputError:
        if voxel_size is None:
            raise
        volume = open_volume(address, voxel_size=voxel_size)  # re-raises errors other than a missing size
    else:
        if voxel_size is not None and not np.allclose(volume.voxel_size, voxel_size):
            raise InputError(
                f"{what} {volume.source} has voxel size {list(volume.voxel_size)} nm in its metadata but "
                f"--voxel-size is {list(map(float, voxel_size))}: expected them to agree"
            )
    check_label_volume(volume, what)
    return volume


def check_same_grid(pred: Volume, gt: Volume) -> None:
    """Refuse a prediction and ground truth that do not lie voxel for voxel on the same grid."""
    if pred.spatial_shape != gt.spatial_shape:
        raise InputError(
            f"pred {pred.source} has shape {pred.spatial_shape} but gt {gt.source} has shape "
            f"{gt.spatial_shape}: expected equal shapes (z y x, voxels)"
        )
    if not np.allclose(pred.voxel_size, gt.voxel_size):
        raise InputError(
            f"pred {pred.source} has voxel size {list(pred.voxel_size)} nm but gt {gt.source} has "
            f"{list(gt.voxel_size)} nm: expected equal voxel sizes (z y x)"
        )
    if not np.allclose(pred.offset, gt.offset) and not pred.attrs.get("offset_in_metadata", True):
        logger.info("pred %s carries no offset: using the gt's %s nm", pred.source, list(gt.offset))
        pred.offset = gt.offset
    if not np.allclose(pred.offset, gt.offset):
        raise InputError(
            f"pred {pred.source} has offset {list(pred.offset)} nm but gt {gt.source} has "
            f"{list(gt.offset)} nm: expected equal offsets (z y x)"
        )


def read_roi(volume: Volume, roi: Roi) -> np.ndarray:
    """The voxels of ``roi`` (inside the volume) as a numpy array, zyx."""
    return volume.read(roi.to_slices())
