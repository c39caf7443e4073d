"""The NIR graph of a connectome: Input -> [Delay ->] Linear -> CubaLIF -> Output, read back with nir."""

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


def test_delays_grouped_into_delay_nodes(tmp_path):
    graph, info = build_nir_graph(3, SOURCE, TARGET, WEIGHTS, np.array([2.0, 3.0, 2.04, 3.0]), LifParams(tau_mem_ms=10.0))
    assert info.n_delay_groups == 2 and not info.delays_dropped
    path = write_nir(tmp_path / "c.nir", graph)
    back = read_nir(path)
    assert isinstance(back.nodes["lif"], nir.CubaLIF) and isinstance(back.nodes["delay_0"], nir.Delay)
    np.testing.assert_allclose(back.nodes["lif"].tau_mem, 0.01)
    np.testing.assert_allclose(back.nodes["delay_0"].delay, 0.002, rtol=1e-6)  # seconds
    np.testing.assert_allclose(back.nodes["delay_1"].delay, 0.003, rtol=1e-6)
    # the 2 ms group holds 0->1 (1.0) and 0->2 (-1.5); weights are (post, pre)
    w0 = back.nodes["linear_0"].weight
    assert w0[1, 0] == 1.0 and w0[2, 0] == -1.5 and np.count_nonzero(w0) == 2
    total = back.nodes["linear_0"].weight + back.nodes["linear_1"].weight
    assert total[0, 2] == 0.5 and total[2, 1] == 2.0
    assert ("input", "delay_0") in back.edges and ("delay_0", "linear_0") in back.edges
    assert ("linear_1", "lif") in back.edges and ("lif", "output") in back.edges


def test_dropped_delays_are_logged(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        graph, info = build_nir_graph(3, SOURCE, TARGET, WEIGHTS, None)
    assert info.delays_dropped and "delays dropped" in caplog.text
    back = read_nir(write_nir(tmp_path / "d.nir", graph))
    assert set(back.nodes) == {"input", "linear", "lif", "output"}
    assert sorted(back.edges) == sorted([("input", "linear"), ("linear", "lif"), ("lif", "output")])
    assert back.nodes["linear"].weight[2, 0] == -1.5


def test_too_many_delay_values_coarsen_the_grid():
    group, values, resolution = delay_groups(np.linspace(0.5, 5.0, 200), 0.1, 8)
    assert len(values) <= 8 and resolution > 0.1 and group.max() == len(values) - 1
