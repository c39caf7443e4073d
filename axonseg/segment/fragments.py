"""Watershed fragments (supervoxels) from affinities, with globally unique uint64 ids.

Boundary = 1 - the lowest nearest-neighbour affinity touching a voxel; seeds are maxima of
the distance transform (nm, anisotropic) of the voxels whose boundary is below a threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cc3d
import edt
import fastremap
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from axonseg.errors import InputError
from axonseg.segment._seed_kernel import label_seeds, local_maxima
from axonseg.segment._small_kernel import best_neighbours, small_faces
from axonseg.segment._watershed_kernel import edge_watershed, float_edge_distances, inside_mask
from axonseg.segment.affinities import (
    as_unit_float,
    check_affinities,
    check_voxel_size,
)

logger = logging.getLogger(__name__)

_UINT64_MAX = np.iinfo(np.uint64).max


def boundary_map(
    affinities: np.ndarray, nn_channels: np.ndarray, axes: Sequence[int] = (0, 1, 2)
) -> np.ndarray:
    """(Z, Y, X) float32 boundary in [0, 1]: 1 - the lowest of the six nearest-neighbour
    affinities that touch each voxel.

    An affinity describes the face between two voxels, so a thin object boundary has one low
    affinity at the voxel on its positive side only; taking the edges to both neighbours per
    axis marks the voxels on both sides, and the watershed cannot leak through the face.
    Affinities at index 0 of their own axis point out of the array and are ignored. `axes`
    picks the axes whose affinities count ((1, 2) for 2D per-section fragments).
    """
    lowest = np.ones(affinities.shape[1:], dtype=np.float32)
    for axis in axes:
        values = as_unit_float(affinities[nn_channels[axis]])
        to_previous = [slice(None)] * 3
        to_previous[axis] = slice(1, None)
        to_next = [slice(None)] * 3
        to_next[axis] = slice(None, -1)
        inner = tuple(to_previous)
        # edge p <-> p - e_axis is stored at p; edge p <-> p + e_axis at p + e_axis
        np.minimum(lowest[inner], values[inner], out=lowest[inner])
        np.minimum(lowest[tuple(to_next)], values[inner], out=lowest[tuple(to_next)])
    return 1.0 - lowest


def _components(inside: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (6- or, in a section, 4-connected) of the inside voxels: int32
    ids 1..n (blocks have < 2^31 voxels), 0 outside, and n."""
    connectivity = 6 if inside.ndim == 3 else 4
    components, n_components = cc3d.connected_components(
        inside, connectivity=connectivity, return_N=True, out_dtype=np.uint32)
    return components.view(np.int32), n_components


def _seeds(
    inside: np.ndarray, voxel_size: np.ndarray, seed_radius: int, seed_method: str,
    n_threads: int = 1,
) -> np.ndarray:
    """Seeds of one 2D section or 3D block (int32 ids from 1, 0 = no seed)."""
    if not inside.any():
        return np.zeros(inside.shape, dtype=np.int32)
    if seed_method == "components":
        return _components(inside)[0]
    as_3d = (1,) * (3 - inside.ndim) + inside.shape
    inside_3d = inside.reshape(as_3d)
    n_threads = n_threads if inside.ndim == 3 else 1  # a 2D section is too small to share
    # squared distances (nm^2) have the same maxima and skip the square root
    anisotropy = tuple(float(s) for s in voxel_size)
    distance = edt.edtsq(inside, anisotropy=anisotropy, parallel=n_threads).reshape(as_3d)
    maxima = local_maxima(distance, inside_3d, seed_radius, n_threads)
    del distance
    # plateaus of equal distance give one seed each; every inside component without a
    # maximum becomes one seed too
    components, n_components = _components(inside)
    label_seeds(components.reshape(as_3d), n_components, maxima)
    return components


def _edge_distances(affinities: np.ndarray, nn_channels: np.ndarray) -> np.ndarray:
    """(3, n) uint8 distance 255 - affinity*255 of the edge from each voxel to p - e_axis."""
    n = int(np.prod(affinities.shape[1:]))
    distance = np.empty((3, n), dtype=np.uint8)
    for axis, channel in enumerate(nn_channels):
        values = np.ascontiguousarray(affinities[channel]).ravel()
        if values.dtype == np.float16:  # numba has no float16; one channel at a time stays small
            values = values.astype(np.float32)
        if values.dtype == np.uint8:
            np.subtract(255, values, out=distance[axis])
        else:
            float_edge_distances(values, distance[axis])
    return distance


