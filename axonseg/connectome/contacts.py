"""A contact-based synapse PROXY: where two segments touch over more than an area threshold.

Without a synapse table, every contact site between two segments above ``min_area_nm2`` is
taken as a proxy synapse in both directions (contacts have no direction). This is a proxy, not
a synapse detection: it over-counts (touching is not synapsing) and is flagged as such.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from axonseg.connectome.tables import synapses_from_arrays

CONTACT_COLUMNS = ("seg_a", "seg_b", "area_nm2", "sum_z", "sum_y", "sum_x")


def contact_faces(labels: np.ndarray, voxel_size: Sequence[float], offset_nm: Sequence[float],
                  owned_shape: Sequence[int] | None = None) -> pd.DataFrame:
    """Contact area and area-weighted face positions per touching segment pair in one block.

    A face between voxel ``v`` and ``v + 1`` (along one axis) belongs to the block that owns
    ``v``, so blocks that read one extra voxel on their far sides count every face once.

    Args:
        labels: segment ids (zyx) of the block, including the extra far voxel where there is one.
        voxel_size: nm, zyx.
        offset_nm: world position of ``labels[0, 0, 0]``'s corner in nm (zyx).
        owned_shape: the voxels (zyx, from the block's start) whose faces this block counts;
            default the whole block.

    Returns:
        DataFrame ``seg_a < seg_b, area_nm2, sum_z, sum_y, sum_x`` (sums of area x face centre, nm).
    """
    labels = np.asarray(labels)
    owned = tuple(labels.shape) if owned_shape is None else tuple(int(s) for s in owned_shape)
    vs = np.asarray(voxel_size, dtype=np.float64)
    origin = np.asarray(offset_nm, dtype=np.float64)
    frames = []
    for axis in range(3):
        stop = [min(o, s - (1 if a == axis else 0)) for a, (o, s) in enumerate(zip(owned, labels.shape))]
        base = labels[: stop[0], : stop[1], : stop[2]]
        shifted = labels[tuple(slice(1 if a == axis else 0, stop[a] + (1 if a == axis else 0)) for a in range(3))]
        touching = (base != shifted) & (base != 0) & (shifted != 0)
        if not touching.any():
            continue
        frames.append(_pair_sums(base[touching], shifted[touching], np.nonzero(touching), axis, vs, origin))
        del touching
    if not frames:
        return pd.DataFrame({c: np.zeros(0, np.uint64 if c.startswith("seg") else np.float64) for c in CONTACT_COLUMNS})
    return frames[0] if len(frames) == 1 else combine_contacts(frames)


def _pair_sums(a: np.ndarray, b: np.ndarray, index: tuple[np.ndarray, ...], axis: int, voxel: np.ndarray,
               origin: np.ndarray) -> pd.DataFrame:
    """Per segment pair, the area and area x centre sums of the faces between ``a[i]`` and ``b[i]``
    (faces normal to ``axis`` at voxel ``index[:, i]`` + 0.5 along ``axis``), in nm.

    Sorts the faces by pair and sums runs, so memory stays a few arrays of one entry per face.
    """
    low = np.minimum(a, b).astype(np.uint64, copy=False)
    high = np.maximum(a, b).astype(np.uint64, copy=False)
    order = np.lexsort((high, low))
    low, high = low[order], high[order]
    starts = np.flatnonzero(np.r_[True, (low[1:] != low[:-1]) | (high[1:] != high[:-1])])
    counts = np.diff(np.r_[starts, len(low)]).astype(np.float64)
    area = float(np.prod(np.delete(voxel, axis)))
    sums = {}
    for dim, name in enumerate(("sum_z", "sum_y", "sum_x")):
        positions = np.add.reduceat(index[dim][order].astype(np.float64), starts)
        # face centre = origin + (voxel index + 0.5, + 0.5 more along the axis) * voxel size
        half = 1.0 if dim == axis else 0.5
        sums[name] = area * (counts * origin[dim] + voxel[dim] * (positions + half * counts))
    return pd.DataFrame({"seg_a": low[starts], "seg_b": high[starts], "area_nm2": area * counts, **sums})


def combine_contacts(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Sum the per-block results of :func:`contact_faces` into one row per pair."""
    frames = [p for p in parts if len(p)]
    if not frames:
        return contact_faces(np.zeros((1, 1, 1), np.uint64), (1, 1, 1), (0, 0, 0))
    return pd.concat(frames).groupby(["seg_a", "seg_b"], sort=True).sum().reset_index()


def contacts_to_synapses(contacts: pd.DataFrame, min_area_nm2: float) -> pd.DataFrame:
    """Proxy synapses, both directions, for every contact of at least ``min_area_nm2``.

    Returns:
        A canonical synapse table whose pre and post points are the contact's area-weighted
        centre (nm, zyx), with ``pre_id``/``post_id`` set, ``size`` = contact area in µm²
        and ``source`` = ``contact_proxy``.
    """
    kept = contacts[contacts["area_nm2"] >= float(min_area_nm2)]
    area = kept["area_nm2"].to_numpy(np.float64)
    centre = np.column_stack([kept[c].to_numpy(np.float64) / area for c in ("sum_z", "sum_y", "sum_x")]).reshape(-1, 3)
    a, b = kept["seg_a"].to_numpy(np.uint64), kept["seg_b"].to_numpy(np.uint64)
    points = np.concatenate([centre, centre])
    table = synapses_from_arrays(points, points, size=np.concatenate([area, area]) / 1e6,
                                 pre_id=np.concatenate([a, b]), post_id=np.concatenate([b, a]))
    table["source"] = "contact_proxy"
    return table
