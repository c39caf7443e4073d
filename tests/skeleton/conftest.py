"""Synthetic tubes for the skeleton tests: label volumes whose true centre line is known."""

from __future__ import annotations

import numpy as np
import pytest


def make_tube(shape, voxel_size, start, end, radius_nm, label=1, labels=None):
    """Paint a capsule (radius in nm) between two voxel positions (zyx) into a zyx label volume.

    Returns the label volume and the axis length in nm.
    """
    voxel = np.asarray(voxel_size, dtype=np.float64)
    labels = np.zeros(shape, dtype=np.uint32) if labels is None else labels
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1) * voxel
    a, b = np.asarray(start) * voxel, np.asarray(end) * voxel
    axis = b - a
    t = np.clip(((grid - a) @ axis) / (axis @ axis), 0.0, 1.0)
    distance = np.linalg.norm(grid - (a + t[..., None] * axis), axis=-1)
    labels[distance <= radius_nm] = label
    return labels, float(np.linalg.norm(axis))


@pytest.fixture
def tube():
    """The :func:`make_tube` painter, as a fixture (test modules cannot import conftest)."""
    return make_tube