def _merge_small(
    labels: np.ndarray, affinities: np.ndarray, nn_channels: np.ndarray, min_size: int
) -> np.ndarray:
    """Merge fragments below min_size voxels into the neighbour with the highest mean affinity
    (ties: the smallest id).

    Ids are int64 throughout (an int32 pair key ``a * n + b`` once overflowed above 46,340
    fragments). The best neighbours come from one pass over the faces
    (:func:`axonseg.segment._small_kernel.best_neighbours`), not a sort of every face pair: the
    sort took 90% of per-section fragments at 30x8x8 nm, where most fragments start as single
    membrane voxels. Only the faces that touch a small fragment are collected
    (:func:`axonseg.segment._small_kernel.small_faces`): collecting all of them with numpy masks
    took half of per-section fragments after that change.
    """
    labels = labels.astype(np.int64, copy=False)
    nn_channels = np.asarray(nn_channels, np.int64)
    for _ in range(4):  # a small fragment can join another small one; a few rounds settle it
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        if not small.any():
            break
        here, there, values = small_faces(labels, affinities, nn_channels, small)
        if len(here) == 0:
            break
        best = best_neighbours(here, there, values, small)
        src = np.flatnonzero(best >= 0)
        if len(src) == 0:
            break
        dst = best[src]
        n = len(sizes)
        graph = sparse.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
        _, component = csgraph.connected_components(graph, directed=False)
        # component ids start at 0 which is background's component only if 0 is alone
        component = component.astype(np.int64) + 1
        component[0] = 0
        labels = component[labels]
    return labels


