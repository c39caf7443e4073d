"""Fixtures for segment tests: affinities made from label volumes (with noise), real labels.

pytest runs with --import-mode=importlib, so helpers reach the tests as fixtures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]
LONG_OFFSETS = NN_OFFSETS + [(0, -3, 0), (0, 0, -3), (0, -9, 0), (0, 0, -9), (-2, 0, 0)]
from shared_data import FIB_PATH as REAL_DATA, require_shared


def affinities_from_labels(
    labels: np.ndarray, offsets, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """(C, Z, Y, X) float32: 1 where p and p + offset carry the same non-zero label.

    Pairs reaching outside the volume get 0; gaussian noise (sigma = noise) is added and the
    values clipped to [0, 1].
    """
    affinities = np.zeros((len(offsets),) + labels.shape, dtype=np.float32)
    for channel, offset in enumerate(offsets):
        here = tuple(slice(max(-o, 0), s - max(o, 0)) for o, s in zip(offset, labels.shape))
        there = tuple(slice(max(o, 0), s - max(-o, 0)) for o, s in zip(offset, labels.shape))
        same = (labels[here] == labels[there]) & (labels[here] != 0)
        affinities[(channel,) + here] = same
    if noise > 0:
        rng = np.random.default_rng(seed)
        affinities += rng.normal(0.0, noise, affinities.shape).astype(np.float32)
        np.clip(affinities, 0.0, 1.0, out=affinities)
    return affinities


@pytest.fixture
def make_affinities():
    """The function affinities_from_labels(labels, offsets, noise=0.0, seed=0)."""
    return affinities_from_labels


@pytest.fixture
def nn_offsets():
    return list(NN_OFFSETS)


@pytest.fixture
def long_offsets():
    return list(LONG_OFFSETS)


@pytest.fixture(scope="session")
def real_labels() -> np.ndarray:
    """A 48 x 96 x 96 crop of the real FIB-SEM ground truth (skips when the file is absent)."""
    require_shared(REAL_DATA)
    h5py = pytest.importorskip("h5py")
    with h5py.File(REAL_DATA, "r") as f:
        return np.asarray(f["labels"][100:148, 60:156, 60:156]).astype(np.int64)
