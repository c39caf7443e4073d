"""Regions of interest in voxels (zyx): an offset and a shape, with the arithmetic blocks need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class Roi:
    """An axis-aligned box in voxels, zyx. ``offset`` may be negative (context outside the volume)."""

    offset: Shape
    shape: Shape

    @staticmethod
    def of(offset: Sequence[int], shape: Sequence[int]) -> "Roi":
        return Roi(tuple(int(o) for o in offset), tuple(int(s) for s in shape))  # type: ignore[arg-type]

    @property
    def end(self) -> Shape:
        return tuple(o + s for o, s in zip(self.offset, self.shape))  # type: ignore[return-value]

    @property
    def size(self) -> int:
        z, y, x = self.shape
        return z * y * x

    @property
    def empty(self) -> bool:
        return any(s <= 0 for s in self.shape)

    def grow(self, before: Sequence[int], after: Sequence[int] | None = None) -> "Roi":
        """Extend by ``before`` voxels towards the origin and ``after`` (default: same) away from it."""
        after = before if after is None else after
        return Roi.of(
            [o - b for o, b in zip(self.offset, before)],
            [s + b + a for s, b, a in zip(self.shape, before, after)],
        )

    def intersect(self, other: "Roi") -> "Roi":
        begin = [max(a, b) for a, b in zip(self.offset, other.offset)]
        end = [min(a, b) for a, b in zip(self.end, other.end)]
        return Roi.of(begin, [max(0, e - b) for b, e in zip(begin, end)])

    def contains(self, other: "Roi") -> bool:
        return all(a <= b for a, b in zip(self.offset, other.offset)) and all(
            a >= b for a, b in zip(self.end, other.end)
        )

    def shift(self, by: Sequence[int]) -> "Roi":
        return Roi.of([o + b for o, b in zip(self.offset, by)], self.shape)

    def to_slices(self, relative_to: Sequence[int] | None = None) -> tuple[slice, slice, slice]:
        """Slices that index this ROI in an array whose voxel 0 sits at ``relative_to``."""
        base = relative_to or (0, 0, 0)
        return tuple(slice(o - b, o - b + s) for o, b, s in zip(self.offset, base, self.shape))  # type: ignore[return-value]
