"""Block geometry of the predict stage: the network's block grid (the stage reads each block's
input with ``border="mirror"``, reflect-padded exactly like ``predict_volume``), and the check
of float raw input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from axonseg.blockwise import Block, Roi, make_blocks
from axonseg.errors import InputError
from axonseg.model import shapes
from axonseg.model.config import ModelConfig

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class PredictGrid:
    """How a volume is tiled for the network (all in voxels, zyx).

    Attributes:
        write_shape: output block shape; a multiple of the network's shape step, so every
            block starts on the max-pool grid (what makes the result block-size invariant).
        input_shape: the valid network input of one block (``write_shape`` plus context,
            rounded up to a valid shape).
        context: input voxels before the first output voxel, per axis.
        blocks: the blocks; ``read_roi`` starts ``context`` before ``write_roi`` and has
            ``input_shape`` (it may reach outside the volume: reflection fills it).
    """

    write_shape: Shape
    input_shape: Shape
    context: Shape
    blocks: list[Block]


def predict_grid(cfg: ModelConfig, volume_shape: Sequence[int], block_shape: Sequence[int]) -> PredictGrid:
    """The block grid of ``volume_shape`` for a network of config ``cfg``.

    Args:
        cfg: the model's architecture config.
        volume_shape: spatial shape of the raw volume in voxels (zyx).
        block_shape: wanted output block shape in voxels (zyx); rounded up to the shape step,
            and shrunk to the (rounded-up) volume where the volume is smaller, so a small
            volume does not pay for a big block.

    Returns:
        The :class:`PredictGrid`.
    """
    step = shapes.shape_step(cfg)
    ctx = shapes.context(cfg)
    write = tuple(
        int(math.ceil(min(b, v) / s) * s) for b, v, s in zip(block_shape, volume_shape, step)
    )
    in_shape = shapes.valid_input_shape(cfg, write)  # type: ignore[arg-type]
    blocks = []
    for block in make_blocks(volume_shape, write):
        # every block reads the full network input, also where its write ROI is clipped at the
        # far border: one input shape for all blocks (one batch shape, one compiled network)
        start = tuple(i * w for i, w in zip(block.index, write))
        read = Roi.of([s - c for s, c in zip(start, ctx)], in_shape)
        blocks.append(Block(block.index, block.write_roi, read))
    return PredictGrid(write, in_shape, ctx, blocks)  # type: ignore[arg-type]


def check_finite(block: np.ndarray, source: str, roi: Roi) -> None:
    """Refuse NaN or inf in float raw input, naming the array and the block's voxels."""
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        raise InputError(
            f"raw {source} contains NaN or inf in voxels {roi.offset} + {roi.shape} (z y x): "
            "expected finite intensities in [0, 1]"
        )
