"""The declared stage and its one runner: border rules, fits, block invariance, resume after an
interruption (bitwise), refusal of a changed config, caches, batching, and the documented toy
stage of docs/adding-a-stage.md run as written."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from axonseg.blockwise import Roi
from axonseg.blockwise.markers import DoneMarkers
from axonseg.blockwise.outputs import BlockFiles, ZarrOutput
from axonseg.blockwise.stage import BlockData, Input, Stage, run_stage
from axonseg.errors import StageError
from axonseg.io import open_level, write_array
from axonseg.io.border import read_with_border

DOC = Path(__file__).resolve().parents[2] / "docs" / "adding-a-stage.md"


def toy_stage():  # noqa: ANN201
    """The toy stage exactly as the doc shows it (its first python block), and its line count."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["smooth_stage"], len(code.strip().splitlines())


@pytest.fixture
def raw(tmp_path: Path) -> tuple[str, np.ndarray]:
    values = np.random.default_rng(0).integers(0, 255, (20, 30, 26)).astype(np.uint8)
    return write_array(tmp_path / "in.zarr", "raw", values, (10.0, 10.0, 10.0)), values


def smoothed(run: Path) -> np.ndarray:
    return open_level(run / "volume.zarr", "smooth", 0, mode="r")[:]


def test_border_rules_match_numpy_pad():
    values = np.arange(5 * 6 * 7).reshape(5, 6, 7)
    roi = Roi.of((-2, -3, 4), (9, 8, 6))
    read = lambda inside: values[inside.to_slices()]  # noqa: E731
    clipped, covered = read_with_border(read, roi, values.shape, "clip")
    assert covered == Roi.of((0, 0, 4), (5, 5, 3)) and np.array_equal(clipped, values[0:5, 0:5, 4:7])
    for border, mode in (("zero", "constant"), ("mirror", "reflect")):
        padded = np.pad(values, 10, mode=mode)
        got, covered = read_with_border(read, roi, values.shape, border)
        assert covered == roi
        assert np.array_equal(got, padded[tuple(slice(o + 10, o + 10 + s) for o, s in zip(roi.offset, roi.shape))])
    # a leading channel axis, and a ROI wider than the volume (folded several times), mirrored
    channels = np.stack([values, -values])
    wide = Roi.of((-7, -1, -9), (20, 8, 25))
    got, _ = read_with_border(lambda inside: channels[(slice(None),) + inside.to_slices()], wide, values.shape, "mirror")
    expected = np.pad(channels, [(0, 0)] + [(20, 20)] * 3, mode="reflect")
    assert np.array_equal(got, expected[(slice(None),) + tuple(slice(o + 20, o + 20 + s) for o, s in zip(wide.offset, wide.shape))])


