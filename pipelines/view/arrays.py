"""Lazy array-likes that neuroglancer's ``LocalVolume`` serves: each request reads only its
region (voxels, zyx) from the run, and a segmentation applies its LUT to that region alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from axonseg.io import Volume
from axonseg.pipelines.view.labels import ShownLabels


class LazyArray:
    """``shape``, ``dtype`` and ``__getitem__`` (zyx slices, voxels) over a region reader."""

    def __init__(self, read: Callable[[tuple[slice, ...]], np.ndarray], shape: Sequence[int], dtype: np.dtype) -> None:
        self._read = read
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)

    def __getitem__(self, region: tuple[slice, ...]) -> np.ndarray:
        return self._read(tuple(region))


def volume_array(volume: Volume) -> LazyArray:
    """A 3D :class:`Volume` (raw EM) read region by region."""
    return LazyArray(volume.read, volume.spatial_shape, volume.dtype)


def label_array(labels: ShownLabels) -> LazyArray:
    """:class:`ShownLabels` as uint64 segment ids, the LUT applied per region."""
    return LazyArray(labels.read, labels.shape, np.uint64)
