"""Apply a fragment -> segment lookup table to a fragment volume."""

from __future__ import annotations

import fastremap
import numpy as np

from axonseg.errors import InputError


def relabel(fragments: np.ndarray, fragment_ids: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
    """Map fragment ids to segment ids.

    Args:
        fragments: (Z, Y, X) integer fragment ids (0 = background).
        fragment_ids: (N,) fragment ids of the LUT.
        segment_ids: (N,) segment id of each fragment.

    Returns:
        (Z, Y, X) uint64 segmentation; fragments missing from the LUT keep their own id and
        0 stays 0 (a LUT entry for 0 is ignored).
    """
    fragment_ids = np.asarray(fragment_ids)
    segment_ids = np.asarray(segment_ids)
    if fragment_ids.shape != segment_ids.shape or fragment_ids.ndim != 1:
        raise InputError(
            f"LUT has {fragment_ids.shape} fragment ids and {segment_ids.shape} segment ids: "
            "expected two 1-D arrays of equal length"
        )
    if not np.issubdtype(fragments.dtype, np.integer):
        raise InputError(f"fragments has dtype {fragments.dtype}: expected an integer dtype")
    keys = fragment_ids.astype(np.uint64)
    values = segment_ids.astype(np.uint64)
    # identity entries need no work, and 0 must stay background
    changed = (keys != values) & (keys != 0)
    segmentation = np.ascontiguousarray(fragments).astype(np.uint64)
    if not changed.any():
        return segmentation
    table = dict(zip(keys[changed].tolist(), values[changed].tolist()))
    return fastremap.remap(segmentation, table, preserve_missing_labels=True, in_place=True)