def test_documented_toy_stage_is_short_block_invariant_and_up_to_date(tmp_path, raw):
    smooth_stage, lines = toy_stage()
    assert lines < 40
    address, values = raw
    expected = ndimage.uniform_filter(values.astype(np.float32), size=3, mode="mirror")
    for name, block in (("a", (8, 16, 16)), ("b", (7, 11, 30))):
        run = tmp_path / name
        result = run_stage(smooth_stage(run, address, block), run, scheduler="threads", show_progress=False)
        assert not result.up_to_date and result.blocks == int(np.prod([-(-s // b) for s, b in zip(values.shape, block)]))
        np.testing.assert_allclose(smoothed(run), expected, rtol=1e-6)
    again = run_stage(smooth_stage(tmp_path / "a", address, (8, 16, 16)), tmp_path / "a", show_progress=False)
    assert again.up_to_date
    assert not (tmp_path / "a" / "blocks").exists()  # markers are cleared once the output is complete


def test_interrupted_stage_resumes_bitwise_and_refuses_another_config(tmp_path, raw, monkeypatch, caplog):
    smooth_stage, _ = toy_stage()
    address, _ = raw
    straight = tmp_path / "straight"
    run_stage(smooth_stage(straight, address, (8, 16, 16)), straight, scheduler="synchronous", show_progress=False)
    run = tmp_path / "run"
    original, marked = DoneMarkers.mark_done, []

    def mark_then_die(self, block):  # noqa: ANN001, ANN202
        original(self, block)
        marked.append(block.block_id)
        if len(marked) == 5:
            raise KeyboardInterrupt  # like kill -9 right after the fifth block was marked

    monkeypatch.setattr(DoneMarkers, "mark_done", mark_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_stage(smooth_stage(run, address, (8, 16, 16)), run, scheduler="synchronous", show_progress=False)
    monkeypatch.setattr(DoneMarkers, "mark_done", original)
    # another config while blocks of the first are on disk: refused, naming the changed key
    with pytest.raises(StageError, match=r"stage 'smooth' .* another config \(changed: block_shape\); pass --restart"):
        run_stage(smooth_stage(run, address, (10, 16, 16)), run, scheduler="synchronous", show_progress=False)
    with caplog.at_level(logging.INFO):
        result = run_stage(smooth_stage(run, address, (8, 16, 16)), run, scheduler="synchronous", show_progress=False)
    assert result.skipped == 5 and "smooth: resuming: 5 of 12 blocks already done, skipped" in caplog.text
    assert np.array_equal(smoothed(run), smoothed(straight))
    restarted = run_stage(smooth_stage(run, address, (10, 16, 16)), run, restart=True, show_progress=False)
    assert restarted.skipped == 0 and np.allclose(smoothed(run), smoothed(straight))


def _sum_stage(folder: Path, volume: np.ndarray, config: dict, batch: bool = False, fit: str = "shrink") -> Stage:
    def process(data: BlockData) -> int:
        return int(data.crop(data["v"]).sum())

    def save(path: Path, block_id: str, total: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{block_id}.txt").write_text(str(total))

    return Stage(
        name="sum", volume_shape=volume.shape, block_shape=(4, 4, 4),
        inputs={"v": Input(lambda roi: volume[roi.to_slices()], volume.shape)},
        output=BlockFiles(folder / "pieces", ("{block_id}.txt",), save), config=config,
        process=None if batch else process, process_batch=(lambda datas: [process(d) for d in datas]) if batch else None,
        batch_size=3, context=((1, 1, 1), (2, 2, 2)), border="zero", fit=fit, cache=True,
    )


def _total(folder: Path) -> int:
    return sum(int(p.read_text()) for p in (folder / "pieces").glob("*.txt"))


def test_batched_overhang_and_cache(tmp_path):
    volume = np.random.default_rng(1).integers(0, 9, (9, 10, 5))
    plain = _sum_stage(tmp_path / "a", volume, {"k": 1})
    run_stage(plain, tmp_path / "a", show_progress=False)
    batched = _sum_stage(tmp_path / "b", volume, {"k": 1}, batch=True, fit="overhang")
    run_stage(batched, tmp_path / "b", scheduler="threads", show_progress=False)
    assert _total(tmp_path / "a") == _total(tmp_path / "b") == int(volume.sum())
    assert {b.read_roi.shape for b in batched.blocks()} == {(7, 7, 7)}  # one read shape with overhang
    assert len({b.read_roi.shape for b in plain.blocks()}) > 1  # shrink: the far blocks read less
    # a cache: markers of another config are dropped, not refused
    DoneMarkers(tmp_path / "c" / "blocks", "sum", {"k": 0}, "other").prepare()
    run_stage(_sum_stage(tmp_path / "c", volume, {"k": 2}), tmp_path / "c", show_progress=False)
    assert _total(tmp_path / "c") == int(volume.sum())


def test_input_without_context_reads_only_the_write_roi(tmp_path):
    """An input declared ``with_context=False`` is read over the write ROI alone (never padded),
    beside an input with the stage's context and border rule."""
    volume = np.random.default_rng(2).integers(1, 9, (9, 10, 5))
    reads: list = []
    seen: dict = {}

    def read_plain(roi):  # noqa: ANN001, ANN202
        reads.append(roi)
        return volume[roi.to_slices()]

    def process(data: BlockData) -> int:
        seen[data.block.block_id] = (data["halo"].shape, data["plain"].shape)
        assert np.array_equal(data.crop(data["halo"]), data["plain"])
        return int(data["plain"].sum())

    def save(path: Path, block_id: str, total: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{block_id}.txt").write_text(str(total))

    stage = Stage(
        name="sum", volume_shape=volume.shape, block_shape=(4, 4, 4),
        inputs={"halo": Input(lambda roi: volume[roi.to_slices()], volume.shape),
                "plain": Input(read_plain, volume.shape, with_context=False)},
        output=BlockFiles(tmp_path / "pieces", ("{block_id}.txt",), save), process=process, config={"k": 1},
        context=((1, 1, 1), (0, 0, 0)), border="zero",
    )
    run_stage(stage, tmp_path, scheduler="synchronous", show_progress=False)
    assert _total(tmp_path) == int(volume.sum())
    assert sorted(map(str, reads)) == sorted(str(block.write_roi) for block in stage.blocks())
    first = stage.blocks()[0]
    assert seen[first.block_id] == ((5, 5, 5), (4, 4, 4))  # zero-filled context vs the write ROI


def test_zarr_output_tiles_chunks_and_records_state(tmp_path):
    output = ZarrOutput(tmp_path / "volume.zarr", "x", (8, 8, 8), np.uint16, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (4, 4, 4))
    assert output.state() is None
    stage = Stage(name="x", volume_shape=(8, 8, 8), block_shape=(4, 4, 4), inputs={}, output=output,
                  process=lambda data: np.full(data.block.write_roi.shape, sum(data.block.index) + 1, np.uint16),
                  config={"v": 1})
    run_stage(stage, tmp_path, show_progress=False)
    assert output.state()["complete"] is True and output.state()["config_hash"] == stage.config_hash
    array = open_level(tmp_path / "volume.zarr", "x", 0, mode="r")
    stored = array[:]
    assert stored[0, 0, 0] == 1 and stored[7, 7, 7] == 4 and stored[0, 4, 7] == 3
    assert [(type(c).__name__, c.level) for c in array.compressors] == [("ZstdCodec", 1)]  # fast to write
    manifest = (tmp_path / "manifests" / "x.jsonl").read_text().splitlines()
    assert len(manifest) == 1 + 8  # a header, then one record of chunk files per block (the resume check)


def test_setup_runs_before_the_first_read_of_every_block(tmp_path):
    """``Stage.setup`` (e.g. glibc's fixed mmap threshold) runs before any block's input is read,
    in the calling process and before each block a worker runs."""
    volume = np.arange(8 * 8 * 8).reshape(8, 8, 8)
    events: list[str] = []

    def read(roi):  # noqa: ANN001, ANN202
        events.append("read")
        return volume[roi.to_slices()]

    def save(path: Path, block_id: str, total: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{block_id}.txt").write_text(str(total))

    stage = Stage(
        name="sum", volume_shape=volume.shape, block_shape=(4, 4, 4), inputs={"v": Input(read, volume.shape)},
        output=BlockFiles(tmp_path / "pieces", ("{block_id}.txt",), save), process=lambda d: int(d["v"].sum()),
        config={"k": 1}, setup=lambda: events.append("setup"),
    )
    run_stage(stage, tmp_path, scheduler="synchronous", show_progress=False)
    assert _total(tmp_path) == int(volume.sum())
    assert events[0] == "setup" and events.count("read") == 8
    assert all(events[i - 1] == "setup" for i, e in enumerate(events) if e == "read")


def _pid_stage(tmp_path: Path, volume: np.ndarray, process, **kwargs) -> Stage:  # noqa: ANN001
    def save(path: Path, block_id: str, result: tuple[int, int]) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{block_id}.txt").write_text(f"{result[0]} {result[1]}")

    return Stage(name="pid", volume_shape=volume.shape, block_shape=(4, 4, 4),
                 inputs={"v": Input(lambda roi: volume[roi.to_slices()], volume.shape)},
                 output=BlockFiles(tmp_path / "pieces", ("{block_id}.txt",), save), process=process,
                 config={"k": 1}, **kwargs)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="the fork pool is Linux-only")
def test_gil_bound_process_runs_in_forked_workers_and_a_dead_worker_is_one_error(tmp_path):
    """A ``gil_bound`` stage's ``process`` (a closure: nothing pickles it) runs in forked worker
    processes on ``threads:N``, in this process on ``synchronous``; the results are the same,
    and a worker killed mid-block is one StageError naming the stage and block, after which
    the same call resumes."""
    import os

    volume = np.random.default_rng(3).integers(0, 9, (8, 8, 12))
    offset = 1000  # a closure's captured value must reach the workers

    def process(data: BlockData) -> tuple[int, int]:
        return os.getpid(), int(data["v"].sum()) + offset

    def pids_and_total(folder: Path) -> tuple[set[int], int]:
        rows = [tuple(map(int, f.read_text().split())) for f in folder.glob("*.txt")]
        return {pid for pid, _ in rows}, sum(total - offset for _, total in rows)

    run_stage(_pid_stage(tmp_path / "t", volume, process, gil_bound=True), tmp_path / "t", scheduler="threads:2",
              show_progress=False)
    pids, total = pids_and_total(tmp_path / "t" / "pieces")
    assert total == int(volume.sum()) and os.getpid() not in pids and len(pids) >= 1
    run_stage(_pid_stage(tmp_path / "s", volume, process, gil_bound=True), tmp_path / "s", scheduler="synchronous",
              show_progress=False)
    assert pids_and_total(tmp_path / "s" / "pieces") == ({os.getpid()}, int(volume.sum()))

    parent = os.getpid()

    def dying(data: BlockData) -> tuple[int, int]:
        if os.getpid() != parent and data.block.index == (1, 1, 2):
            os._exit(9)  # as the OOM killer would
        return process(data)

    with pytest.raises(StageError, match=r"pid: a worker process died while processing block .*re-run the same command"):
        run_stage(_pid_stage(tmp_path / "d", volume, dying, gil_bound=True), tmp_path / "d", scheduler="threads:2",
                  show_progress=False)
    run_stage(_pid_stage(tmp_path / "d", volume, process, gil_bound=True), tmp_path / "d", scheduler="threads:2",
              show_progress=False)
    assert pids_and_total(tmp_path / "d" / "pieces")[1] == int(volume.sum())


def test_gil_bound_without_a_pool_runs_one_block_at_a_time():
    from axonseg.blockwise import one_thread_per_process
    from axonseg.errors import ConfigError

    # without a fork pool a GIL-bound block would only take turns with the other threads
    assert one_thread_per_process("threads") == "threads:1"
    for spec in ("threads:2", "local:2", "synchronous", "tcp://h:1"):
        assert one_thread_per_process(spec) == spec
    with pytest.raises(ConfigError, match="gil_bound"):
        Stage(name="x", volume_shape=(4, 4, 4), block_shape=(4, 4, 4), inputs={}, output=None, process=None,
              config={}, process_batch=lambda items: items, gil_bound=True)
