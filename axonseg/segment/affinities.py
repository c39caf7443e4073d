"""Validation of affinity arrays and their offsets, shared by fragments and region graph.

Affinities are (C, Z, Y, X), float in [0, 1] or uint8 0-255; channel c belongs to
``offsets[c] = (dz, dy, dx)`` in voxels and says whether voxel p and p + offset are one object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from axonseg.errors import InputError

#: The nearest-neighbour offsets every affinity array must contain, in z, y, x order.
NEAREST_NEIGHBOUR_OFFSETS: tuple[tuple[int, int, int], ...] = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))


def check_affinities(affinities: np.ndarray, offsets: Sequence[Sequence[int]]) -> np.ndarray:
    """Check affinities against their offsets and find the nearest-neighbour channels.

    Args:
        affinities: (C, Z, Y, X) float (values in [0, 1]) or uint8 (0-255) affinities.
        offsets: C offsets (dz, dy, dx) in voxels, one per channel.

    Returns:
        int64 array of 3 channel indices: the channels of offsets (-1,0,0), (0,-1,0), (0,0,-1).

    Raises:
        InputError: wrong rank or dtype, channel count != number of offsets, malformed offsets,
            or a nearest-neighbour offset missing.
    """
    if not isinstance(affinities, np.ndarray):
        raise InputError(f"affinities is a {type(affinities).__name__}: expected a numpy array")
    if affinities.ndim != 4:
        raise InputError(
            f"affinities has shape {affinities.shape}: expected 4 axes (channels, z, y, x)"
        )
    if affinities.dtype != np.uint8 and not np.issubdtype(affinities.dtype, np.floating):
        raise InputError(
            f"affinities has dtype {affinities.dtype}: expected uint8 (0-255) or float in [0, 1]"
        )
    offsets_array = np.asarray(offsets)
    if offsets_array.ndim != 2 or offsets_array.shape[1] != 3:
        raise InputError(
            f"offsets has shape {offsets_array.shape}: expected one (dz, dy, dx) per channel"
        )
    if not np.issubdtype(offsets_array.dtype, np.integer):
        raise InputError(f"offsets has dtype {offsets_array.dtype}: expected integer voxel offsets")
    if affinities.shape[0] != len(offsets_array):
        raise InputError(
            f"affinities have {affinities.shape[0]} channels but {len(offsets_array)} offsets "
            "were given"
        )
    channels = []
    for wanted in NEAREST_NEIGHBOUR_OFFSETS:
        hits = np.flatnonzero((offsets_array == np.asarray(wanted)).all(axis=1))
        if len(hits) == 0:
            raise InputError(
                f"offsets {offsets_array.tolist()} lack the nearest-neighbour offset {list(wanted)}: "
                "expected (-1,0,0), (0,-1,0) and (0,0,-1) to be present"
            )
        channels.append(int(hits[0]))
    return np.asarray(channels, dtype=np.int64)


def check_voxel_size(voxel_size: Sequence[float]) -> np.ndarray:
    """Return voxel_size (z, y, x) in nm as float64, or raise InputError if not 3 positives."""
    size = np.asarray(voxel_size, dtype=np.float64)
    if size.shape != (3,) or not np.all(size > 0) or not np.all(np.isfinite(size)):
        raise InputError(f"voxel_size is {list(np.ravel(size))}: expected three positive nm (z, y, x)")
    return size


def as_unit_float(values: np.ndarray) -> np.ndarray:
    """Affinity values as float32 in [0, 1] (uint8 is divided by 255, floats are clipped)."""
    if values.dtype == np.uint8:
        return values.astype(np.float32) * np.float32(1.0 / 255.0)
    return np.clip(values, 0.0, 1.0).astype(np.float32, copy=False)


def as_uint8_bins(values: np.ndarray) -> np.ndarray:
    """Affinity values as uint8 histogram bins 0-255 (floats are rounded from [0, 1] * 255)."""
    if values.dtype == np.uint8:
        return values
    return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
