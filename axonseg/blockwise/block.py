"""Blocks: a write ROI, plus a read ROI that adds the context a stage needs (daisy's idea)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

from axonseg.blockwise.roi import Roi
from axonseg.errors import ConfigError


@dataclass(frozen=True)
class Block:
    """One unit of blockwise work.

    Attributes:
        index: position in the block grid (zyx); also the block's identity for done markers.
        write_roi: the voxels this block writes, clipped to the volume.
        read_roi: ``write_roi`` grown by the stage's context; may reach outside the volume.
    """

    index: tuple[int, int, int]
    write_roi: Roi
    read_roi: Roi

    @property
    def block_id(self) -> str:
        """A stable, file-name-safe id, e.g. ``"0-3-1"``."""
        return "-".join(str(i) for i in self.index)

    @property
    def context_before(self) -> tuple[int, int, int]:
        return tuple(w - r for w, r in zip(self.write_roi.offset, self.read_roi.offset))  # type: ignore[return-value]


def check_shape(values: Sequence[int], what: str) -> tuple[int, int, int]:
    """Validate a zyx shape of three positive ints (voxels), naming ``what`` in the error."""
    try:
        shape = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}={values!r}: expected three positive integers (z y x, voxels)") from None
    if len(shape) != 3 or any(s <= 0 for s in shape):
        raise ConfigError(f"{what}={list(shape)}: expected three positive integers (z y x, voxels)")
    return shape  # type: ignore[return-value]


def make_blocks(
    volume_shape: Sequence[int],
    block_shape: Sequence[int],
    context: Sequence[int] | tuple[Sequence[int], Sequence[int]] = (0, 0, 0),
) -> list[Block]:
    """Tile a volume into blocks; write ROIs shrink at the far border, read ROIs add context.

    Args:
        volume_shape: zyx shape of the volume in voxels.
        block_shape: zyx shape of a write ROI in voxels (the last block per axis may be smaller).
        context: voxels of context per side (zyx), or a pair ``(before, after)``.

    Returns:
        Blocks in C order of their grid index.
    """
    volume = Roi.of((0, 0, 0), check_shape(volume_shape, "volume_shape"))
    block = check_shape(block_shape, "block_shape")
    if len(context) == 2 and not isinstance(context[0], int):
        before, after = context  # type: ignore[misc]
    else:
        before = after = context  # type: ignore[assignment]
    grid = [range(0, s, b) for s, b in zip(volume.shape, block)]
    blocks = []
    for start in itertools.product(*grid):
        write = Roi.of(start, block).intersect(volume)
        index = tuple(s // b for s, b in zip(start, block))
        blocks.append(Block(index, write, write.grow(before, after)))  # type: ignore[arg-type]
    return blocks

