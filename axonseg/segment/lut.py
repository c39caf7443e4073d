"""The one function that applies a fragment -> segment lookup table (:class:`Lut`, defined with
its file format in ``axonseg.io.luts``) to fragments.

Agglomeration, proofreading, relabelling, evaluation, skeletonization, export and the viewer
all map fragment ids to segment ids through :class:`Lut` and :func:`apply_lut`.
"""

from __future__ import annotations

import fastremap
import numpy as np

from axonseg.errors import InputError
from axonseg.io.luts import Lut
from axonseg.segment.relabel import relabel  # the type lives with its file format; re-exported here


def apply_lut(fragments: np.ndarray, lut: Lut) -> np.ndarray:
    """Map fragment ids to segment ids; ids missing from the LUT keep their value, 0 stays 0.

    Only the ids present in ``fragments`` are searched in the LUT and relabelled, so a LUT of
    millions of fragments costs one ``searchsorted`` per block. Ids are compared as uint64, so ids above 2**53 map exactly.

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
    if lut.fragment_ids.size == 0 or fragments.size == 0:
        return np.array(fragments, dtype=np.uint64)
    present = fastremap.unique(fragments).astype(np.uint64, copy=False)
    present = present[present != 0]  # background stays background, whatever the LUT says
    position = np.minimum(np.searchsorted(lut.fragment_ids, present), lut.fragment_ids.size - 1)
    found = lut.fragment_ids[position] == present
    # the numba relabel kernel (a dense table over the block's id range, or a sorted search):
    # a fastremap dict of a block's ~500k fragments cost 1.6x the time and 120 MB more per block
    return relabel(fragments, present[found], lut.segment_ids[position[found]])
