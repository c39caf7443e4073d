"""Training targets from a label volume: affinities, their loss mask and loss weights.

Numpy in, numpy out. Arrays are zyx; offsets and distances say whether they are voxels or nm.
"""

from __future__ import annotations

from collections.abc import Sequence

import edt
import numpy as np

from axonseg.errors import InputError


def _overlap_slices(shape: Sequence[int], offset: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices ``here`` and ``there`` such that ``array[there]`` is ``array[here]`` moved by
    ``offset``: voxel p of ``here`` pairs with voxel p + offset."""
    here, there = [], []
    for size, o in zip(shape, offset):
        here.append(slice(max(0, -o), min(size, size - o)))
        there.append(slice(max(0, o), min(size, size + o)))
    return tuple(here), tuple(there)


def compute_affinities(
    labels: np.ndarray,
    offsets: Sequence[Sequence[int]],
    zero_is_unlabelled: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Affinities and their loss mask for each offset.

    Affinity ``c`` at voxel p is 1 when p and p + offsets[c] carry the same non-zero label.

    Args:
        labels: integer label volume, zyx.
        offsets: affinity offsets in voxels, zyx.
        zero_is_unlabelled: if True (fib data), label 0 means "not annotated": the mask is 0
            wherever either voxel is 0. If False (AxonEM-style), 0 is background and its
            affinities are real negatives.

    Returns:
        ``(affinities, mask)``, both float32 ``(len(offsets), z, y, x)``. The mask is also 0
        where p + offset falls outside the volume.
    """
    if labels.ndim != 3:
        raise InputError(f"labels has {labels.ndim} dimensions: expected 3 (z, y, x)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels has dtype {labels.dtype}: expected an integer dtype")
    affinities = np.zeros((len(offsets),) + labels.shape, dtype=np.float32)
    mask = np.zeros_like(affinities)
    for channel, offset in enumerate(offsets):
        here, there = _overlap_slices(labels.shape, offset)
        a, b = labels[here], labels[there]
        affinities[(channel,) + here] = (a == b) & (a != 0)
        if zero_is_unlabelled:
            mask[(channel,) + here] = (a != 0) & (b != 0)
        else:
            mask[(channel,) + here] = 1.0
    return affinities, mask


def output_affinities(
    labels: np.ndarray,
    offsets: Sequence[Sequence[int]],
    out_shape: Sequence[int],
    zero_is_unlabelled: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`compute_affinities` of ``labels``, centre-cropped to ``out_shape`` (voxels zyx),
    computed on that crop grown by the largest offset only.

    The same values as computing on the whole crop and cropping after: every partner of an
    output voxel that lies inside ``labels`` lies inside the grown crop, and one outside
    ``labels`` is outside both (masked). A training input crop is ~18x its output crop in
    voxels, and affinities of the whole crop were about half of making a sample.
    """
    if labels.ndim != 3:
        raise InputError(f"labels has {labels.ndim} dimensions: expected 3 (z, y, x)")
    reach = np.abs(np.asarray(offsets, dtype=np.int64).reshape(-1, 3)).max(axis=0, initial=0)
    grown = tuple(int(min(o + 2 * r, s)) for o, r, s in zip(out_shape, reach, labels.shape))
    affinities, mask = compute_affinities(crop_centre(labels, grown), offsets, zero_is_unlabelled)
    return crop_centre(affinities, out_shape), crop_centre(mask, out_shape)


def balance_weights(affinities: np.ndarray, mask: np.ndarray, clip: float = 0.05) -> np.ndarray:
    """Per-channel class-balancing weights: positives and negatives get equal total weight.

    Args:
        affinities: ``(C, z, y, x)`` binary targets.
        mask: ``(C, z, y, x)`` loss mask (0 = ignore).
        clip: class fractions are clipped to ``[clip, 1 - clip]`` so a rare class does not
            get an extreme weight.

    Returns:
        float32 ``(C, z, y, x)`` weights, already multiplied by ``mask``.
    """
    weights = np.zeros(affinities.shape, dtype=np.float32)
    for channel in range(affinities.shape[0]):
        m = mask[channel] > 0
        n = int(m.sum())
        if n == 0:
            continue
        positive = (affinities[channel] > 0.5) & m
        frac = float(np.clip(positive.sum() / n, clip, 1.0 - clip))
        weights[channel] = np.where(positive, 0.5 / frac, 0.5 / (1.0 - frac)) * m
    return weights


def boundary_distance_weights(
    labels: np.ndarray,
    voxel_size: Sequence[float],
    sigma_nm: float = 40.0,
    scale: float = 2.0,
) -> np.ndarray:
    """Weights that emphasise voxels near object boundaries (U-Net-paper style).

    Args:
        labels: integer label volume, zyx.
        voxel_size: nm, zyx (distances are measured in nm).
        sigma_nm: how fast the extra weight decays with distance from a boundary, nm.
        scale: extra weight at a boundary voxel.

    Returns:
        float32 zyx weights ``1 + scale * exp(-d^2 / (2 sigma^2))`` where ``d`` is the distance
        in nm to the nearest voxel whose 6-neighbourhood contains another label.
    """
    boundary = np.zeros(labels.shape, dtype=bool)
    for axis in range(3):
        offset = [0, 0, 0]
        offset[axis] = -1
        here, there = _overlap_slices(labels.shape, offset)
        differs = labels[here] != labels[there]
        boundary[here] |= differs
        boundary[there] |= differs
    if not boundary.any():
        return np.ones(labels.shape, dtype=np.float32)
    distance = edt.edt(~boundary, anisotropy=tuple(float(v) for v in voxel_size), black_border=False)
    return (1.0 + scale * np.exp(-(distance**2) / (2.0 * sigma_nm**2))).astype(np.float32)


def crop_centre(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Centre crop of the last three axes to ``shape`` (voxels zyx)."""
    starts = [(a - s) // 2 for a, s in zip(array.shape[-3:], shape)]
    if any(st < 0 for st in starts) or any((a - s) % 2 for a, s in zip(array.shape[-3:], shape)):
        raise InputError(f"cannot centre-crop shape {array.shape[-3:]} to {tuple(shape)}: expected an even margin")
    return array[(...,) + tuple(slice(st, st + s) for st, s in zip(starts, shape))]
