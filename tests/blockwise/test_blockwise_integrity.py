"""Block output fingerprints: done markers that notice deleted or truncated files, the manifest
log of a finished stage, and a full disk turned into one clear error without a false marker.
"""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from axonseg.blockwise import DoneMarkers, make_blocks, run_blockwise
from axonseg.blockwise.integrity import BlockNamedFiles, ZarrChunkFiles, check_record, fingerprint, record_outputs
from axonseg.errors import StageError
from axonseg.io import create_multiscale, open_level, write_block

SHAPE = (8, 20, 24)
BLOCK = (4, 10, 12)


def _array(store: Path, name: str, channels: int | None = None):  # noqa: ANN202
    create_multiscale(store, name, SHAPE, np.uint16, (30, 8, 8), chunk_shape=BLOCK, channels=channels)
    return open_level(store, name)


def _tracked(run: Path, name: str, stage: str = "stage") -> DoneMarkers:
    markers = DoneMarkers(run / "blocks", stage, {"k": 1}, "h1")
    markers.track(ZarrChunkFiles(run / "volume.zarr" / name / "s0"), run, where=f"{run}/volume.zarr/{name}")
    markers.prepare()
    markers.reset_log()
    return markers


def _write_all(array, markers: DoneMarkers, blocks, value: int = 7) -> None:  # noqa: ANN001
    for block in blocks:
        lead = (array.shape[0],) if array.ndim == 4 else ()
        write_block(array, np.full(lead + block.write_roi.shape, value, np.uint16), block.write_roi.offset)
        markers.mark_done(block)


@pytest.mark.parametrize("channels", [None, 3])
def test_chunk_files_are_exactly_the_files_a_block_wrote(tmp_path: Path, channels: int | None) -> None:
    array = _array(tmp_path / "volume.zarr", "a", channels)
    blocks = make_blocks(SHAPE, BLOCK)
    listed = set()
    for block in blocks:
        before = {p for p in (tmp_path / "volume.zarr" / "a" / "s0").rglob("*") if p.is_file()}
        lead = (channels,) if channels else ()
        write_block(array, np.ones(lead + block.write_roi.shape, np.uint16), block.write_roi.offset)
        after = {p for p in (tmp_path / "volume.zarr" / "a" / "s0").rglob("*") if p.is_file()}
        files = ZarrChunkFiles(tmp_path / "volume.zarr" / "a" / "s0")(block)
        assert set(files) == after - before and len(files) == 1  # chunks tile the blocks
        listed.update(files)
    assert len(listed) == len(blocks) == 2 * 2 * 2


def test_fingerprints_catch_deleted_and_truncated_files(tmp_path: Path) -> None:
    for name, body in (("a.bin", b"x" * 300), ("b.bin", b"y" * 50)):
        (tmp_path / name).write_bytes(body)
    record = record_outputs([tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "none.bin"], tmp_path)
    assert record["a.bin"][0] == 300 and record["none.bin"] is None
    assert check_record(record, tmp_path) == []
    (tmp_path / "a.bin").unlink()
    (tmp_path / "b.bin").write_bytes(b"y" * 20)
    assert check_record(record, tmp_path) == ["a.bin: missing", "b.bin: 20 bytes, expected 50"]
    (tmp_path / "b.bin").write_bytes(b"z" * 50)  # same size, other bytes: only the checksum sees it
    assert check_record({"b.bin": record["b.bin"]}, tmp_path) == []
    assert check_record({"b.bin": record["b.bin"]}, tmp_path, checksums=True) == ["b.bin: checksum differs"]
    assert fingerprint(tmp_path / "none.bin") is None


def test_damaged_block_loses_its_marker_and_is_recomputed(tmp_path: Path, caplog) -> None:
    array = _array(tmp_path / "volume.zarr", "a")
    markers = _tracked(tmp_path, "a")
    blocks = make_blocks(SHAPE, BLOCK)
    _write_all(array, markers, blocks)
    marker = json.loads((tmp_path / "blocks" / "stage" / "0-1-1").read_text())
    assert list(marker) == ["volume.zarr/a/s0/c/0/1/1"] and marker["volume.zarr/a/s0/c/0/1/1"][0] > 0
    (tmp_path / "volume.zarr" / "a" / "s0" / "c" / "0" / "1" / "1").unlink()
    chunk = tmp_path / "volume.zarr" / "a" / "s0" / "c" / "1" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:5])
    computed = []

    def process(block):  # noqa: ANN001, ANN202
        computed.append(block.block_id)
        write_block(array, np.full(block.write_roi.shape, 7, np.uint16), block.write_roi.offset)

    with caplog.at_level(logging.INFO, logger="axonseg"):
        summary = run_blockwise(blocks, process, markers=markers, scheduler="synchronous", show_progress=False)
    assert sorted(computed) == ["0-1-1", "1-0-0"] and summary.skipped == 6
    assert "c/0/1/1: missing" in caplog.text and "resuming: 6 of 8 blocks already done, skipped" in caplog.text
    assert (array[:] == 7).all()
    assert all(markers.is_done(b) for b in blocks)


