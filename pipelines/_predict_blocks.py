"""Block geometry and reading for the predict stage: the network's block grid, and a block's
raw input with context, reflect-padded at the volume border exactly like ``predict_volume``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from axonseg.blockwise import Block, Roi, make_blocks
from axonseg.errors import InputError
from axonseg.io import Volume
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


def pad_mode(volume_shape: Sequence[int]) -> str:
    """numpy's pad mode ``predict_volume`` uses: reflect, or symmetric when an axis has 1 voxel
    (reflection of a single voxel is undefined)."""
    return "reflect" if min(volume_shape) > 1 else "symmetric"


def mirror_indices(start: int, stop: int, size: int, mode: str) -> np.ndarray:
    """Indices into an axis of ``size`` voxels for positions ``start..stop-1`` that may lie
    outside it, mirrored as ``np.pad(mode=reflect|symmetric)`` does (also several times over,
    for volumes smaller than the context)."""
    positions = np.arange(start, stop)
    if mode == "reflect":
        if size == 1:
            return np.zeros_like(positions)
        period = 2 * (size - 1)
        folded = np.mod(positions, period)
        return np.where(folded < size, folded, period - folded)
    period = 2 * size
    folded = np.mod(positions, period)
    return np.where(folded < size, folded, period - 1 - folded)


def read_block(volume: Volume, roi: Roi, mode: str) -> np.ndarray:
    """The raw voxels of ``roi`` (which may reach outside the volume), mirrored at the border.

    Args:
        volume: the raw volume (zyx or czyx).
        roi: the read ROI in voxels (zyx), relative to the volume's first voxel.
        mode: ``reflect`` or ``symmetric`` (see :func:`pad_mode`).

    Returns:
        ``(c, z, y, x)`` array of the volume's dtype (``c`` = 1 for a zyx volume).
    """
    spatial = volume.spatial_shape
    indices = [mirror_indices(o, o + s, n, mode) for o, s, n in zip(roi.offset, roi.shape, spatial)]
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in indices)
    lead = (slice(None),) * (volume.data.ndim - 3)
    data = np.asarray(volume.data[lead + box].compute(scheduler="synchronous"))
    if data.ndim == 3:
        data = data[None]
    inside = roi.intersect(Roi.of((0, 0, 0), spatial))
    if inside == roi:
        return data  # the common case: no border, no copy
    local = [i - b.start for i, b in zip(indices, box)]
    return data[np.ix_(np.arange(data.shape[0]), *local)]


def check_finite(block: np.ndarray, source: str, roi: Roi) -> None:
    """Refuse NaN or inf in float raw input, naming the array and the block's voxels."""
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        raise InputError(
            f"raw {source} contains NaN or inf in voxels {roi.offset} + {roi.shape} (z y x): "
            "expected finite intensities in [0, 1]"
        )
