"""The learning-rate schedule: linear warm-up, then cosine decay (or constant).

The rate is a pure function of the step, so a resumed run needs no scheduler state and
continues bit-exactly from its checkpoint.
"""

from __future__ import annotations

import math

from axonseg.model.train_config import TrainConfig


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """The learning rate for training step ``step`` (0-based).

    Warm-up rises linearly from ``lr / 100`` to ``lr`` over ``lr_warmup_steps``; after it the
    ``cosine`` schedule falls to ``lr * lr_min_factor`` at ``cfg.steps``, ``constant`` stays.
    """
    warmup = cfg.lr_warmup_steps
    if step < warmup:
        return cfg.lr * (0.01 + 0.99 * step / warmup)
    if cfg.lr_schedule == "constant":
        return cfg.lr
    span = max(1, cfg.steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    low = cfg.lr * cfg.lr_min_factor
    return low + 0.5 * (cfg.lr - low) * (1.0 + math.cos(math.pi * progress))