def test_finished_stage_log_finds_damage_and_reopens_only_those_blocks(tmp_path: Path) -> None:
    array = _array(tmp_path / "volume.zarr", "a")
    markers = _tracked(tmp_path, "a")
    blocks = make_blocks(SHAPE, BLOCK)
    _write_all(array, markers, blocks)
    write_block(array, np.zeros(BLOCK, np.uint16), (4, 10, 12))  # an all-fill chunk is not stored
    markers.mark_done(blocks[-1])
    markers.clear()  # the stage finished: markers gone, the log stays
    assert markers.damaged_blocks() == {}
    assert markers.logged_records()["1-1-1"] == {"volume.zarr/a/s0/c/1/1/1": None}
    (tmp_path / "volume.zarr" / "a" / "s0" / "c" / "0" / "0" / "1").unlink()
    with open(markers.log_path, "a") as handle:
        handle.write('{"block":"0-0-0","files":{"volume.zarr/a/s0/c/0/0/0":[1')  # torn by a kill
    damaged = markers.damaged_blocks()
    assert list(damaged) == ["0-0-1"] and damaged["0-0-1"] == ["volume.zarr/a/s0/c/0/0/1: missing"]
    assert markers.reopen(damaged) == 7
    assert markers.done_ids() == sorted(b.block_id for b in blocks if b.block_id != "0-0-1")
    other = DoneMarkers(tmp_path / "blocks", "stage", {"k": 2}, "h2")
    other.track(markers.outputs, tmp_path)
    assert other.logged_records() == {}  # a log of another config is not used


def test_graph_like_files_named_by_block(tmp_path: Path) -> None:
    blocks = make_blocks((4, 4, 8), (4, 4, 4))
    outputs = BlockNamedFiles(tmp_path / "graph", ("nodes/{block_id}.parquet", "edges/{block_id}.parquet"))
    assert outputs(blocks[1]) == [tmp_path / "graph/nodes/0-0-1.parquet", tmp_path / "graph/edges/0-0-1.parquet"]


def test_disk_full_is_one_clear_error_and_the_block_stays_undone(tmp_path: Path) -> None:
    markers = DoneMarkers(tmp_path / "blocks", "stage", {}, "h")
    markers.where = "run/volume.zarr/fragments"
    markers.prepare()
    blocks = make_blocks(SHAPE, BLOCK)
    calls: list[str] = []

    def process(block):  # noqa: ANN001, ANN202
        calls.append(block.block_id)
        if block.block_id == "0-1-0":
            raise OSError(errno.ENOSPC, "No space left on device", "run/volume.zarr/fragments/s0/c/0/1/0")

    with pytest.raises(StageError) as caught:
        run_blockwise(blocks, process, markers=markers, scheduler="synchronous", show_progress=False)
    message = str(caught.value)
    assert message == ("disk full while writing run/volume.zarr/fragments (block 0-1-0 of 8): "
                       "free space and re-run the same command to resume")
    assert calls.count("0-1-0") == 1  # not retried: a full disk stays full
    assert "0-1-0" not in markers.done_ids() and markers.count() == calls.index("0-1-0")


def test_fault_fixture_fails_the_nth_write_like_a_full_disk(tmp_path: Path, full_disk) -> None:
    array = _array(tmp_path / "volume.zarr", "frag")
    disk = full_disk("frag/s0", 2)
    block = np.ones(BLOCK, np.uint16)
    write_block(array, block, (0, 0, 0))
    with pytest.raises(OSError) as caught:
        write_block(array, block, (0, 0, 12))
    assert caught.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        write_block(array, block, (0, 10, 0))  # the disk stays full
    other = _array(tmp_path / "volume.zarr", "other")
    write_block(other, block, (0, 0, 0))  # arrays not named are untouched
    disk.off()
    write_block(array, block, (0, 0, 12))
    assert int(array[:].sum()) == 2 * block.size
