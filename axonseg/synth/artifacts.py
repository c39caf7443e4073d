"""Imaging of a clean EM image: in-section blur, section brightness jitter, noise and defects.

Defects change only the raw image (the labels keep the true geometry): a misaligned section is
shifted in y and x, a missing section is a uniform grey.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage


@dataclass
class Defects:
    """Which sections the imaging spoiled.

    Attributes:
        misaligned: {z: (dy, dx)} shift of each misaligned section in voxels.
        missing: sorted z indices of blank sections.
    """

    misaligned: dict[int, tuple[int, int]] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)


def image_sections(clean: np.ndarray, voxel_size: tuple[float, float, float], blur_nm: float, noise: float,
                   section_jitter: float, misaligned_rate: float, missing_rate: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, Defects]:
    """Turn a clean float image (grey levels, zyx) into uint8 raw data with defects.

    Args:
        clean: float32 grey levels, zyx.
        voxel_size: nm, zyx.
        blur_nm: Gaussian blur sigma in y and x (nm); sections are not blurred along z.
        noise: standard deviation (grey levels) of Gaussian noise added before the blur.
        section_jitter: relative std of each section's brightness (gain, and an offset of it).
        misaligned_rate: chance per section (never the first) of a y/x shift of 40-160 nm.
        missing_rate: chance per section of being blank.
        rng: random generator.

    Returns:
        raw uint8 (zyx) and the :class:`Defects` record.
    """
    depth = clean.shape[0]
    image = clean + rng.normal(0.0, noise, clean.shape).astype(np.float32) if noise > 0 else clean.copy()
    if blur_nm > 0:
        sigma = (0.0, blur_nm / voxel_size[1], blur_nm / voxel_size[2])
        image = ndimage.gaussian_filter(image, sigma=sigma, mode="nearest")
    gain = 1.0 + section_jitter * rng.standard_normal(depth)
    offset = 0.5 * section_jitter * 128.0 * rng.standard_normal(depth)
    mean = float(image.mean())
    # Gain around the mean grey keeps the contrast plausible while the brightness drifts.
    image = (image - mean) * gain[:, None, None].astype(np.float32) + (mean + offset[:, None, None]).astype(np.float32)

    defects = Defects()
    misaligned_draw = rng.random(depth)
    missing_draw = rng.random(depth)
    shift_nm = rng.uniform(40.0, 160.0, depth)
    angle = rng.uniform(0.0, 2 * np.pi, depth)
    for z in range(1, depth):
        if misaligned_draw[z] < misaligned_rate:
            dy = int(round(shift_nm[z] * np.sin(angle[z]) / voxel_size[1]))
            dx = int(round(shift_nm[z] * np.cos(angle[z]) / voxel_size[2]))
            if dy or dx:
                image[z] = ndimage.shift(image[z], (dy, dx), order=0, mode="nearest")
                defects.misaligned[z] = (dy, dx)
    for z in range(depth):
        if missing_draw[z] < missing_rate:
            image[z] = mean
            defects.missing.append(z)
    raw = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return raw, defects
