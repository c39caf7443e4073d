"""Ingest: round trip with pyramid and OME metadata, bad input, resume after interruption."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr

from axonseg.config import IngestConfig
from axonseg.errors import InputError, OutputExistsError
from axonseg.io import group_attrs, open_volume
from axonseg.io.pyramid import downsample
from axonseg.blockwise import outputs as outputs_module  # where every stage output is written
from axonseg.pipelines.ingest import ingest


def _config(**kwargs) -> IngestConfig:
    return IngestConfig(voxel_size=(30, 8, 8), chunk_shape=(8, 16, 16), **kwargs)


def test_ingest_writes_pyramid_and_ome_metadata(tmp_path: Path, raw_volume: np.ndarray) -> None:
    np.save(tmp_path / "raw.npy", raw_volume)
    result = ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=_config(), show_progress=False)
    assert result.factors[0] == (1, 2, 2)
    s0 = zarr.open_array(str(tmp_path / "out.zarr"), path="raw/s0", mode="r")
    np.testing.assert_array_equal(s0[:], raw_volume)
    assert s0.chunks == (8, 16, 16)
    s1 = zarr.open_array(str(tmp_path / "out.zarr"), path="raw/s1", mode="r")
    np.testing.assert_array_equal(s1[:], downsample(raw_volume, (1, 2, 2), "mean"))
    # the OME-Zarr reader of the ome-zarr package reads our metadata back
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    node = next(iter(Reader(parse_url(str(tmp_path / "out.zarr" / "raw")))()))
    scales = [t[0]["scale"] for t in node.metadata["coordinateTransformations"]]
    assert scales[0] == [30.0, 8.0, 8.0] and scales[1] == [30.0, 16.0, 16.0]
    assert [a["name"] for a in node.metadata["axes"]] == ["z", "y", "x"]
    assert node.data[1].shape == s1.shape
    # the resolved config sits beside the output, with the hash the array carries
    saved = yaml.safe_load((tmp_path / "out.raw.config.yaml").read_text())
    assert saved["config_hash"] == result.config_hash == group_attrs(tmp_path / "out.zarr", "raw")["config_hash"]
    assert saved["config"]["voxel_size"] == [30.0, 8.0, 8.0]
    assert not (tmp_path / "blocks").exists()


def test_ingest_labels_uses_mode(tmp_path: Path, label_volume: np.ndarray) -> None:
    np.save(tmp_path / "labels.npy", label_volume)
    ingest(tmp_path / "labels.npy", tmp_path / "out.zarr", "labels", _config(kind="labels"), show_progress=False)
    s1 = zarr.open_array(str(tmp_path / "out.zarr"), path="labels/s1", mode="r")[:]
    assert set(np.unique(s1)) == set(range(1, 9))
    np.testing.assert_array_equal(s1, downsample(label_volume, (1, 2, 2), "mode"))


def test_float_labels_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "labels.npy", np.zeros((4, 8, 8), dtype=np.float32))
    with pytest.raises(InputError, match="dtype float32: expected an integer"):
        ingest(tmp_path / "labels.npy", tmp_path / "out.zarr", "labels", _config(kind="labels"), show_progress=False)
    assert not (tmp_path / "out.zarr").exists()


def test_chunk_larger_than_volume_is_clamped_and_logged(tmp_path: Path, raw_volume: np.ndarray, caplog) -> None:
    np.save(tmp_path / "raw.npy", raw_volume)
    with caplog.at_level(logging.WARNING):
        ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=IngestConfig(voxel_size=(1, 1, 1)), show_progress=False)
    assert "clamped to (20, 48, 40)" in caplog.text
    assert zarr.open_array(str(tmp_path / "out.zarr"), path="raw/s0").chunks == (20, 48, 40)


def test_existing_output_is_refused_unless_overwrite(tmp_path: Path, raw_volume: np.ndarray) -> None:
    np.save(tmp_path / "raw.npy", raw_volume)
    ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=_config(), show_progress=False)
    with pytest.raises(OutputExistsError, match=r"out\.zarr/raw exists already.*--overwrite"):
        ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=_config(), show_progress=False)
    np.save(tmp_path / "raw.npy", raw_volume // 2)
    ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=_config(), overwrite=True, show_progress=False)
    np.testing.assert_array_equal(open_volume(tmp_path / "out.zarr" / "raw").data.compute(), raw_volume // 2)


def test_interrupted_ingest_resumes_and_is_never_marked_complete(tmp_path: Path, raw_volume: np.ndarray, monkeypatch) -> None:
    np.save(tmp_path / "raw.npy", raw_volume)
    real_write = outputs_module.write_block
    calls = {"n": 0}

    def failing_write(array, data, offset):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt  # like Ctrl-C mid-stage
        real_write(array, data, offset)

    monkeypatch.setattr(outputs_module, "write_block", failing_write)
    with pytest.raises(KeyboardInterrupt):
        ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=_config(), scheduler="synchronous", show_progress=False)
    assert group_attrs(tmp_path / "out.zarr", "raw")["complete"] is False
    with pytest.raises(InputError, match="incomplete"):
        open_volume(tmp_path / "out.zarr" / "raw")
    monkeypatch.setattr(outputs_module, "write_block", real_write)
    result = ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=_config(), show_progress=False)
    assert result.blocks_skipped == 3
    np.testing.assert_array_equal(open_volume(tmp_path / "out.zarr" / "raw").data.compute(), raw_volume)


def test_interrupted_ingest_with_another_config_needs_overwrite(tmp_path: Path, raw_volume: np.ndarray, monkeypatch) -> None:
    np.save(tmp_path / "raw.npy", raw_volume)
    monkeypatch.setattr(outputs_module, "write_block", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=_config(), scheduler="synchronous", show_progress=False)
    monkeypatch.undo()
    other = IngestConfig(voxel_size=(30, 8, 8), chunk_shape=(4, 16, 16))
    with pytest.raises(OutputExistsError, match="incomplete, from an ingest with another config"):
        ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=other, show_progress=False)
    ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=other, overwrite=True, show_progress=False)
    np.testing.assert_array_equal(open_volume(tmp_path / "out.zarr" / "raw").data.compute(), raw_volume)


def test_kill_9_during_ingest_then_rerun_resumes(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 255, (64, 256, 256), dtype=np.uint8)
    np.save(tmp_path / "big.npy", data)
    command = [sys.executable, "-m", "axonseg.cli", "-q", "ingest", str(tmp_path / "big.npy"), str(tmp_path / "out.zarr"),
               "--voxel-size", "30", "8", "8", "--chunks", "8", "32", "32", "--scheduler", "synchronous"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    markers = tmp_path / "blocks" / "ingest-out-raw-s0"
    deadline = time.time() + 120
    while time.time() < deadline and (not markers.exists() or len(list(markers.iterdir())) < 4):
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert group_attrs(tmp_path / "out.zarr", "raw")["complete"] is False
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(open_volume(tmp_path / "out.zarr" / "raw").data.compute(), data)


def test_ingest_encodes_several_small_chunks_at_once_then_restores(tmp_path: Path, raw_volume: np.ndarray,
                                                                    monkeypatch) -> None:
    """Ingest blocks are many small chunks: zarr may encode up to 10 at once (within 32 MB) while
    ingest runs; the pipeline's one-chunk-at-a-time default is back afterwards, also after an error."""
    np.save(tmp_path / "raw.npy", raw_volume)
    real_write = outputs_module.write_block
    seen: list[int] = []

    def spying_write(array, data, offset):  # noqa: ANN001
        seen.append(zarr.config.get("async.concurrency"))
        real_write(array, data, offset)

    monkeypatch.delenv("ZARR_ASYNC__CONCURRENCY", raising=False)
    monkeypatch.setattr(outputs_module, "write_block", spying_write)
    ingest(tmp_path / "raw.npy", tmp_path / "out.zarr", config=_config(), show_progress=False)
    assert seen and set(seen) == {10}  # 8x16x16 uint8 chunks: 2 kB each
    assert zarr.config.get("async.concurrency") == 1

    def failing_write(array, data, offset):  # noqa: ANN001
        raise OSError("device unplugged")

    monkeypatch.setattr(outputs_module, "write_block", failing_write)
    with pytest.raises(OSError):
        ingest(tmp_path / "raw.npy", tmp_path / "again.zarr", config=_config(), scheduler="synchronous", show_progress=False)
    assert zarr.config.get("async.concurrency") == 1
