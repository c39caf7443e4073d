"""Training batches: random crops of in-memory volumes, augmented, with their targets.

The batch of step ``s`` comes from ``np.random.default_rng([seed, s])`` alone, so a resumed
run or any number of loader workers produce exactly the same batches as one straight run.
"""

from __future__ import annotations

from dataclasses import dataclass

import fastremap
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from axonseg.errors import InputError
from axonseg.model import shapes
from axonseg.model.augment import augment
from axonseg.model.lsd import compute_lsds, lsd_margin
from axonseg.model.predict import normalize_raw
from axonseg.model.targets import balance_weights, boundary_distance_weights, crop_centre, output_affinities
from axonseg.model.train_config import TrainConfig

_VALIDATION_STREAM = 1_000_000_007  # a seed-sequence word no training step uses
_CALIBRATION_STREAM = 1_000_000_009  # the crops that BatchNorm statistics are recomputed over


@dataclass
class TrainingVolume:
    """A raw/labels pair already cut to its ROI. raw: uint8/uint16/float zyx; labels: integer
    zyx of the same shape; voxel_size: nm, zyx; name: for messages."""

    raw: np.ndarray
    labels: np.ndarray
    voxel_size: tuple[float, float, float]
    name: str = "<memory>"

    def __post_init__(self) -> None:
        if self.raw.shape != self.labels.shape:
            raise InputError(f"{self.name}: raw shape {self.raw.shape} != labels shape {self.labels.shape}")
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise InputError(f"{self.name}: labels has dtype {self.labels.dtype}: expected an integer dtype")


