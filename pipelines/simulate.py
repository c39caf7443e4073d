"""``axonseg simulate``: run the SONATA export of a run in Brian2 and plot what it does.

Reads ``RUN/connectome/sonata`` (libsonata), simulates LIF neurons with per-synapse weights and
delays driven by Poisson input, and writes ``RUN/simulation/{raster.png, rates.csv, spikes.csv}``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from axonseg.config import StrictModel, load_config, save_resolved
from axonseg.connectome.brian import LifModel, PoissonDrive, SimulationResult, simulate_network
from axonseg.errors import InputError
from axonseg.io.sonata import read_sonata
from axonseg.io.synapse_tables import write_table

logger = logging.getLogger(__name__)

STAGE = "simulate"


class SimulateConfig(StrictModel):
    """How ``axonseg simulate`` runs (one flat YAML, ``configs/simulate.yaml``)."""

    duration_ms: float = Field(100.0, gt=0, description="simulated time in ms")
    dt_ms: float = Field(0.1, gt=0, description="time step in ms")
    rate_hz: float = Field(10.0, ge=0, description="rate of each Poisson input source in Hz")
    n_inputs: int = Field(100, ge=0, description="Poisson sources per driven neuron")
    input_weight_mv: float = Field(1.0, description="membrane jump per Poisson spike in mV")
    drive: Literal["all", "sources"] = Field("all", description="all neurons, or only those without afferent edges")
    weight_mv: float = Field(2.0, description="membrane jump per unit syn_weight in mV")
    tau_m_ms: float = Field(20.0, gt=0, description="membrane time constant in ms")
    v_rest_mv: float = -70.0
    v_threshold_mv: float = -50.0
    v_reset_mv: float = -70.0
    refractory_ms: float = Field(2.0, ge=0, description="refractory period in ms")
    seed: int = Field(0, ge=0, description="random seed of the Poisson input")
    codegen_target: Literal["numpy", "cython"] = Field("numpy", description="Brian2 code generation")


def load_simulate_config(path: str | Path | None = None) -> SimulateConfig:
    """The config from a YAML file, or the defaults when ``path`` is None."""
    return SimulateConfig() if path is None else load_config(path, SimulateConfig)


@dataclass(frozen=True)
class SimulateResult:
    """What the simulation wrote, and its spikes (``result``)."""

    folder: Path
    raster_path: Path
    rates_path: Path
    spikes_path: Path
    result: SimulationResult
    segment_ids: np.ndarray


def write_raster(path: Path, result: SimulationResult, title: str) -> Path:
    """Spike raster (node index against time in ms) as a PNG, with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4), dpi=100)
    axis.scatter(result.spike_time_ms, result.spike_index, s=40, c="k", marker="|", linewidths=1.0)
    axis.set_xlim(0, result.duration_ms)
    axis.set_ylim(-0.5, max(len(result.rates_hz), 1) - 0.5)
    axis.set_xlabel("time (ms)")
    axis.set_ylabel("neuron (node id)")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _why_empty(export_dir: Path) -> str:
    """Why the export found no synapse, from its ``export.json`` (with what to do about it)."""
    try:
        report = json.loads((export_dir / "export.json").read_text())
    except (OSError, ValueError):
        report = {}
    reason = report.get("empty_reason") if isinstance(report, dict) else None
    if not reason:
        return "no segment carries a synapse"
    return f"the export kept no synapse ({reason}); export again with synapses inside the segmented volume"


def run_simulate(run_dir: str | Path, config: SimulateConfig | None = None) -> SimulateResult:
    """Simulate ``RUN/connectome/sonata`` in Brian2.

    Args:
        run_dir: the run folder (after ``axonseg export --format sonata``).
        config: duration, input and neuron settings; defaults when None.

    Returns:
        A :class:`SimulateResult`; files in ``RUN/simulation``.
    """
    run_dir = Path(run_dir)
    config = config or SimulateConfig()
    sonata = run_dir / "connectome" / "sonata"
    if not (sonata / "edges.h5").exists():
        raise InputError(f"{run_dir}: no SONATA export (connectome/sonata); run `axonseg export {run_dir} --format sonata` first")
    circuit = read_sonata(sonata)
    edges, nodes = circuit.edges, circuit.nodes
    if len(nodes) == 0:
        raise InputError(f"{sonata}: the circuit has no neurons, nothing to simulate: {_why_empty(sonata.parent)}")
    delays = edges["delay"].to_numpy(np.float64) if "delay" in edges.columns else np.zeros(len(edges))
    if "delay" not in edges.columns:
        logger.warning("the SONATA edges carry no delay (a brainscales2 export?): simulating without delays")
    source = edges["source_node_id"].to_numpy(np.int64)
    target = edges["target_node_id"].to_numpy(np.int64)
    driven = None
    if config.drive == "sources":
        driven = np.bincount(target, minlength=len(nodes)) == 0
    model = LifModel(config.tau_m_ms, config.v_rest_mv, config.v_threshold_mv, config.v_reset_mv,
                     config.refractory_ms, config.weight_mv)
    drive = PoissonDrive(config.rate_hz, config.n_inputs, config.input_weight_mv)
    result = simulate_network(len(nodes), source, target, edges["syn_weight"].to_numpy(np.float64), delays, model,
                              drive, driven, config.duration_ms, config.dt_ms, config.seed, config.codegen_target)
    folder = run_dir / "simulation"
    folder.mkdir(parents=True, exist_ok=True)
    segment_ids = nodes["segment_id"].to_numpy(np.uint64)
    rates = pd.DataFrame({"node_id": nodes["node_id"].to_numpy(np.int64), "segment_id": segment_ids,
                          "n_spikes": np.bincount(result.spike_index, minlength=len(nodes)),
                          "rate_hz": result.rates_hz})
    spikes = pd.DataFrame({"node_id": result.spike_index, "segment_id": segment_ids[result.spike_index],
                           "time_ms": result.spike_time_ms})
    rates_path = write_table(rates, folder / "rates.csv")
    spikes_path = write_table(spikes, folder / "spikes.csv")
    title = f"{len(nodes)} neurons, {len(edges)} synapses, {config.duration_ms:g} ms"
    raster_path = write_raster(folder / "raster.png", result, title)
    save_resolved(config, folder / "config.yaml", job=STAGE)
    logger.info("simulate: %d spikes, mean rate %.2f Hz -> %s", len(result.spike_index),
                float(result.rates_hz.mean()) if len(nodes) else 0.0, folder)
    return SimulateResult(folder, raster_path, rates_path, spikes_path, result, segment_ids)
