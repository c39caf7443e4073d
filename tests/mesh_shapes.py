"""Label volumes of simple shapes with known surface areas, for the mesh tests (nm, zyx)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def voxel_centres(shape: Sequence[int], voxel_size: Sequence[float]) -> np.ndarray:
    """``(Z, Y, X, 3)`` positions of the voxel centres in nm relative to the volume's corner."""
    axes = [(np.arange(s) + 0.5) * v for s, v in zip(shape, voxel_size)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def paint_sphere(labels: np.ndarray, voxel_size: Sequence[float], centre_nm: Sequence[float], radius_nm: float,
                 label: int) -> float:
    """Set the voxels whose centre lies within ``radius_nm`` of ``centre_nm`` to ``label``;
    returns the sphere's area (nm²)."""
    inside = np.linalg.norm(voxel_centres(labels.shape, voxel_size) - np.asarray(centre_nm), axis=-1) <= radius_nm
    labels[inside] = label
    return 4 * math.pi * radius_nm**2


def paint_tube(labels: np.ndarray, voxel_size: Sequence[float], start_nm: Sequence[float], end_nm: Sequence[float],
               radius_nm: float, label: int) -> float:
    """Set the voxels within ``radius_nm`` of the segment ``start_nm``-``end_nm`` to ``label`` (a
    capsule: a cylinder with hemispherical ends); returns its area (nm²)."""
    points = voxel_centres(labels.shape, voxel_size)
    a, b = np.asarray(start_nm, dtype=np.float64), np.asarray(end_nm, dtype=np.float64)
    axis = b - a
    t = np.clip(((points - a) @ axis) / (axis @ axis), 0.0, 1.0)
    labels[np.linalg.norm(points - (a + t[..., None] * axis), axis=-1) <= radius_nm] = label
    length = float(np.linalg.norm(axis))
    return 2 * math.pi * radius_nm * length + 4 * math.pi * radius_nm**2
