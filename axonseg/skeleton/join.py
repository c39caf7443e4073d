"""Join per-block skeletons into one graph per segment (nm, zyx).

Each block keeps the skeleton inside its write region plus one-edge stubs ("open ends") into
its neighbours; joining attaches every stub to the neighbour's skeleton and unions the edges.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial import cKDTree

from axonseg.errors import InputError
from axonseg.skeleton.graph import AxonGraph

logger = logging.getLogger(__name__)


def merge_graphs(
    graphs: list[AxonGraph],
    merge_tolerance_nm: float = 0.01,
    attach_distance_nm: float = 0.0,
    bridge_distance_nm: float = 0.0,
) -> AxonGraph:
    """Merge pieces of one segment into one graph.

    Nodes closer than ``merge_tolerance_nm`` become one node. Then each open end (a stub that a
    block traced into its neighbour's write region) that did not land on a node is moved onto
    the nearest node that is not an open end, if that node is within
    ``max(attach_distance_nm, radius of the open end)``: a node within the open end's radius
    lies in the same object, so this never joins separate objects.

    Args:
        graphs: skeleton pieces of the same segment (for example one per block).
        merge_tolerance_nm: nodes within this distance (nm) are the same node.
        attach_distance_nm: the smallest distance (nm) over which an open end is attached.
        bridge_distance_nm: afterwards, connect separate pieces whose nearest nodes are at most
            this far apart (nm), or within either node's radius, with one edge each (a minimum
            spanning forest over the pieces; :func:`bridge_pieces`). One voxel diagonal is
            safe: nodes that close lie in 26-connected voxels. 0: off.

    Returns:
        One graph, nodes sorted by (z, y, x), merged nodes keeping the largest radius, and no
        open ends (those that could not be attached stay as ordinary endpoints, logged).
    """
    segment_id = graphs[0].segment_id
    if any(g.segment_id != segment_id for g in graphs):
        raise InputError(f"merge_graphs got pieces of segments {sorted({g.segment_id for g in graphs})}: expected one")
    nodes = np.concatenate([g.nodes_nm for g in graphs])
    radii = np.concatenate([g.radii_nm for g in graphs])
    starts = np.cumsum([0] + [g.n_nodes for g in graphs[:-1]])
    edges = np.concatenate([g.edges + s for g, s in zip(graphs, starts)])
    is_open = np.zeros(len(nodes), dtype=bool)
    is_open[np.concatenate([g.open_ends + s for g, s in zip(graphs, starts)])] = True
    if len(nodes) == 0:
        return AxonGraph.empty(segment_id)

    # Clusters of nodes within the tolerance (transitively) become one node.
    n = len(nodes)
    pairs = cKDTree(nodes).query_pairs(merge_tolerance_nm, output_type="ndarray")
    cluster = _clusters(n, pairs)
    # A cluster is still open when every member is an open end; attach it to a closed node.
    closed = np.zeros(cluster.max() + 1, dtype=bool)
    closed[cluster[~is_open]] = True
    still_open = np.flatnonzero(~closed[cluster])
    if len(still_open) and closed.any():
        targets = np.flatnonzero(closed[cluster])
        distance, nearest = cKDTree(nodes[targets]).query(nodes[still_open])
        reach = np.maximum(attach_distance_nm, radii[still_open])
        attach = distance <= reach
        pairs = np.concatenate([pairs, np.column_stack([still_open[attach], targets[nearest[attach]]])])
        cluster = _clusters(n, pairs)
        if not attach.all():
            logger.debug("segment %d: %d open ends found no node to attach to (%s nm)", segment_id, int((~attach).sum()), np.round(distance[~attach]).tolist())
        # The attached stub takes its target's position, not the mean of the two.
        nodes = nodes.copy()
        nodes[still_open[attach]] = nodes[targets[nearest[attach]]]

    n_clusters = int(cluster.max()) + 1
    positions = np.zeros((n_clusters, 3))
    np.add.at(positions, cluster, nodes)
    positions /= np.bincount(cluster, minlength=n_clusters)[:, None]
    merged_radii = np.zeros(n_clusters, dtype=np.float32)
    np.maximum.at(merged_radii, cluster, radii)

    # Sorting by position makes the result independent of the order of the blocks.
    order = np.lexsort(positions.T[::-1])
    rank = np.empty(n_clusters, dtype=np.int64)
    rank[order] = np.arange(n_clusters)
    merged = AxonGraph(segment_id, positions[order], _unique_edges(rank[cluster[edges]]), merged_radii[order])
    if bridge_distance_nm > 0:
        merged = bridge_pieces(merged, bridge_distance_nm)
    return merged


def _clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    """Cluster label of each of ``n`` nodes, linking the node pairs given (transitively)."""
    link = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(link, directed=False)[1]


def _unique_edges(edges: np.ndarray) -> np.ndarray:
    """Undirected edges as sorted unique (u < v) pairs without self loops."""
    edges = np.sort(edges.reshape(-1, 2), axis=1)
    edges = edges[edges[:, 0] != edges[:, 1]]
    return np.unique(edges, axis=0) if len(edges) else edges


def bridge_pieces(graph: AxonGraph, max_distance_nm: float) -> AxonGraph:
    """Connect separate pieces of a skeleton whose nearest nodes are close.

    Two nodes of different pieces may be bridged when they are at most ``max_distance_nm``
    apart, or within the radius of either of them: a node inside the other's inscribed
    sphere lies in the same 26-connected object, so the radius never joins separate objects
    of one segment (kimimaro's own pieces stay apart), while it mends the gaps that blocks
    leave where their traces meet a block face off by a few voxels (on the FIB-SEM medulla
    at 10 nm, median 45 nm with 13 voxels of context; ``benchmarks/README.md``).

    Args:
        graph: a skeleton, possibly in several connected pieces.
        max_distance_nm: largest gap (nm) that is bridged wherever the radii are smaller.

    Returns:
        The graph with at most one new edge per bridged gap, chosen as a minimum spanning
        forest over the pieces (so no cycles are made).
    """
    if graph.n_nodes < 2:
        return graph
    n_pieces, piece = connected_components(graph.adjacency(), directed=False)
    if n_pieces < 2:
        return graph
    nodes = graph.nodes_nm
    reach = np.maximum(np.asarray(graph.radii_nm, dtype=np.float64), max_distance_nm)
    near = cKDTree(nodes).query_ball_point(nodes, reach, return_sorted=False)
    counts = np.fromiter((len(found) for found in near), dtype=np.int64, count=len(near))
    pairs = np.column_stack([np.repeat(np.arange(len(nodes)), counts),
                             np.fromiter((i for found in near for i in found), dtype=np.int64, count=int(counts.sum()))])
    pairs = pairs[piece[pairs[:, 0]] != piece[pairs[:, 1]]]
    if len(pairs) == 0:
        return graph
    lengths = np.linalg.norm(nodes[pairs[:, 0]] - nodes[pairs[:, 1]], axis=1)
    # The shortest candidate between each pair of pieces, then a spanning forest over pieces.
    piece_pairs = np.sort(piece[pairs], axis=1)
    order = np.lexsort((lengths, piece_pairs[:, 1], piece_pairs[:, 0]))
    _, first = np.unique(piece_pairs[order], axis=0, return_index=True)
    best = order[first]
    weights = np.maximum(lengths[best], 1e-9)
    between = sp.coo_matrix(
        (weights, (piece_pairs[best, 0], piece_pairs[best, 1])), shape=(n_pieces, n_pieces)
    ).tocsr()
    forest = minimum_spanning_tree(between).tocoo()
    chosen = np.sort(np.stack([forest.row, forest.col], axis=1), axis=1).astype(np.int64)
    candidates = piece_pairs[best].astype(np.int64)
    keep = np.isin(candidates[:, 0] * n_pieces + candidates[:, 1], chosen[:, 0] * n_pieces + chosen[:, 1])
    bridges = pairs[best[keep]]
    logger.debug("segment %d: bridged %d gaps of at most %.1f nm or a node's radius", graph.segment_id, len(bridges),
                 max_distance_nm)
    edges = _unique_edges(np.concatenate([graph.edges, bridges]))
    return AxonGraph(graph.segment_id, graph.nodes_nm, edges, graph.radii_nm)


def join_skeletons(
    block_skeletons: Iterable[Mapping[int, AxonGraph]],
    merge_tolerance_nm: float = 0.01,
    attach_distance_nm: float = 0.0,
    bridge_distance_nm: float = 0.0,
) -> dict[int, AxonGraph]:
    """Join per-block skeletons into one graph per segment.

    Args:
        block_skeletons: one ``{segment_id: AxonGraph}`` per block, as from
            :func:`axonseg.skeleton.skeletonize_block` with ``write_slices``.
        merge_tolerance_nm: nodes of a segment within this distance (nm) are merged.
        attach_distance_nm: open ends are attached to the nearest node within
            ``max(attach_distance_nm, their radius)`` (nm); two voxel diagonals is a good floor.
        bridge_distance_nm: connect pieces of a segment at most this far apart (nm) or within a
            node's radius (:func:`bridge_pieces`); a voxel diagonal (``norm(voxel_size)``) is a
            safe choice, 0 turns bridging off.

    Returns:
        ``{segment_id: AxonGraph}``, sorted by segment id.
    """
    if merge_tolerance_nm <= 0:
        raise InputError(f"merge_tolerance_nm={merge_tolerance_nm}: expected a positive distance in nm")
    if attach_distance_nm < 0:
        raise InputError(f"attach_distance_nm={attach_distance_nm}: expected a distance >= 0 nm")
    if bridge_distance_nm < 0:
        raise InputError(f"bridge_distance_nm={bridge_distance_nm}: expected a distance >= 0 nm")
    pieces: dict[int, list[AxonGraph]] = {}
    for block in block_skeletons:
        for segment_id, graph in block.items():
            pieces.setdefault(int(segment_id), []).append(graph)
    return {
        segment_id: merge_graphs(pieces[segment_id], merge_tolerance_nm, attach_distance_nm, bridge_distance_nm)
        for segment_id in sorted(pieces)
    }
