"""Helpers of the predict tests: a smooth raw volume, its OME-Zarr, a tiny model, the affinities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.model import ModelConfig, build_model, save_model

VOXEL = (10.0, 10.0, 10.0)
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = dict(num_fmaps=3, fmap_inc_factor=2, downsample_factors=[(2, 2, 2), (2, 2, 2)])


def smooth_raw(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = ndimage.gaussian_filter(rng.random(shape), 1.5)
    return ((raw - raw.min()) / (raw.max() - raw.min()) * 255).astype(np.uint8)


def write_raw(tmp_path: Path, data: np.ndarray, voxel=VOXEL, name="raw") -> str:
    """``data`` as an OME-Zarr group ``tmp/in.zarr/name``; returns its address."""
    store = tmp_path / "in.zarr"
    create_multiscale(store, name, data.shape[-3:], data.dtype, voxel, (0.0, 0.0, 0.0), chunk_shape=(16, 16, 16),
                      channels=data.shape[0] if data.ndim == 4 else None)
    write_block(open_level(store, name, 0), data, (0, 0, 0))
    mark_complete(store, name)
    return f"{store}/{name}"


def tiny_model(tmp_path: Path, seed=0, name="model.pt", **overrides) -> Path:
    model = build_model(ModelConfig(**{**TINY, **overrides}), seed=seed)
    with torch.no_grad():  # sharpen the random head so affinities spread over 0..255
        model.head.weight.mul_(20.0)
    path = tmp_path / name
    save_model(model, path)
    return path


def affinities(run: Path) -> np.ndarray:
    return np.asarray(open_level(run / "volume.zarr", "affinities", 0, mode="r")[:])
