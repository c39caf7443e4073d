"""Write an assembled connectome in each export format: SONATA, NIR, CSV/parquet, PyNN list.

With ``target="brainscales2"`` every format gets one connection per (pre, post) pair with an
integer weight 0..63, the sign as receptor type, and no delays.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from axonseg.connectome import Connectome
from axonseg.connectome.nir_graph import LifParams, build_nir_graph
from axonseg.connectome.tables import POST_COLUMNS, PRE_COLUMNS
from axonseg.errors import InputError
from axonseg.io.nir_file import write_nir
from axonseg.io.sonata import write_sonata
from axonseg.io.synapse_tables import read_table, write_table

logger = logging.getLogger(__name__)

FORMATS = ("sonata", "nir", "csv", "pynn")
SYNAPSE_EDGE_ATTRIBUTES = ("synapse_id", "size", "confidence", "path_length_um") + PRE_COLUMNS + POST_COLUMNS


def sonata_edges(connectome: Connectome, hardware_pairs: pd.DataFrame | None) -> pd.DataFrame:
    """Edge rows for SONATA: one per synapse (``delay`` in ms), or one per pair on hardware."""
    if hardware_pairs is not None:
        return pd.DataFrame({
            "source_node_id": hardware_pairs["source_node_id"].to_numpy(np.int64),
            "target_node_id": hardware_pairs["target_node_id"].to_numpy(np.int64),
            "syn_weight": hardware_pairs["hw_weight"].to_numpy(np.float64),
            "n_synapses": hardware_pairs["count"].to_numpy(np.int64),
            "receptor_type": hardware_pairs["receptor_type"].to_numpy(),
        })
    table = connectome.synapses
    edges = pd.DataFrame({"source_node_id": table["source_node_id"].to_numpy(np.int64),
                          "target_node_id": table["target_node_id"].to_numpy(np.int64),
                          "syn_weight": table["syn_weight"].to_numpy(np.float64),
                          "delay": table["delay_ms"].to_numpy(np.float64)})
    for name in SYNAPSE_EDGE_ATTRIBUTES:
        edges[name] = table[name].to_numpy()
    return edges


def write_csv(folder: Path, connectome: Connectome, hardware_pairs: pd.DataFrame | None) -> list[Path]:
    """neuPrint-style edge list (``bodyId_pre, bodyId_post, weight`` = synapse count, plus extras)
    as CSV and parquet, and the per-synapse table as parquet."""
    pairs = connectome.pairs
    edges = pd.DataFrame({"bodyId_pre": pairs["pre_id"].to_numpy(np.uint64),
                          "bodyId_post": pairs["post_id"].to_numpy(np.uint64),
                          "weight": pairs["count"].to_numpy(np.int64),
                          "total_size": pairs["total_size"].to_numpy(np.float64),
                          "syn_weight": pairs["weight"].to_numpy(np.float64)})
    if hardware_pairs is not None:
        edges["hw_weight"] = hardware_pairs["hw_weight"].to_numpy(np.int64)
        edges["receptor_type"] = hardware_pairs["receptor_type"].to_numpy()
    else:
        edges["mean_delay_ms"] = pairs["mean_delay_ms"].to_numpy(np.float64)
    written = [write_table(edges, folder / "edges.csv"), write_table(edges, folder / "edges.parquet")]
    written.append(write_table(connectome.synapses, folder / "synapses.parquet"))
    return written


def write_pynn(folder: Path, connectome: Connectome, hardware_pairs: pd.DataFrame | None) -> Path:
    """``pynn.csv``: rows ``(pre_index, post_index, weight, delay)`` (delay ms) for
    ``FromListConnector``; on hardware ``(pre_index, post_index, weight, receptor_type)``,
    one projection per receptor type."""
    if hardware_pairs is not None:
        table = pd.DataFrame({"pre_index": hardware_pairs["source_node_id"].to_numpy(np.int64),
                              "post_index": hardware_pairs["target_node_id"].to_numpy(np.int64),
                              "weight": hardware_pairs["hw_weight"].to_numpy(np.int64),
                              "receptor_type": hardware_pairs["receptor_type"].to_numpy()})
    else:
        synapses = connectome.synapses
        table = pd.DataFrame({"pre_index": synapses["source_node_id"].to_numpy(np.int64),
                              "post_index": synapses["target_node_id"].to_numpy(np.int64),
                              "weight": synapses["syn_weight"].to_numpy(np.float64),
                              "delay": synapses["delay_ms"].to_numpy(np.float64)})
    return write_table(table, folder / "pynn.csv")


def read_pynn_list(path: Path) -> list[tuple]:
    """The ``pynn.csv`` rows as tuples, the form ``FromListConnector(conn_list)`` takes."""
    table = pd.read_csv(path)
    return list(table.itertuples(index=False, name=None))


def pynn_connection_lists(path: Path, conductance_based: bool = False) -> list[tuple[str, list[tuple]]]:
    """``pynn.csv`` split into ``FromListConnector`` lists that each hold a (pre, post) pair once.

    pyNN.brian2 (0.13) gives every synapse of a pair that a list names twice the weight and
    delay of the pair's last row, so the k-th synapse of every pair goes into list k. Rows of
    negative weight go to the ``inhibitory`` receptor (PyNN's current-based cells take negative
    inhibitory weights; ``conductance_based`` makes them positive), the others to
    ``excitatory``; a hardware file's ``receptor_type`` column is used as it is.

    Returns:
        ``[(receptor_type, [(pre, post, weight, delay) or (pre, post, weight), ...]), ...]``:
        one ``Projection`` each, with ``column_names=["weight", "delay"]`` (or ``["weight"]``).

    Raises:
        InputError: the file is missing, unreadable or lacks the columns of either layout.
    """
    table = read_table(path, "PyNN list")
    hardware = "receptor_type" in table.columns
    values = ["weight"] if hardware else ["weight", "delay"]
    missing = [c for c in ["pre_index", "post_index", *values] if c not in table.columns]
    if missing:
        raise InputError(f"PyNN list {path} lacks column(s) {missing}: expected pre_index, post_index, weight and "
                         "delay (or receptor_type), as `axonseg export --format pynn` writes")
    if hardware:
        receptor = table["receptor_type"].astype(str).to_numpy()
    else:
        receptor = np.where(table["weight"].to_numpy() < 0, "inhibitory", "excitatory")
        if conductance_based:
            table["weight"] = table["weight"].abs()
    table = table.assign(receptor_type=receptor)
    table["copy"] = table.groupby(["pre_index", "post_index", "receptor_type"]).cumcount()
    return [(str(kind), list(part[["pre_index", "post_index", *values]].itertuples(index=False, name=None)))
            for (kind, _), part in table.groupby(["receptor_type", "copy"], sort=True)]


def write_nir_file(folder: Path, connectome: Connectome, hardware_pairs: pd.DataFrame | None, lif: LifParams,
                   delay_resolution_ms: float, max_delay_groups: int, keep_delays: bool) -> Path:
    """``connectome.nir``: the closed-loop circuit ``lif -> recurrent -> lif`` inside
    ``input -> network -> output`` (see :mod:`axonseg.connectome.nir_graph`); with
    ``keep_delays``, ``lif -> delay_k -> linear_k -> lif`` branches instead."""
    if hardware_pairs is not None:
        sign = np.where(hardware_pairs["receptor_type"].to_numpy() == "inhibitory", -1.0, 1.0)
        source = hardware_pairs["source_node_id"].to_numpy(np.int64)
        target = hardware_pairs["target_node_id"].to_numpy(np.int64)
        weights = sign * hardware_pairs["hw_weight"].to_numpy(np.float64)
        delays = None
    else:
        synapses = connectome.synapses
        source = synapses["source_node_id"].to_numpy(np.int64)
        target = synapses["target_node_id"].to_numpy(np.int64)
        weights = synapses["syn_weight"].to_numpy(np.float64)
        delays = synapses["delay_ms"].to_numpy(np.float64) if keep_delays else None
    if delays is not None:
        logger.warning("NIR: writing Delay nodes (nir_keep_delays); norse drops them silently and snntorch "
                       "refuses them")
    graph, info = build_nir_graph(connectome.n_nodes, source, target, weights, delays, lif,
                                  delay_resolution_ms, max_delay_groups)
    logger.info("NIR: %d neurons, %d delay groups%s", info.n_nodes, info.n_delay_groups,
                " (delays dropped)" if info.delays_dropped else "")
    return write_nir(folder / "connectome.nir", graph)


def write_formats(folder: Path, formats: list[str], connectome: Connectome, hardware_pairs: pd.DataFrame | None,
                  lif: LifParams, delay_resolution_ms: float, max_delay_groups: int, keep_delays: bool) -> list[Path]:
    """Write every format in ``formats`` into ``folder``; returns the files written."""
    written: list[Path] = []
    if "sonata" in formats:
        written.append(write_sonata(folder / "sonata", connectome.nodes, sonata_edges(connectome, hardware_pairs)))
    if "nir" in formats:
        written.append(write_nir_file(folder / "nir", connectome, hardware_pairs, lif, delay_resolution_ms,
                                      max_delay_groups, keep_delays))
    if "csv" in formats:
        written += write_csv(folder, connectome, hardware_pairs)
    if "pynn" in formats:
        written.append(write_pynn(folder, connectome, hardware_pairs))
    write_table(connectome.nodes, folder / "nodes.parquet")
    return written
