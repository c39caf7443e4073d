"""SWC text export and import of skeletons (columns: index type x y z radius parent; µm, xyz).

SWC files hold micrometres by convention (NeuroM, MorphIO, NEURON and navis read them so), so
positions and radii are written in µm (our nm / 1000, 6 decimals: 0.001 nm). Nodes are type 2
(axon); when a node is at least ``soma_min_radius_nm`` thick, the thickest one is written as a
one-point soma (type 1) and its piece is rooted there. Each connected piece becomes one tree,
rooted at that soma or else at an endpoint, with parent -1. A ``# Meta: {...}`` header line
tells navis the id and the units (``micrometer``).

:func:`from_swc` converts back to nm, reading the ``# units`` header (``um`` default, ``nm`` for
files written before the switch to µm).
"""

from __future__ import annotations

import io
import json
import logging
import re

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

from axonseg.errors import InputError
from axonseg.skeleton.graph import AxonGraph

logger = logging.getLogger(__name__)

SWC_UNDEFINED = 0
SWC_SOMA = 1
SWC_AXON = 2
#: A node at least this thick (nm) is written as the soma (the export's ``soma_min_radius_nm``).
SOMA_MIN_RADIUS_NM = 1500.0
#: nm per unit of each ``# units`` header value :func:`from_swc` accepts.
UNIT_NM = {"um": 1000.0, "µm": 1000.0, "micrometer": 1000.0, "micron": 1000.0, "nm": 1.0, "nanometer": 1.0}


def _tree_order(graph: AxonGraph, root: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first order of all nodes and each node's parent (-1 at roots), piece by piece.

    Each piece is rooted at ``root`` when it holds it, else at its lowest-index endpoint (or its
    lowest-index node when it is a loop). Edges that would close a cycle are not part of the BFS
    tree.
    """
    n = graph.n_nodes
    n_pieces, piece = connected_components(graph.adjacency(), directed=False)
    # Rank: the given root first, then endpoints, then any node; lowest index within a rank.
    rank = np.where(graph.degrees() == 1, 1, 2)
    if root is not None:
        rank[root] = 0
    key = rank * n + np.arange(n)
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


def soma_node(graph: AxonGraph, soma_min_radius_nm: float | None = SOMA_MIN_RADIUS_NM) -> int | None:
    """The thickest node when it is at least ``soma_min_radius_nm`` (nm) thick, else None."""
    if soma_min_radius_nm is None or graph.n_nodes == 0:
        return None
    thickest = int(np.argmax(graph.radii_nm))
    return thickest if graph.radii_nm[thickest] >= soma_min_radius_nm else None


def to_swc(graph: AxonGraph, node_type: int = SWC_AXON,
           soma_min_radius_nm: float | None = SOMA_MIN_RADIUS_NM) -> str:
    """Write a skeleton as SWC text in µm.

    Args:
        graph: the skeleton (nodes in nm, zyx).
        node_type: SWC structure type of every node but the soma (2 axon, 3 dendrite, 0 undefined).
        soma_min_radius_nm: the thickest node is written as a one-point soma (type 1) when it is
            at least this thick (nm); None: never.

    Returns:
        SWC text: ``#`` header lines (segment id, units, a navis ``# Meta:`` line), then one line
        per node ``index type x y z radius parent`` with 1-based indices, x y z and radius in
        µm, parents before children. Each connected piece is its own tree (parent -1 at its
        root); edges that close a cycle cannot be expressed in SWC and are dropped (logged).
    """
    soma = soma_node(graph, soma_min_radius_nm)
    meta = {"id": int(graph.segment_id), "name": f"segment {graph.segment_id}", "units": "micrometer"}
    header = (f"# axonseg skeleton\n# segment_id {graph.segment_id}\n"
              "# units um (x y z radius in micrometres), columns: index type x y z radius parent\n"
              f"# Meta: {json.dumps(meta)}\n")
    if graph.n_nodes == 0:
        return header
    order, parents = _tree_order(graph, soma)
    n_pieces = int(np.sum(parents == -1))
    dropped = graph.n_edges - (graph.n_nodes - n_pieces)
    if dropped > 0:
        logger.warning("segment %d: %d edges close cycles and are left out of the SWC", graph.segment_id, dropped)
    new_index = np.empty(graph.n_nodes, dtype=np.int64)
    new_index[order] = np.arange(1, graph.n_nodes + 1)
    parent_index = np.where(parents[order] >= 0, new_index[np.maximum(parents[order], 0)], -1)
    types = np.full(graph.n_nodes, int(node_type))
    if soma is not None:
        types[order == soma] = SWC_SOMA
    table = np.column_stack(
        [
            np.arange(1, graph.n_nodes + 1),
            types,
            graph.nodes_nm[order][:, ::-1] / 1000.0,  # SWC is x y z, in µm
            graph.radii_nm[order].astype(np.float64) / 1000.0,
            parent_index,
        ]
    )
    buffer = io.StringIO()
    np.savetxt(buffer, table, fmt=["%d", "%d", "%.6f", "%.6f", "%.6f", "%.6f", "%d"], delimiter=" ")
    return header + buffer.getvalue()


def swc_unit_nm(text: str) -> float:
    """nm per coordinate unit of SWC text: its ``# units`` header, else µm (the SWC convention)."""
    match = re.search(r"^#\s*units:?\s+([^\s,(]+)", text, flags=re.MULTILINE | re.IGNORECASE)
    if match is None:
        return UNIT_NM["um"]
    unit = match.group(1).lower()
    if unit not in UNIT_NM:
        raise InputError(f"SWC '# units {match.group(1)}': expected one of {sorted(UNIT_NM)}")
    return UNIT_NM[unit]


def from_swc(text: str, segment_id: int | None = None) -> AxonGraph:
    """Read SWC text into a skeleton.

    Args:
        text: SWC content (``index type x y z radius parent`` per line, ``#`` comments); in µm
            unless a ``# units nm`` header says nm (axonseg files written before µm).
        segment_id: the segment id; ``None`` reads it from a ``# segment_id N`` header (0 if absent).

    Returns:
        The skeleton with nodes in file order, positions and radii converted to nm (zyx).
        Node types (soma, axon, ...) are not kept.
    """
    if segment_id is None:
        match = re.search(r"^#\s*segment_id\s+(\d+)", text, flags=re.MULTILINE)
        segment_id = int(match.group(1)) if match else 0
    unit_nm = swc_unit_nm(text)
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
    return AxonGraph(segment_id, table[:, [4, 3, 2]] * unit_nm, edges, table[:, 5] * unit_nm)
