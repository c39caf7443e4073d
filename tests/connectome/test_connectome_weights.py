"""Signs, weights, per-pair aggregation, node table and the BrainScaleS-2 limits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from axonseg.connectome import (
    EdgeParams,
    aggregate_pairs,
    brainscales2_pairs,
    build_connectome,
    signs_from_table,
    synapse_weights,
    synapses_from_arrays,
)
from axonseg.errors import InputError


def test_signs_from_transmitter_names_and_numbers():
    table = pd.DataFrame({"segment_id": [1, 2, 3], "transmitter": ["GABA", "acetylcholine", "glycine"]})
    np.testing.assert_array_equal(signs_from_table(np.array([1, 2, 3, 4]), table), [-1, 1, -1, 1])
    numeric = pd.DataFrame({"segment_id": [5], "sign": [-1]})
    np.testing.assert_array_equal(signs_from_table(np.array([5, 6]), numeric), [-1, 1])
    np.testing.assert_array_equal(signs_from_table(np.array([5, 6]), None), [1, 1])
    with pytest.raises(InputError, match="sign column"):
        signs_from_table(np.array([1]), pd.DataFrame({"segment_id": [1], "colour": ["red"]}))


def test_weights_by_count_or_size():
    np.testing.assert_allclose(synapse_weights(np.array([2.0, 3.0]), np.array([1, -1]), 0.5), [0.5, -0.5])
    np.testing.assert_allclose(synapse_weights(np.array([2.0, 3.0]), np.array([1, -1]), 0.5, "size"), [1.0, -1.5])


def make_synapses():
    pre = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]], float)
    table = synapses_from_arrays(pre, pre + 10, size=np.array([1.0, 2.0, 4.0, 8.0]))
    table["pre_id"] = np.array([10, 10, 20, 30], np.uint64)
    table["post_id"] = np.array([20, 20, 10, 10], np.uint64)
    return table


def test_pairs_count_and_total_size_with_signed_weights():
    signs = pd.DataFrame({"segment_id": [30], "cell_type": ["inhibitory"]})
    connectome = build_connectome(make_synapses(), {}, EdgeParams(unit_weight=2.0, with_delays=False), sign_table=signs)
    nodes = connectome.nodes
    assert nodes["segment_id"].tolist() == [10, 20, 30] and nodes["node_type"].tolist() == ["excitatory", "excitatory", "inhibitory"]
    pairs = connectome.pairs.set_index(["pre_id", "post_id"])
    assert pairs.loc[(10, 20), "count"] == 2 and pairs.loc[(10, 20), "total_size"] == 3.0
    assert pairs.loc[(10, 20), "weight"] == 4.0 and pairs.loc[(30, 10), "weight"] == -2.0
    # without skeletons the delay is the synaptic delay; sorted by target node for SONATA
    assert np.allclose(connectome.synapses["delay_ms"], 0.5) and connectome.synapses["path_length_um"].isna().all()
    assert np.all(np.diff(connectome.synapses["target_node_id"]) >= 0)
    # centroids without skeletons: the mean of the segment's synapse points (nm)
    assert nodes.loc[nodes.segment_id == 30, "centroid_z_nm"].item() == 4.0


def test_aggregate_pairs_minimal_table():
    table = pd.DataFrame({"pre_id": [1, 1, 2], "post_id": [2, 2, 1], "size": [1.0, 1.0, 1.0],
                          "syn_weight": [1.0, 1.0, 1.0], "delay_ms": [1.0, 3.0, 2.0]})
    pairs = aggregate_pairs(table)
    assert pairs["count"].tolist() == [2, 1] and pairs["mean_delay_ms"].tolist() == [2.0, 2.0]


def test_brainscales2_quantises_weights_and_drops_delays(caplog):
    pairs = pd.DataFrame({"pre_id": [1, 2, 3], "post_id": [2, 3, 1], "count": [10, 5, 1],
                          "weight": [10.0, -5.0, 1.0], "mean_delay_ms": [1.0, 1.0, 1.0]})
    out = brainscales2_pairs(pairs, 3)
    assert out["hw_weight"].tolist() == [63, 32, 6]
    assert out["receptor_type"].tolist() == ["excitatory", "inhibitory", "excitatory"]
    assert "mean_delay_ms" not in out.columns and "delays dropped" in caplog.text
    with pytest.raises(InputError, match="513 neurons.*512"):
        brainscales2_pairs(pairs, 513)
