"""Region graph of fragments for one block, and the merge of block graphs into one graph.

Block ownership rule: the edge between voxel p of a block's write ROI and its negative
neighbour p - e_axis is counted by the block that owns p. So each block reads its fragments
with one voxel of context on the NEGATIVE z, y and x faces only (read ROI = write ROI grown by
1 voxel towards negative z, y, x) and the affinities of its write ROI. Every face of the volume
is then counted by exactly one block, and summing block rows for the same (u, v) is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import fastremap
import numpy as np

from axonseg.errors import InputError
from axonseg.segment._graph_kernel import accumulate_graph, face_histograms, id_range
from axonseg.segment._kernels import table_capacity
from axonseg.segment.affinities import check_affinities, check_voxel_size

N_BINS = 256


@dataclass
class RegionGraph:
    """Fragments (nodes) and their contacts (edges) with mergeable statistics.

    Edges are undirected with u < v. The affinity histogram of edge i is sparse: bins
    ``hist_bin[hist_ptr[i]:hist_ptr[i+1]]`` (uint8 affinity 0-255, ascending) with counts
    ``hist_count[...]``. Summing aff_sum, count, area and histograms of rows with the same (u, v)
    gives the statistics of the union of their faces, exactly.

    Attributes:
        node_id: (N,) uint64 fragment ids.
        node_size: (N,) int64 size in voxels.
        node_centroid: (N, 3) float64 centroid (z, y, x) in nm.
        u, v: (E,) uint64 fragment ids with u < v.
        aff_sum: (E,) float64 sum of face affinities in [0, 1].
        count: (E,) int64 number of voxel faces (contact area in faces).
        area: (E,) float64 contact area in nm^2.
        hist_ptr: (E+1,) int64 offsets into hist_bin / hist_count.
        hist_bin: uint8 histogram bins (affinity * 255 rounded).
        hist_count: uint32 number of faces per bin.
        node_sums: optional ``{name: (N,) float64}`` sums of a per-voxel value over each node's
            voxels (e.g. ``raw``, ``boundary``; the graph stage's ``node_values``); they add on
            merges like ``node_size``, so ``node_sums[name] / node_size`` is the node's mean.
    """

    node_id: np.ndarray
    node_size: np.ndarray
    node_centroid: np.ndarray
    u: np.ndarray
    v: np.ndarray
    aff_sum: np.ndarray
    count: np.ndarray
    area: np.ndarray
    hist_ptr: np.ndarray
    hist_bin: np.ndarray
    hist_count: np.ndarray
    node_sums: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.node_id)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    @property
    def mean_affinity(self) -> np.ndarray:
        """(E,) float64 mean affinity of each edge over its faces."""
        return self.aff_sum / np.maximum(self.count, 1)

    def edge_histograms(self) -> np.ndarray:
        """Dense (E, 256) uint32 histograms; for tests and small graphs only (1 KiB per edge)."""
        dense = np.zeros((self.n_edges, N_BINS), dtype=np.uint32)
        rows = np.repeat(np.arange(self.n_edges), np.diff(self.hist_ptr))
        dense[rows, self.hist_bin] = self.hist_count
        return dense


def empty_graph() -> RegionGraph:
    """A region graph without nodes or edges."""
    return RegionGraph(
        node_id=np.zeros(0, np.uint64),
        node_size=np.zeros(0, np.int64),
        node_centroid=np.zeros((0, 3), np.float64),
        u=np.zeros(0, np.uint64),
        v=np.zeros(0, np.uint64),
        aff_sum=np.zeros(0, np.float64),
        count=np.zeros(0, np.int64),
        area=np.zeros(0, np.float64),
        hist_ptr=np.zeros(1, np.int64),
        hist_bin=np.zeros(0, np.uint8),
        hist_count=np.zeros(0, np.uint32),
    )


def _group_edges(
    u: np.ndarray, v: np.ndarray, aff_sum: np.ndarray, count: np.ndarray, area: np.ndarray,
    hist_edge: np.ndarray, hist_bin: np.ndarray, hist_count: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Sum rows with the same (u, v) (u < v given); hist_edge indexes the input rows."""
    ids, inverse = np.unique(np.concatenate([u, v]), return_inverse=True)
    n_ids = np.int64(max(len(ids), 1))
    key = inverse[: len(u)].astype(np.int64) * n_ids + inverse[len(u):]
    unique_keys, edge_of_row = np.unique(key, return_inverse=True)
    n_edges = len(unique_keys)
    out_u = ids[unique_keys // n_ids]
    out_v = ids[unique_keys % n_ids]
    out_sum = np.bincount(edge_of_row, weights=aff_sum, minlength=n_edges)
    out_count = np.bincount(edge_of_row, weights=count, minlength=n_edges).astype(np.int64)
    out_area = np.bincount(edge_of_row, weights=area, minlength=n_edges)
    hist_key = edge_of_row[hist_edge].astype(np.int64) * N_BINS + hist_bin
    unique_hist, hist_inverse = np.unique(hist_key, return_inverse=True)
    summed = np.bincount(hist_inverse, weights=hist_count, minlength=len(unique_hist))
    out_hist_ptr = np.searchsorted(unique_hist // N_BINS, np.arange(n_edges + 1)).astype(np.int64)
    out_hist_bin = (unique_hist % N_BINS).astype(np.uint8)
    out_hist_count = summed.astype(np.uint32)
    return out_u, out_v, out_sum, out_count, out_area, out_hist_ptr, out_hist_bin, out_hist_count


def block_region_graph(
    fragments_context: np.ndarray,
    affinities: np.ndarray,
    offsets: Sequence[Sequence[int]],
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    write_offset_nm: Sequence[float] = (0.0, 0.0, 0.0),
) -> RegionGraph:
    """Nodes and nearest-neighbour edges that one block owns.

    Args:
        fragments_context: (Z+1, Y+1, X+1) integer fragment ids (0 = background): the block's
            write ROI grown by ONE voxel towards negative z, y and x only. Where that context
            lies outside the volume, pass 0.
        affinities: (C, Z, Y, X) affinities of the write ROI only (float [0, 1] or uint8).
        offsets: C offsets (dz, dy, dx) in voxels; (-1,0,0), (0,-1,0), (0,0,-1) must be among
            them. Long-range channels are ignored.
        voxel_size: (z, y, x) in nm, for contact areas and centroids.
        write_offset_nm: (z, y, x) world position in nm of the write ROI's first voxel.

    Returns:
        RegionGraph of the fragments inside the write ROI (nodes) and of the faces between a
        write-ROI voxel p and its negative neighbours (edges), including faces on the block's
        negative faces; faces on its positive faces belong to the next block.
    """
    nn_channels = check_affinities(affinities, offsets)
    size_nm = check_voxel_size(voxel_size)
    origin_nm = np.asarray(write_offset_nm, dtype=np.float64)
    if origin_nm.shape != (3,):
        raise InputError(f"write_offset_nm is {list(write_offset_nm)}: expected (z, y, x) in nm")
    expected = tuple(s + 1 for s in affinities.shape[1:])
    if fragments_context.shape != expected:
        raise InputError(
            f"fragments_context has shape {fragments_context.shape}: expected {expected} (the "
            "write ROI of the affinities plus 1 voxel of context on the negative z, y, x sides)"
        )
    if not np.issubdtype(fragments_context.dtype, np.integer):
        raise InputError(f"fragments_context has dtype {fragments_context.dtype}: expected integers")

    graph = empty_graph()
    if not fragments_context[1:, 1:, 1:].any():
        return graph
    context = np.ascontiguousarray(fragments_context)
    channels = [np.ascontiguousarray(affinities[c]) for c in nn_channels]
    low, high = (int(i) for i in id_range(context))
    if high - low + 1 <= context.size // 16:
        # a compact id range: ids index plain arrays directly, no renumbering pass. A block
        # whose ids span a whole neighbour's id offset (a block's voxel count) is renumbered:
        # arrays and the edge table sized by that span cost +580 MB per 128^3 block.
        id_of_dense = np.arange(low - 1, high + 1, dtype=np.uint64)
        id_of_dense[0] = 0
        dense_ids = context
    else:
        # small dense ids (context included) index plain arrays and make edge keys int64s
        dense_ids, mapping = fastremap.renumber(context, preserve_zero=True)
        id_of_dense = np.zeros(len(mapping) + 1, dtype=np.uint64)
        id_of_dense[np.fromiter(mapping.values(), np.int64, len(mapping))] = np.fromiter(
            mapping.keys(), np.uint64, len(mapping)
        )
        dense_ids, low = dense_ids.astype(np.int32, copy=False), 1
    n_dense = len(id_of_dense)
    # fragments have some 10 neighbours: start the edge table small (it grows) and cache-hot
    (node_size, node_sum, lo, hi, edge_sum, axis_count, face_edge, face_bin) = accumulate_graph(
        dense_ids, np.uint64(low), channels[0], channels[1], channels[2],
        affinities.dtype == np.uint8, n_dense, table_capacity(8 * n_dense))
    del dense_ids

    present = np.flatnonzero(node_size)
    present = present[np.argsort(id_of_dense[present])]
    graph.node_id = id_of_dense[present]
    graph.node_size = node_size[present]
    graph.node_centroid = origin_nm + node_sum[present] / node_size[present, None] * size_nm
    if len(lo) == 0:
        return graph
    # dense ids follow the order of first appearance, not of fragment ids: order pairs by id
    id_lo, id_hi = id_of_dense[lo], id_of_dense[hi]
    u, v = np.minimum(id_lo, id_hi), np.maximum(id_lo, id_hi)
    order = np.lexsort((v, u))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    face_area = np.array([size_nm[1] * size_nm[2], size_nm[0] * size_nm[2], size_nm[0] * size_nm[1]])
    graph.u, graph.v = u[order], v[order]
    graph.aff_sum = edge_sum[order]
    graph.count = axis_count[order].sum(axis=1)
    graph.area = axis_count[order] @ face_area
    graph.hist_ptr, graph.hist_bin, graph.hist_count = face_histograms(
        rank, face_edge, face_bin, len(order))
    return graph


def _reorder_edges(graph: RegionGraph, order: np.ndarray) -> None:
    """Permute the edges of graph in place (histogram runs move with their edge)."""
    lengths = np.diff(graph.hist_ptr)[order]
    starts = graph.hist_ptr[:-1][order]
    entries = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    graph.u, graph.v = graph.u[order], graph.v[order]
    graph.aff_sum, graph.count, graph.area = graph.aff_sum[order], graph.count[order], graph.area[order]
    graph.hist_bin, graph.hist_count = graph.hist_bin[entries], graph.hist_count[entries]
    graph.hist_ptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)


def merge_block_graphs(graphs: Sequence[RegionGraph]) -> RegionGraph:
    """Combine per-block graphs into one graph by summing statistics of equal nodes and edges.

    Nodes with the same id add sizes and take the size-weighted centroid; edges with the same
    (u, v) add aff_sum, count, area and histograms, so mean and quantile scores are exact.

    Args:
        graphs: block graphs from :func:`block_region_graph` (or earlier merges).

    Returns:
        The merged RegionGraph, nodes sorted by id and edges sorted by (u, v).
    """
    graphs = [g for g in graphs if g.n_nodes or g.n_edges]
    if not graphs:
        return empty_graph()
    merged = empty_graph()
    node_id = np.concatenate([g.node_id for g in graphs])
    node_size = np.concatenate([g.node_size for g in graphs])
    centroid = np.concatenate([g.node_centroid for g in graphs])
    ids, inverse = np.unique(node_id, return_inverse=True)
    size = np.bincount(inverse, weights=node_size, minlength=len(ids))
    weighted = np.stack(
        [np.bincount(inverse, weights=centroid[:, k] * node_size, minlength=len(ids)) for k in range(3)],
        axis=1,
    )
    merged.node_id = ids
    merged.node_size = size.astype(np.int64)
    merged.node_centroid = weighted / np.maximum(size, 1)[:, None]
    names = set(graphs[0].node_sums)
    if any(set(g.node_sums) != names for g in graphs):
        raise InputError("block graphs carry different node sums "
                         f"({sorted({tuple(sorted(g.node_sums)) for g in graphs})}): expected the same in every block")
    merged.node_sums = {name: np.bincount(inverse, weights=np.concatenate([g.node_sums[name] for g in graphs]),
                                          minlength=len(ids)) for name in sorted(names)}

    n_edges = [g.n_edges for g in graphs]
    if sum(n_edges) == 0:
        return merged
    row_start = np.cumsum([0] + n_edges[:-1])
    hist_edge = np.concatenate(
        [start + np.repeat(np.arange(g.n_edges), np.diff(g.hist_ptr)) for start, g in zip(row_start, graphs)]
    )
    grouped = _group_edges(
        np.concatenate([g.u for g in graphs]), np.concatenate([g.v for g in graphs]),
        np.concatenate([g.aff_sum for g in graphs]), np.concatenate([g.count for g in graphs]),
        np.concatenate([g.area for g in graphs]),
        hist_edge, np.concatenate([g.hist_bin for g in graphs]),
        np.concatenate([g.hist_count for g in graphs]),
    )
    (merged.u, merged.v, merged.aff_sum, merged.count, merged.area,
     merged.hist_ptr, merged.hist_bin, merged.hist_count) = grouped
    return merged
