"""All skeletons of a run as two flat tables (nodes, edges) for parquet, and back.

Nodes: segment_id, node_id, z_nm, y_nm, x_nm, radius_nm. Edges: segment_id, u, v, length_nm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from axonseg.errors import InputError
from axonseg.skeleton.graph import AxonGraph

NODE_COLUMNS = ("segment_id", "node_id", "z_nm", "y_nm", "x_nm", "radius_nm")
EDGE_COLUMNS = ("segment_id", "u", "v", "length_nm")


def to_tables(graphs: Mapping[int, AxonGraph] | Iterable[AxonGraph]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flatten skeletons into a node table and an edge table.

    Args:
        graphs: ``{segment_id: AxonGraph}`` or an iterable of graphs.

    Returns:
        ``(nodes, edges)``. nodes: ``segment_id`` uint64, ``node_id`` int64 (index within the
        segment), ``z_nm``/``y_nm``/``x_nm`` float64 and ``radius_nm`` float32. edges:
        ``segment_id`` uint64, ``u``/``v`` int64 node ids, ``length_nm`` float64.
    """
    items = list(graphs.values()) if isinstance(graphs, Mapping) else list(graphs)
    n_nodes = np.array([g.n_nodes for g in items], dtype=np.int64)
    n_edges = np.array([g.n_edges for g in items], dtype=np.int64)
    segment_ids = np.array([g.segment_id for g in items], dtype=np.uint64)
    node_starts = np.concatenate([[0], np.cumsum(n_nodes)])[:-1]

    def stack(arrays: list[np.ndarray], shape: tuple[int, ...], dtype: type) -> np.ndarray:
        return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(shape, dtype=dtype)

    positions = stack([g.nodes_nm for g in items], (0, 3), np.float64)
    nodes = pd.DataFrame(
        {
            "segment_id": np.repeat(segment_ids, n_nodes),
            "node_id": np.arange(int(n_nodes.sum()), dtype=np.int64) - np.repeat(node_starts, n_nodes),
            "z_nm": positions[:, 0],
            "y_nm": positions[:, 1],
            "x_nm": positions[:, 2],
            "radius_nm": stack([g.radii_nm for g in items], (0,), np.float32),
        }
    )
    pairs = stack([g.edges for g in items], (0, 2), np.int64)
    edges = pd.DataFrame(
        {
            "segment_id": np.repeat(segment_ids, n_edges),
            "u": pairs[:, 0],
            "v": pairs[:, 1],
            "length_nm": stack([g.edge_lengths_nm for g in items], (0,), np.float64),
        }
    )
    return nodes, edges


def _check_columns(table: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{what} table lacks column(s) {missing}: expected {list(columns)}")


def from_tables(nodes: pd.DataFrame, edges: pd.DataFrame) -> dict[int, AxonGraph]:
    """Rebuild skeletons from the tables that :func:`to_tables` writes.

    Args:
        nodes: node table (``segment_id, node_id, z_nm, y_nm, x_nm, radius_nm``).
        edges: edge table (``segment_id, u, v``; ``length_nm`` is recomputed, not read).

    Returns:
        ``{segment_id: AxonGraph}`` sorted by segment id; within a segment, nodes are in
        ``node_id`` order and edges refer to positions in that order.
    """
    _check_columns(nodes, NODE_COLUMNS, "nodes")
    _check_columns(edges, EDGE_COLUMNS[:3], "edges")
    node_seg = nodes["segment_id"].to_numpy(dtype=np.uint64)
    node_id = nodes["node_id"].to_numpy(dtype=np.int64)
    order = np.lexsort((node_id, node_seg))
    node_seg, node_id = node_seg[order], node_id[order]
    positions = nodes[["z_nm", "y_nm", "x_nm"]].to_numpy(dtype=np.float64)[order]
    radii = nodes["radius_nm"].to_numpy(dtype=np.float32)[order]
    if len(node_seg) > 1 and np.any((np.diff(node_seg) == 0) & (np.diff(node_id) == 0)):
        raise InputError("nodes table repeats a (segment_id, node_id) pair: expected each once")

    edge_seg = edges["segment_id"].to_numpy(dtype=np.uint64)
    pairs = edges[["u", "v"]].to_numpy(dtype=np.int64)
    # Map (segment_id, node_id) to the row in the sorted node table, for all edges at once.
    index = pd.MultiIndex.from_arrays([node_seg, node_id])
    rows = [index.get_indexer(pd.MultiIndex.from_arrays([edge_seg, pairs[:, c]])) for c in (0, 1)]
    edge_rows = np.column_stack(rows).astype(np.int64).reshape(-1, 2)
    if np.any(edge_rows < 0):
        raise InputError("edges table refers to a (segment_id, node) missing from the nodes table")

    segments, starts = np.unique(node_seg, return_index=True)
    ends = np.append(starts[1:], len(node_seg))
    edge_order = np.argsort(edge_seg, kind="stable")
    edge_starts = np.searchsorted(edge_seg[edge_order], segments, side="left")
    edge_ends = np.searchsorted(edge_seg[edge_order], segments, side="right")
    extra = np.setdiff1d(edge_seg, segments)
    if len(extra):
        raise InputError(f"edges table has segment {int(extra[0])} that has no nodes")
    graphs = {}
    for segment_id, start, end, e_start, e_end in zip(segments, starts, ends, edge_starts, edge_ends):
        local = edge_rows[edge_order[e_start:e_end]] - start
        graphs[int(segment_id)] = AxonGraph(int(segment_id), positions[start:end], local, radii[start:end])
    return graphs
