"""The NIR graph of a connectome: a closed loop lif -> recurrent -> lif in a ``network`` subgraph,
with Delay branches on request, read back with nir."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from axonseg.connectome.nir_graph import LifParams, build_nir_graph, delay_groups
from axonseg.io.nir_file import read_nir, write_nir

nir = pytest.importorskip("nir", reason="nir is a runtime dependency of the NIR export")

SOURCE = np.array([0, 1, 0, 2])
TARGET = np.array([1, 2, 2, 0])
WEIGHTS = np.array([1.0, 2.0, -1.5, 0.5])


def test_closed_loop_without_delays_is_the_default(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        graph, info = build_nir_graph(3, SOURCE, TARGET, WEIGHTS, None)
    assert info.delays_dropped and info.n_delay_groups == 0 and "delays dropped" in caplog.text
    back = read_nir(write_nir(tmp_path / "d.nir", graph))
    assert set(back.nodes) == {"input", "network", "output"}
    assert sorted(back.edges) == sorted([("input", "network"), ("network", "output")])
    network = back.nodes["network"]
    assert set(network.nodes) == {"input", "lif", "recurrent", "output"}
    # the loop is closed: the neurons' spikes go through the weights back into the neurons
    assert sorted(network.edges) == sorted([("input", "lif"), ("lif", "recurrent"), ("recurrent", "lif"),
                                            ("lif", "output")])
    weight = network.nodes["recurrent"].weight  # (post, pre)
    assert weight[1, 0] == 1.0 and weight[2, 1] == 2.0 and weight[2, 0] == -1.5 and weight[0, 2] == 0.5
    assert np.count_nonzero(weight) == 4
    assert back.metadata["delays"] == "none" and back.metadata["dt_s"] == pytest.approx(1e-4)


def test_cubalif_is_scaled_for_the_step(tmp_path):
    lif = LifParams(tau_syn_ms=4.0, tau_mem_ms=10.0, v_threshold=2.0, dt_ms=0.5)
    graph, _ = build_nir_graph(3, SOURCE, TARGET, WEIGHTS, None, lif)
    node = read_nir(write_nir(tmp_path / "c.nir", graph)).nodes["network"].nodes["lif"]
    np.testing.assert_allclose(node.tau_syn, 0.004)  # seconds
    np.testing.assert_allclose(node.tau_mem, 0.010)
    # r = tau_mem / dt and w_in = tau_syn / dt: one Euler step adds the current to v once and a
    # spike's weight to the current once
    np.testing.assert_allclose(node.r, 10.0 / 0.5)
    np.testing.assert_allclose(node.w_in, 4.0 / 0.5)
    np.testing.assert_allclose(node.v_threshold, 2.0)
    np.testing.assert_allclose(node.v_leak, 0.0)
    np.testing.assert_allclose(node.v_reset, 0.0)


def test_delays_grouped_into_delay_branches_of_the_loop(tmp_path):
    graph, info = build_nir_graph(3, SOURCE, TARGET, WEIGHTS, np.array([2.0, 3.0, 2.04, 3.0]), LifParams(tau_mem_ms=10.0))
    assert info.n_delay_groups == 2 and not info.delays_dropped
    back = read_nir(write_nir(tmp_path / "c.nir", graph))
    network = back.nodes["network"]
    assert isinstance(network.nodes["lif"], nir.CubaLIF) and isinstance(network.nodes["delay_0"], nir.Delay)
    np.testing.assert_allclose(network.nodes["lif"].tau_mem, 0.01)
    np.testing.assert_allclose(network.nodes["delay_0"].delay, 0.002, rtol=1e-6)  # seconds
    np.testing.assert_allclose(network.nodes["delay_1"].delay, 0.003, rtol=1e-6)
    # the 2 ms group holds 0->1 (1.0) and 0->2 (-1.5); weights are (post, pre)
    w0 = network.nodes["linear_0"].weight
    assert w0[1, 0] == 1.0 and w0[2, 0] == -1.5 and np.count_nonzero(w0) == 2
    total = network.nodes["linear_0"].weight + network.nodes["linear_1"].weight
    assert total[0, 2] == 0.5 and total[2, 1] == 2.0
    assert ("lif", "delay_0") in network.edges and ("delay_0", "linear_0") in network.edges
    assert ("linear_1", "lif") in network.edges and ("lif", "output") in network.edges
    assert "recurrent" not in network.nodes and back.metadata["delays"].startswith("Delay nodes")


def test_too_many_delay_values_coarsen_the_grid():
    group, values, resolution = delay_groups(np.linspace(0.5, 5.0, 200), 0.1, 8)
    assert len(values) <= 8 and resolution > 0.1 and group.max() == len(values) - 1
