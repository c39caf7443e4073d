"""Skeletonize one zyx label block with kimimaro into world-coordinate graphs (nm).

kimimaro indexes arrays xyz; this module is the only place that crosses between the two orders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cc3d
import fastremap
import numpy as np

from axonseg.errors import InputError
from axonseg.io.volume import check_labels, check_voxel_size
from axonseg.skeleton.graph import AxonGraph
from axonseg.skeleton.params import SkeletonParams

logger = logging.getLogger(__name__)




def check_offset(offset_nm: Sequence[float], what: str = "offset_nm") -> np.ndarray:
    """Return ``offset_nm`` as a float64 zyx vector in nm, or raise naming ``what``."""
    try:
        offset = np.asarray(offset_nm, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{what}={offset_nm!r}: expected three numbers in nm (z y x)") from None
    if offset.shape != (3,) or not np.all(np.isfinite(offset)):
        raise InputError(f"{what}={offset_nm!r}: expected three finite numbers in nm (z y x)")
    return offset


def remove_interior_dust(
    labels: np.ndarray, dust_threshold: int, open_faces: Sequence[bool] = (True,) * 6
) -> np.ndarray:
    """Zero the connected components of at most ``dust_threshold`` voxels that touch no open face.

    A component touching an open face (one with more data beyond it) may continue outside the
    block, so only the whole volume can tell whether it is dust; dropping it here would cut a
    gap into the skeleton. Components elsewhere are seen whole and follow kimimaro's rule.

    Args:
        labels: label block, zyx.
        dust_threshold: size in voxels at or below which a component is removed.
        open_faces: six flags, faces in the order z-low, z-high, y-low, y-high, x-low, x-high.

    Returns:
        A label array (same dtype) without the small components that touch no open face.
    """
    return keep_owned_components(labels, None, dust_threshold, open_faces)


def keep_owned_components(
    labels: np.ndarray,
    write_slices: Sequence[slice] | None,
    dust_threshold: int = 0,
    open_faces: Sequence[bool] = (True,) * 6,
) -> np.ndarray:
    """Zero what a block would skeletonize only to throw away: the connected components that do
    not reach its write region, and dust (as :func:`remove_interior_dust`).

    kimimaro traces every 26-connected component of a label on its own (its own crop of the
    distance transform, its own border targets), so removing a component changes nothing in the
    others' skeletons; and a component wholly in the context has no node the block keeps (see
    :func:`crop_to_write_region`). Measured on the FIB-SEM medulla labels at 10 nm,
    64x256x256 blocks with 51 voxels of context: the same skeletons, and kimimaro traced
    fewer components (the figures are in ``benchmarks/README.md``).

    Args:
        labels: label block, zyx (a read region: write region plus context).
        write_slices: the write region inside ``labels``; None: the whole block.
        dust_threshold: components of at most this many voxels that touch no open face go too.
        open_faces: six flags, faces in the order z-low, z-high, y-low, y-high, x-low, x-high.

    Returns:
        ``labels`` itself when nothing is dropped, else a copy (same dtype) without them.
    """
    components = cc3d.connected_components(labels, connectivity=26)
    ids, counts = fastremap.unique(components, return_counts=True)
    drop = np.zeros(0, dtype=components.dtype)
    if write_slices is not None:
        drop = np.setdiff1d(ids[ids != 0], fastremap.unique(components[tuple(write_slices)]))
    if dust_threshold > 0:
        face_slices = [np.s_[0], np.s_[-1], np.s_[:, 0], np.s_[:, -1], np.s_[:, :, 0], np.s_[:, :, -1]]
        faces = [components[sl].ravel() for sl, is_open in zip(face_slices, open_faces) if is_open]
        touching = fastremap.unique(np.concatenate(faces)) if faces else np.zeros(0, dtype=components.dtype)
        dust = np.setdiff1d(ids[(counts <= dust_threshold) & (ids != 0)], touching)
        drop = np.union1d(drop, dust)
    if len(drop) == 0:
        return labels
    mask = fastremap.mask(components, drop, in_place=True) == 0
    return np.where(mask, 0, labels).astype(labels.dtype, copy=False)


def check_write_slices(write_slices: Sequence[slice], shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Return the write region's ``(start, stop)`` zyx voxel vectors inside a block of ``shape``."""
    if len(write_slices) != 3:
        raise InputError(f"write_slices has {len(write_slices)} entries: expected three slices (z y x)")
    bounds = [sl.indices(int(n))[:2] if sl.step in (None, 1) else (0, -1) for sl, n in zip(write_slices, shape)]
    start, stop = (np.array(b, dtype=np.int64) for b in zip(*bounds))
    if np.any(stop <= start):
        raise InputError(f"write_slices={list(write_slices)}: expected a non-empty region inside shape {tuple(shape)}")
    return start, stop


