"""Run a connectome (arrays of synapses) as a Brian2 LIF network driven by Poisson input.

``brian2`` is imported only inside :func:`simulate_network`. Each time step runs the state
update, then synaptic events, then the threshold, so an arriving spike makes its target fire
in the step it arrives. Brian2 queues a spike one step after its threshold crossing in that
order, so every delay is shortened by one step (never below 0): spike-time differences along
a chain then equal the delays (a delay below one step still takes one step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from axonseg.errors import InputError


@dataclass(frozen=True)
class LifModel:
    """Leaky integrate-and-fire neurons (mV, ms); a synapse of weight ``w`` adds ``w * weight_mv``."""

    tau_m_ms: float = 20.0
    v_rest_mv: float = -70.0
    v_threshold_mv: float = -50.0
    v_reset_mv: float = -70.0
    refractory_ms: float = 2.0
    weight_mv: float = 2.0


@dataclass(frozen=True)
class PoissonDrive:
    """Poisson input: ``n_inputs`` sources of ``rate_hz`` per driven neuron, each adding ``weight_mv``."""

    rate_hz: float = 10.0
    n_inputs: int = 100
    weight_mv: float = 1.0


@dataclass(frozen=True)
class SimulationResult:
    """Spikes (``spike_index`` node ids, ``spike_time_ms``) and per-node ``rates_hz`` over ``duration_ms``."""

    spike_index: np.ndarray
    spike_time_ms: np.ndarray
    rates_hz: np.ndarray
    duration_ms: float
    dt_ms: float


def simulate_network(n_nodes: int, source: np.ndarray, target: np.ndarray, weights: np.ndarray,
                     delays_ms: np.ndarray, model: LifModel = LifModel(), drive: PoissonDrive = PoissonDrive(),
                     driven: np.ndarray | None = None, duration_ms: float = 100.0, dt_ms: float = 0.1,
                     seed: int = 0, codegen_target: str = "numpy") -> SimulationResult:
    """Simulate ``n_nodes`` LIF neurons connected by per-synapse weights and delays.

    Args:
        n_nodes: neurons.
        source, target: ``(S,)`` node index of each synapse's pre and post neuron.
        weights: ``(S,)`` signed weights (units of ``model.weight_mv``).
        delays_ms: ``(S,)`` delays in ms (rounded by Brian2 to ``dt_ms``; at least one step).
        model: the neuron model.
        drive: the Poisson input.
        driven: ``(N,)`` bool, the neurons that get Poisson input (default all).
        duration_ms: simulated time, ms.
        dt_ms: time step, ms.
        seed: random seed (Poisson input).
        codegen_target: Brian2 code generation (``numpy`` needs no compiler; ``cython`` is faster).
    """
    import brian2 as b2

    source, target = np.asarray(source, np.int64), np.asarray(target, np.int64)
    if n_nodes <= 0:
        raise InputError("simulate: the connectome has no neurons")
    if len(source) and (source.max() >= n_nodes or target.max() >= n_nodes or min(source.min(), target.min()) < 0):
        raise InputError(f"simulate: synapses refer to neurons outside 0..{n_nodes - 1}")
    b2.prefs.codegen.target = codegen_target
    b2.seed(seed)
    ms, mV, Hz = b2.ms, b2.mV, b2.Hz
    dt = dt_ms * ms
    namespace = {"tau_m": model.tau_m_ms * ms, "v_rest": model.v_rest_mv * mV,
                 "v_threshold": model.v_threshold_mv * mV, "v_reset": model.v_reset_mv * mV,
                 "weight_unit": model.weight_mv * mV, "drive_weight": drive.weight_mv * mV}
    neurons = b2.NeuronGroup(
        n_nodes, "dv/dt = (v_rest - v) / tau_m : volt (unless refractory)\ndrive : 1",
        threshold="v > v_threshold", reset="v = v_reset", refractory=model.refractory_ms * ms,
        method="exact", dt=dt, namespace=namespace, name="neurons",
    )
    neurons.v = model.v_rest_mv * mV
    neurons.drive = 1.0 if driven is None else np.asarray(driven, dtype=np.float64)
    objects = [neurons]
    if len(source):
        synapses = b2.Synapses(neurons, neurons, "w : 1", on_pre="v_post += w * weight_unit",
                               dt=dt, namespace=namespace, name="synapses")
        synapses.connect(i=source, j=target)
        synapses.w = np.asarray(weights, dtype=np.float64)
        # One step is spent queueing the spike (see the module docstring).
        synapses.delay = np.maximum(np.asarray(delays_ms, dtype=np.float64) - dt_ms, 0.0) * ms
        objects.append(synapses)
    if drive.rate_hz > 0 and drive.n_inputs > 0:
        objects.append(b2.PoissonInput(neurons, "v", drive.n_inputs, drive.rate_hz * Hz, weight="drive * drive_weight"))
    monitor = b2.SpikeMonitor(neurons, name="spikes")
    objects.append(monitor)
    network = b2.Network(*objects)
    # Synaptic events before the threshold: a delayed spike makes its target fire in the step it arrives.
    network.schedule = ["start", "groups", "synapses", "thresholds", "resets", "end"]
    network.run(duration_ms * ms, namespace=namespace)
    index = np.asarray(monitor.i[:], dtype=np.int64)
    times = np.asarray(monitor.t[:] / ms, dtype=np.float64)
    rates = np.bincount(index, minlength=n_nodes) / (duration_ms / 1000.0)
    return SimulationResult(index, times, rates, float(duration_ms), float(dt_ms))
