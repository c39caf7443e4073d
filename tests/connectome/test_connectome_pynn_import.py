"""``pynn.csv`` into PyNN 0.13 (pyNN.brian2): Projections with every synapse's weight and delay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from axonseg.connectome import EdgeParams, RootRule, brainscales2_pairs, build_connectome, synapses_from_arrays
from axonseg.errors import InputError
from axonseg.pipelines.export._writers import pynn_connection_lists, write_pynn
from axonseg.skeleton import AxonGraph


def delayed_connectome():
    """Segment 10 has a skeleton along x (soma at x = 0); its synapses at x = 200, 500 (both onto
    20: a pair with two synapses of different delay) and 800 nm. 20, 30 and 40 have none."""
    xs = np.arange(0.0, 1001.0, 100.0)
    radii = np.full(len(xs), 50.0)
    radii[0] = 2000.0  # a soma: the root
    skeleton = AxonGraph(10, np.column_stack([np.zeros_like(xs), np.zeros_like(xs), xs]),
                         np.column_stack([np.arange(len(xs) - 1), np.arange(1, len(xs))]), radii)
    pre = np.array([[0, 0, 200], [0, 0, 500], [0, 0, 800], [0, 500, 0], [0, 600, 0]], float)
    table = synapses_from_arrays(pre, pre + 10.0, size=np.array([1.0, 2.0, 1.0, 1.0, 3.0]))
    table["pre_id"] = np.array([10, 10, 10, 20, 40], np.uint64)
    table["post_id"] = np.array([20, 20, 30, 30, 30], np.uint64)
    signs = pd.DataFrame({"segment_id": [40], "transmitter": ["gaba"]})
    # 1 mm/s: a µm of axon takes 1 ms, so 0.2 / 0.5 / 0.8 µm give 0.7 / 1.0 / 1.3 ms with 0.5 ms synaptic
    params = EdgeParams(synaptic_delay_ms=0.5, conduction_velocity_m_per_s=1e-3, weight_by="size")
    rule = RootRule((0.0, 0.0, 0.0), (2000.0, 2000.0, 2000.0), (10.0, 10.0, 10.0))
    return build_connectome(table, {10: skeleton}, params, rule, sign_table=signs)


def test_connection_lists_hold_each_pair_once(tmp_path):
    connectome = delayed_connectome()
    synapses = connectome.synapses
    assert sorted(np.round(synapses["delay_ms"], 6)) == [0.5, 0.5, 0.7, 1.0, 1.3]
    lists = pynn_connection_lists(write_pynn(tmp_path, connectome, None))
    assert [kind for kind, _ in lists] == ["excitatory", "excitatory", "inhibitory"]
    for _, connections in lists:
        pairs = [(pre, post) for pre, post, *_ in connections]
        assert len(pairs) == len(set(pairs))
    assert sum(len(c) for _, c in lists) == len(synapses)
    assert all(w < 0 for _, _, w, _ in lists[2][1])  # current-based PyNN cells take negative inhibitory weights
    conductance = pynn_connection_lists(tmp_path / "pynn.csv", conductance_based=True)
    assert conductance[2][1][0][2] == -lists[2][1][0][2] > 0


def test_pynn_brian2_projections_carry_every_weight_and_delay(tmp_path):
    sim = pytest.importorskip("pyNN.brian2", reason="PyNN (test extra) with Brian2")
    connectome = delayed_connectome()
    lists = pynn_connection_lists(write_pynn(tmp_path, connectome, None))
    got = []
    sim.setup(timestep=0.1, min_delay=0.1)
    try:
        population = sim.Population(connectome.n_nodes, sim.IF_curr_exp())
        for receptor, connections in lists:
            projection = sim.Projection(population, population,
                                        sim.FromListConnector(connections, column_names=["weight", "delay"]),
                                        sim.StaticSynapse(), receptor_type=receptor)
            assert len(projection) == len(connections)
            weight = projection.get("weight", format="array")
            delay = projection.get("delay", format="array")
            got += [(receptor, pre, post, weight[pre, post], delay[pre, post]) for pre, post, *_ in connections]
        # (no sim.run: Brian2 spends 10+ s choosing the integration method, minutes compiling with Cython)
    finally:
        sim.end()
    synapses = connectome.synapses
    expected = [("inhibitory" if w < 0 else "excitatory", s, t, w, d) for s, t, w, d in
                zip(synapses["source_node_id"], synapses["target_node_id"], synapses["syn_weight"], synapses["delay_ms"])]
    assert len(got) == len(expected) == 5
    for row, want in zip(sorted(got), sorted(expected)):
        assert row[:3] == want[:3] and row[3:] == pytest.approx(want[3:], abs=1e-9)
    # the pair 10 -> 20 keeps both of its delays (0.7 and 1.0 ms) and weights (size 1 and 2)
    pair = sorted((w, d) for kind, pre, post, w, d in got if (pre, post) == (0, 1))
    assert pair == [pytest.approx((1.0, 0.7)), pytest.approx((2.0, 1.0))]


def test_hardware_list_uses_its_receptor_column(tmp_path):
    connectome = delayed_connectome()
    hardware = brainscales2_pairs(connectome.pairs, connectome.n_nodes)
    lists = dict(pynn_connection_lists(write_pynn(tmp_path, connectome, hardware)))
    assert set(lists) == {"excitatory", "inhibitory"}
    assert all(len(row) == 3 and 0 <= row[2] <= 63 for rows in lists.values() for row in rows)
    assert sum(len(rows) for rows in lists.values()) == len(connectome.pairs)


def test_connection_lists_refuse_a_file_without_delay(tmp_path):
    path = tmp_path / "pynn.csv"
    pd.DataFrame({"pre_index": [0], "post_index": [1], "weight": [1.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"PyNN list .*pynn.csv lacks column\(s\) \['delay'\]: expected pre_index"):
        pynn_connection_lists(path)
    with pytest.raises(InputError, match="file not found"):
        pynn_connection_lists(tmp_path / "missing.csv")
