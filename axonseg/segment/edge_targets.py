"""Ground truth for region-graph edges: should the two fragments of an edge be one object?

Each fragment gets the ground-truth body that holds most of its labelled voxels; an edge is a
merge (1) when both fragments have the same body and a split (0) when they differ. Edges with a
fragment that has no labelled voxel, or is less pure than ``min_purity``, are unknown (-1) and
should not train a classifier. Pure numpy; arrays zyx, ids uint64.
"""

from __future__ import annotations

import numpy as np

from axonseg.errors import InputError
from axonseg.evaluate.ceiling import majority_bodies
from axonseg.segment.edge_features import node_index
from axonseg.segment.region_graph import RegionGraph

MERGE, SPLIT, UNKNOWN = 1, 0, -1


def fragment_bodies(fragments: np.ndarray, gt: np.ndarray, node_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Majority ground-truth body and purity of each fragment, aligned with ``node_id``.

    Args:
        fragments: (Z, Y, X) fragment ids, 0 = background.
        gt: (Z, Y, X) ground-truth body ids on the same grid, 0 = unlabelled (not counted).
        node_id: (N,) uint64 fragment ids, ascending (e.g. ``graph.node_id``).

    Returns:
        ``(body, purity)``: (N,) uint64 body holding most of the fragment's labelled voxels
        (0 when it has none; ties go to the smaller id) and (N,) float64 share of its labelled
        voxels in that body (0 when it has none); see
        :func:`axonseg.evaluate.ceiling.majority_bodies`.

    Raises:
        InputError: the shapes differ or an array is not of a non-negative integer dtype.
    """
    fragment_ids, body_ids, shares = majority_bodies(fragments, gt)
    body = np.zeros(len(node_id), dtype=np.uint64)
    purity = np.zeros(len(node_id), dtype=np.float64)
    rows = np.searchsorted(node_id, fragment_ids)
    inside = rows < len(node_id)
    inside[inside] = node_id[rows[inside]] == fragment_ids[inside]
    body[rows[inside]] = body_ids[inside]
    purity[rows[inside]] = shares[inside]
    return body, purity


def edge_targets(graph: RegionGraph, fragments: np.ndarray, gt: np.ndarray, min_purity: float = 0.9) -> np.ndarray:
    """Merge (1), split (0) or unknown (-1) for every edge of ``graph``.

    Args:
        graph: the region graph of ``fragments``.
        fragments: (Z, Y, X) fragment ids the graph was built from.
        gt: (Z, Y, X) ground-truth bodies, 0 = unlabelled.
        min_purity: a fragment with a smaller share of its labelled voxels in its majority body
            makes its edges unknown (a mixed fragment is neither side of a clean decision).

    Returns:
        (E,) int8 targets aligned with the graph's edges.

    Raises:
        InputError: ``min_purity`` is outside (0, 1], or the arrays do not match.
    """
    if not 0.0 < min_purity <= 1.0:
        raise InputError(f"min_purity is {min_purity}: expected a share in (0, 1]")
    body, purity = fragment_bodies(fragments, gt, graph.node_id)
    iu, iv = node_index(graph)
    known = (body[iu] != 0) & (body[iv] != 0) & (purity[iu] >= min_purity) & (purity[iv] >= min_purity)
    targets = np.full(graph.n_edges, UNKNOWN, dtype=np.int8)
    targets[known] = np.where(body[iu][known] == body[iv][known], MERGE, SPLIT)
    return targets
