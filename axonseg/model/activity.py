"""How much of the network is alive: the fraction of voxels on which each ReLU fires.

A convolution whose ReLU output is 0 everywhere passes no signal and gets no gradient, so it
never recovers ("dead"). The shipped 2026 FIB model lost its bottom level this way; training
now measures every ReLU at each validation and warns (or stops) when one falls below a floor.
"""

from __future__ import annotations

import torch
from torch import nn


def relu_names(model: nn.Module) -> list[str]:
    """Names of every ReLU module in ``model``, in forward order of registration."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.ReLU)]


def active_fractions(model: nn.Module, batches: list[torch.Tensor]) -> dict[str, float]:
    """For each ReLU in ``model``, the fraction of its output elements that are > 0.

    Args:
        model: the network (run in eval mode, without gradient).
        batches: input tensors ``(B, C, z, y, x)``.

    Returns:
        ``{relu module name: fraction in [0, 1]}`` over all ``batches``.
    """
    counts: dict[str, list[float]] = {}
    handles = []

    def watch(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            seen = counts.setdefault(name, [0.0, 0.0])
            seen[0] += float((output > 0).sum())
            seen[1] += float(output.numel())

        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.ReLU):
            handles.append(module.register_forward_hook(watch(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {name: active / max(total, 1.0) for name, (active, total) in counts.items()}


def dead_layers(fractions: dict[str, float], floor: float) -> list[str]:
    """Names whose active fraction is below ``floor``."""
    return [name for name, fraction in fractions.items() if fraction < floor]
