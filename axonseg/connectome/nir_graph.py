"""The connectome as a NIR graph: Input -> [Delay ->] Linear (dense) -> CubaLIF -> Output.

Input channel ``i`` carries the spikes of node ``i``; the Linear weight matrix is
``(post, pre)``. Synapses are grouped by their delay (rounded to ``delay_resolution_ms``), and
each group gets its own ``Delay -> Linear`` branch, because NIR delays act per channel, not per
synapse. ``nir`` is imported only here, when a graph is built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from axonseg.errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LifParams:
    """CubaLIF parameters of every neuron (NIR units: seconds, dimensionless voltages)."""

    tau_syn_ms: float = 5.0
    tau_mem_ms: float = 20.0
    r: float = 1.0
    v_leak: float = 0.0
    v_threshold: float = 1.0
    v_reset: float = 0.0


@dataclass(frozen=True)
class NirInfo:
    """What the graph holds: ``n_delay_groups`` (0 when delays were dropped), the resolution used."""

    n_nodes: int
    n_delay_groups: int
    delay_resolution_ms: float | None
    delays_dropped: bool


def dense_weights(n_nodes: int, source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(post, pre)`` float32 matrix with the summed weight of every connection."""
    matrix = np.zeros((n_nodes, n_nodes), dtype=np.float32)
    np.add.at(matrix, (np.asarray(target, np.int64), np.asarray(source, np.int64)), np.asarray(weights, np.float32))
    return matrix


def delay_groups(delays_ms: np.ndarray, resolution_ms: float, max_groups: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Round delays to a grid; coarsen the grid until at most ``max_groups`` values remain.

    Returns:
        ``(group_of_each_synapse, group_delay_ms, resolution_ms_used)``.
    """
    delays = np.asarray(delays_ms, dtype=np.float64)
    resolution = float(resolution_ms)
    while True:
        rounded = np.round(delays / resolution) * resolution
        values, group = np.unique(rounded, return_inverse=True)
        if len(values) <= max_groups:
            return group.astype(np.int64), values, resolution
        resolution *= 2.0


def build_nir_graph(n_nodes: int, source: np.ndarray, target: np.ndarray, weights: np.ndarray,
                    delays_ms: np.ndarray | None, lif: LifParams = LifParams(), delay_resolution_ms: float = 0.1,
                    max_delay_groups: int = 16, max_nodes: int = 20000):  # noqa: ANN201 (nir.NIRGraph)
    """Build the NIR graph of a connectome.

    Args:
        n_nodes: neurons (N).
        source, target: ``(S,)`` node index of each synapse's pre and post neuron.
        weights: ``(S,)`` signed synapse weights (summed per pair into the dense matrix).
        delays_ms: ``(S,)`` delays in ms, or None to drop delays (logged).
        lif: neuron parameters.
        delay_resolution_ms: grid that delays are rounded to before grouping.
        max_delay_groups: most Delay branches; the grid is coarsened (x2) until they fit.
        max_nodes: refuse dense matrices beyond this many neurons.

    Returns:
        ``(graph, info)``: a ``nir.NIRGraph`` and a :class:`NirInfo`.
    """
    import nir

    if n_nodes > max_nodes:
        raise InputError(f"NIR export: {n_nodes} neurons exceed max_nodes={max_nodes} for a dense weight matrix")
    if n_nodes == 0:
        raise InputError("NIR export: the connectome has no neurons (no synapses were kept)")
    shape = np.array([n_nodes])
    ones = np.ones(n_nodes, dtype=np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": shape}),
        "lif": nir.CubaLIF(tau_syn=ones * lif.tau_syn_ms / 1000.0, tau_mem=ones * lif.tau_mem_ms / 1000.0,
                           r=ones * lif.r, v_leak=ones * lif.v_leak, v_threshold=ones * lif.v_threshold,
                           v_reset=ones * lif.v_reset),
        "output": nir.Output(output_type={"output": shape}),
    }
    edges = [("lif", "output")]
    if delays_ms is None:
        logger.warning("NIR export: synaptic delays dropped (one Linear layer without Delay nodes)")
        nodes["linear"] = nir.Linear(weight=dense_weights(n_nodes, source, target, weights))
        edges += [("input", "linear"), ("linear", "lif")]
        return nir.NIRGraph(nodes=nodes, edges=edges), NirInfo(n_nodes, 0, None, True)
    group, values, resolution = delay_groups(delays_ms, delay_resolution_ms, max_delay_groups)
    if resolution != delay_resolution_ms:
        logger.warning("NIR export: delays rounded to %.3g ms (not %.3g) to fit %d Delay nodes",
                       resolution, delay_resolution_ms, max_delay_groups)
    for k, value in enumerate(values):
        rows = group == k
        nodes[f"delay_{k}"] = nir.Delay(delay=np.full(n_nodes, value / 1000.0, dtype=np.float32))
        nodes[f"linear_{k}"] = nir.Linear(weight=dense_weights(n_nodes, source[rows], target[rows], weights[rows]))
        edges += [("input", f"delay_{k}"), (f"delay_{k}", f"linear_{k}"), (f"linear_{k}", "lif")]
    return nir.NIRGraph(nodes=nodes, edges=edges), NirInfo(n_nodes, len(values), resolution, False)