def crop_to_write_region(
    graph: AxonGraph, indices: np.ndarray, start: np.ndarray, stop: np.ndarray
) -> AxonGraph:
    """Keep the part of a block's skeleton that the block owns, plus one-edge stubs into neighbours.

    A stub (an edge from an owned node to a node outside) is kept by one side of each block
    face only: the side whose neighbour comes later in C order of the block grid, i.e. the first
    axis (z, y, x) on which the outside node leaves the write region points upwards. So every
    crossing is stitched once, by the lower block.

    Args:
        graph: the block's skeleton of one segment.
        indices: ``(N, 3)`` voxel indices (zyx, within the block) of the graph's nodes.
        start, stop: the write region in voxels (zyx, within the block), stop exclusive.

    Returns:
        The cropped graph; its ``open_ends`` are the kept stub nodes.
    """
    below, above = indices < start, indices >= stop
    owned = ~(below | above).any(axis=1)
    outside = below | above
    first_axis = np.argmax(outside, axis=1)
    points_up = above[np.arange(len(indices)), first_axis]
    u, v = graph.edges[:, 0], graph.edges[:, 1]
    keep = (owned[u] & owned[v]) | (owned[u] & points_up[v]) | (owned[v] & points_up[u])
    edges = graph.edges[keep]
    stub = np.zeros(graph.n_nodes, dtype=bool)
    stub[edges.ravel()] = True
    stub &= ~owned
    kept = owned | stub
    new_index = np.cumsum(kept) - 1
    return AxonGraph(
        graph.segment_id,
        graph.nodes_nm[kept],
        new_index[edges],
        graph.radii_nm[kept],
        open_ends=new_index[np.flatnonzero(stub)],
    )


