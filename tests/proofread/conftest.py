"""Fixtures for the edit model: an in-memory box graph (no files) and its LUTs."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.segment import agglomerate
from axonseg.pipelines.proofread_demo import box_graph

SHAPE, BOX, VOXEL = (16, 64, 64), (4, 8, 8), (40.0, 8.0, 8.0)


@pytest.fixture
def box_setup():
    """(graph, true axon per fragment, agglomerated LUT) of 4x8x8 = 256 box fragments."""
    graph, axon = box_graph(SHAPE, BOX, VOXEL, seed=0)
    lut = agglomerate(graph, [0.5])[0]
    return graph, axon, (lut.fragment_ids, lut.segment_ids)
