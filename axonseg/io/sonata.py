"""SONATA circuits: ``nodes.h5``, ``edges.h5`` (with indices), type CSVs and ``circuit_config.json``.

Written with h5py after the SONATA spec (version 0.1, magic 0x0A7A); read back with libsonata.
Node positions ``x, y, z`` are in µm (SONATA's convention); edge positions are custom
attributes named with their unit (``pre_z_nm`` ...); ``delay`` is in ms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from axonseg.errors import InputError

NODE_POPULATION = "segments"
EDGE_POPULATION = "segments__segments__chemical"
SONATA_MAGIC = 0x0A7A
SONATA_VERSION = (0, 1)
EDGE_TYPES = {"excitatory": 100, "inhibitory": 101}
# Edge columns that are not group attributes (they are the population's own datasets).
_EDGE_RESERVED = ("source_node_id", "target_node_id", "edge_type_id", "receptor_type")
_NODE_ATTRIBUTES = ("segment_id", "sign", "skeleton_length_um")


def _file_attrs(handle: h5py.File) -> None:
    handle.attrs["version"] = np.asarray(SONATA_VERSION, dtype=np.uint32)
    handle.attrs["magic"] = np.uint32(SONATA_MAGIC)


def ranges_index(keys: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """SONATA edge index: runs of equal node id in edge order.

    Args:
        keys: ``(E,)`` node id of each edge (its source or its target).
        n_nodes: nodes of the population the keys index.

    Returns:
        ``(node_id_to_ranges (N, 2), range_to_edge_id (R, 2))`` uint64; node ``n``'s edges are
        the ranges ``range_to_edge_id[a:b]`` with ``(a, b) = node_id_to_ranges[n]`` (``(0, 0)`` for none).
    """
    keys = np.asarray(keys, dtype=np.int64)
    if len(keys) == 0:
        return np.zeros((n_nodes, 2), np.uint64), np.zeros((0, 2), np.uint64)
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    run_start = np.concatenate([[0], change])
    run_end = np.concatenate([change, [len(keys)]])
    run_node = keys[run_start]
    order = np.argsort(run_node, kind="stable")
    ranges = np.column_stack([run_start[order], run_end[order]]).astype(np.uint64)
    sorted_nodes = run_node[order]
    first = np.searchsorted(sorted_nodes, np.arange(n_nodes), side="left")
    last = np.searchsorted(sorted_nodes, np.arange(n_nodes), side="right")
    node_ranges = np.column_stack([first, last]).astype(np.uint64)
    node_ranges[first == last] = 0
    return node_ranges, ranges


def _write_index(group: h5py.Group, name: str, keys: np.ndarray, n_nodes: int) -> None:
    node_ranges, ranges = ranges_index(keys, n_nodes)
    index = group.create_group(f"indices/{name}")
    index.create_dataset("node_id_to_ranges", data=node_ranges)
    index.create_dataset("range_to_edge_id", data=ranges)


def write_nodes(path: Path, nodes: pd.DataFrame) -> dict[str, int]:
    """Write ``nodes.h5``; returns ``{node_type: node_type_id}``.

    Args:
        path: the file to write.
        nodes: ``node_id`` (0..N-1, in order), ``segment_id``, ``node_type``, ``sign``,
            ``skeleton_length_um``, ``centroid_z_nm``, ``centroid_y_nm``, ``centroid_x_nm``.
    """
    if not np.array_equal(nodes["node_id"].to_numpy(), np.arange(len(nodes))):
        raise InputError("nodes: node_id must be 0..N-1 in order")
    type_ids = {name: 100 + i for i, name in enumerate(sorted(nodes["node_type"].astype(str).unique()))}
    with h5py.File(path, "w") as handle:
        _file_attrs(handle)
        population = handle.create_group(f"nodes/{NODE_POPULATION}")
        population.create_dataset("node_type_id", data=nodes["node_type"].astype(str).map(type_ids).to_numpy(np.int64))
        population.create_dataset("node_group_id", data=np.zeros(len(nodes), np.int64))
        population.create_dataset("node_group_index", data=np.arange(len(nodes), dtype=np.int64))
        group = population.create_group("0")
        group.create_dataset("segment_id", data=nodes["segment_id"].to_numpy(np.uint64))
        group.create_dataset("sign", data=nodes["sign"].to_numpy(np.int8))
        group.create_dataset("skeleton_length_um", data=nodes["skeleton_length_um"].to_numpy(np.float64))
        for axis in "zyx":
            dataset = group.create_dataset(axis, data=nodes[f"centroid_{axis}_nm"].to_numpy(np.float64) / 1000.0)
            dataset.attrs["units"] = "um"
    return type_ids


def write_edges(path: Path, edges: pd.DataFrame, n_nodes: int) -> None:
    """Write ``edges.h5`` with both indices.

    Args:
        path: the file to write.
        edges: one row per edge: ``source_node_id``, ``target_node_id``, ``syn_weight``, and any
            numeric custom attributes (``delay`` in ms, ``path_length_um``, ``pre_z_nm`` ...);
            ``receptor_type`` (``excitatory``/``inhibitory``) sets the edge type, else the sign
            of ``syn_weight`` does.
        n_nodes: nodes of the (single) node population.
    """
    source = edges["source_node_id"].to_numpy(np.uint64)
    target = edges["target_node_id"].to_numpy(np.uint64)
    if len(source) and max(source.max(), target.max()) >= n_nodes:
        raise InputError(f"edges refer to node ids beyond the {n_nodes} nodes")
    if "receptor_type" in edges.columns:
        inhibitory = edges["receptor_type"].astype(str).to_numpy() == "inhibitory"
    else:
        inhibitory = edges["syn_weight"].to_numpy(np.float64) < 0
    type_id = np.where(inhibitory, EDGE_TYPES["inhibitory"], EDGE_TYPES["excitatory"]).astype(np.int64)
    with h5py.File(path, "w") as handle:
        _file_attrs(handle)
        population = handle.create_group(f"edges/{EDGE_POPULATION}")
        for name, ids in (("source_node_id", source), ("target_node_id", target)):
            dataset = population.create_dataset(name, data=ids)
            dataset.attrs["node_population"] = NODE_POPULATION
        population.create_dataset("edge_type_id", data=type_id)
        population.create_dataset("edge_group_id", data=np.zeros(len(edges), np.int64))
        population.create_dataset("edge_group_index", data=np.arange(len(edges), dtype=np.int64))
        group = population.create_group("0")
        for name in edges.columns:
            if name in _EDGE_RESERVED or not pd.api.types.is_numeric_dtype(edges[name]):
                continue
            group.create_dataset(name, data=edges[name].to_numpy())
        _write_index(population, "source_to_target", source, n_nodes)
        _write_index(population, "target_to_source", target, n_nodes)


def _write_types(folder: Path, node_types: dict[str, int]) -> None:
    rows = [{"node_type_id": i, "model_type": "point_neuron", "model_template": "lif", "pop_name": name,
             "ei": "i" if name == "inhibitory" else "e"} for name, i in sorted(node_types.items(), key=lambda kv: kv[1])]
    pd.DataFrame(rows).to_csv(folder / "node_types.csv", sep=" ", index=False)
    rows = [{"edge_type_id": i, "model_template": "static_synapse", "receptor_type": name}
            for name, i in EDGE_TYPES.items()]
    pd.DataFrame(rows).to_csv(folder / "edge_types.csv", sep=" ", index=False)


def write_sonata(folder: Path, nodes: pd.DataFrame, edges: pd.DataFrame) -> Path:
    """Write a SONATA circuit into ``folder``; returns ``circuit_config.json``'s path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    node_types = write_nodes(folder / "nodes.h5", nodes)
    write_edges(folder / "edges.h5", edges, len(nodes))
    _write_types(folder, node_types)
    config = {
        "version": 2,
        "manifest": {"$BASE_DIR": "."},
        "components": {},
        "networks": {
            "nodes": [{"nodes_file": "$BASE_DIR/nodes.h5", "node_types_file": "$BASE_DIR/node_types.csv",
                       "populations": {NODE_POPULATION: {"type": "point_neuron"}}}],
            "edges": [{"edges_file": "$BASE_DIR/edges.h5", "edge_types_file": "$BASE_DIR/edge_types.csv",
                       "populations": {EDGE_POPULATION: {"type": "chemical"}}}],
        },
    }
    path = folder / "circuit_config.json"
    path.write_text(json.dumps(config, indent=1))
    return path


