"""Ground-truth skeletons in the flat form the metrics use: all nodes and edges of all
skeletons in three arrays, so that every per-edge step is one vectorised numpy call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from axonseg.errors import InputError


@dataclass(frozen=True)
class FlatSkeletons:
    """Many skeletons as one graph.

    Attributes:
        positions_nm: (N, 3) float64 node positions, zyx, in nm (world coordinates).
        edges: (E, 2) int64 rows of node indices into ``positions_nm``.
        node_skeleton_ids: (N,) int64 skeleton id of each node; both ends of an edge belong
            to the same skeleton.
    """

    positions_nm: np.ndarray
    edges: np.ndarray
    node_skeleton_ids: np.ndarray

    @property
    def n_nodes(self) -> int:
        """Number of nodes of all skeletons."""
        return int(len(self.positions_nm))

    @property
    def n_edges(self) -> int:
        """Number of edges of all skeletons."""
        return int(len(self.edges))

    def edge_lengths_nm(self) -> np.ndarray:
        """(E,) float64 Euclidean edge lengths in nm."""
        delta = self.positions_nm[self.edges[:, 0]] - self.positions_nm[self.edges[:, 1]]
        return np.sqrt(np.einsum("ij,ij->i", delta, delta))

    def edge_skeleton_ids(self) -> np.ndarray:
        """(E,) int64 skeleton id of each edge."""
        return self.node_skeleton_ids[self.edges[:, 0]]

    def skeleton_lengths_nm(self) -> tuple[np.ndarray, np.ndarray]:
        """Total edge length per skeleton.

        Returns:
            ``(skeleton_ids, lengths_nm)``: sorted unique ids of all skeletons that have a
            node, and their summed edge lengths in nm (0 for a skeleton without edges).
        """
        ids, node_index = np.unique(self.node_skeleton_ids, return_inverse=True)
        lengths = np.bincount(
            node_index[self.edges[:, 0]], weights=self.edge_lengths_nm(), minlength=len(ids)
        )
        return ids, lengths


def flat_skeletons(positions_nm: np.ndarray, edges: np.ndarray, node_skeleton_ids: np.ndarray) -> FlatSkeletons:
    """Build and check a :class:`FlatSkeletons`.

    Args:
        positions_nm: (N, 3) node positions, zyx, nm.
        edges: (E, 2) node indices.
        node_skeleton_ids: (N,) integer skeleton id per node.

    Raises:
        InputError: wrong shapes, non-finite positions, edge indices out of range, or an edge
            that joins two skeletons.
    """
    positions = np.asarray(positions_nm, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise InputError(f"skeleton node positions have shape {positions.shape}: expected (N, 3) zyx in nm")
    if not np.all(np.isfinite(positions)):
        raise InputError("skeleton node positions contain NaN or inf: expected finite nm coordinates")
    edge_array = _check_edges(edges, len(positions), "skeleton edges")
    skeleton_ids = np.asarray(node_skeleton_ids)
    if skeleton_ids.shape != (len(positions),) or skeleton_ids.dtype.kind not in "ui":
        raise InputError(
            f"node_skeleton_ids has shape {skeleton_ids.shape}: expected ({len(positions)},) integers"
        )
    skeleton_ids = skeleton_ids.astype(np.int64, copy=False)
    if edge_array.size and np.any(skeleton_ids[edge_array[:, 0]] != skeleton_ids[edge_array[:, 1]]):
        raise InputError(
            "a skeleton edge joins nodes of two different skeletons: expected edges within one skeleton"
        )
    return FlatSkeletons(positions, edge_array, skeleton_ids)


def as_flat_skeletons(skeletons: Any) -> FlatSkeletons:
    """Accept skeletons in any of the supported forms and return the flat form.

    Args:
        skeletons: one of
            * :class:`FlatSkeletons`;
            * a tuple ``(positions_nm (N, 3), edges (E, 2), node_skeleton_ids (N,))``;
            * a mapping ``skeleton_id -> (nodes_nm (n, 3), edges (e, 2))`` with edges indexing
              that skeleton's own nodes, or ``skeleton_id -> obj`` where obj has ``edges`` and
              one of ``nodes_nm``, ``nodes``, ``vertices`` (nm, zyx).

    Returns:
        :class:`FlatSkeletons`.
    """
    if isinstance(skeletons, FlatSkeletons):
        return skeletons
    if isinstance(skeletons, tuple) and len(skeletons) == 3:
        return flat_skeletons(*skeletons)
    if isinstance(skeletons, Mapping):
        return _from_mapping(skeletons)
    raise InputError(
        f"skeletons is a {type(skeletons).__name__}: expected FlatSkeletons, a (positions, edges, "
        "skeleton_ids) tuple or a dict skeleton_id -> (nodes_nm, edges)"
    )


def _from_mapping(skeletons: Mapping) -> FlatSkeletons:
    positions, edges, ids = [], [], []
    n_nodes = 0
    for skeleton_id, skeleton in skeletons.items():
        nodes, local_edges = _nodes_and_edges(skeleton, skeleton_id)
        positions.append(nodes)
        edges.append(local_edges + n_nodes)
        ids.append(np.full(len(nodes), int(skeleton_id), dtype=np.int64))
        n_nodes += len(nodes)
    if not positions:
        return flat_skeletons(np.zeros((0, 3)), np.zeros((0, 2), np.int64), np.zeros(0, np.int64))
    return flat_skeletons(np.concatenate(positions), np.concatenate(edges), np.concatenate(ids))


def _nodes_and_edges(skeleton: Any, skeleton_id: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(skeleton, (tuple, list)) and len(skeleton) == 2:
        nodes, edges = skeleton
    else:
        names = [name for name in ("nodes_nm", "nodes", "vertices") if hasattr(skeleton, name)]
        nodes = getattr(skeleton, names[0]) if names else None
        edges = getattr(skeleton, "edges", None)
        if nodes is None or edges is None:
            raise InputError(
                f"skeleton {skeleton_id} is a {type(skeleton).__name__}: expected (nodes_nm, edges)"
            )
    nodes = np.asarray(nodes, dtype=np.float64)
    if nodes.size == 0:
        nodes = np.zeros((0, 3))
    if nodes.ndim != 2 or nodes.shape[1] != 3:
        raise InputError(f"skeleton {skeleton_id} has nodes of shape {nodes.shape}: expected (n, 3) zyx in nm")
    return nodes, _check_edges(edges, len(nodes), f"skeleton {skeleton_id} edges")


def _check_edges(edges: np.ndarray, n_nodes: int, what: str) -> np.ndarray:
    """Edges as (E, 2) int64 node indices in 0..n_nodes-1, or an InputError naming ``what``."""
    edge_array = np.asarray(edges)
    if edge_array.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if edge_array.ndim != 2 or edge_array.shape[1] != 2 or edge_array.dtype.kind not in "ui":
        raise InputError(f"{what} have shape {edge_array.shape} and dtype {edge_array.dtype}: expected (E, 2) integers")
    edge_array = edge_array.astype(np.int64, copy=False)
    if edge_array.min() < 0 or edge_array.max() >= n_nodes:
        raise InputError(f"{what} index nodes outside 0..{n_nodes - 1}: expected valid node indices")
    return edge_array
