"""The classic baseline's affinities (axonseg.segment.baseline): raw image only, no network."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.segment import NEAREST_NEIGHBOUR_OFFSETS, watershed_fragments
from axonseg.segment.baseline import baseline_affinities


def _two_cells(shape=(8, 24, 24), membrane_x=12) -> np.ndarray:
    """Bright cytoplasm with a dark membrane plane at x = membrane_x, zyx uint8."""
    raw = np.full(shape, 200, np.uint8)
    raw[:, :, membrane_x] = 20
    return raw


def test_membrane_edges_are_weak_and_cytoplasm_edges_strong() -> None:
    affinities = baseline_affinities(_two_cells())
    assert affinities.shape == (3, 8, 24, 24) and affinities.dtype == np.uint8
    # the x edge into the membrane plane (between x = 11 and 12, stored at x = 12) is the weakest
    across = affinities[2, 4, 12, 12]
    inside = affinities[2, 4, 12, 4]
    assert across < 40 and inside == 255
    # y and z edges along the membrane stay dark too: the membrane voxel is dark
    assert affinities[1, 4, 12, 12] < 40 and affinities[0, 4, 12, 12] < 40


def test_faces_pair_with_themselves_not_the_opposite_face() -> None:
    raw = _two_cells()
    raw[-1] = 20  # a dark last section: wrapping round would pair the bright z = 0 with it
    affinities = baseline_affinities(raw)
    assert affinities[0, 0, 5, 5] > 200  # z = 0's -z partner is itself, bright
    assert affinities[0, -1, 5, 5] < 60  # the dark section's own edges stay weak


def test_baseline_fragments_split_the_two_cells() -> None:
    fragments, _ = watershed_fragments(baseline_affinities(_two_cells()), NEAREST_NEIGHBOUR_OFFSETS)
    left, right = np.unique(fragments[:, :, :10]), np.unique(fragments[:, :, 14:])
    assert len(left) == 1 and len(right) == 1 and left[0] != right[0]


def test_refuses_a_2d_image() -> None:
    with pytest.raises(ValueError, match="3D"):
        baseline_affinities(np.zeros((4, 4), np.uint8))
