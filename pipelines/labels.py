"""Label arrays shared by the jobs: the boundary checks (dtype, shape, voxel size, grid, not an
image) every label input of a blockwise stage must pass, and reading a block of one. Which labels and LUT
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


# ---- label arrays that are really images ----------------------------------------------------
# Raw EM is an integer array too (uint8), so the dtype check lets it through. Two signs tell
# intensities from labels: the array's own record (``axonseg ingest``/``synth`` store
# ``kind: raw``), and its texture. Labels are piecewise constant: in a central sample of the
# real FIB-SEM crops and synth volumes, 2-10% of in-plane neighbour pairs differ; in their raw
# EM 91-96% do, and still 79% after a 3-voxel Gaussian blur. Half is the line, and a sample
# with fewer than MIN_DISTINCT values (a few random test labels) is never refused.
#: Central sample read for the texture test, voxels (z, y, x).
SAMPLE_SHAPE = (16, 128, 128)
#: Fraction of in-plane (y and x) neighbour pairs that differ above which it looks like an image.
MAX_LABEL_CHANGE = 0.5
#: Fewer distinct values than this in the sample is never called an image.
MIN_DISTINCT = 32


def _central_sample(volume: Volume) -> np.ndarray:
    shape = volume.spatial_shape
    begin = [max(0, (s - w) // 2) for s, w in zip(shape, SAMPLE_SHAPE)]
    region = tuple(slice(b, min(s, b + w)) for b, s, w in zip(begin, shape, SAMPLE_SHAPE))
    return volume.read(region)


def intensity_evidence(volume: Volume) -> str | None:
    """Why ``volume`` looks like image intensities rather than labels, or None if it does not.

    Reads at most :data:`SAMPLE_SHAPE` voxels from the centre of the volume.
    """
    recorded = volume.attrs.get("config", {})
    if isinstance(recorded, dict) and recorded.get("kind") == "raw":
        return "its metadata records it as a raw image (kind: raw)"
    sample = _central_sample(volume)
    pairs = [sample[:, 1:, :] != sample[:, :-1, :], sample[:, :, 1:] != sample[:, :, :-1]]
    n_pairs = sum(p.size for p in pairs)
    if n_pairs == 0:
        return None
    changed = sum(int(p.sum()) for p in pairs) / n_pairs
    if changed <= MAX_LABEL_CHANGE:
        return None
    distinct = len(np.unique(sample))
    if distinct < MIN_DISTINCT:
        return None
    shape = "x".join(map(str, sample.shape))
    return (f"{changed:.0%} of neighbouring voxels differ and a central {shape} sample has {distinct} "
            f"distinct values; labels change only at object borders")


def check_not_intensity(volume: Volume, what: str) -> None:
    """Refuse a label input that looks like image intensities (before anything is scored or written).

    Args:
        volume: the opened label array.
        what: its role in messages (``"gt"``, ``"pred"``).

    Raises:
        InputError: naming the array, the evidence and what was expected.
    """
    evidence = intensity_evidence(volume)
    if evidence is not None:
        raise InputError(
            f"{what} {volume.source} looks like image intensities, not labels ({evidence}): expected a label "
            f"array (one integer id per object, 0 = unlabelled); nothing was scored or written"
        )


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
