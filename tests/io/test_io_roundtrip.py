"""Every supported input format opens lazily with the right data, voxel size and offset."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from axonseg.errors import InputError
from axonseg.io import (
    AXONEM_VOXEL_SIZES,
    create_multiscale,
    group_attrs,
    mark_complete,
    open_level,
    open_volume,
    write_array,
    write_block,
)


def test_npy_roundtrip(tmp_path: Path, raw_volume: np.ndarray) -> None:
    np.save(tmp_path / "a.npy", raw_volume)
    volume = open_volume(tmp_path / "a.npy", voxel_size=(30, 8, 8))
    np.testing.assert_array_equal(volume.data.compute(), raw_volume)
    assert volume.voxel_size == (30.0, 8.0, 8.0)
    assert volume.offset == (0.0, 0.0, 0.0)


def test_h5_with_resolution_attribute(tmp_path: Path, raw_volume: np.ndarray) -> None:
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f.create_dataset("volumes/raw", data=raw_volume, chunks=(10, 16, 16))
        f["volumes/raw"].attrs["resolution"] = (40, 4, 4)
        f["volumes/raw"].attrs["offset"] = (400, 40, 8)
    volume = open_volume(f"{tmp_path / 'v.h5'}:volumes/raw")
    np.testing.assert_array_equal(volume.data.compute(), raw_volume)
    assert volume.voxel_size == (40.0, 4.0, 4.0)
    assert volume.offset == (400.0, 40.0, 8.0)
    assert volume.data.chunks[0][0] == 10  # dask chunks follow the h5 chunks


@pytest.mark.parametrize(("species", "expected"), [("human", AXONEM_VOXEL_SIZES["human"]), ("mouse", AXONEM_VOXEL_SIZES["mouse"])])
def test_axonem_layout(tmp_path: Path, raw_volume: np.ndarray, label_volume: np.ndarray, species: str, expected) -> None:
    folder = tmp_path / f"AxonEM-{species}" / "train"
    folder.mkdir(parents=True)
    with h5py.File(folder / "im_000.h5", "w") as f:
        f.create_dataset("main", data=raw_volume)
    with h5py.File(folder / "seg_000.h5", "w") as f:
        f.create_dataset("main", data=label_volume)
    raw = open_volume(folder / "im_000.h5")
    labels = open_volume(folder / "seg_000.h5")
    assert raw.voxel_size == expected == labels.voxel_size
    np.testing.assert_array_equal(labels.data.compute(), label_volume)


def test_tif_file_and_folder(tmp_path: Path, raw_volume: np.ndarray) -> None:
    tifffile.imwrite(tmp_path / "stack.tif", raw_volume)
    volume = open_volume(tmp_path / "stack.tif", voxel_size=(10, 10, 10))
    np.testing.assert_array_equal(volume.data.compute(), raw_volume)
    folder = tmp_path / "slices"
    folder.mkdir()
    for z, section in enumerate(raw_volume):
        tifffile.imwrite(folder / f"slice_{z:04d}.tif", section)
    volume = open_volume(folder, voxel_size=(10, 10, 10))
    assert volume.shape == raw_volume.shape
    np.testing.assert_array_equal(volume.data.compute(), raw_volume)


def test_n5_through_tensorstore(tmp_path: Path, raw_volume: np.ndarray) -> None:
    ts = pytest.importorskip("tensorstore")
    path = tmp_path / "data.n5" / "raw"
    spec = {
        "driver": "n5",
        "kvstore": {"driver": "file", "path": str(path)},
        "metadata": {"dimensions": list(raw_volume.shape[::-1]), "blockSize": [16, 16, 8],
                     "dataType": "uint8", "compression": {"type": "gzip"}},
        "create": True,
    }
    store = ts.open(spec).result()
    store.write(raw_volume.T).result()  # N5 keeps axes in xyz order
    volume = open_volume(f"{tmp_path / 'data.n5'}/raw", voxel_size=(30, 8, 8))
    np.testing.assert_array_equal(volume.data.compute(), raw_volume)


def test_zarr_multiscale_roundtrip(tmp_path: Path, raw_volume: np.ndarray) -> None:
    store = tmp_path / "v.zarr"
    create_multiscale(store, "raw", raw_volume.shape, np.uint8, (30, 8, 8), (60, 16, 8), (8, 16, 16), [(1, 2, 2)])
    write_block(open_level(store, "raw", 0), raw_volume, (0, 0, 0))
    mark_complete(store, "raw")
    volume = open_volume(store / "raw")
    np.testing.assert_array_equal(volume.data.compute(), raw_volume)
    assert volume.voxel_size == (30.0, 8.0, 8.0)
    assert volume.offset == (60.0, 16.0, 8.0)
    coarse = open_volume(f"{store}/raw/s1")
    assert coarse.voxel_size == (30.0, 16.0, 16.0)
    assert coarse.offset == (60.0, 20.0, 12.0)  # centre of the 2x2 fine voxels
    assert coarse.shape == (20, 24, 20)


def test_plain_zarr_array_with_voxel_attrs(tmp_path: Path, raw_volume: np.ndarray) -> None:
    array = zarr.create_array(str(tmp_path / "plain.zarr"), shape=raw_volume.shape, dtype=np.uint8, chunks=(10, 16, 16))
    array[:] = raw_volume
    array.attrs["voxel_size"] = [10, 10, 10]
    volume = open_volume(tmp_path / "plain.zarr")
    assert volume.voxel_size == (10.0, 10.0, 10.0)
    np.testing.assert_array_equal(volume.data.compute(), raw_volume)


def test_incomplete_array_is_refused(tmp_path: Path, raw_volume: np.ndarray) -> None:
    store = tmp_path / "v.zarr"
    create_multiscale(store, "raw", raw_volume.shape, np.uint8, (30, 8, 8))
    with pytest.raises(InputError, match="incomplete"):
        open_volume(store / "raw")


def test_fib_medulla_opens_with_its_resolution(fib_path: Path) -> None:
    volume = open_volume(f"{fib_path}:raw")
    assert volume.shape == (250, 250, 250)
    assert volume.voxel_size == (10.0, 10.0, 10.0)
    assert volume.dtype == np.uint8


def test_h5_volume_pickles_for_process_workers(tmp_path: Path, raw_volume: np.ndarray) -> None:
    import pickle

    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["raw"] = raw_volume
    volume = open_volume(f"{tmp_path / 'v.h5'}:raw", voxel_size=(1, 1, 1))
    clone = pickle.loads(pickle.dumps(volume.data))
    np.testing.assert_array_equal(clone[2:5].compute(), raw_volume[2:5])


def test_write_array_is_a_complete_readable_group(tmp_path):
    data = np.random.default_rng(3).integers(0, 255, (5, 130, 9), dtype=np.uint8)
    address = write_array(tmp_path / "crop.zarr", "raw", data, (10.0, 10.0, 10.0))
    assert address == f"{tmp_path / 'crop.zarr'}/raw"
    assert group_attrs(tmp_path / "crop.zarr", "raw")["complete"] is True
    volume = open_volume(address)
    assert volume.voxel_size == (10.0, 10.0, 10.0)
    np.testing.assert_array_equal(volume.data.compute(), data)
    assert open_level(tmp_path / "crop.zarr", "raw").chunks == (5, 128, 9)


def test_write_array_takes_channels_offset_and_attrs(tmp_path):
    """czyx data (affinities) get a channel axis, the offset in nm and extra axonseg attributes."""
    data = np.random.default_rng(4).integers(0, 255, (3, 6, 20, 140), dtype=np.uint8)
    address = write_array(tmp_path / "run.zarr", "affinities", data, (30.0, 8.0, 8.0), (60.0, 16.0, 0.0),
                          attrs={"offsets": [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]})
    attrs = group_attrs(tmp_path / "run.zarr", "affinities")
    assert attrs["complete"] is True and attrs["offsets"] == [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]
    volume = open_volume(address)
    assert volume.voxel_size == (30.0, 8.0, 8.0) and tuple(volume.offset) == (60.0, 16.0, 0.0)
    assert volume.spatial_shape == (6, 20, 140)
    np.testing.assert_array_equal(volume.data.compute(), data)
    assert open_level(tmp_path / "run.zarr", "affinities").chunks == (3, 6, 20, 128)
