"""BatchNorm statistics of the volume being predicted (test-time adaptation, "AdaBN").

A network trained at batch 1 normalises every convolution with the statistics of the one crop
it sees. Inference uses fixed statistics instead: the mean over training crops
(:mod:`axonseg.model.batchnorm`). When a volume's look lies outside the training looks (much
noisier, fainter or blurrier), those fixed statistics put its activations where the network
never was, and it stops seeing membranes at all. Measured with ``aniso_v3`` (step 5,000) on its
held-out synthetic looks (``scripts/aniso_look_ablation.py``, face recall of true y/x boundaries
at affinity 0.5): 0.000-0.37 with the model's statistics, 0.71-0.96 with statistics recomputed
over 16 crops of the volume itself, while the in-range validation volumes stay at 0.94-0.95.
Recomputing them per volume is Li et al. 2016, "Revisiting Batch Normalization for Practical
Domain Adaptation".

The statistics are computed once per volume, from crops at fixed pseudo-random places (a pure
function of the volume shape, crop shape, count and seed), so every block of a run uses the same
network: blockwise prediction stays block-size invariant. Models without BatchNorm are
unchanged.

Crops without tissue are skipped: a large volume has resin, the outside of the sample or the zero
padding of an aligned stack, and statistics averaged over such flat crops would normalise the
tissue with the wrong mean and variance. A crop's spread is the 5th-95th percentile range of its
grey values after smoothing (which removes pixel noise but keeps membranes). The rule is relative,
so a faint volume is judged like a contrasty one: a candidate is flat when its spread is below
``FLAT_FRACTION`` of the 90th percentile of all candidates' spreads (or below ``FLAT_MIN``, an
almost constant crop). The candidates are drawn in one sequence from the seed, so on a volume
without flat crops the crops are exactly the first ``n_crops``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from axonseg.model import shapes
from axonseg.model.batchnorm import batchnorm_layers, recalibrate_batchnorm
from axonseg.model.unet import AffinityNet

Shape = tuple[int, int, int]

logger = logging.getLogger(__name__)

#: Gaussian smoothing (voxels of the 2x-subsampled crop, every axis) before a crop's spread is
#: measured: pixel noise of 0.1 (25 grey levels) falls below 0.02, membrane/cytoplasm contrast survives.
FLAT_SIGMA = 1.0
#: A candidate whose spread is below this fraction of the 90th percentile of the candidates' spreads
#: holds no tissue (real FIB-SEM crops lie within about 2x of each other).
FLAT_FRACTION = 0.2
#: ... or below this absolute spread (normalised grey values; 2.5 grey levels of 255): a constant crop.
FLAT_MIN = 0.01
#: Candidate crop places drawn per crop wanted, so that flat ones can be skipped.
CANDIDATES_PER_CROP = 4

#: The BatchNorm statistics that training's segmentation validation predicts with, and so the
#: statistics a model file's calibrated threshold belongs to (``threshold_batchnorm`` in its
#: extra; files without the key were calibrated with their stored statistics, "model").
CALIBRATION_STATISTICS = "volume"


def has_batchnorm(model: torch.nn.Module) -> bool:
    """True when ``model`` has BatchNorm layers with running statistics."""
    return bool(batchnorm_layers(model))


def adaptation_crop_shape(model: AffinityNet, volume_shape: Sequence[int]) -> Shape:
    """Input crop (voxels zyx) for the statistics: the smallest valid input whose output covers
    the network's context (about three contexts per axis, near the crops it was trained on),
    shrunk to the largest valid input inside ``volume_shape`` where that is smaller."""
    cfg = model.config
    ctx = shapes.context(cfg)
    step = shapes.shape_step(cfg)
    wanted = shapes.valid_input_shape(cfg, tuple(max(c, s) for c, s in zip(ctx, step)))
    smallest = shapes.valid_input_shape(cfg, (1, 1, 1))
    crop = []
    for want, low, size, st in zip(wanted, smallest, volume_shape, step):
        if size >= want:
            crop.append(want)
        elif size >= low:
            crop.append(low + (size - low) // st * st)
        else:
            crop.append(low)  # smaller than any valid input: the crop is reflect-padded
    return tuple(crop)  # type: ignore[return-value]


def crop_starts(volume_shape: Sequence[int], crop_shape: Sequence[int], n_crops: int, seed: int = 0) -> list[Shape]:
    """``n_crops`` crop corners (voxels zyx), uniform over the volume, from ``seed`` alone.

    Where the crop is larger than the volume along an axis the corner is 0 there.
    """
    rng = np.random.default_rng(seed)
    starts = []
    for _ in range(n_crops):
        starts.append(tuple(int(rng.integers(0, max(v - c, 0) + 1)) for v, c in zip(volume_shape, crop_shape)))
    return starts  # type: ignore[return-value]


def fit_crop(data: np.ndarray, crop_shape: Sequence[int]) -> np.ndarray:
    """``data`` (``(c, z, y, x)``, a crop clipped at the volume's far faces) reflect-padded at its
    far side up to ``crop_shape`` (zyx): the in-memory counterpart of a mirrored ``read_roi``."""
    pad = [(0, 0)] + [(0, max(c - s, 0)) for s, c in zip(data.shape[-3:], crop_shape)]
    if not any(after for _, after in pad):
        return data
    mode = "reflect" if min(data.shape[-3:]) > 1 else "symmetric"
    return np.pad(data, pad, mode=mode)


def adapt_batchnorm(model: AffinityNet, crops: Iterable[np.ndarray]) -> tuple[AffinityNet, int]:
    """A copy of ``model`` whose BatchNorm statistics are the mean over ``crops`` (float32
    ``(c, z, y, x)`` raw in [0, 1], each a valid input shape). ``model`` is not changed.

    Returns:
        ``(adapted copy in eval mode, crops used)``; a model without BatchNorm is copied
        unchanged and no crop is read.
    """
    def tensors() -> Iterator[torch.Tensor]:
        for crop in crops:
            yield torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None]

    adapted, used = recalibrate_batchnorm(model, tensors())
    return adapted, used  # type: ignore[return-value]


def crop_spread(crop: np.ndarray) -> float:
    """5th-95th percentile range of ``crop`` (``(c, z, y, x)`` or ``(z, y, x)`` normalised raw in
    [0, 1]; the first channel), subsampled 2x per axis and smoothed with ``FLAT_SIGMA`` voxels."""
    data = crop[0] if crop.ndim == 4 else crop
    smooth = gaussian_filter(np.asarray(data[::2, ::2, ::2], dtype=np.float32), FLAT_SIGMA, mode="nearest")
    low, high = np.percentile(smooth, (5, 95))
    return float(high - low)


def flat_candidates(spreads: Sequence[float]) -> np.ndarray:
    """Which candidates hold no tissue, from their :func:`crop_spread` values (see the module)."""
    values = np.asarray(spreads, dtype=np.float64)
    reference = float(np.percentile(values, 90)) if len(values) else 0.0
    return values < max(FLAT_FRACTION * reference, FLAT_MIN)


def volume_crops(read: Callable[[Shape, Shape], np.ndarray], volume_shape: Sequence[int], crop_shape: Shape,
                 n_crops: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``n_crops`` crops at the places of :func:`crop_starts`, flat ones skipped, each
    ``read(start, crop_shape)``: normalised ``(c, z, y, x)`` float32 of the full crop shape,
    mirrored where it reaches beyond the volume (``Volume.read_roi(..., border="mirror")``; in
    memory, :func:`fit_crop` of the clipped slice).

    ``CANDIDATES_PER_CROP * n_crops`` candidate places come from one sequence; each is read once
    to measure its spread (:func:`flat_candidates`), and the first ``n_crops`` with tissue are
    given. The first ``n_crops`` candidates that are not almost constant are kept from that read
    (on a volume without flat crops, exactly the ones given), so only a skipped crop's successor
    is read again. When fewer hold tissue, flat ones fill the rest, in order, with a warning: the
    statistics are then those of a mostly empty volume.
    """
    starts = crop_starts(volume_shape, crop_shape, CANDIDATES_PER_CROP * n_crops, seed)
    spreads: list[float] = []
    kept: dict[int, np.ndarray] = {}
    for i, start in enumerate(starts):
        crop = read(start, crop_shape)
        spreads.append(crop_spread(crop))
        if len(kept) < n_crops and spreads[-1] >= FLAT_MIN:
            kept[i] = crop
    flat = flat_candidates(spreads)
    chosen = [i for i in range(len(starts)) if not flat[i]][:n_crops]  # positions in the sequence
    if len(chosen) < n_crops:
        logger.warning("BatchNorm statistics: only %d of %d candidate crops hold tissue; %d flat crop(s) fill the "
                       "rest (a mostly empty volume? set batchnorm: model to use the stored statistics)",
                       len(chosen), len(starts), n_crops - len(chosen))
        chosen += [i for i in range(len(starts)) if flat[i]][: n_crops - len(chosen)]
    elif chosen and flat[: chosen[-1] + 1].any():
        logger.info("BatchNorm statistics: %d flat crop(s) without tissue skipped", int(flat[: chosen[-1] + 1].sum()))
    for i in chosen:
        yield kept.pop(i) if i in kept else read(starts[i], crop_shape)


def adapt_to_volume(model: AffinityNet, raw: np.ndarray, n_crops: int = 16, seed: int = 0) -> tuple[AffinityNet, int]:
    """A copy of ``model`` with the BatchNorm statistics of an in-memory volume: what the
    ``predict`` stage does with ``batchnorm: volume`` (its default), for ``predict_volume``.

    Args:
        model: the network; one without BatchNorm is copied unchanged.
        raw: the volume, ``(z, y, x)`` or ``(c, z, y, x)``, uint8, uint16 or float in [0, 1].
        n_crops: crops the statistics average over (the stage's ``batchnorm_crops``).
        seed: where the crops lie (the stage uses 0).

    Returns:
        ``(adapted copy in eval mode, crops used)``: the same crops, statistics and so affinities
        as the stage gives for the same volume (its crops mirrored beyond the faces).
    """
    from axonseg.model.predict import normalize_raw

    data = raw[None] if raw.ndim == 3 else raw
    crop_shape = adaptation_crop_shape(model, data.shape[-3:])

    def read(start: Shape, shape: Shape) -> np.ndarray:
        window = data[(slice(None),) + tuple(slice(s, s + n) for s, n in zip(start, shape))]
        return fit_crop(normalize_raw(window), shape)

    return adapt_batchnorm(model, volume_crops(read, data.shape[-3:], crop_shape, n_crops, seed))


__all__ = ["CALIBRATION_STATISTICS", "adapt_batchnorm", "adapt_to_volume", "adaptation_crop_shape", "crop_spread",
           "crop_starts", "fit_crop", "flat_candidates", "has_batchnorm", "volume_crops"]
