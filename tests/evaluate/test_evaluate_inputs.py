"""Bad inputs fail with one-line InputErrors that name the array and the expectation."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.evaluate import (
    EvaluationAccumulator,
    adapted_rand,
    evaluate_arrays,
    expected_run_length,
    flat_skeletons,
    node_voxel_indices,
    variation_of_information,
)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(InputError, match=r"pred has shape \(2, 3, 4\) but gt has shape \(2, 3, 5\)"):
        evaluate_arrays(np.ones((2, 3, 4), np.uint8), np.ones((2, 3, 5), np.uint8))


def test_float_gt_is_rejected_with_its_dtype():
    with pytest.raises(InputError, match="gt has dtype float32: expected an integer dtype"):
        variation_of_information(np.ones((2, 2, 2), np.uint8), np.ones((2, 2, 2), np.float32))


def test_empty_gt_is_rejected():
    with pytest.raises(InputError, match="gt is all zero"):
        evaluate_arrays(np.ones((2, 2, 2), np.uint8), np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(InputError, match="gt is all zero"):
        adapted_rand(np.ones((2, 2, 2), np.uint8), np.zeros((2, 2, 2), np.uint8))
    accumulator = EvaluationAccumulator()
    accumulator.add_block(np.ones((2, 2, 2), np.uint8), np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(InputError, match="gt is all zero"):
        accumulator.finish()


def test_negative_labels_are_rejected():
    pred = np.array([[[1, -2]]], np.int32)
    with pytest.raises(InputError, match=r"pred has negative labels \(min -2\)"):
        evaluate_arrays(pred, np.ones((1, 1, 2), np.int32))


def test_messages_are_one_line():
    with pytest.raises(InputError) as error:
        evaluate_arrays(np.ones((2, 3, 4), np.uint8), np.ones((2, 3, 5), np.uint8))
    assert "\n" not in str(error.value)


def test_bad_skeletons_are_rejected():
    nodes = np.zeros((3, 3))
    with pytest.raises(InputError, match="outside 0..2"):
        flat_skeletons(nodes, np.array([[0, 3]]), np.zeros(3, np.int64))
    with pytest.raises(InputError, match="two different skeletons"):
        flat_skeletons(nodes, np.array([[0, 1]]), np.array([0, 1, 1]))
    with pytest.raises(InputError, match="expected \\(N, 3\\)"):
        flat_skeletons(np.zeros((3, 2)), np.array([[0, 1]]), np.zeros(3, np.int64))
    with pytest.raises(InputError, match="node_segments has shape"):
        expected_run_length({1: (nodes, np.array([[0, 1]]))}, np.zeros(2, np.uint8))
    with pytest.raises(InputError, match="erl_intervals"):
        expected_run_length({1: (nodes, np.array([[0, 1]]))}, np.ones(3, np.uint8), erl_intervals=[5, 1])


def test_bad_voxel_size_is_rejected():
    with pytest.raises(InputError, match="voxel_size"):
        node_voxel_indices(np.zeros((1, 3)), (30, 0, 6))
