"""Ground-truth axon skeletons from the generator's own centerlines, clipped to the volume.

Nodes are in nm (zyx, the volume spanning [0, shape * voxel_size)); pieces of a centerline whose
label was dropped (a tip that re-enters the volume, for example) are left out so that the
skeletons and the labels describe the same objects.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from axonseg.synth.geometry import Neurite, inside_volume


def resample(points: np.ndarray, step_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step_nm`` of arc length along a polyline, and their arc positions (nm)."""
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
    n = max(2, int(round(arc[-1] / step_nm)) + 1)
    positions = np.linspace(0.0, arc[-1], n)
    out = np.stack([np.interp(positions, arc, points[:, a]) for a in range(3)], axis=1)
    return out, positions


def neurite_graph(neurite: Neurite, step_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """The whole centerline graph of a neurite (unclipped): nodes (N, 3) nm and edges (E, 2)."""
    nodes: list[np.ndarray] = []
    edges: list[np.ndarray] = []
    firsts: list[int] = []
    arcs: list[np.ndarray] = []
    offset = 0
    for branch in neurite.branches:
        pts, positions = resample(branch.points, step_nm)
        nodes.append(pts)
        arcs.append(positions)
        firsts.append(offset)
        local = np.arange(len(pts) - 1)
        edges.append(np.stack([local, local + 1], axis=1) + offset)
        offset += len(pts)
    for b, branch in enumerate(neurite.branches):
        if branch.parent is None:
            continue
        parent, at = branch.parent
        parent_points = neurite.branches[parent].points
        arc_at = float(np.sum(np.linalg.norm(np.diff(parent_points[: at + 1], axis=0), axis=1)))
        join = firsts[parent] + int(np.argmin(np.abs(arcs[parent] - arc_at)))
        edges.append(np.array([[join, firsts[b]]]))
    return np.concatenate(nodes), np.concatenate(edges).astype(np.int64)


def _components(n_nodes: int, edges: np.ndarray) -> np.ndarray:
    """Connected component index of each node of an undirected graph."""
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_nodes, n_nodes))
    return connected_components(graph, directed=False)[1]


def clip_skeleton(nodes: np.ndarray, edges: np.ndarray, label_id: int, labels: np.ndarray,
                  voxel_size: tuple[float, float, float], min_inside: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Keep the nodes inside the volume, then the pieces that lie mostly inside their own label.

    Args:
        nodes: (N, 3) nm, zyx. edges: (E, 2) node indices.
        label_id: the neurite's id in ``labels``.
        labels: uint64 neurite labels (the final ones, after gaps and clean-up), zyx.
        voxel_size: nm, zyx; node p lies in voxel floor(p / voxel_size).
        min_inside: a piece is kept when at least this fraction of its nodes hit ``label_id``.

    Returns:
        nodes (M, 3) float64 nm and edges (F, 2) int64 of the kept pieces, renumbered.
    """
    extent = np.asarray(labels.shape) * np.asarray(voxel_size)
    keep = inside_volume(nodes, extent)
    voxels = np.floor(nodes[keep] / np.asarray(voxel_size)).astype(np.int64)
    hits = np.zeros(len(nodes), dtype=bool)
    hits[keep] = labels[voxels[:, 0], voxels[:, 1], voxels[:, 2]] == label_id
    edges = edges[keep[edges[:, 0]] & keep[edges[:, 1]]]
    comp = _components(len(nodes), edges)
    n_comp = int(comp.max()) + 1
    size = np.bincount(comp[keep], minlength=n_comp)
    good = np.bincount(comp[hits], minlength=n_comp)
    piece_ok = (size >= 2) & (good >= min_inside * np.maximum(size, 1))
    keep &= piece_ok[comp]
    new_index = np.cumsum(keep) - 1
    edges = edges[keep[edges[:, 0]] & keep[edges[:, 1]]]
    return nodes[keep].astype(np.float64), new_index[edges].astype(np.int64).reshape(-1, 2)


def axon_skeletons(neurites: list[Neurite], labels: np.ndarray, voxel_size: tuple[float, float, float],
                   step_nm: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Skeletons of the axons present in ``labels``: {id: (nodes (N, 3) nm zyx, edges (E, 2))}.

    An axon whose clipped skeleton keeps fewer than two nodes is left out (the caller removes
    it from the axon labels, so labels and skeletons always list the same axons).
    """
    present = set(np.unique(labels).tolist())
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for neurite in neurites:
        if neurite.kind != "axon" or neurite.id not in present:
            continue
        nodes, edges = neurite_graph(neurite, step_nm)
        nodes, edges = clip_skeleton(nodes, edges, neurite.id, labels, voxel_size)
        if len(nodes) >= 2:
            out[neurite.id] = (nodes, edges)
    return out

