"""SONATA circuits written with h5py and read back with libsonata, indices included."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from axonseg.connectome import EdgeParams, RootRule, build_connectome, synapses_from_arrays
from axonseg.io.sonata import EDGE_POPULATION, NODE_POPULATION, SONATA_MAGIC, ranges_index, read_sonata, write_sonata
from axonseg.pipelines.export._writers import sonata_edges
from axonseg.skeleton import AxonGraph

libsonata = pytest.importorskip("libsonata", reason="libsonata is a runtime dependency of the SONATA export")


@pytest.fixture
def circuit(tmp_path):
    rng = np.random.default_rng(1)
    pre_ids = np.array([10, 10, 20, 30, 30, 30, 40], np.uint64)
    post_ids = np.array([20, 20, 30, 10, 20, 40, 10], np.uint64)
    pre = rng.uniform(0, 1000, (7, 3))
    table = synapses_from_arrays(pre, pre + 5.0, size=np.arange(1.0, 8.0))
    table["pre_id"], table["post_id"] = pre_ids, post_ids
    signs = pd.DataFrame({"segment_id": [40], "transmitter": ["gaba"]})
    connectome = build_connectome(table, {}, EdgeParams(synaptic_delay_ms=1.25, with_delays=False), sign_table=signs)
    folder = tmp_path / "sonata"
    write_sonata(folder, connectome.nodes, sonata_edges(connectome, None))
    return folder, connectome


def test_file_layout_attributes_and_types(circuit):
    folder, connectome = circuit
    for name in ("nodes.h5", "edges.h5"):
        with h5py.File(folder / name, "r") as handle:
            assert handle.attrs["magic"] == SONATA_MAGIC and list(handle.attrs["version"]) == [0, 1]
    with h5py.File(folder / "edges.h5", "r") as handle:
        population = handle[f"edges/{EDGE_POPULATION}"]
        assert population["source_node_id"].attrs["node_population"] == NODE_POPULATION
        assert population["target_node_id"].attrs["node_population"] == NODE_POPULATION
        assert {"edge_type_id", "edge_group_id", "edge_group_index"} <= set(population)
    node_types = pd.read_csv(folder / "node_types.csv", sep=" ")
    assert set(node_types["pop_name"]) == {"excitatory", "inhibitory"}
    edge_types = pd.read_csv(folder / "edge_types.csv", sep=" ")
    assert edge_types.set_index("edge_type_id")["receptor_type"].to_dict() == {100: "excitatory", 101: "inhibitory"}
    config = libsonata.CircuitConfig.from_file(str(folder / "circuit_config.json"))
    assert config.node_populations == {NODE_POPULATION} and config.edge_populations == {EDGE_POPULATION}
    assert json.loads((folder / "circuit_config.json").read_text())["networks"]["edges"][0]["edges_file"].endswith("edges.h5")


def test_read_back_every_edge_and_node(circuit):
    folder, connectome = circuit
    back = read_sonata(folder)
    synapses = connectome.synapses
    np.testing.assert_array_equal(back.edges["source_node_id"], synapses["source_node_id"])
    np.testing.assert_array_equal(back.edges["target_node_id"], synapses["target_node_id"])
    np.testing.assert_allclose(back.edges["syn_weight"], synapses["syn_weight"])
    np.testing.assert_allclose(back.edges["delay"], 1.25)
    np.testing.assert_allclose(back.edges["pre_x_nm"], synapses["pre_x_nm"])
    assert back.edges["path_length_um"].isna().all()
    # segment 40 is inhibitory: its edges have negative weight and edge type 101
    inhibitory = back.edges["source_node_id"] == 3
    assert (back.edges.loc[inhibitory, "syn_weight"] < 0).all() and (back.edges.loc[inhibitory, "edge_type_id"] == 101).all()
    np.testing.assert_array_equal(back.nodes["segment_id"], [10, 20, 30, 40])
    np.testing.assert_allclose(back.nodes["z"] * 1000.0, connectome.nodes["centroid_z_nm"])
    assert back.nodes["node_type_id"].tolist() == [100, 100, 100, 101]


def test_afferent_and_efferent_edges_through_the_indices(circuit):
    folder, connectome = circuit
    population = libsonata.EdgeStorage(str(folder / "edges.h5")).open_population(EDGE_POPULATION)
    synapses = connectome.synapses
    for node in range(connectome.n_nodes):
        afferent = np.sort(population.afferent_edges([node]).flatten())
        efferent = np.sort(population.efferent_edges([node]).flatten())
        np.testing.assert_array_equal(afferent, np.flatnonzero(synapses["target_node_id"] == node))
        np.testing.assert_array_equal(efferent, np.flatnonzero(synapses["source_node_id"] == node))
    # segment 30 (node 2) sends to 10, 20, 40
    targets = population.target_nodes(population.efferent_edges([2]))
    assert sorted(targets.tolist()) == [0, 1, 3]


def test_ranges_index_handles_nodes_without_edges():
    node_ranges, ranges = ranges_index(np.array([2, 2, 0, 2]), 4)
    assert node_ranges.tolist() == [[0, 1], [0, 0], [1, 3], [0, 0]]
    assert ranges.tolist() == [[2, 3], [0, 2], [3, 4]]


def test_empty_circuit_reads_back_empty(tmp_path):
    """A segmentation with no synapses exports an empty circuit; reading it gives empty tables."""
    table = synapses_from_arrays(np.zeros((0, 3)), np.zeros((0, 3)), size=np.zeros(0))
    table["pre_id"], table["post_id"] = np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    connectome = build_connectome(table, {}, EdgeParams(synaptic_delay_ms=1.0, with_delays=False))
    write_sonata(tmp_path / "sonata", connectome.nodes, sonata_edges(connectome, None))
    read = read_sonata(tmp_path / "sonata")
    assert len(read.nodes) == 0 and len(read.edges) == 0
    assert {"source_node_id", "target_node_id", "syn_weight"} <= set(read.edges.columns)


def test_path_length_is_nan_exactly_where_the_presynaptic_segment_has_no_skeleton(tmp_path):
    """Documented (docs/exports.md): no skeleton -> ``path_length_um`` NaN, ``delay`` = synaptic delay."""
    xs = np.arange(0.0, 1001.0, 100.0)
    radii = np.full(len(xs), 50.0)
    radii[0] = 2000.0  # a soma at x = 0: the root
    skeleton = AxonGraph(10, np.column_stack([np.zeros_like(xs), np.zeros_like(xs), xs]),
                         np.column_stack([np.arange(len(xs) - 1), np.arange(1, len(xs))]), radii)
    pre = np.array([[0, 0, 300], [0, 500, 0], [0, 0, 700], [0, 600, 0]], float)
    table = synapses_from_arrays(pre, pre + 10.0, size=np.ones(4))
    table["pre_id"] = np.array([10, 20, 10, 30], np.uint64)  # 20 and 30 have no skeleton
    table["post_id"] = np.array([20, 30, 30, 10], np.uint64)
    params = EdgeParams(synaptic_delay_ms=0.5, conduction_velocity_m_per_s=1e-3)
    rule = RootRule((0.0, 0.0, 0.0), (2000.0, 2000.0, 2000.0), (10.0, 10.0, 10.0))
    connectome = build_connectome(table, {10: skeleton}, params, rule)
    assert connectome.path_lengths.n_without_skeleton == 2
    write_sonata(tmp_path / "sonata", connectome.nodes, sonata_edges(connectome, None))
    population = libsonata.EdgeStorage(str(tmp_path / "sonata" / "edges.h5")).open_population(EDGE_POPULATION)
    everything = libsonata.Selection([(0, population.size)])
    path = population.get_attribute("path_length_um", everything)
    delay = population.get_attribute("delay", everything)
    synapse_id = population.get_attribute("synapse_id", everything)
    without = np.isin(synapse_id, [1, 3])  # the synapses of segments 20 and 30
    assert np.isnan(path[without]).all() and np.isfinite(path[~without]).all()
    np.testing.assert_allclose(delay[without], 0.5)  # the synaptic delay only
    # segment 10: 0.3 and 0.7 µm from the soma, 1 ms per µm at 1 mm/s
    np.testing.assert_allclose(np.sort(path[~without]), [0.3, 0.7])
    np.testing.assert_allclose(np.sort(delay[~without]), [0.8, 1.2])
