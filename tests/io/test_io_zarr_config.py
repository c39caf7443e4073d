"""zarr decodes one chunk at a time per read unless the user says otherwise."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import zarr

import axonseg.io  # noqa: F401  (sets the default on import)
from axonseg.errors import ConfigError
from axonseg.io.zarr_config import DEFAULT_CONCURRENCY, limit_chunk_concurrency


def _read_peak_bytes(array) -> tuple[int, int]:
    tracemalloc.start()
    try:
        block = array[:]
        return block.nbytes, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_one_block_read_holds_about_one_chunk_beyond_the_result(tmp_path):
    array = zarr.create_array(tmp_path / "a.zarr", shape=(96, 96, 96), chunks=(32, 32, 32), dtype="uint64")
    array[:] = np.random.default_rng(0).integers(0, 1000, size=array.shape, dtype=np.uint64)
    chunk = 32**3 * 8
    assert zarr.config.get("async.concurrency") == DEFAULT_CONCURRENCY == 1
    result, peak = _read_peak_bytes(array)
    assert peak - result < 4 * chunk  # 27 chunks read, at most a few alive at once
    try:
        zarr.config.set({"async.concurrency": 10})  # zarr's own default
        result, peak_default = _read_peak_bytes(array)
        assert peak_default - result > 8 * chunk
    finally:
        limit_chunk_concurrency()


def test_environment_setting_wins_and_bad_values_are_refused():
    code = "import axonseg.io, zarr; print(zarr.config.get('async.concurrency'))"
    env = {"ZARR_ASYNC__CONCURRENCY": "6", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "6"
    with pytest.raises(ConfigError, match="concurrency=0"):
        limit_chunk_concurrency(0)
    assert limit_chunk_concurrency(3) == 3 and zarr.config.get("async.concurrency") == 3
    limit_chunk_concurrency()
    assert zarr.config.get("async.concurrency") == 1


def test_concurrency_within_a_byte_budget_and_restored(monkeypatch):
    from axonseg.io.zarr_config import chunk_concurrency, concurrency_for

    assert concurrency_for(64**3) == 10  # 256 kB uint8 chunks: zarr's own cap
    assert concurrency_for(128**3 * 8) == 2  # 16 MB uint64 chunks within 32 MB
    assert concurrency_for(512**3) == 1  # a chunk over the budget: still one at a time
    monkeypatch.delenv("ZARR_ASYNC__CONCURRENCY", raising=False)
    with chunk_concurrency(6) as value:
        assert value == 6 and zarr.config.get("async.concurrency") == 6
    assert zarr.config.get("async.concurrency") == 1
    monkeypatch.setenv("ZARR_ASYNC__CONCURRENCY", "3")
    zarr.config.set({"async.concurrency": 3})
    try:
        with chunk_concurrency(8) as value:  # the user's setting wins
            assert value == 3 and zarr.config.get("async.concurrency") == 3
    finally:
        monkeypatch.delenv("ZARR_ASYNC__CONCURRENCY")
        limit_chunk_concurrency()
