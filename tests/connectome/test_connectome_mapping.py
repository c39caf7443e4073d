"""Point -> segment lookup by chunk groups, LUT application, and the drop reasons."""

from __future__ import annotations

import numpy as np

from axonseg.connectome import (
    apply_lut_to_ids,
    classify_synapses,
    group_by_chunk,
    inside_volume,
    lookup_in_block,
    points_to_voxels,
)


def test_points_to_voxels_uses_offset_and_voxel_size():
    voxels = points_to_voxels(np.array([[300.0, 80.0, 0.0], [329.9, 87.9, 7.9], [299.0, 80.0, 0.0], [np.nan, 0, 0]]),
                              (30, 8, 8), (300, 80, 0))
    np.testing.assert_array_equal(voxels[:3], [[0, 0, 0], [0, 0, 0], [-1, 0, 0]])
    assert voxels[3, 0] == -1  # a NaN point is outside
    np.testing.assert_array_equal(inside_volume(voxels, (4, 4, 4)), [True, True, False, False])


def test_chunk_groups_give_the_same_ids_as_direct_indexing():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 50, size=(20, 33, 41)).astype(np.uint64)
    voxels = np.column_stack([rng.integers(0, s, 500) for s in labels.shape])
    groups = group_by_chunk(voxels, (8, 16, 16))
    assert len(groups) <= 3 * 3 * 3 and groups.starts[-1] == 500
    ids = np.zeros(500, np.uint64)
    for k in range(len(groups)):
        members = groups.members(k)
        # every member of a group lies in the group's chunk
        assert np.all(voxels[members] // np.array([8, 16, 16]) == groups.chunks[k])
        begin = voxels[members].min(axis=0)
        end = voxels[members].max(axis=0) + 1
        block = labels[begin[0]:end[0], begin[1]:end[1], begin[2]:end[2]]
        ids[members] = lookup_in_block(block, begin, voxels[members])
    np.testing.assert_array_equal(ids, labels[voxels[:, 0], voxels[:, 1], voxels[:, 2]])


def test_apply_lut_maps_known_ids_and_keeps_the_rest():
    lut = (np.array([5, 3, 9], np.uint64), np.array([100, 100, 7], np.uint64))
    np.testing.assert_array_equal(apply_lut_to_ids(np.array([3, 5, 9, 4, 0]), lut), [100, 100, 7, 4, 0])
    np.testing.assert_array_equal(apply_lut_to_ids(np.array([3]), None), [3])


def test_drop_reasons_are_counted_once_each():
    pre = np.array([[0, 0, 0], [np.nan, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=float)
    post = np.zeros((6, 3))
    inside = np.array([True, False, False, True, True, True])
    pre_ids = np.array([1, 0, 2, 0, 4, 5])
    post_ids = np.array([2, 0, 3, 3, 4, 6])
    keep, report = classify_synapses(pre, post, inside, pre_ids, post_ids)
    np.testing.assert_array_equal(keep, [True, False, False, False, False, True])
    assert report.dropped == {"nan_coordinates": 1, "outside_volume": 1, "unlabelled": 1, "same_segment": 1}
    assert report.n_kept == 2 and "1 same segment" in report.summary()
