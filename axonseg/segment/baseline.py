"""The classic baseline of the quality tables: affinities from the raw image alone, no network.

Used by ``scripts/heldout_eval.py`` and ``scripts/aniso_eval.py`` beside each model, so a card can
say what a trained network adds over "membranes are dark" (#15).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from axonseg.segment.affinities import NEAREST_NEIGHBOUR_OFFSETS


def baseline_affinities(raw: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Nearest-neighbour affinities from the inverted, Gaussian-smoothed raw image.

    Bright cytoplasm reads as high affinity and dark membrane as low; an edge is as weak as its
    darker voxel. The smoothed brightness is stretched between its 1st and 99th percentiles.

    Args:
        raw: EM image, zyx, uint8 (or any grey values; only their order and spread matter).
        sigma: Gaussian smoothing in voxels, every axis.

    Returns:
        uint8 affinities, shape (3, z, y, x), channels in the order of
        ``NEAREST_NEIGHBOUR_OFFSETS`` (-z, -y, -x); 255 = same object. Voxels whose partner
        lies outside the volume pair with themselves (no edge is invented across a face).
    """
    if raw.ndim != 3:
        raise ValueError(f"raw must be 3D (zyx), got shape {raw.shape}")
    brightness = gaussian_filter(raw.astype(np.float32) / 255.0, sigma)
    low, high = np.percentile(brightness, (1, 99))
    brightness = np.clip((brightness - low) / max(float(high - low), 1e-6), 0, 1)
    affinities = np.empty((len(NEAREST_NEIGHBOUR_OFFSETS),) + raw.shape, np.float32)
    for channel, offset in enumerate(NEAREST_NEIGHBOUR_OFFSETS):
        partner = brightness
        for axis, step in enumerate(offset):
            if step:
                index = np.clip(np.arange(raw.shape[axis]) + step, 0, raw.shape[axis] - 1)
                partner = np.take(partner, index, axis=axis)
        affinities[channel] = np.minimum(brightness, partner)
    return np.round(affinities * 255).astype(np.uint8)
