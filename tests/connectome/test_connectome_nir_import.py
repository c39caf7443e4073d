"""The exported ``connectome.nir`` imported by snntorch and norse: weights intact, the loop closed,
and the spikes both tools produce equal a step-by-step reference of the documented dynamics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from axonseg.connectome import EdgeParams, build_connectome, synapses_from_arrays
from axonseg.connectome.nir_graph import LifParams
from axonseg.io.nir_file import read_nir
from axonseg.pipelines.export._writers import write_nir_file

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

STEPS = 60
LIF = LifParams(tau_syn_ms=0.5, tau_mem_ms=2.0, v_threshold=1.0, dt_ms=0.1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A chain 10 -> 20 (two synapses) -> 30, inhibitory (gaba) 40 -> 30, and 30 -> 10 closing a loop."""
    pre_ids = np.array([10, 10, 20, 40, 30], np.uint64)
    post_ids = np.array([20, 20, 30, 30, 10], np.uint64)
    points = np.column_stack([np.arange(5) * 100.0, np.zeros(5), np.zeros(5)])
    table = synapses_from_arrays(points, points + 10.0, size=np.ones(5))
    table["pre_id"], table["post_id"] = pre_ids, post_ids
    signs = pd.DataFrame({"segment_id": [40], "transmitter": ["gaba"]})
    connectome = build_connectome(table, {}, EdgeParams(unit_weight=1.0, with_delays=False), sign_table=signs)
    folder = tmp_path_factory.mktemp("nir")
    path = write_nir_file(folder, connectome, None, LIF, 0.1, 16, keep_delays=False)
    return path, connectome


def _our_weights(connectome) -> np.ndarray:
    """(post, pre) sum of syn_weight over every synapse, from the connectome's own table."""
    synapses = connectome.synapses
    weights = np.zeros((connectome.n_nodes, connectome.n_nodes))
    for s, t, w in zip(synapses["source_node_id"], synapses["target_node_id"], synapses["syn_weight"]):
        weights[t, s] += w
    return weights


def _drive(n_nodes: int) -> np.ndarray:
    """External input: neuron 0 (segment 10) for two steps, neuron 3 (segment 40) later."""
    x = np.zeros((STEPS, 1, n_nodes), np.float32)
    x[:2, 0, 0] = 0.8
    x[20:22, 0, 3] = 0.8
    return x


def _reference(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The documented Euler step: I <- a I + x + W s;  v <- b v + I;  s = v > thr;  v <- 0 where s."""
    a = np.float32(1 - LIF.dt_ms / LIF.tau_syn_ms)
    b = np.float32(1 - LIF.dt_ms / LIF.tau_mem_ms)
    w = weights.astype(np.float32)
    n = w.shape[0]
    current, v, s = np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
    spikes = []
    for t in range(len(x)):
        current = a * current + x[t, 0] + w @ s
        v = b * v + current
        s = (v > LIF.v_threshold).astype(np.float32)
        v = np.where(s > 0, np.float32(0), v)
        spikes.append(s)
    return np.array(spikes)


def _run(module, x: np.ndarray) -> np.ndarray:
    state, out = None, []
    with torch.no_grad():
        for t in range(len(x)):
            spikes, state = module(torch.from_numpy(x[t]), state)
            out.append(spikes[0].numpy())
    return np.array(out)


def _recurrent_weight(module) -> np.ndarray:
    found = {name: p for name, p in module.named_parameters() if name.endswith("recurrent.weight")}
    assert len(found) == 1, f"expected one recurrent weight, found {sorted(found)}"
    return next(iter(found.values())).detach().numpy()


def test_reference_spikes_go_round_the_closed_loop(exported):
    path, connectome = exported
    weights = _our_weights(connectome)
    np.testing.assert_array_equal(read_nir(path).nodes["network"].nodes["recurrent"].weight, weights.astype(np.float32))
    assert weights[1, 0] == 2.0 and weights[2, 3] == -1.0 and weights[0, 2] == 1.0  # two synapses; gaba
    spikes = _reference(weights, _drive(connectome.n_nodes))
    first = [int(np.argmax(spikes[:, i])) for i in range(4)]
    # 10 is driven; 20 and 30 spike only through the weights, one step per hop at the earliest
    assert spikes[:, 1:3].any(axis=0).all() and first[0] < first[1] < first[2]
    # 30 -> 10 closes the loop: activity outlasts the input by far; without that synapse it dies
    assert spikes[-10:, :3].all()
    open_chain = weights.copy()
    open_chain[0, 2] = 0.0
    assert not _reference(open_chain, _drive(connectome.n_nodes))[-10:].any()


def test_snntorch_imports_and_runs_it(exported):
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    path, connectome = exported
    module = import_from_nir(read_nir(path))
    weights = _our_weights(connectome)
    np.testing.assert_array_equal(_recurrent_weight(module), weights.astype(np.float32))
    x = _drive(connectome.n_nodes)
    np.testing.assert_array_equal(_run(module, x), _reference(weights, x))


def test_norse_imports_and_runs_it(exported):
    norse = pytest.importorskip("norse.torch")
    path, connectome = exported
    module = norse.from_nir(read_nir(path), dt=LIF.dt_ms / 1000.0)
    weights = _our_weights(connectome)
    np.testing.assert_array_equal(_recurrent_weight(module), weights.astype(np.float32))
    x = _drive(connectome.n_nodes)
    np.testing.assert_array_equal(_run(module, x), _reference(weights, x))
