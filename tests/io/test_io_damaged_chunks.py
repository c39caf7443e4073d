"""A truncated zarr chunk is named (array, chunk key) with what to run, instead of a codec traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.io import create_multiscale, mark_complete, open_level, open_volume, write_block
from axonseg.io.damaged import damaged_chunk_error

CHUNKS = (4, 16, 16)


def write(store: Path, name: str, data: np.ndarray) -> Path:
    create_multiscale(store, name, data.shape, data.dtype, (30.0, 8.0, 8.0), chunk_shape=CHUNKS)
    write_block(open_level(store, name), data, (0, 0, 0))
    mark_complete(store, name)
    return store / name


def truncate(store: Path, name: str, key: str, keep: int = 7) -> Path:
    path = store / name / "s0" / key
    path.write_bytes(path.read_bytes()[:keep])
    return path


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(1).integers(1, 9, (8, 32, 32)).astype(np.uint64)


def test_truncated_chunk_of_a_run_names_array_chunk_and_segment(tmp_path: Path, labels: np.ndarray) -> None:
    store = tmp_path / "run" / "volume.zarr"
    volume = open_volume(write(store, "segmentation", labels))
    truncate(store, "segmentation", "c/1/0/1")
    with pytest.raises(InputError) as caught:
        volume.read((slice(0, 8), slice(0, 32), slice(0, 32)))
    message = str(caught.value)
    assert message == (f"{store}/segmentation/s0 chunk c/1/0/1 is damaged (Zstd decompression error: invalid input "
                       "data): re-run `axonseg segment` for this run to recompute it")
    # the intact chunks still read, with their values
    np.testing.assert_array_equal(volume.read((slice(0, 4), slice(0, 32), slice(0, 32))), labels[:4])


def test_several_damaged_chunks_outside_a_run_say_recreate(tmp_path: Path, labels: np.ndarray) -> None:
    store = tmp_path / "gt.zarr"
    volume = open_volume(write(store, "labels", labels))
    for key in ("c/0/0/0", "c/0/1/1", "c/1/1/0", "c/1/1/1"):
        truncate(store, "labels", key, keep=0)
    with pytest.raises(InputError, match=r"gt\.zarr/labels/s0 chunks c/0/0/0, c/0/1/1, c/1/1/0 and 1 more are "
                                         r"damaged \(.*\): restore the file, or re-create the array"):
        volume.read((slice(0, 8), slice(0, 32), slice(0, 32)))


def test_other_read_failures_pass_unchanged(tmp_path: Path, labels: np.ndarray) -> None:
    store = tmp_path / "run" / "volume.zarr"
    array = open_level(write(store, "segmentation", labels).parent, "segmentation", mode="r")
    region = (slice(0, 8), slice(0, 32), slice(0, 32))
    assert damaged_chunk_error(array, region, RuntimeError("not a chunk"), "x") is None  # every chunk decodes