@dataclass
class SonataCircuit:
    """A circuit read back with libsonata: ``nodes`` (one row per node) and ``edges`` (one per edge)."""

    nodes: pd.DataFrame
    edges: pd.DataFrame


def _all_of(libsonata, size: int):  # noqa: ANN001, ANN202
    """A libsonata selection of ``size`` rows; libsonata refuses the range (0, 0)."""
    return libsonata.Selection([(0, size)]) if size else libsonata.Selection(np.zeros(0, np.int64))


def read_sonata(folder: Path) -> SonataCircuit:
    """Read a circuit :func:`write_sonata` wrote, every attribute through libsonata.

    The type ids (``node_type_id``, ``edge_type_id``), which libsonata does not list among the
    attributes, are read with h5py.
    """
    import libsonata

    folder = Path(folder)
    for name in ("nodes.h5", "edges.h5"):
        if not (folder / name).exists():
            raise InputError(f"{folder}: no SONATA {name}; run `axonseg export RUN_DIR --format sonata` first")
    node_population = libsonata.NodeStorage(str(folder / "nodes.h5")).open_population(NODE_POPULATION)
    everything = _all_of(libsonata, node_population.size)
    nodes = pd.DataFrame({"node_id": np.arange(node_population.size, dtype=np.int64)})
    for name in sorted(node_population.attribute_names):
        nodes[name] = node_population.get_attribute(name, everything)
    edge_population = libsonata.EdgeStorage(str(folder / "edges.h5")).open_population(EDGE_POPULATION)
    selection = _all_of(libsonata, edge_population.size)
    edges = pd.DataFrame({"source_node_id": edge_population.source_nodes(selection).astype(np.int64),
                          "target_node_id": edge_population.target_nodes(selection).astype(np.int64)})
    for name in sorted(edge_population.attribute_names):
        edges[name] = edge_population.get_attribute(name, selection)
    with h5py.File(folder / "nodes.h5", "r") as handle:
        nodes["node_type_id"] = handle[f"nodes/{NODE_POPULATION}/node_type_id"][:]
    with h5py.File(folder / "edges.h5", "r") as handle:
        edges["edge_type_id"] = handle[f"edges/{EDGE_POPULATION}/edge_type_id"][:]
    return SonataCircuit(nodes, edges)
