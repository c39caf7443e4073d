"""Input/output shape arithmetic of the valid-convolution U-Net, computed from its config.

Nobody does halo arithmetic by hand: ask ``valid_output_shape``, ``valid_input_shape``,
``context`` and ``shape_step`` here. All shapes are in voxels, zyx.
"""

from __future__ import annotations

import math
from functools import lru_cache

from axonseg.errors import ConfigError, InputError
from axonseg.model.config import ModelConfig

Shape = tuple[int, int, int]


def _axis_output(size: int, axis: int, cfg: ModelConfig) -> int | None:
    """Output size along ``axis`` for input ``size``, or None if the size is not valid.

    Mirrors the forward pass: valid convs shrink by (k - 1), pooling must divide exactly,
    the transposed conv multiplies by the factor and the skip connection is centre-cropped.
    """

    def level(lvl: int, s: int) -> int | None:
        for kernel in cfg.kernel_size_down[lvl]:  # type: ignore[index]
            s -= kernel[axis] - 1
        if s < 1:
            return None
        if lvl == cfg.num_levels - 1:
            return s
        factor = cfg.downsample_factors[lvl][axis]
        if s % factor:
            return None
        below = level(lvl + 1, s // factor)
        if below is None:
            return None
        up = below * factor
        if up > s:
            return None
        for kernel in cfg.kernel_size_up[lvl]:  # type: ignore[index]
            up -= kernel[axis] - 1
        return up if up >= 1 else None

    return level(0, size)


@lru_cache(maxsize=64)
def _axis_geometry(cfg_json: str, axis: int) -> tuple[int, int, int]:
    """(smallest valid input, input - output, step between valid inputs) along one axis."""
    cfg = ModelConfig.model_validate_json(cfg_json)
    step = math.prod(f[axis] for f in cfg.downsample_factors)
    # valid inputs form s_min + k * step; s_min lies within a bounded search window
    for size in range(1, 100_000):
        out = _axis_output(size, axis, cfg)
        if out is not None:
            return size, size - out, step
    raise ConfigError(f"model config has no valid input size along axis {'zyx'[axis]}")


def _geometry(cfg: ModelConfig) -> list[tuple[int, int, int]]:
    key = cfg.model_dump_json()
    return [_axis_geometry(key, axis) for axis in range(3)]


def shape_step(cfg: ModelConfig) -> Shape:
    """Valid input (and output) shapes differ by multiples of this (product of downsample
    factors per axis, voxels zyx). Output blocks that are multiples of it keep the max-pool
    grid aligned across blocks, which makes blockwise prediction block-size invariant."""
    return tuple(g[2] for g in _geometry(cfg))  # type: ignore[return-value]


def context(cfg: ModelConfig) -> Shape:
    """Voxels of input needed on each side of the output, zyx."""
    return tuple(g[1] // 2 for g in _geometry(cfg))  # type: ignore[return-value]


def valid_output_shape(cfg: ModelConfig, input_shape: Shape) -> Shape:
    """Output shape (voxels zyx) of the network for ``input_shape``.

    Raises:
        InputError: if ``input_shape`` is not a valid input shape; the message names the
            nearest valid one.
    """
    out = []
    for axis, (size, (s_min, shrink, step)) in enumerate(zip(input_shape, _geometry(cfg))):
        if size < s_min or (size - s_min) % step:
            wanted = tuple(max(1, s - 2 * c) for s, c in zip(input_shape, context(cfg)))
            raise InputError(
                f"input shape {tuple(input_shape)} is not valid along {'zyx'[axis]}: expected "
                f"{s_min} + k*{step} voxels, e.g. {valid_input_shape(cfg, wanted)}"
            )
        out.append(size - shrink)
    return tuple(out)  # type: ignore[return-value]


def valid_input_shape(cfg: ModelConfig, min_output_shape: Shape) -> Shape:
    """Smallest valid input shape (voxels zyx) whose output is at least ``min_output_shape``."""
    shape = []
    for target, (s_min, shrink, step) in zip(min_output_shape, _geometry(cfg)):
        need = max(int(target), 1) + shrink
        k = max(0, math.ceil((need - s_min) / step))
        shape.append(s_min + k * step)
    return tuple(shape)  # type: ignore[return-value]


def is_valid_input_shape(cfg: ModelConfig, input_shape: Shape) -> bool:
    """True if ``input_shape`` (voxels zyx) runs through the network without error."""
    return all(
        size >= s_min and (size - s_min) % step == 0
        for size, (s_min, _, step) in zip(input_shape, _geometry(cfg))
    )
