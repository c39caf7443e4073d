"""Local shape descriptors (Sheridan et al. 2022): 10 channels of Gaussian-weighted shape
statistics of each voxel's own object, used as an auxiliary training target.

Own implementation: each label is processed inside its bounding box grown by 3 sigma, so
the cost scales with object size instead of (number of labels x volume).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from axonseg.model.config import LSD_CHANNELS


def compute_lsds(labels: np.ndarray, sigma_nm: float, voxel_size: Sequence[float]) -> np.ndarray:
    """Local shape descriptors of a label volume.

    Channels: 0-2 mean offset to the local centre of mass (zyx, scaled to [0, 1] by sigma),
    3-5 variances (zyx, / sigma^2, clipped to [0, 1]), 6-8 Pearson correlations zy, zx, yx
    (mapped to [0, 1]), 9 the local mass (fraction of the Gaussian covered by the object).

    Args:
        labels: integer label volume, zyx; label 0 gets all-zero descriptors.
        sigma_nm: Gaussian sigma in nm.
        voxel_size: nm, zyx.

    Returns:
        float32 ``(10, z, y, x)`` in [0, 1].
    """
    voxel = np.asarray(voxel_size, dtype=np.float64)
    sigma_vox = sigma_nm / voxel
    margin = np.ceil(3.0 * sigma_vox).astype(int)
    descriptors = np.zeros((LSD_CHANNELS,) + labels.shape, dtype=np.float32)
    boxes = ndimage.find_objects(labels.astype(np.int64, copy=False))
    for index, box in enumerate(boxes):
        label = index + 1
        if box is None:
            continue
        grown = tuple(
            slice(max(0, s.start - m), min(n, s.stop + m)) for s, m, n in zip(box, margin, labels.shape)
        )
        inside = labels[grown] == label
        descriptors[(slice(None),) + grown] += _descriptors(inside, sigma_vox, voxel, sigma_nm)
    return descriptors


def _descriptors(inside: np.ndarray, sigma_vox: np.ndarray, voxel: np.ndarray, sigma_nm: float) -> np.ndarray:
    """Descriptors of one object (boolean mask) inside its box, zero outside the object."""

    def smooth(values: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(values, sigma=sigma_vox, mode="constant", cval=0.0, truncate=3.0)

    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) * v for n, v in zip(inside.shape, voxel)], indexing="ij")
    weight = inside.astype(np.float64)
    mass = smooth(weight)
    safe = np.where(mass > 0, mass, 1.0)
    centre = [smooth(weight * g) / safe for g in grid]
    second = {}
    for i in range(3):
        for j in range(i, 3):
            second[i, j] = smooth(weight * grid[i] * grid[j]) / safe - centre[i] * centre[j]
    out = np.zeros((LSD_CHANNELS,) + inside.shape, dtype=np.float32)
    for axis in range(3):
        out[axis] = np.clip((centre[axis] - grid[axis]) / sigma_nm * 0.5 + 0.5, 0.0, 1.0)
        out[3 + axis] = np.clip(second[axis, axis] / sigma_nm**2, 0.0, 1.0)
    for channel, (i, j) in enumerate(((0, 1), (0, 2), (1, 2))):
        denom = np.sqrt(np.maximum(second[i, i] * second[j, j], 1e-12))
        out[6 + channel] = np.clip(second[i, j] / denom, -1.0, 1.0) * 0.5 + 0.5
    out[9] = np.clip(mass, 0.0, 1.0)
    out *= inside
    return out
