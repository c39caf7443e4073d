"""One segment's skeleton as a graph in world coordinates (nm, zyx), and queries on it.

Path lengths along the skeleton (for synaptic delays), endpoints and nearest nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from axonseg.errors import InputError

if TYPE_CHECKING:  # networkx is only imported when a graph is converted
    import networkx as nx


@dataclass(eq=False)
class AxonGraph:
    """The skeleton of one segment.

    Attributes:
        segment_id: the label of the segment in the segmentation.
        nodes_nm: ``(N, 3)`` float64 node positions in nm, zyx, world coordinates. Nodes made
            by :func:`axonseg.skeleton.skeletonize_block` lie at voxel centres:
            ``offset + (index + 0.5) * voxel_size``.
        edges: ``(E, 2)`` int64 pairs of node indices (undirected, no self loops).
        radii_nm: ``(N,)`` float32 distance from each node to the segment boundary in nm.
        open_ends: ``(K,)`` int64 indices of nodes that lie outside the write region of the
            block that traced them; :func:`axonseg.skeleton.join_skeletons` attaches them to
            the neighbour block's skeleton. Empty for whole-volume and joined skeletons.
    """

    segment_id: int
    nodes_nm: np.ndarray
    edges: np.ndarray
    radii_nm: np.ndarray
    open_ends: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.segment_id = int(self.segment_id)
        self.nodes_nm = np.asarray(self.nodes_nm, dtype=np.float64).reshape(-1, 3)
        self.edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        self.radii_nm = np.asarray(self.radii_nm, dtype=np.float32).reshape(-1)
        self.open_ends = np.asarray(self.open_ends, dtype=np.int64).reshape(-1)
        n = len(self.nodes_nm)
        if len(self.radii_nm) != n:
            raise InputError(
                f"segment {self.segment_id}: radii_nm has {len(self.radii_nm)} values: expected one per node ({n})"
            )
        if len(self.edges) and (self.edges.min() < 0 or self.edges.max() >= n):
            raise InputError(f"segment {self.segment_id}: edges refer to nodes outside 0..{n - 1}")
        if len(self.open_ends) and (self.open_ends.min() < 0 or self.open_ends.max() >= n):
            raise InputError(f"segment {self.segment_id}: open_ends refer to nodes outside 0..{n - 1}")

    @classmethod
    def empty(cls, segment_id: int) -> AxonGraph:
        """A graph with no nodes (a segment too small to skeletonize)."""
        return cls(segment_id, np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0))

    @property
    def n_nodes(self) -> int:
        return int(len(self.nodes_nm))

    @property
    def n_edges(self) -> int:
        return int(len(self.edges))

    @property
    def edge_lengths_nm(self) -> np.ndarray:
        """``(E,)`` float64 euclidean length of every edge in nm."""
        return np.linalg.norm(self.nodes_nm[self.edges[:, 0]] - self.nodes_nm[self.edges[:, 1]], axis=1)

    @property
    def path_length_nm(self) -> float:
        """Total cable length in nm: the sum of the edge lengths."""
        return float(self.edge_lengths_nm.sum())

    def adjacency(self) -> sp.csr_matrix:
        """Symmetric ``(N, N)`` sparse matrix whose entries are edge lengths in nm."""
        n = self.n_nodes
        u, v = self.edges[:, 0], self.edges[:, 1]
        # A zero-length edge would vanish from a sparse matrix; keep it reachable.
        weights = np.maximum(self.edge_lengths_nm, 1e-9)
        matrix = sp.coo_matrix(
            (np.concatenate([weights, weights]), (np.concatenate([u, v]), np.concatenate([v, u]))), shape=(n, n)
        )
        return matrix.tocsr()

    def degrees(self) -> np.ndarray:
        """``(N,)`` int64 number of edges at every node."""
        return np.bincount(self.edges.ravel(), minlength=self.n_nodes).astype(np.int64)

    def n_components(self) -> int:
        """Number of connected pieces of the skeleton (0 for an empty graph)."""
        if self.n_nodes == 0:
            return 0
        return int(connected_components(self.adjacency(), directed=False)[0])

    def to_networkx(self) -> nx.Graph:
        """An undirected networkx graph.

        Nodes are the indices ``0..N-1`` with attributes ``pos_nm`` (z, y, x tuple) and
        ``radius_nm``; edges have ``length_nm``. The graph attribute ``segment_id`` is set.
        """
        import networkx as nx

        graph = nx.Graph(segment_id=self.segment_id)
        graph.add_nodes_from(
            (i, {"pos_nm": tuple(pos), "radius_nm": float(r)})
            for i, (pos, r) in enumerate(zip(self.nodes_nm.tolist(), self.radii_nm.tolist()))
        )
        graph.add_edges_from(
            (int(u), int(v), {"length_nm": float(w)})
            for (u, v), w in zip(self.edges.tolist(), self.edge_lengths_nm.tolist())
        )
        return graph


def path_lengths_from(graph: AxonGraph, root_index: int) -> np.ndarray:
    """Distance along the skeleton from one node to every node.

    Args:
        graph: the skeleton.
        root_index: index of the start node (for example the node nearest a synapse).

    Returns:
        ``(N,)`` float64 path length in nm; ``inf`` for nodes in other connected pieces.
    """
    if not 0 <= int(root_index) < graph.n_nodes:
        raise InputError(f"root_index={root_index}: expected a node index in 0..{graph.n_nodes - 1}")
    distances = dijkstra(graph.adjacency(), directed=False, indices=int(root_index))
    distances[int(root_index)] = 0.0
    return np.asarray(distances, dtype=np.float64)


def endpoints(graph: AxonGraph) -> np.ndarray:
    """Indices (int64, ascending) of the nodes with exactly one edge."""
    return np.flatnonzero(graph.degrees() == 1).astype(np.int64)


def branch_points(graph: AxonGraph) -> np.ndarray:
    """Indices (int64, ascending) of the nodes with three or more edges."""
    return np.flatnonzero(graph.degrees() >= 3).astype(np.int64)


def nearest_nodes(graph: AxonGraph, points_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The skeleton node nearest to each of many points.

    Args:
        graph: the skeleton (must have nodes).
        points_nm: ``(M, 3)`` positions in nm, zyx.

    Returns:
        ``(indices, distances_nm)``: ``(M,)`` int64 node indices and ``(M,)`` float64 distances in nm.
    """
    points = np.asarray(points_nm, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"points_nm has shape {points.shape}: expected (M, 3) positions in nm (z y x)")
    if graph.n_nodes == 0:
        raise InputError(f"segment {graph.segment_id} has no skeleton nodes: cannot find a nearest node")
    distances, indices = cKDTree(graph.nodes_nm).query(points)
    return np.asarray(indices, dtype=np.int64), np.asarray(distances, dtype=np.float64)


def nearest_node(graph: AxonGraph, point_nm: np.ndarray) -> tuple[int, float]:
    """The skeleton node nearest to one point.

    Args:
        graph: the skeleton (must have nodes).
        point_nm: a position in nm, zyx.

    Returns:
        ``(index, distance_nm)`` of the nearest node.
    """
    point = np.asarray(point_nm, dtype=np.float64)
    if point.shape != (3,):
        raise InputError(f"point_nm has shape {point.shape}: expected three numbers in nm (z y x)")
    indices, distances = nearest_nodes(graph, point[None])
    return int(indices[0]), float(distances[0])
