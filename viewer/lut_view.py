"""Segment ids shown through the LUT: an array-like over the fragments that napari slices.

The fragments are never rewritten. An edit updates only the LUT entries of the fragments it
moved; the display then re-reads the visible plane (cached) and maps it through the LUT.
What is the viewer's own: the LUT is updated in place, and below ``DENSE_LIMIT`` ids a dense
table maps a plane with one array lookup; otherwise planes go through the pipelines' ``apply_lut``.
"""

from __future__ import annotations

import numpy as np

from axonseg.pipelines.run_folder import Lut, apply_lut

# a dense fragment -> segment table is used below this many ids (8 bytes each: 256 MiB max)
DENSE_LIMIT = 2**25


class SegmentLut:
    """Fragment id -> current segment id, updatable in place.

    Args:
        fragment_ids: (N,) fragment ids.
        segment_ids: (N,) their segment ids.
    """

    def __init__(self, fragment_ids: np.ndarray, segment_ids: np.ndarray) -> None:
        base = Lut(fragment_ids, segment_ids)  # checked and sorted by fragment id
        self.fragment_ids = base.fragment_ids
        self.segment_ids = base.segment_ids.copy()
        top = int(self.fragment_ids.max(initial=0))
        self.dense = None
        if top < DENSE_LIMIT:
            self.dense = np.arange(top + 1, dtype=np.uint64)  # ids missing from the LUT keep their value
            self.dense[self.fragment_ids] = self.segment_ids

    def update(self, fragments: np.ndarray, segment_id: int) -> None:
        """Point ``fragments`` (ids) at ``segment_id``."""
        fragments = np.asarray(fragments, np.uint64)
        self.segment_ids[np.searchsorted(self.fragment_ids, fragments)] = np.uint64(segment_id)
        if self.dense is not None:
            self.dense[fragments] = np.uint64(segment_id)

    def apply(self, block: np.ndarray) -> np.ndarray:
        """Segment ids of a block of fragment ids (same shape, uint64)."""
        block = np.asarray(block)
        if self.dense is not None and block.size and int(block.max()) < len(self.dense):
            return self.dense[block]
        return apply_lut(block, Lut(self.fragment_ids, self.segment_ids))


class LutLabels:
    """A napari-sliceable array: ``fragments[key]`` mapped through a :class:`SegmentLut`.

    The last few fragment planes read are cached, so a display update after an edit costs a
    LUT lookup of the visible plane, not a read from the store.
    """

    def __init__(self, fragments, lut: SegmentLut, cache_size: int = 4) -> None:  # noqa: ANN001
        self.fragments = fragments
        self.lut = lut
        self.shape = tuple(fragments.shape)
        self.dtype = np.dtype(np.uint64)
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape))
        self._cache: dict = {}
        self._cache_size = cache_size

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, key) -> np.ndarray:  # noqa: ANN001
        token = repr(key)
        if token not in self._cache:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[token] = np.asarray(self.fragments[key])
        return self._cache[token]

    def __getitem__(self, key) -> np.ndarray:  # noqa: ANN001
        return self.lut.apply(self._read(key))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:  # noqa: ANN001
        data = self[...]
        return data if dtype is None else data.astype(dtype)
