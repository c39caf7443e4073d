"""Block invariance: fragments and graph computed in blocks (simulated in memory with the
ownership rule) agglomerate to the same segmentation for two block sizes; real-data quality."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import variation_of_information

from axonseg.segment import agglomerate, block_region_graph, merge_block_graphs, relabel, watershed_fragments

NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]
VOXEL_SIZE = (10, 10, 10)


def segment_in_blocks(affinities, block_shape, context, thresholds):
    """The blockwise stage in miniature: what axonseg.blockwise does with real arrays."""
    shape = np.array(affinities.shape[1:])
    block_shape = np.array(block_shape)
    grid = [range(0, s, b) for s, b in zip(shape, block_shape)]
    fragments = np.zeros(tuple(shape), dtype=np.uint64)
    max_ids = int(np.prod(block_shape))
    # stage 1: fragments on read ROI = write ROI + context (clipped at the volume), keep centre
    for index, start in enumerate(itertools.product(*grid)):
        start = np.array(start)
        stop = np.minimum(start + block_shape, shape)
        read_start, read_stop = np.maximum(start - context, 0), np.minimum(stop + context, shape)
        read = tuple(slice(a, b) for a, b in zip(read_start, read_stop))
        block_fragments, n_ids = watershed_fragments(
            affinities[(slice(None),) + read], NN_OFFSETS, VOXEL_SIZE, id_offset=index * max_ids
        )
        assert n_ids <= max_ids
        centre = tuple(slice(a - r, b - r) for a, b, r in zip(start, stop, read_start))
        fragments[tuple(slice(a, b) for a, b in zip(start, stop))] = block_fragments[centre]
    # stage 2: region graph per block: fragments with 1 voxel of NEGATIVE context, affinities of
    # the write ROI; context outside the volume is 0
    padded = np.pad(fragments, ((1, 0), (1, 0), (1, 0)))
    graphs = []
    for start in itertools.product(*grid):
        start = np.array(start)
        stop = np.minimum(start + block_shape, shape)
        context_roi = tuple(slice(a, b + 1) for a, b in zip(start, stop))
        write = (slice(None),) + tuple(slice(a, b) for a, b in zip(start, stop))
        graphs.append(block_region_graph(
            padded[context_roi], affinities[write], NN_OFFSETS, VOXEL_SIZE,
            write_offset_nm=tuple(start * np.array(VOXEL_SIZE))))
    luts = agglomerate(merge_block_graphs(graphs), thresholds)
    return [relabel(fragments, lut.fragment_ids, lut.segment_ids) for lut in luts]


def voronoi_labels(shape, n_cells, seed):
    rng = np.random.default_rng(seed)
    centres = np.zeros(shape, dtype=np.int64)
    points = tuple(rng.integers(0, s, n_cells) for s in shape)
    centres[points] = np.arange(1, n_cells + 1)
    _, nearest = ndimage.distance_transform_edt(centres == 0, return_indices=True)
    return centres[tuple(nearest)]


def split_merge(a, b):
    return variation_of_information(a.astype(np.int64), b.astype(np.int64))


def test_two_block_sizes_agree_on_synthetic_cells(make_affinities):
    labels = voronoi_labels((32, 64, 64), 40, seed=0)
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.15, seed=1)
    big = segment_in_blocks(affinities, (32, 32, 32), 8, [0.5])[0]
    small = segment_in_blocks(affinities, (16, 24, 20), 8, [0.5])[0]
    assert sum(split_merge(big, small)) <= 0.01
    assert sum(split_merge(labels, big)) < 0.1


def test_two_block_sizes_agree_on_real_labels(real_labels, make_affinities):
    affinities = make_affinities(real_labels, NN_OFFSETS, noise=0.2, seed=3)
    thresholds = [0.3, 0.5]
    big = segment_in_blocks(affinities, (48, 48, 48), 8, thresholds)
    small = segment_in_blocks(affinities, (24, 32, 40), 8, thresholds)
    for a, b in zip(big, small):
        assert sum(split_merge(a, b)) <= 0.01
    best = min(sum(split_merge(real_labels, seg)) for seg in big)
    assert best < 0.15
