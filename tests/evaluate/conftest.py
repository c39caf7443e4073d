"""Fixtures for the evaluation tests: straight tubes with known skeletons, hand-sized."""

from __future__ import annotations

import numpy as np
import pytest

VOXEL_SIZE = (30.0, 6.0, 6.0)


def make_tubes(shape=(12, 40, 40), n_tubes=6, seed=0):
    """gt with ``n_tubes`` straight tubes along x (3x3 voxel cross-section), ids 1..n.

    Returns ``(gt, skeletons)`` with skeletons a dict id -> (nodes_nm, edges): one node per
    voxel of the tube's centre line, so every skeleton is 35 edges x 6 nm = 210 nm long.
    """
    rng = np.random.default_rng(seed)
    gt = np.zeros(shape, dtype=np.uint32)
    skeletons = {}
    centres = [(z, y) for z in range(2, shape[0] - 2, 4) for y in range(2, shape[1] - 2, 5)]
    chosen = rng.choice(len(centres), size=n_tubes, replace=False)
    x = np.arange(2, shape[2] - 2)
    for tube_id, index in enumerate(chosen, start=1):
        z, y = centres[index]
        gt[z - 1 : z + 2, y - 1 : y + 2, x[0] : x[-1] + 1] = tube_id
        nodes = np.stack([np.full(len(x), z * VOXEL_SIZE[0]), np.full(len(x), y * VOXEL_SIZE[1]), x * VOXEL_SIZE[2]], 1)
        edges = np.stack([np.arange(len(x) - 1), np.arange(1, len(x))], 1)
        skeletons[tube_id] = (nodes, edges)
    return gt, skeletons


@pytest.fixture
def tubes():
    """(gt uint32 (12, 40, 40), skeletons dict) with 6 tubes, voxel size 30 x 6 x 6 nm."""
    return make_tubes()


def line_skeleton(n_nodes: int, step_nm: float = 1.0, axis: int = 2, start=(0.0, 0.0, 0.0)):
    """One straight skeleton: ``n_nodes`` nodes ``step_nm`` apart along ``axis``."""
    nodes = np.tile(np.asarray(start, dtype=np.float64), (n_nodes, 1))
    nodes[:, axis] += np.arange(n_nodes) * step_nm
    edges = np.stack([np.arange(n_nodes - 1), np.arange(1, n_nodes)], 1)
    return nodes, edges


@pytest.fixture
def line():
    """Factory for straight skeletons: ``line(n_nodes, step_nm, axis, start)``."""
    return line_skeleton
