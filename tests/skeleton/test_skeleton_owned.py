"""A block skeletonizes only what it keeps: components wholly in its context are dropped before
kimimaro, and that changes no skeleton (kimimaro traces each component on its own)."""

from __future__ import annotations

import numpy as np
import pytest

import axonseg.skeleton.kimimaro_backend as backend
from axonseg.skeleton import SkeletonParams, keep_owned_components, remove_interior_dust, skeletonize_block

from shared_data import FIB_PATH, require_shared

VOXEL = (10.0, 10.0, 10.0)


def test_components_outside_the_write_region_are_dropped():
    labels = np.zeros((10, 20, 20), np.uint16)
    labels[1:9, 2:4, 2:4] = 1  # in the context only (write region is y, x 5..15)
    labels[1:9, 8:12, 8:12] = 1  # the same label, reaching the write region: kept
    labels[1:9, 2:18, 17:19] = 2  # spans y through the write region's rows, but x 17..18 is context
    labels[0:10, 9:11, 3:7] = 3  # enters the write region at x = 5, 6
    write = (slice(0, 10), slice(5, 15), slice(5, 15))
    kept = keep_owned_components(labels, write)
    assert kept.dtype == labels.dtype
    assert (kept[1:9, 2:4, 2:4] == 0).all() and (kept[1:9, 8:12, 8:12] == 1).all()
    assert not (kept == 2).any()
    assert (kept == 3).sum() == (labels == 3).sum()
    assert labels[1, 2, 2] == 1  # the input is left alone
    # nothing to drop: the very same array comes back
    assert keep_owned_components(kept, write) is kept


def test_dust_rule_is_unchanged():
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[5:7, 5:7, 5:7] = 1  # 8 voxels, inside: dust
    labels[0:2, 0:2, 0:2] = 2  # 8 voxels touching the open z-low face: may continue, kept
    labels[5:10, 0:10, 8:10] = 3  # 100 voxels, at the threshold, touching only closed faces: dust
    out = remove_interior_dust(labels, 100, open_faces=(True, False, False, False, False, False))
    assert set(np.unique(out)) == {0, 2}
    assert set(np.unique(keep_owned_components(labels, None, 8, (False,) * 6))) == {0, 3}


@pytest.mark.slow
def test_dropping_unowned_components_changes_no_skeleton_on_real_labels(monkeypatch):
    require_shared(FIB_PATH)
    h5py = pytest.importorskip("h5py")
    with h5py.File(FIB_PATH, "r") as f:
        labels = f["labels"][60:124, 40:168, 40:168]
    write = (slice(16, 48), slice(32, 96), slice(32, 96))
    params = SkeletonParams()
    components = backend.cc3d.connected_components(labels, connectivity=26)
    outside = np.setdiff1d(np.unique(components), np.unique(components[write]))
    assert len(outside) >= 20  # the context holds whole components to skip
    new = skeletonize_block(labels, VOXEL, write_slices=write, params=params)

    def dust_only(block, write_slices, dust, faces):  # the rule before: only dust went
        return keep_owned_components(block, None, dust, faces)

    monkeypatch.setattr(backend, "keep_owned_components", dust_only)
    old = skeletonize_block(labels, VOXEL, write_slices=write, params=params)
    assert set(new) == set(old) and len(new) >= 8
    for segment_id, graph in old.items():
        np.testing.assert_array_equal(new[segment_id].nodes_nm, graph.nodes_nm)
        np.testing.assert_array_equal(new[segment_id].edges, graph.edges)
        np.testing.assert_array_equal(new[segment_id].open_ends, graph.open_ends)
