"""SWC text export and import of skeletons (columns: index type x y z radius parent; nm, xyz).

Each connected piece becomes one tree rooted at an endpoint, with parent -1.
"""

from __future__ import annotations

import io
import logging
import re

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

from axonseg.errors import InputError
from axonseg.skeleton.graph import AxonGraph

logger = logging.getLogger(__name__)

SWC_UNDEFINED = 0
SWC_AXON = 2


def _tree_order(graph: AxonGraph) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first order of all nodes and each node's parent (-1 at roots), piece by piece.

    Each piece is rooted at its lowest-index endpoint (or its lowest-index node when it is a
    loop). Edges that would close a cycle are not part of the BFS tree.
    """
    n = graph.n_nodes
    n_pieces, piece = connected_components(graph.adjacency(), directed=False)
    degrees = graph.degrees()
    # Lowest-index endpoint per piece, falling back to the lowest index of the piece.
    key = np.where(degrees == 1, 0, 1) * n + np.arange(n)
    roots = np.full(n_pieces, np.iinfo(np.int64).max)
    np.minimum.at(roots, piece, key)
    roots = np.sort(roots % n)
    # One BFS from a virtual node (index n) linked to every root visits all pieces at once,
    # each through its own root only.
    u = np.concatenate([graph.edges[:, 0], np.full(n_pieces, n)])
    v = np.concatenate([graph.edges[:, 1], roots])
    linked = sp.coo_matrix((np.ones(len(u)), (u, v)), shape=(n + 1, n + 1)).tocsr()
    order, predecessors = breadth_first_order(linked, n, directed=False)
    # Keep each piece's nodes together (BFS order within a piece keeps parents first).
    order = order[1:]
    order = order[np.argsort(piece[order], kind="stable")]
    parents = predecessors[:n].astype(np.int64)
    parents[(parents < 0) | (parents == n)] = -1
    return order.astype(np.int64), parents


def to_swc(graph: AxonGraph, node_type: int = SWC_UNDEFINED) -> str:
    """Write a skeleton as SWC text.

    Args:
        graph: the skeleton (nodes in nm, zyx).
        node_type: SWC structure type of every node (0 undefined, 2 axon).

    Returns:
        SWC text: a ``# segment_id N`` header, then one line per node ``index type x y z radius
        parent`` with 1-based indices, x y z and radius in nm, parents before children. Each
        connected piece is its own tree (parent -1 at its root); edges that close a cycle
        cannot be expressed in SWC and are dropped (logged).
    """
    header = f"# axonseg skeleton\n# segment_id {graph.segment_id}\n# units nm, columns: index type x y z radius parent\n"
    if graph.n_nodes == 0:
        return header
    order, parents = _tree_order(graph)
    n_pieces = int(np.sum(parents == -1))
    dropped = graph.n_edges - (graph.n_nodes - n_pieces)
    if dropped > 0:
        logger.warning("segment %d: %d edges close cycles and are left out of the SWC", graph.segment_id, dropped)
    new_index = np.empty(graph.n_nodes, dtype=np.int64)
    new_index[order] = np.arange(1, graph.n_nodes + 1)
    parent_index = np.where(parents[order] >= 0, new_index[np.maximum(parents[order], 0)], -1)
    table = np.column_stack(
        [
            np.arange(1, graph.n_nodes + 1),
            np.full(graph.n_nodes, int(node_type)),
            graph.nodes_nm[order][:, ::-1],  # SWC is x y z
            graph.radii_nm[order].astype(np.float64),
            parent_index,
        ]
    )
    buffer = io.StringIO()
    np.savetxt(buffer, table, fmt=["%d", "%d", "%.3f", "%.3f", "%.3f", "%.3f", "%d"], delimiter=" ")
    return header + buffer.getvalue()


def from_swc(text: str, segment_id: int | None = None) -> AxonGraph:
    """Read SWC text into a skeleton.

    Args:
        text: SWC content (``index type x y z radius parent`` per line, ``#`` comments).
        segment_id: the segment id; ``None`` reads it from a ``# segment_id N`` header (0 if absent).

    Returns:
        The skeleton with nodes in file order, positions converted to zyx (nm).
    """
    if segment_id is None:
        match = re.search(r"^#\s*segment_id\s+(\d+)", text, flags=re.MULTILINE)
        segment_id = int(match.group(1)) if match else 0
    try:
        table = np.loadtxt(io.StringIO(text), comments="#", ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise InputError(f"SWC text is not a table of numbers ({err})") from None
    if table.size == 0:
        return AxonGraph.empty(segment_id)
    if table.shape[1] != 7:
        raise InputError(f"SWC has {table.shape[1]} columns: expected 7 (index type x y z radius parent)")
    ids = table[:, 0].astype(np.int64)
    parents = table[:, 6].astype(np.int64)
    sorter = np.argsort(ids)
    if np.any(np.diff(ids[sorter]) == 0):
        raise InputError("SWC has repeated node indices: expected each index once")
    child = np.flatnonzero(parents != -1)
    position = np.searchsorted(ids, parents[child], sorter=sorter)
    position = np.minimum(position, len(ids) - 1)
    found = ids[sorter[position]] == parents[child]
    if not np.all(found):
        raise InputError(f"SWC parent {parents[child][~found][0]} is not a node index")
    edges = np.column_stack([sorter[position], child])
    return AxonGraph(segment_id, table[:, [4, 3, 2]], edges, table[:, 5])
