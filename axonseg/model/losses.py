"""Masked, weighted losses for affinity (and LSD) training."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits, weighted per voxel and normalised by the total weight.

    Args:
        logits: ``(B, C, z, y, x)`` network output before the sigmoid.
        target: same shape, in [0, 1].
        weights: same shape; 0 masks a voxel out (unlabelled), larger values count more.

    Returns:
        A scalar; 0 when every weight is 0.
    """
    loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
    return (loss * weights).sum() / weights.sum().clamp_min(1e-6)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the voxels where ``mask`` > 0 (all tensors the same shape)."""
    return (((prediction.float() - target) ** 2) * mask).sum() / mask.sum().clamp_min(1e-6)


def malis_loss(affinities: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Constrained MALIS loss: squared error of each nearest-neighbour affinity, weighted by the
    voxel pairs it decides (:func:`axonseg.model.malis.malis_pair_counts`).

    ``mean_pos((1 - a)^2) + mean_neg(a^2)``, each term normalised by its own pair total, so a
    split and a merge of the same number of pairs cost the same whatever the crop's balance.

    Args:
        affinities: ``(B, 3, z, y, x)`` predicted probabilities (after the sigmoid).
        positive, negative: pair counts, same shape, without gradient.

    Returns:
        A scalar; 0 for a crop with no pair of either kind.
    """
    a = affinities.float()
    split = (positive * (1.0 - a) ** 2).sum() / positive.sum().clamp_min(1.0)
    merge = (negative * a**2).sum() / negative.sum().clamp_min(1.0)
    return split + merge