def watershed_fragments(
    affinities: np.ndarray,
    offsets: Sequence[Sequence[int]],
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    boundary_threshold: float = 0.5,
    seed_radius: int = 4,
    seed_method: str = "maxima",
    min_size: int = 0,
    per_section: bool = False,
    mask: np.ndarray | None = None,
    id_offset: int = 0,
    n_threads: int = 1,
    flood: bool = False,
    attach_threshold: float | None = None,
) -> tuple[np.ndarray, int]:
    """Watershed fragments of one block, ids id_offset+1 .. id_offset+n_ids.

    Args:
        affinities: (C, Z, Y, X) float in [0, 1] or uint8 0-255; channels follow ``offsets``.
        offsets: C offsets (dz, dy, dx) in voxels; (-1,0,0), (0,-1,0), (0,0,-1) are required.
        voxel_size: (z, y, x) in nm; the distance transform for seeds is anisotropic in nm.
        boundary_threshold: voxels with boundary (1 - lowest touching affinity) below
            this are "inside" objects and carry seeds; in [0, 1].
        seed_radius: half-width in voxels of the window in which a seed is a distance maximum.
        seed_method: "maxima" (connected maxima of the distance transform of the inside voxels;
            robust to leaks through thin necks, more fragments) or "components" (each
            connected component of inside voxels is one seed; few fragments, fast, but a hole
            in a boundary merges two objects).
        min_size: fragments smaller than this (voxels) merge into the neighbour with the highest
            mean affinity (0 = keep all).
        per_section: watershed each z-section separately (2D fragments for anisotropic data).
        mask: optional (Z, Y, X) bool; voxels outside it get id 0.
        id_offset: added to every non-zero id (e.g. block_index * max_ids_per_block).
        n_threads: threads for the distance transform of the seeds and its maxima; the
            rest is serial. 1 (default) suits blocks that already run in parallel. The
            fragments do not depend on it.
        flood: every voxel left without a seed or a confident edge (mostly membrane voxels)
            joins the neighbour it reaches over its best edge, whatever that edge's affinity;
            False: only over edges with boundary below ``boundary_threshold``, and the others
            stay single-voxel fragments. A voxel whose neighbours are all masked stays alone.
        attach_threshold: the boundary (1 - affinity) below which those left-alone voxels
            attach, in [0, 1]; None: ``boundary_threshold`` (1.0 with ``flood``). Set it above
            ``boundary_threshold`` to take seeds and confident joins strictly (fewer leaks
            between objects) while the membrane voxels still join a side as they would at the
            looser level.

    Returns:
        (fragments, n_ids): (Z, Y, X) uint64 fragments (0 = background / masked) and the number
        of ids used; the ids are exactly id_offset+1 .. id_offset+n_ids.
    """
    nn_channels = check_affinities(affinities, offsets)
    size_nm = check_voxel_size(voxel_size)
    if not 0.0 <= boundary_threshold <= 1.0:
        raise InputError(f"boundary_threshold is {boundary_threshold}: expected a value in [0, 1]")
    if attach_threshold is not None and (flood or not 0.0 <= attach_threshold <= 1.0):
        raise InputError(f"attach_threshold is {attach_threshold}: expected a value in [0, 1], and not with flood")
    if seed_method not in ("maxima", "components"):
        raise InputError(f"seed_method is {seed_method!r}: expected 'maxima' or 'components'")
    if seed_radius < 0 or min_size < 0:
        raise InputError(f"seed_radius={seed_radius}, min_size={min_size}: expected >= 0")
    if n_threads < 1:
        raise InputError(f"n_threads is {n_threads}: expected >= 1")
    if id_offset < 0 or id_offset > _UINT64_MAX:
        raise InputError(f"id_offset is {id_offset}: expected a uint64")
    shape = affinities.shape[1:]
    if mask is not None:
        if mask.shape != shape:
            raise InputError(f"mask has shape {mask.shape}: expected {shape} like the affinities")
        mask = mask.astype(bool, copy=False)

    axes = np.asarray((1, 2) if per_section else (0, 1, 2), dtype=np.int64)
    flat_mask = np.ones(int(np.prod(shape)), bool) if mask is None else np.ascontiguousarray(mask).ravel()
    distance = _edge_distances(affinities, nn_channels)
    shape_array = np.asarray(shape, dtype=np.int64)
    # inside: boundary (1 - lowest touching affinity) < threshold, on the uint8 distances
    inside_level = int(np.ceil(boundary_threshold * 255))
    inside = inside_mask(distance, flat_mask, shape_array, axes, inside_level).reshape(shape)
    if not inside.any():
        return np.zeros(shape, dtype=np.uint64), 0

    if per_section:
        seeds = np.zeros(shape, dtype=np.int32)
        next_id = 0
        for z in range(shape[0]):
            section = _seeds(inside[z], size_nm[1:], seed_radius, seed_method, n_threads)
            seeds[z] = np.where(section > 0, section + next_id, 0)
            next_id += int(section.max())
    else:
        seeds = _seeds(inside, size_nm, seed_radius, seed_method, n_threads)
    del inside
    # seeds are 1..k, all used, and the kernel adds new ids above them: the ids it returns
    # are consecutive, so only a merge of small fragments needs a renumbering
    if flood:
        attach_threshold = 1.0
    elif attach_threshold is None:
        attach_threshold = boundary_threshold
    renumber = min_size > 1
    if not renumber and id_offset + seeds.size > _UINT64_MAX:
        raise InputError(f"id_offset {id_offset} + up to {seeds.size} fragments overflows uint64")
    fragments, n_ids = edge_watershed(
        seeds.ravel(), distance, flat_mask, shape_array, axes,
        int(np.floor(attach_threshold * 255)),
        int(np.floor(boundary_threshold * 255 * 0.25)),
        np.uint64(0 if renumber else id_offset),
    )
    del seeds, distance
    fragments = fragments.reshape(shape)
    if renumber:
        labels = _merge_small(fragments.astype(np.int64), affinities, nn_channels, min_size)
        labels, mapping = fastremap.renumber(labels, preserve_zero=True)
        n_ids = len(mapping) - (1 if 0 in mapping else 0)
        if id_offset + n_ids > _UINT64_MAX:
            raise InputError(f"id_offset {id_offset} + {n_ids} fragments overflows uint64")
        fragments = labels.astype(np.uint64)
        fragments[fragments > 0] += np.uint64(id_offset)
    logger.debug("watershed_fragments: %d fragments in a block of shape %s", n_ids, shape)
    return fragments, n_ids
