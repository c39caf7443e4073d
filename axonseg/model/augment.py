"""Training augmentations of a (raw, labels) crop pair, deterministic given a numpy Generator.

Geometric augmentations transform raw and labels identically (labels with nearest-neighbour
interpolation); intensity and section defects touch raw only. Arrays are zyx; raw is float32
in [0, 1]; sizes are voxels unless the name says nm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import ndimage
from scipy.interpolate import CubicSpline


class AugmentConfig(BaseModel):
    """Probabilities and strengths of each augmentation (probability 0 switches one off)."""

    model_config = ConfigDict(extra="forbid")

    flip_transpose: bool = True
    elastic_p: float = Field(0.5, ge=0, le=1)
    elastic_spacing_nm: float = Field(400.0, gt=0)
    elastic_sigma_nm: float = Field(20.0, ge=0)
    intensity_p: float = Field(0.8, ge=0, le=1)
    intensity_scale: tuple[float, float] = (0.8, 1.2)
    intensity_shift: tuple[float, float] = (-0.1, 0.1)
    gamma_p: float = Field(0.5, ge=0, le=1)
    gamma_range: tuple[float, float] = (0.7, 1.4)
    missing_section_p: float = Field(0.02, ge=0, le=1)
    blurred_section_p: float = Field(0.02, ge=0, le=1)
    blur_sigma: float = Field(2.0, gt=0)
    misalign_p: float = Field(0.2, ge=0, le=1)
    misalign_max_nm: float = Field(40.0, ge=0)
    noise_p: float = Field(0.5, ge=0, le=1)
    noise_sigma: float = Field(0.03, ge=0)
    # draw the noise's standard deviation per crop, uniform in this range (raw units); None: noise_sigma
    noise_sigma_range: tuple[float, float] | None = None
    # blur the whole crop with this probability, sigma uniform in blur_sigma_range (voxels; in-plane
    # only when z is anisotropic). 0 (default): off, and no random draw, so older runs resume exactly
    blur_p: float = Field(0.0, ge=0, le=1)
    blur_sigma_range: tuple[float, float] = (0.5, 2.0)

    @model_validator(mode="after")
    def _ranges(self) -> AugmentConfig:
        """Every [low, high] field is ordered; all but the intensity shift are non-negative."""
        for name in ("intensity_scale", "intensity_shift", "gamma_range", "noise_sigma_range", "blur_sigma_range"):
            value = getattr(self, name)
            floor = -np.inf if name == "intensity_shift" else 0.0
            if value is not None and not floor <= value[0] <= value[1]:
                bound = "low <= high" if name == "intensity_shift" else "0 <= low <= high"
                raise ValueError(f"{name} is {list(value)}: expected [low, high] with {bound}")
        return self


def _anisotropic_z(voxel_size: Sequence[float]) -> bool:
    return voxel_size[0] > 1.5 * min(voxel_size[1], voxel_size[2])


def flip_transpose(
    raw: np.ndarray, labels: np.ndarray, rng: np.random.Generator, voxel_size: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Random flips of every axis, and a random permutation of the axes that share voxel size
    and crop length (only y<->x when z is anisotropic, all three when isotropic)."""
    flips = rng.random(3) < 0.5
    raw = raw[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
    labels = labels[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
    axes = [0, 1, 2]
    candidates = (1, 2) if _anisotropic_z(voxel_size) else (0, 1, 2)
    groups: dict[tuple[int, float], list[int]] = {}
    for axis in candidates:
        groups.setdefault((raw.shape[axis], float(voxel_size[axis])), []).append(axis)
    for group in groups.values():
        if len(group) > 1:
            for a, b in zip(group, rng.permutation(group)):
                axes[a] = int(b)
    return np.ascontiguousarray(raw.transpose(axes)), np.ascontiguousarray(labels.transpose(axes))


def elastic(
    raw: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    voxel_size: Sequence[float],
    spacing_nm: float = 400.0,
    sigma_nm: float = 20.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random deformation: Gaussian displacements (sigma in nm) on a control grid with
    ``spacing_nm``, cubically interpolated; raw is resampled linearly, labels with order 0.
    With anisotropic z the displacement is in-plane only (sections are physically cut)."""
    shape = raw.shape
    voxel = np.asarray(voxel_size, dtype=np.float64)
    grid_shape = [max(2, int(np.ceil(n * v / spacing_nm)) + 1) for n, v in zip(shape, voxel)]
    moving_axes = (1, 2) if _anisotropic_z(voxel_size) else (0, 1, 2)
    # separable cubic-spline upsampling of the control grid: three small matrix products
    # instead of a 64-tap 3D interpolation per voxel
    upsample = [CubicSpline(np.arange(g), np.eye(g))(np.linspace(0, g - 1, n)) for g, n in zip(grid_shape, shape)]
    coords = np.indices(shape, dtype=np.float64)
    for axis in moving_axes:
        control = rng.normal(0.0, sigma_nm / voxel[axis], size=grid_shape)
        coords[axis] += np.einsum("ia,jb,kc,abc->ijk", *upsample, control, optimize=True)
    raw_out = ndimage.map_coordinates(raw, coords, order=1, mode="reflect").astype(raw.dtype)
    labels_out = ndimage.map_coordinates(labels, coords, order=0, mode="reflect").astype(labels.dtype)
    return raw_out, labels_out


def misalign(
    raw: np.ndarray, labels: np.ndarray, rng: np.random.Generator, max_shift: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Shift all sections above a random z by a random integer (y, x) offset of at most
    ``max_shift`` voxels, in raw and labels alike (edge voxels are repeated)."""
    if raw.shape[0] < 2:
        return raw, labels
    z = int(rng.integers(1, raw.shape[0]))
    shift = (0, int(rng.integers(-max_shift[0], max_shift[0] + 1)), int(rng.integers(-max_shift[1], max_shift[1] + 1)))
    raw, labels = raw.copy(), labels.copy()
    raw[z:] = ndimage.shift(raw[z:], shift, order=0, mode="nearest")
    labels[z:] = ndimage.shift(labels[z:], shift, order=0, mode="nearest")
    return raw, labels


def intensity(raw: np.ndarray, rng: np.random.Generator, scale: Sequence[float], shift: Sequence[float]) -> np.ndarray:
    """``raw * s + b`` with s, b uniform in the given ranges, clipped to [0, 1]."""
    return np.clip(raw * rng.uniform(*scale) + rng.uniform(*shift), 0.0, 1.0).astype(np.float32)


def gamma(raw: np.ndarray, rng: np.random.Generator, gamma_range: Sequence[float]) -> np.ndarray:
    """``raw ** g`` with g log-uniform in ``gamma_range``."""
    g = float(np.exp(rng.uniform(np.log(gamma_range[0]), np.log(gamma_range[1]))))
    return np.power(np.clip(raw, 0.0, 1.0), g).astype(np.float32)


def missing_sections(raw: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Blank each z-section with probability ``p`` (set to 0, as a lost section reads)."""
    raw = raw.copy()
    raw[rng.random(raw.shape[0]) < p] = 0.0
    return raw


def blurred_sections(raw: np.ndarray, rng: np.random.Generator, p: float, sigma: float) -> np.ndarray:
    """Blur each z-section in-plane (sigma in voxels) with probability ``p``."""
    raw = raw.copy()
    for z in np.flatnonzero(rng.random(raw.shape[0]) < p):
        raw[z] = ndimage.gaussian_filter(raw[z], sigma)
    return raw


def blur(raw: np.ndarray, rng: np.random.Generator, sigma_range: Sequence[float], voxel_size: Sequence[float]) -> np.ndarray:
    """Gaussian blur of the whole crop, sigma (voxels) uniform in ``sigma_range``; in y and x only
    when z is anisotropic (a section is imaged on its own, so its focus varies per section)."""
    sigma = float(rng.uniform(*sigma_range))
    sigmas = (0.0, sigma, sigma) if _anisotropic_z(voxel_size) else (sigma,) * 3
    return ndimage.gaussian_filter(raw, sigmas).astype(np.float32)


def noise(raw: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Additive Gaussian noise with standard deviation ``sigma`` (raw units), clipped to [0, 1]."""
    return np.clip(raw + rng.normal(0.0, sigma, raw.shape).astype(np.float32), 0.0, 1.0)


def augment(
    raw: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    voxel_size: Sequence[float],
    cfg: AugmentConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the configured augmentations in a fixed order.

    Args:
        raw: float32 zyx in [0, 1].
        labels: integer zyx, same shape.
        rng: the generator that decides everything (same state -> same output).
        voxel_size: nm, zyx (decides which axes may be transposed and nm -> voxel scales).
        cfg: strengths and probabilities; defaults when None.

    Returns:
        ``(raw, labels)`` of the input shape.
    """
    cfg = cfg or AugmentConfig()
    if cfg.flip_transpose:
        raw, labels = flip_transpose(raw, labels, rng, voxel_size)
    if rng.random() < cfg.elastic_p and cfg.elastic_sigma_nm > 0:
        raw, labels = elastic(raw, labels, rng, voxel_size, cfg.elastic_spacing_nm, cfg.elastic_sigma_nm)
    if rng.random() < cfg.misalign_p:
        max_shift = [int(cfg.misalign_max_nm / v) for v in voxel_size[1:]]
        raw, labels = misalign(raw, labels, rng, max_shift)
    if rng.random() < cfg.intensity_p:
        raw = intensity(raw, rng, cfg.intensity_scale, cfg.intensity_shift)
    if rng.random() < cfg.gamma_p:
        raw = gamma(raw, rng, cfg.gamma_range)
    if cfg.blur_p > 0 and rng.random() < cfg.blur_p:
        raw = blur(raw, rng, cfg.blur_sigma_range, voxel_size)
    if cfg.blurred_section_p > 0:
        raw = blurred_sections(raw, rng, cfg.blurred_section_p, cfg.blur_sigma)
    if cfg.missing_section_p > 0:
        raw = missing_sections(raw, rng, cfg.missing_section_p)
    if rng.random() < cfg.noise_p:
        sigma = cfg.noise_sigma if cfg.noise_sigma_range is None else float(rng.uniform(*cfg.noise_sigma_range))
        raw = noise(raw, rng, sigma)
    return raw.astype(np.float32, copy=False), labels
