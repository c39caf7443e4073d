"""A tiny training config for the training tests (imported by name: ``pythonpath`` has tests/)."""

from __future__ import annotations

from pathlib import Path

from axonseg.model.config import ModelConfig
from axonseg.model.train_config import DatasetSpec, TrainConfig


def tiny_config(out_dir: Path, **update) -> TrainConfig:
    """A 3-feature-map U-Net with an LSD head, 4³ output crops, 6 steps, checkpoints and
    validation every 3; ``update`` overrides any field."""
    values = dict(
        datasets=[DatasetSpec(raw="memory", labels="memory")],
        model=ModelConfig(num_fmaps=3, fmap_inc_factor=2, downsample_factors=[(2, 2, 2)], lsd=True),
        output_shape=(4, 4, 4), steps=6, checkpoint_every=3, validate_every=3, val_crops=1,
        out_dir=str(out_dir), seed=3, n_threads=1, amp="off", lr=1e-2,
    )
    values.update(update)
    return TrainConfig(**values)
