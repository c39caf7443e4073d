"""``open_levels``: every level of an OME-Zarr multiscale image, or one array, lazily."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.io import create_multiscale, mark_complete, open_levels, write_block
from axonseg.io.pyramid import downsample


@pytest.fixture
def pyramid(tmp_path):
    raw = np.random.default_rng(0).integers(0, 255, (8, 32, 32), dtype=np.uint8)
    group = create_multiscale(tmp_path / "p.zarr", "raw", raw.shape, raw.dtype, (40.0, 4.0, 4.0), (80.0, 0.0, 8.0),
                              (8, 32, 32), factors=[(1, 2, 2), (2, 2, 2)])
    levels = [raw, downsample(raw, (1, 2, 2))]
    levels.append(downsample(levels[1], (2, 2, 2)))
    for index, level in enumerate(levels):
        write_block(group[f"s{index}"], level, (0, 0, 0))
    mark_complete(tmp_path / "p.zarr", "raw")
    return tmp_path / "p.zarr", levels


def test_group_opens_every_level_with_its_geometry(pyramid):
    store, levels = pyramid
    opened = open_levels(store / "raw")
    assert [v.spatial_shape for v in opened] == [(8, 32, 32), (8, 16, 16), (4, 8, 8)]
    assert [v.voxel_size for v in opened] == [(40.0, 4.0, 4.0), (40.0, 8.0, 8.0), (80.0, 16.0, 16.0)]
    assert opened[0].offset == (80.0, 0.0, 8.0) and opened[2].offset == (100.0, 6.0, 14.0)
    assert all(np.array_equal(np.asarray(v.data), level) for v, level in zip(opened, levels))


def test_a_level_opens_itself_and_the_coarser_ones(pyramid):
    store, _ = pyramid
    assert [v.spatial_shape for v in open_levels(store / "raw" / "s1")] == [(8, 16, 16), (4, 8, 8)]


def test_a_plain_array_is_one_level_and_takes_a_voxel_size_only_where_it_has_none(tmp_path):
    np.save(tmp_path / "raw.npy", np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(InputError, match="voxel size is missing"):
        open_levels(tmp_path / "raw.npy")
    (level,) = open_levels(tmp_path / "raw.npy", voxel_size=(30.0, 8.0, 8.0))
    assert level.voxel_size == (30.0, 8.0, 8.0) and level.spatial_shape == (4, 8, 8)
