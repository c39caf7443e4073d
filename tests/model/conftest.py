"""Shared fixtures for the model tests: tiny configs and a synthetic labelled volume."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from axonseg.model.config import ModelConfig
from axonseg.model.sampler import TrainingVolume

ANISO = dict(
    downsample_factors=[(1, 2, 2), (1, 2, 2)],
    kernel_size_down=[[(1, 3, 3), (1, 3, 3)], [(1, 3, 3), (1, 3, 3)], [(3, 3, 3), (3, 3, 3)]],
    kernel_size_up=[[(1, 3, 3), (1, 3, 3)], [(3, 3, 3), (3, 3, 3)]],
    voxel_size=(30.0, 8.0, 8.0),
)


@pytest.fixture
def iso_config() -> ModelConfig:
    return ModelConfig(num_fmaps=3, fmap_inc_factor=2, downsample_factors=[(2, 2, 2), (2, 2, 2)])


@pytest.fixture
def aniso_config() -> ModelConfig:
    return ModelConfig(num_fmaps=3, fmap_inc_factor=2, **ANISO)


def blob_labels(shape: tuple[int, int, int], seed: int = 0, sigma: float = 3.0) -> np.ndarray:
    """Random blobby objects (connected components of smoothed noise), 0 between them."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random(shape), sigma)
    labels, _ = ndimage.label(smooth > np.median(smooth))
    return labels.astype(np.uint32)


@pytest.fixture
def make_blob_labels():
    """The ``blob_labels`` generator, as a fixture (test modules do not import conftest)."""
    return blob_labels


@pytest.fixture
def volumes(make_blob_labels) -> tuple[list[TrainingVolume], list[TrainingVolume]]:
    """Training and validation volumes: blobs bright on a dark background, 10 nm voxels."""
    labels = make_blob_labels((44, 20, 20), seed=1, sigma=2.0)
    raw = np.where(labels > 0, 180, 60).astype(np.uint8)
    return [TrainingVolume(raw[:22], labels[:22], (10, 10, 10))], [TrainingVolume(raw[22:], labels[22:], (10, 10, 10))]