def _sample(
    volume: TrainingVolume, rng: np.random.Generator, in_shape: tuple[int, ...], out_shape: tuple[int, ...], cfg: TrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    """A random input-sized crop whose output centre is labelled enough (up to 20 tries)."""
    if any(v < i for v, i in zip(volume.raw.shape, in_shape)):
        raise InputError(f"{volume.name}: shape {volume.raw.shape} is smaller than the network input {in_shape}")
    best = None
    for _ in range(20):
        corner = [int(rng.integers(0, v - i + 1)) for v, i in zip(volume.raw.shape, in_shape)]
        window = tuple(slice(c, c + i) for c, i in zip(corner, in_shape))
        labels = volume.labels[window]
        labelled = float((crop_centre(labels, out_shape) != 0).mean())
        if best is None or labelled > best[0]:
            best = (labelled, window)
        if labelled >= cfg.min_labelled_fraction:
            break
    window = best[1]  # type: ignore[index]
    return volume.raw[window], volume.labels[window]


def _pick_crop(
    volumes: list[TrainingVolume], rng: np.random.Generator, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
    cfg: TrainConfig,
) -> tuple[TrainingVolume, np.ndarray, np.ndarray]:
    """A volume chosen in proportion to its size, and a crop of it (:func:`_sample`)."""
    sizes = np.array([v.raw.size for v in volumes], dtype=np.float64)
    volume = volumes[int(rng.choice(len(volumes), p=sizes / sizes.sum()))]
    return (volume, *_sample(volume, rng, in_shape, out_shape, cfg))


def make_batch(
    volumes: list[TrainingVolume], cfg: TrainConfig, rng: np.random.Generator, augmented: bool = True
) -> dict[str, np.ndarray]:
    """One batch of ``cfg.batch_size`` crops with targets.

    Returns:
        ``raw`` (B, 1, *input), ``affinities`` and ``weights`` (B, C, *output); with LSDs also
        ``lsds`` (B, 10, *output) and ``lsd_mask`` (B, 1, *output); with MALIS also ``labels``
        (B, 1, *output), the crop's labels numbered 1..n (0 = unlabelled). Shapes in voxels zyx.
    """
    model = cfg.model
    in_shape = shapes.valid_input_shape(model, cfg.output_shape)
    out_shape = shapes.valid_output_shape(model, in_shape)
    items: dict[str, list[np.ndarray]] = {"raw": [], "affinities": [], "weights": [], "lsds": [], "lsd_mask": [], "labels": []}
    for _ in range(cfg.batch_size):
        volume, raw, labels = _pick_crop(volumes, rng, in_shape, out_shape, cfg)
        raw = normalize_raw(np.asarray(raw), volume.name)
        if augmented:
            raw, labels = augment(raw, labels, rng, volume.voxel_size, cfg.augment)
        # the loss sees only the output crop: targets (and the class balance) are made there
        affinities, mask = output_affinities(labels, model.offsets, out_shape, cfg.zero_is_unlabelled)
        weights = balance_weights(affinities, mask) if cfg.balance else mask
        if cfg.boundary_weight > 0:
            boundary = boundary_distance_weights(labels, volume.voxel_size, cfg.boundary_sigma_nm, cfg.boundary_weight)
            weights = weights * crop_centre(boundary, out_shape)
        items["raw"].append(raw[None])
        items["affinities"].append(np.ascontiguousarray(affinities))
        items["weights"].append(np.ascontiguousarray(weights))
        if model.lsd:
            items["lsds"].append(output_lsds(labels, out_shape, model.lsd_sigma_nm, volume.voxel_size, cfg.lsd_downsample))
            labelled = labels != 0 if cfg.zero_is_unlabelled else np.ones(labels.shape, dtype=bool)
            items["lsd_mask"].append(crop_centre(labelled[None].astype(np.float32), out_shape))
        if cfg.malis_weight > 0:
            # numbered 1..n within the crop (0 stays 0), so the float32 batch holds them exactly
            crop = crop_centre(labels, out_shape)
            items["labels"].append(fastremap.renumber(np.ascontiguousarray(crop), preserve_zero=True)[0][None])
    return {k: np.ascontiguousarray(np.stack(v)).astype(np.float32) for k, v in items.items() if v}


def output_lsds(labels: np.ndarray, out_shape: tuple[int, ...], sigma_nm: float, voxel_size,
                downsample: int = 1) -> np.ndarray:
    """LSDs of the centred ``out_shape`` crop of ``labels`` (zyx voxels), computed on that crop
    grown by :func:`~axonseg.model.lsd.lsd_margin` only: the same values as on the whole crop
    (exactly the same up to float rounding with ``downsample`` 1; see
    :func:`~axonseg.model.lsd.compute_lsds` for ``downsample``)."""
    grown = np.minimum(np.asarray(out_shape) + 2 * lsd_margin(sigma_nm, voxel_size), labels.shape)
    context = crop_centre(labels, tuple(int(g) for g in grown))
    return crop_centre(compute_lsds(context, sigma_nm, voxel_size, downsample), out_shape)


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of training step ``step`` (independent of every other step)."""
    return np.random.default_rng([seed, step])


def validation_batches(volumes: list[TrainingVolume], cfg: TrainConfig) -> list[dict[str, np.ndarray]]:
    """``cfg.val_crops`` fixed, un-augmented batches from the validation volumes."""
    return [make_batch(volumes, cfg, np.random.default_rng([cfg.seed, _VALIDATION_STREAM, i]), augmented=False) for i in range(cfg.val_crops)]


def calibration_inputs(volumes: list[TrainingVolume], cfg: TrainConfig, n: int):
    """``n`` fixed, un-augmented input crops ``(1, 1, *input shape)`` (float32 tensors) of the
    training volumes, made one at a time: what :func:`axonseg.model.batchnorm.recalibrate_batchnorm`
    averages the BatchNorm statistics over. Crop ``i`` depends only on ``(cfg.seed, i)``."""
    in_shape = shapes.valid_input_shape(cfg.model, cfg.output_shape)
    out_shape = shapes.valid_output_shape(cfg.model, in_shape)
    for i in range(n):
        volume, raw, _ = _pick_crop(volumes, np.random.default_rng([cfg.seed, _CALIBRATION_STREAM, i]), in_shape,
                                    out_shape, cfg)
        yield torch.from_numpy(np.ascontiguousarray(normalize_raw(np.asarray(raw), volume.name), dtype=np.float32)[None, None])


class BatchStream(IterableDataset):
    """Yields ``(step, batch)`` for steps ``start_step .. cfg.steps - 1`` in order.

    With ``k`` DataLoader workers, worker ``w`` makes steps ``start + w, start + w + k, ...``;
    the loader's round-robin then returns them in step order.
    """

    def __init__(self, volumes: list[TrainingVolume], cfg: TrainConfig, start_step: int) -> None:
        self.volumes = volumes
        self.cfg = cfg
        self.start_step = start_step

    def __iter__(self):  # type: ignore[override]
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            torch.set_num_threads(1)  # workers run numpy/scipy; leave the cores to the model
        for step in range(self.start_step + worker, self.cfg.steps, workers):
            batch = make_batch(self.volumes, self.cfg, step_rng(self.cfg.seed, step))
            yield step, {k: torch.from_numpy(v) for k, v in batch.items()}
