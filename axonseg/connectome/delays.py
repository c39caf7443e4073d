"""Axonal conduction delays: path length from the presynaptic skeleton's root to each synapse.

Root, per connected piece of a skeleton (documented choice, first rule that applies):
1. ``soma``: the node of largest radius when it is at least ``soma_min_radius_nm``;
2. ``nearest_to_point``: the endpoint nearest ``root_point_nm`` when one is given;
3. ``boundary_endpoint``: of the endpoints within ``boundary_tolerance_nm`` of the volume's
   faces, the one of largest radius (an axon enters the volume where it is cut, and the thick
   end is the likelier way towards the soma);
4. ``largest_endpoint``: the endpoint of largest radius; ``first_node`` for a piece without ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from axonseg.errors import InputError
from axonseg.skeleton import AxonGraph


@dataclass(frozen=True)
class RootRule:
    """Settings of the root choice (see the module docstring).

    Attributes:
        volume_begin_nm, volume_end_nm: the volume's box in nm (zyx).
        boundary_tolerance_nm: how close (nm, zyx per axis) to a face an endpoint must be.
        soma_min_radius_nm: a node at least this thick is a soma.
        root_point_nm: optional point (nm, zyx) whose nearest endpoint is the root.
    """

    volume_begin_nm: tuple[float, float, float]
    volume_end_nm: tuple[float, float, float]
    boundary_tolerance_nm: tuple[float, float, float]
    soma_min_radius_nm: float = 1500.0
    root_point_nm: tuple[float, float, float] | None = None


def _component_root(graph: AxonGraph, members: np.ndarray, degrees: np.ndarray, rule: RootRule) -> tuple[int, str]:
    radii = graph.radii_nm[members]
    if len(members) and radii.max() >= rule.soma_min_radius_nm:
        return int(members[np.argmax(radii)]), "soma"
    ends = members[degrees[members] == 1]
    if len(ends) == 0:
        return int(members[0]), "first_node"
    if rule.root_point_nm is not None:
        distance = np.linalg.norm(graph.nodes_nm[ends] - np.asarray(rule.root_point_nm), axis=1)
        return int(ends[np.argmin(distance)]), "nearest_to_point"
    positions = graph.nodes_nm[ends]
    tolerance = np.asarray(rule.boundary_tolerance_nm)
    near = np.any((positions - np.asarray(rule.volume_begin_nm) <= tolerance)
                  | (np.asarray(rule.volume_end_nm) - positions <= tolerance), axis=1)
    candidates, method = (ends[near], "boundary_endpoint") if near.any() else (ends, "largest_endpoint")
    # Ties (equal radii) go to the lowest node index, so the choice is deterministic.
    return int(candidates[np.argmax(graph.radii_nm[candidates])]), method


def choose_roots(graph: AxonGraph, rule: RootRule) -> tuple[np.ndarray, list[str]]:
    """One root node per connected piece of ``graph``.

    Returns:
        ``(roots, methods)``: int64 node indices and the rule that chose each.
    """
    if graph.n_nodes == 0:
        raise InputError(f"segment {graph.segment_id} has no skeleton nodes: cannot choose a root")
    _, component = connected_components(graph.adjacency(), directed=False)
    degrees = graph.degrees()
    roots, methods = [], []
    for c in np.unique(component):
        root, method = _component_root(graph, np.flatnonzero(component == c), degrees, rule)
        roots.append(root)
        methods.append(method)
    return np.asarray(roots, dtype=np.int64), methods


def path_lengths_from_roots(graph: AxonGraph, roots: np.ndarray) -> np.ndarray:
    """``(N,)`` float64 path length in nm from each node to the root of its piece."""
    distances = dijkstra(graph.adjacency(), directed=False, indices=np.asarray(roots, dtype=np.int64), min_only=True)
    distances = np.asarray(distances, dtype=np.float64).reshape(-1)
    distances[np.asarray(roots, dtype=np.int64)] = 0.0
    return distances


@dataclass
class PathLengths:
    """Per synapse: the path length along its presynaptic skeleton.

    Attributes:
        path_length_um: ``(S,)`` float64 µm from the root to the node nearest the synapse;
            NaN where the presynaptic segment has no skeleton.
        root_methods: ``{method: number of skeleton pieces rooted by it}``.
        n_without_skeleton: synapses whose presynaptic segment has no skeleton.
    """

    path_length_um: np.ndarray
    root_methods: dict[str, int]
    n_without_skeleton: int


def synapse_path_lengths(graphs: Mapping[int, AxonGraph], pre_ids: np.ndarray, pre_nm: np.ndarray,
                         rule: RootRule) -> PathLengths:
    """Path length from each presynaptic skeleton's root to the node nearest each synapse.

    Args:
        graphs: ``{segment_id: AxonGraph}`` (nm, zyx).
        pre_ids: ``(S,)`` presynaptic segment ids.
        pre_nm: ``(S, 3)`` presynaptic points in nm (zyx).
        rule: the root choice.
    """
    pre_ids = np.asarray(pre_ids, dtype=np.uint64)
    pre_nm = np.asarray(pre_nm, dtype=np.float64).reshape(-1, 3)
    result = np.full(len(pre_ids), np.nan)
    methods: dict[str, int] = {}
    order = np.argsort(pre_ids, kind="stable")
    segments, starts = np.unique(pre_ids[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    for segment_id, start, end in zip(segments.tolist(), starts, ends):
        graph = graphs.get(int(segment_id))
        if graph is None or graph.n_nodes == 0:
            continue
        rows = order[start:end]
        roots, chosen = choose_roots(graph, rule)
        for method in chosen:
            methods[method] = methods.get(method, 0) + 1
        along = path_lengths_from_roots(graph, roots)
        _, nearest = cKDTree(graph.nodes_nm).query(pre_nm[rows])
        result[rows] = along[np.asarray(nearest, dtype=np.int64)] / 1000.0
    return PathLengths(result, methods, int(np.isnan(result).sum()))


def delays_ms(path_length_um: np.ndarray, synaptic_delay_ms: float = 0.5,
              conduction_velocity_m_per_s: float = 0.3) -> np.ndarray:
    """Delay per synapse in ms: synaptic delay + path length / conduction velocity.

    A missing path length (NaN, no skeleton) adds nothing: the delay is the synaptic delay.
    1 µm at 1 m/s takes 1e-3 ms.
    """
    if conduction_velocity_m_per_s <= 0:
        raise InputError(f"conduction_velocity_m_per_s={conduction_velocity_m_per_s}: expected a positive speed")
    path = np.nan_to_num(np.asarray(path_length_um, dtype=np.float64), nan=0.0)
    return synaptic_delay_ms + path * 1e-3 / conduction_velocity_m_per_s


def volume_box_nm(shape: Sequence[int], voxel_size: Sequence[float], offset_nm: Sequence[float]
                  ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(begin, end)`` of a volume's box in nm (zyx)."""
    begin = tuple(float(o) for o in offset_nm)
    end = tuple(float(o + s * v) for o, s, v in zip(offset_nm, shape, voxel_size))
    return begin, end  # type: ignore[return-value]
