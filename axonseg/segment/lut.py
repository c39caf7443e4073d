"""The one function that applies a fragment -> segment lookup table (:class:`Lut`, defined with
its file format in ``axonseg.io.luts``) to fragments.

Agglomeration, proofreading, relabelling, evaluation, skeletonization, export and the viewer
all map fragment ids to segment ids through :class:`Lut` and :func:`apply_lut`.
"""

from __future__ import annotations

import fastremap
import numpy as np

from axonseg.errors import InputError
from axonseg.io.luts import Lut  # the type lives with its file format; re-exported here


def apply_lut(fragments: np.ndarray, lut: Lut) -> np.ndarray:
    """Map fragment ids to segment ids; ids missing from the LUT keep their value, 0 stays 0.

    Only the ids present in ``fragments`` are searched in the LUT and enter the fastremap
    table, so a LUT of millions of fragments costs one ``searchsorted`` per block, not a dict
    of millions of entries. Ids are compared as uint64, so ids above 2**53 map exactly.

    Args:
        fragments: fragment ids of any shape (a zyx block, or 1-D ids), integer dtype, >= 0.
        lut: the lookup table.

    Returns:
        uint64 segment ids, same shape as ``fragments`` (always a new array).

    Raises:
        InputError: ``fragments`` is not of an integer dtype or holds negative ids.
    """
    fragments = np.asarray(fragments)
    if not np.issubdtype(fragments.dtype, np.integer):
        raise InputError(f"fragments have dtype {fragments.dtype}: expected integer ids")
    if fragments.dtype.kind == "i" and fragments.size and fragments.min() < 0:
        raise InputError("fragments hold negative ids: expected ids >= 0")
    block = np.ascontiguousarray(fragments, dtype=np.uint64)
    if lut.fragment_ids.size == 0 or block.size == 0:
        return block.copy()
    present = fastremap.unique(block)
    present = present[present != 0]  # background stays background, whatever the LUT says
    position = np.minimum(np.searchsorted(lut.fragment_ids, present), lut.fragment_ids.size - 1)
    found = lut.fragment_ids[position] == present
    if not found.any():
        return block.copy()
    table = dict(zip(present[found].tolist(), lut.segment_ids[position[found]].tolist()))
    return fastremap.remap(block, table, preserve_missing_labels=True, in_place=False).astype(np.uint64, copy=False)
