"""Bad input gives one clear InputError naming the file, dataset or parameter."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from axonseg.errors import InputError
from axonseg.io import check_voxel_size, open_volume


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothere\.h5: no such file"):
        open_volume(f"{tmp_path / 'nothere.h5'}:raw", voxel_size=(1, 1, 1))


def test_missing_dataset_in_h5(tmp_path: Path, raw_volume: np.ndarray) -> None:
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["raw"] = raw_volume
    with pytest.raises(InputError, match="no dataset 'labels'"):
        open_volume(f"{tmp_path / 'v.h5'}:labels", voxel_size=(1, 1, 1))


def test_missing_dataset_in_zarr(tmp_path: Path, raw_volume: np.ndarray) -> None:
    import zarr

    zarr.open_group(str(tmp_path / "v.zarr"), mode="w").create_array("raw", data=raw_volume)
    with pytest.raises(InputError, match="'labels'"):
        open_volume(tmp_path / "v.zarr" / "labels", voxel_size=(1, 1, 1))


def test_array_not_3d(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(InputError, match=r"shape \(10, 10\).*3D"):
        open_volume(tmp_path / "flat.npy", voxel_size=(1, 1, 1))


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, "missing"), ((0, 8, 8), "positive"), ((-1, 8, 8), "positive"), ((8, 8), "two values|has 2 values"),
     (("a", 1, 1), "three positive")],
)
def test_bad_voxel_sizes(value, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_voxel_size(value, "--voxel-size")


def test_voxel_size_missing_from_file(tmp_path: Path, raw_volume: np.ndarray) -> None:
    np.save(tmp_path / "a.npy", raw_volume)
    with pytest.raises(InputError, match="voxel size is missing.*--voxel-size"):
        open_volume(tmp_path / "a.npy")


def test_tif_folder_with_mismatched_slices(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "s0.tif", np.zeros((16, 16), np.uint8))
    tifffile.imwrite(tmp_path / "s1.tif", np.zeros((16, 17), np.uint8))
    with pytest.raises(InputError, match=r"s1\.tif: slice has shape \(16, 17\)"):
        open_volume(tmp_path, voxel_size=(1, 1, 1))


def test_unrecognised_format(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unrecognised array address"):
        open_volume(tmp_path / "notes.txt", voxel_size=(1, 1, 1))
