"""Downsampling for multiscale pyramids: mean for EM, mode or strided for labels (numpy, zyx)."""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from axonseg.errors import ConfigError

Mode = Literal["mean", "mode", "strided"]


def pyramid_factors(
    voxel_size: Sequence[float], shape: Sequence[int], chunk_shape: Sequence[int], max_levels: int = 4
) -> list[tuple[int, int, int]]:
    """Per-level downsampling factors (zyx) until the level fits in one chunk or ``max_levels``.

    Anisotropic data (z voxel size > 1.5x the in-plane size) is first downsampled in-plane
    only, (1, 2, 2), until it is roughly isotropic; then by (2, 2, 2).

    Args:
        voxel_size: s0 voxel size in nm (zyx).
        shape: s0 shape in voxels (zyx).
        chunk_shape: chunk shape in voxels (zyx).
        max_levels: the most coarser levels to make (s1..s{max_levels}).
    """
    size = [float(v) for v in voxel_size]
    current = [int(s) for s in shape]
    factors: list[tuple[int, int, int]] = []
    while len(factors) < max_levels and any(s > c for s, c in zip(current, chunk_shape)):
        in_plane = min(size[1], size[2])
        factor = tuple(
            1 if (axis == 0 and size[0] > 1.5 * in_plane) or current[axis] < 2 else 2 for axis in range(3)
        )
        if factor == (1, 1, 1):
            break
        factors.append(factor)  # type: ignore[arg-type]
        size = [s * f for s, f in zip(size, factor)]
        current = [-(-s // f) for s, f in zip(current, factor)]
    return factors


def _grouped(block: np.ndarray, factor: Sequence[int]) -> np.ndarray:
    """View ``block`` (zyx) as (Z', fz, Y', fy, X', fx), padding the far edge by repetition."""
    pad = [(0, (-s) % f) for s, f in zip(block.shape, factor)]
    if any(p[1] for p in pad):
        block = np.pad(block, pad, mode="edge")
    fz, fy, fx = factor
    z, y, x = (s // f for s, f in zip(block.shape, factor))
    return block.reshape(z, fz, y, fy, x, fx)


def _windows(block: np.ndarray, factor: Sequence[int]) -> np.ndarray:
    """``block`` (zyx) as (Z', Y', X', fz*fy*fx) windows."""
    grouped = _grouped(block, factor).transpose(0, 2, 4, 1, 3, 5)
    return grouped.reshape(*grouped.shape[:3], -1)


def _mean(block: np.ndarray, factor: Sequence[int]) -> np.ndarray:
    """Window means by summing reshaped axes (no transposed copy); integers round half up."""
    n = int(np.prod(factor))
    grouped = _grouped(block, factor)
    if np.issubdtype(block.dtype, np.integer) and block.dtype.itemsize <= 2:
        total = grouped.sum(axis=(1, 3, 5), dtype=np.int64)
        return ((total + n // 2) // n).astype(block.dtype)
    mean = grouped.mean(axis=(1, 3, 5), dtype=np.float64)
    return (np.rint(mean) if np.issubdtype(block.dtype, np.integer) else mean).astype(block.dtype)


def downsample(block: np.ndarray, factor: Sequence[int], mode: Mode = "mean") -> np.ndarray:
    """Downsample a zyx block by an integer ``factor`` per axis.

    Args:
        block: zyx array; its shape need not be a multiple of ``factor`` (the far edge repeats).
        factor: downsampling factor per axis (zyx).
        mode: ``mean`` (EM; integers round half up), ``mode`` (labels: most frequent value
            per window, ties to the smallest) or ``strided`` (labels: the first voxel per window).

    Returns:
        Array of shape ``ceil(block.shape / factor)`` and the input dtype.
    """
    if block.ndim != 3:
        raise ConfigError(f"downsample: expected a 3D block, got shape {block.shape}")
    if mode == "strided":
        return np.ascontiguousarray(block[:: factor[0], :: factor[1], :: factor[2]])
    if mode == "mean":
        return _mean(block, factor)
    windows = _windows(block, factor)
    if mode == "mode":
        ordered = np.sort(windows, axis=-1)
        # count, for each sorted value, how many window entries equal it; keep the most frequent
        counts = (ordered[..., :, None] == ordered[..., None, :]).sum(axis=-1)
        best = np.argmax(counts, axis=-1)
        return np.take_along_axis(ordered, best[..., None], axis=-1)[..., 0]
    raise ConfigError(f"downsample mode={mode!r}: expected mean, mode or strided")
