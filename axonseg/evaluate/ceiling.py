"""The perfect-agglomeration reference of a fragment volume: every fragment given the ground-truth
body that holds most of its labelled voxels.

For overlap measures (VOI, Rand) no agglomeration of these fragments does much better: merges
inside a fragment cannot be undone by merging fragments. For ERL it is **not** a bound: a
fragment that holds voxels of two bodies, joined to the larger one, makes every skeleton node of
the smaller body a merge of the larger body's whole run, while an agglomeration that leaves it
alone loses only the nodes inside it (on fib_v4's validation slab the majority reference scored
NERL 0.103 where the real mean-affinity agglomeration reached 0.214). ``isolate_mixed=True``
gives the ERL reference: mixed fragments stay alone, every pure one joins its body, so the only
merges left are those inside fragments. Pure numpy; ids are uint64, arrays zyx.
"""

from __future__ import annotations

import numpy as np

from axonseg.errors import InputError
from axonseg.io.luts import Lut


def majority_bodies(fragments: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each fragment's majority ground-truth body and how pure it is.

    Args:
        fragments: (Z, Y, X) fragment ids, 0 = background.
        gt: (Z, Y, X) ground-truth bodies, 0 = unlabelled (not counted).

    Returns:
        ``(fragment_ids, body_ids, purity)``: (F,) uint64 ids of the fragments with a labelled
        voxel (ascending), (F,) uint64 body holding most of their labelled voxels (ties go to the
        smaller body id) and (F,) float64 share of their labelled voxels in that body.

    Raises:
        InputError: the shapes differ, or an array is not of a non-negative integer dtype.
    """
    if fragments.shape != gt.shape:
        raise InputError(f"fragments have shape {fragments.shape} and gt {gt.shape}: expected the same shape")
    for name, array in (("fragments", fragments), ("gt", gt)):
        if not np.issubdtype(array.dtype, np.integer) or (array.dtype.kind == "i" and array.size and array.min() < 0):
            raise InputError(f"{name} has dtype {array.dtype}: expected non-negative integer ids")
    labelled = (gt != 0) & (fragments != 0)
    pairs = np.stack([fragments[labelled].astype(np.uint64), gt[labelled].astype(np.uint64)])
    if pairs.shape[1] == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.float64)
    (fragment_ids, body_ids), counts = np.unique(pairs, axis=1, return_counts=True)
    # per fragment (pairs are sorted by fragment, then body): the body with the most voxels first
    order = np.lexsort((body_ids, -counts.astype(np.int64), fragment_ids))
    fragment_ids, body_ids, counts = fragment_ids[order], body_ids[order], counts[order]
    first = np.r_[True, fragment_ids[1:] != fragment_ids[:-1]]
    totals = np.add.reduceat(counts, np.flatnonzero(first))
    return fragment_ids[first], body_ids[first], counts[first] / totals


def majority_lut(fragments: np.ndarray, gt: np.ndarray, isolate_mixed: bool = False) -> Lut:
    """Map each fragment to the ground-truth body holding most of its labelled voxels.

    Args:
        fragments: (Z, Y, X) fragment ids, 0 = background.
        gt: (Z, Y, X) ground-truth bodies, 0 = unlabelled (not counted).
        isolate_mixed: leave every fragment with labelled voxels of two or more bodies out of
            the LUT (it keeps its own id, a segment of its own): the reference for ERL.

    Returns:
        A :class:`Lut` over the fragments with a labelled voxel; segment ids are the gt body
        ids. Fragments without one keep their own id (:func:`axonseg.segment.apply_lut`
        leaves ids missing from the LUT alone); ties go to the smaller body id.

    Raises:
        InputError: the shapes differ, or an array is not of a non-negative integer dtype.
    """
    fragment_ids, body_ids, purity = majority_bodies(fragments, gt)
    keep = purity == 1.0 if isolate_mixed else np.ones(len(fragment_ids), dtype=bool)
    return Lut(fragment_ids[keep], body_ids[keep] + np.uint64(fragments.max() if fragments.size else 0))
