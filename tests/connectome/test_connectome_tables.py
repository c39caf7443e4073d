"""Synapse table normalisation: presets, custom columns, units, and the missing-column error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from axonseg.connectome import detect_preset, normalize_synapse_table, synapse_points
from axonseg.errors import InputError


def test_xyz_preset_becomes_zyx_nm():
    table = pd.DataFrame({"pre_x": [1.0, 4.0], "pre_y": [2.0, 5.0], "pre_z": [3.0, 6.0],
                          "post_x": [7.0, 10.0], "post_y": [8.0, 11.0], "post_z": [9.0, 12.0], "size": [3.0, 5.0]})
    assert detect_preset(table.columns) == "xyz"
    out = normalize_synapse_table(table)
    pre, post = synapse_points(out)
    np.testing.assert_array_equal(pre, [[3, 2, 1], [6, 5, 4]])
    np.testing.assert_array_equal(post, [[9, 8, 7], [12, 11, 10]])
    np.testing.assert_array_equal(out["size"], [3.0, 5.0])
    assert out["confidence"].isna().all()


def test_cave_vectors_in_voxels_are_scaled_to_nm():
    # CAVE positions are x, y, z in voxels of (4, 4, 40) nm (x, y, z); as strings, as read from CSV
    table = pd.DataFrame({"pre_pt_position": ["[10, 20, 3]", "[1, 2, 1]"],
                          "post_pt_position": [np.array([11, 21, 3]), np.array([2, 2, 1])],
                          "confidence": [0.9, 0.2]})
    out = normalize_synapse_table(table, position_unit_nm=(40.0, 4.0, 4.0))
    pre, post = synapse_points(out)
    np.testing.assert_allclose(pre, [[120, 80, 40], [40, 8, 4]])
    np.testing.assert_allclose(post, [[120, 84, 44], [40, 8, 8]])
    np.testing.assert_allclose(out["confidence"], [0.9, 0.2])


def test_custom_column_mapping():
    names = {"pre_z_nm": "a", "pre_y_nm": "b", "pre_x_nm": "c", "post_z_nm": "d", "post_y_nm": "e", "post_x_nm": "f"}
    table = pd.DataFrame({k: [float(i)] for i, k in enumerate("abcdef")})
    pre, post = synapse_points(normalize_synapse_table(table, columns=names))
    np.testing.assert_array_equal(pre, [[0, 1, 2]])
    np.testing.assert_array_equal(post, [[3, 4, 5]])


def test_missing_columns_are_named_with_the_presets():
    table = pd.DataFrame({"pre_x": [1.0], "pre_y": [1.0], "pre_z": [1.0], "post_x": [1.0]})
    with pytest.raises(InputError) as err:
        normalize_synapse_table(table, preset="xyz")
    message = str(err.value)
    assert "post_y" in message and "post_z" in message and "cave" in message and "pre_pt_position" in message
    with pytest.raises(InputError, match="none of the presets fit"):
        normalize_synapse_table(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(InputError, match="preset='flywire'"):
        normalize_synapse_table(table, preset="flywire")


def test_non_numeric_coordinates_become_nan():
    table = pd.DataFrame({"pre_x": ["1", "oops"], "pre_y": [1, 1], "pre_z": [1, 1],
                          "post_x": [1, 1], "post_y": [1, 1], "post_z": [1, 1]})
    pre, _ = synapse_points(normalize_synapse_table(table))
    assert np.isnan(pre[1, 2]) and pre[0, 2] == 1.0
