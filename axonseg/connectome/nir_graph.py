"""The connectome as a closed-loop NIR graph that norse and snntorch import as written.

The file holds one top-level graph ``input -> network -> output``; ``network`` is a subgraph
with the recurrent circuit::

    input -> lif -> output
             lif -> recurrent -> lif          (recurrent: Linear, the (post, pre) weight matrix)

so every neuron's spikes go back through the connectome's weights into the neurons (the loop
is closed), and input channel ``i`` is an external drive into neuron ``i``'s synaptic current.
The loop sits inside a subgraph node because snntorch (1.0) rewrites a top-level
``CubaLIF <-> Linear`` loop into its own subgraph that sends the external input through the
recurrent weights; nested, both norse and snntorch run the graph as written.

CubaLIF parameters are set for the Euler step both tools use, ``dt`` (0.1 ms, snntorch's fixed
step): ``r = tau_mem / dt`` and ``w_in = tau_syn / dt``, so one step reads
``I <- (1 - dt/tau_syn) I + x + W s``, ``v <- (1 - dt/tau_mem) v + I``, a spike when
``v > v_threshold``, then ``v = v_reset``: a spike of neuron ``j`` adds ``W[i, j]`` to neuron
``i``'s current one step later.

Delays: norse drops NIR ``Delay`` nodes without a word and snntorch refuses them, so by default
the graph has none (every spike arrives one step later; the per-synapse delays are in SONATA and
``pynn.csv``). With delays, synapses are grouped by delay (rounded to ``delay_resolution_ms``)
and each group is its own ``lif -> delay_k -> linear_k -> lif`` branch (NIR delays act per
channel, not per synapse). ``nir`` is imported only here, when a graph is built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from axonseg.errors import InputError

logger = logging.getLogger(__name__)

#: The subgraph node that holds the recurrent circuit.
NETWORK = "network"


@dataclass(frozen=True)
class LifParams:
    """CubaLIF parameters of every neuron (time constants in ms; voltages dimensionless).

    ``dt_ms`` is the simulation step the graph is scaled for: ``r = tau_mem / dt`` and
    ``w_in = tau_syn / dt`` (snntorch's importer assumes dt = 0.1 ms; norse takes ``dt``).
    """

    tau_syn_ms: float = 5.0
    tau_mem_ms: float = 20.0
    v_leak: float = 0.0
    v_threshold: float = 1.0
    v_reset: float = 0.0
    dt_ms: float = 0.1

    @property
    def r(self) -> float:
        """Membrane resistance: ``tau_mem / dt``, so the current adds to v once per step."""
        return self.tau_mem_ms / self.dt_ms

    @property
    def w_in(self) -> float:
        """Input gain: ``tau_syn / dt``, so a spike adds its weight to the current once."""
        return self.tau_syn_ms / self.dt_ms


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


def _lif_node(nir, n_nodes: int, lif: LifParams):  # noqa: ANN001, ANN202 (nir module, nir.CubaLIF)
    ones = np.ones(n_nodes, dtype=np.float32)
    return nir.CubaLIF(tau_syn=ones * lif.tau_syn_ms / 1000.0, tau_mem=ones * lif.tau_mem_ms / 1000.0,
                       r=ones * lif.r, v_leak=ones * lif.v_leak, v_threshold=ones * lif.v_threshold,
                       v_reset=ones * lif.v_reset, w_in=ones * lif.w_in)


def _ports(nir, n_nodes: int) -> dict:  # noqa: ANN001
    shape = np.array([n_nodes])
    return {"input": nir.Input(input_type={"input": shape}), "output": nir.Output(output_type={"output": shape})}


def build_nir_graph(n_nodes: int, source: np.ndarray, target: np.ndarray, weights: np.ndarray,
                    delays_ms: np.ndarray | None, lif: LifParams = LifParams(), delay_resolution_ms: float = 0.1,
                    max_delay_groups: int = 16, max_nodes: int = 20000):  # noqa: ANN201 (nir.NIRGraph)
    """Build the closed-loop NIR graph of a connectome (see the module docstring).

    Args:
        n_nodes: neurons (N).
        source, target: ``(S,)`` node index of each synapse's pre and post neuron.
        weights: ``(S,)`` signed synapse weights (summed per pair into the dense matrix).
        delays_ms: ``(S,)`` delays in ms for ``Delay`` nodes (which norse and snntorch do not
            import), or None for no delays (the default of the export; logged).
        lif: neuron parameters and the step ``dt`` they are scaled for.
        delay_resolution_ms: grid that delays are rounded to before grouping.
        max_delay_groups: most Delay branches; the grid is coarsened (x2) until they fit.
        max_nodes: refuse dense matrices beyond this many neurons.

    Returns:
        ``(graph, info)``: a ``nir.NIRGraph`` (``input -> network -> output``, the circuit in
        ``graph.nodes["network"]``) and a :class:`NirInfo`.
    """
    import nir

    if n_nodes > max_nodes:
        raise InputError(f"NIR export: {n_nodes} neurons exceed max_nodes={max_nodes} for a dense weight matrix")
    if n_nodes == 0:
        raise InputError("NIR export: the connectome has no neurons (no synapses were kept)")
    nodes = {**_ports(nir, n_nodes), "lif": _lif_node(nir, n_nodes, lif)}
    edges = [("input", "lif")]
    metadata = {"source": "axonseg connectome", "dt_s": lif.dt_ms / 1000.0, "weights": "recurrent (post, pre)",
                "input": "external drive into each neuron's synaptic current (channel i -> neuron i)"}
    if delays_ms is None:
        logger.warning("NIR export: synaptic delays dropped (no Delay nodes: every spike reaches its targets one "
                       "step later; SONATA and pynn.csv keep the delays)")
        nodes["recurrent"] = nir.Linear(weight=dense_weights(n_nodes, source, target, weights))
        edges += [("lif", "recurrent"), ("recurrent", "lif")]
        info = NirInfo(n_nodes, 0, None, True)
        metadata["delays"] = "none"
    else:
        group, values, resolution = delay_groups(delays_ms, delay_resolution_ms, max_delay_groups)
        if resolution != delay_resolution_ms:
            logger.warning("NIR export: delays rounded to %.3g ms (not %.3g) to fit %d Delay nodes",
                           resolution, delay_resolution_ms, max_delay_groups)
        for k, value in enumerate(values):
            rows = group == k
            nodes[f"delay_{k}"] = nir.Delay(delay=np.full(n_nodes, value / 1000.0, dtype=np.float32))
            nodes[f"linear_{k}"] = nir.Linear(weight=dense_weights(n_nodes, source[rows], target[rows], weights[rows]))
            edges += [("lif", f"delay_{k}"), (f"delay_{k}", f"linear_{k}"), (f"linear_{k}", "lif")]
        info = NirInfo(n_nodes, len(values), resolution, False)
        metadata["delays"] = f"Delay nodes, rounded to {resolution:g} ms"
    # The output edge comes last: norse (1.1, through nirtorch's GraphExecutor) runs the nodes in
    # depth-first edge order and returns the last one's output, which must be the spikes.
    edges.append(("lif", "output"))
    network = nir.NIRGraph(nodes=nodes, edges=edges)
    graph = nir.NIRGraph(nodes={**_ports(nir, n_nodes), NETWORK: network},
                         edges=[("input", NETWORK), (NETWORK, "output")], metadata=metadata)
    return graph, info