def compact_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number a block's labels 0..n in the smallest unsigned dtype that holds n (0 stays 0).

    kimimaro's copies of the labels shrink with the dtype (measured on a 164x256x256 uint64
    block: 30% less peak memory with uint16, and 18% faster). The ids are found and the small
    copy filled a z section at a time, so no second full-size array of the input's dtype is made; pass the
    result of a read without keeping it, and only the small copy stays alive. ``labels`` is
    not modified (it may be a view of someone else's array).

    Args:
        labels: label block, zyx, non-negative integers, 0 = background.

    Returns:
        ``(compact, segment_ids)``: the renumbered block (uint8/16/32/64) and a sorted uint64
        array with ``segment_ids[k]`` the original id of compact label ``k`` (``segment_ids[0] == 0``).
    """
    labels = check_labels(labels)
    # ids a z section at a time: fastremap.unique of the whole block sorts a full-size copy,
    # which was the skeletonize stage's peak (read block + that copy + the compact block)
    sections = [fastremap.unique(section).astype(np.uint64, copy=False) for section in labels]
    segment_ids = np.unique(np.concatenate([np.zeros(1, dtype=np.uint64), *sections]))
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if len(segment_ids) - 1 <= np.iinfo(t).max)
    compact = np.empty(labels.shape, dtype=dtype)
    # searchsorted, not fastremap.remap with a dict: remap converts the dict again for every
    # section, which took 10 s for a 70x250x250 block of 688k segments (searchsorted: 0.15 s)
    for z in range(labels.shape[0]):
        compact[z] = np.searchsorted(segment_ids, labels[z].astype(np.uint64, copy=False))
    return compact, segment_ids


def skeletonize_block(
    labels_block: np.ndarray,
    voxel_size: Sequence[float],
    offset_nm: Sequence[float] = (0.0, 0.0, 0.0),
    params: SkeletonParams | None = None,
    write_slices: Sequence[slice] | None = None,
    segment_ids: np.ndarray | None = None,
) -> dict[int, AxonGraph]:
    """Skeletonize every segment of one label block.

    Args:
        labels_block: label volume, zyx, integer dtype, 0 = background: the block's read
            region (its write region plus context on every side that has a neighbour).
        voxel_size: voxel size in nm, zyx.
        offset_nm: world position in nm (zyx) of the corner of voxel (0, 0, 0) of the block.
        params: kimimaro settings; ``None`` gives the AxonEM defaults.
        write_slices: the region this block owns, as voxel slices (zyx) into ``labels_block``.
            Skeleton nodes outside it are dropped, except one-edge stubs that
            :func:`axonseg.skeleton.join_skeletons` attaches to the neighbour's skeleton.
            ``None``: the block owns all of ``labels_block`` (a whole volume). The dust rule
            spares components that touch a face beyond which the block has context (they may
            be larger than what the block sees); elsewhere it is kimimaro's.
        segment_ids: ``labels_block`` is already compact (from :func:`compact_labels`, which
            returned these ids) and is handed over: it is used without a copy. None: the
            labels are segment ids, and a compact copy is made here.

    Returns:
        ``{segment_id: AxonGraph}`` with nodes at voxel centres in world nm (zyx) and radii in
        nm; segments whose skeleton lies wholly outside the write region are left out.
    """
    labels_block = check_labels(labels_block, "labels_block")
    voxel = np.asarray(check_voxel_size(voxel_size, "voxel_size"), dtype=np.float64)
    offset = check_offset(offset_nm)
    params = params or SkeletonParams()
    if labels_block.size == 0:
        return {}
    region = None if write_slices is None else check_write_slices(write_slices, labels_block.shape)

    if segment_ids is None:
        labels_block, segment_ids = compact_labels(labels_block)
    elif (highest := int(fastremap.minmax(labels_block)[1])) >= len(segment_ids):
        raise InputError(f"labels_block has labels up to {highest}: "
                         f"expected compact labels below len(segment_ids)={len(segment_ids)}")

    dust = params.dust_threshold
    if region is not None:
        start, stop = region
        open_faces = [flag for axis in range(3) for flag in (start[axis] > 0, stop[axis] < labels_block.shape[axis])]
        owned = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
        labels_block = keep_owned_components(labels_block, owned, dust, open_faces)
        dust = 0

    import kimimaro

    # kimimaro wants xyz: the transpose is a view, and the anisotropy is reversed to match.
    # in_place: the compact block is ours, so kimimaro need not copy it into Fortran order
    # (the transpose of a C-ordered block already is).
    skeletons = kimimaro.skeletonize(
        labels_block.T,
        in_place=True,
        teasar_params=params.teasar_params(),
        anisotropy=tuple(voxel[::-1]),
        dust_threshold=dust,
        fix_branching=params.fix_branching,
        fix_borders=params.fix_borders,
        fill_holes=params.fill_holes,
        parallel=params.parallel,
        progress=False,
    )
    graphs: dict[int, AxonGraph] = {}
    for label, skeleton in skeletons.items():
        segment_id = int(segment_ids[int(label)])
        vertices_zyx = np.asarray(skeleton.vertices, dtype=np.float64)[:, ::-1]
        # kimimaro traces on the voxel grid: recover exact indices from its float32 positions
        # so that adjacent blocks compute identical world coordinates for a shared voxel.
        indices = np.rint(vertices_zyx / voxel).astype(np.int64)
        nodes = offset + (indices + 0.5) * voxel
        edges = np.asarray(skeleton.edges, dtype=np.int64).reshape(-1, 2)
        edges = edges[edges[:, 0] != edges[:, 1]]
        graph = AxonGraph(int(segment_id), nodes, edges, np.asarray(skeleton.radius))
        if region is not None:
            graph = crop_to_write_region(graph, indices, *region)
        if graph.n_nodes:
            graphs[int(segment_id)] = graph
    logger.debug("skeletonized %d segments in a block of shape %s", len(graphs), labels_block.shape)
    return graphs
