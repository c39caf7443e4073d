"""The batched, pipelined block loop: a thread per block of a batch reads ahead and writes
behind, every block is written and marked once, and a write error stops the run with the
failed block unmarked."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from axonseg.blockwise import DoneMarkers, make_blocks
from axonseg.blockwise.pipelined import run_pipelined


class Concurrency:
    """Counts how many calls run at once (each holds for ``seconds``)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.now, self.most = seconds, 0, 0
        self._lock = threading.Lock()

    def __call__(self, value):  # noqa: ANN001, ANN204
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.seconds)
        with self._lock:
            self.now -= 1
        return value


def _setup(tmp_path):  # noqa: ANN202
    blocks = make_blocks((4, 8, 12), (4, 4, 4))  # 6 blocks
    markers = DoneMarkers(tmp_path / "blocks", "toy", {"k": 1}, "hash")
    markers.prepare()
    return blocks, markers


@pytest.mark.parametrize(("io_threads", "expected"), [(None, 3), (1, 1)])
def test_blocks_of_a_batch_are_read_and_written_at_once(tmp_path, io_threads, expected):
    blocks, markers = _setup(tmp_path)
    reading, writing, written = Concurrency(0.05), Concurrency(0.05), {}

    def write(block, value):  # noqa: ANN001, ANN202
        writing(None)
        written[block.block_id] = value

    summary = run_pipelined(blocks, lambda b: reading(b.write_roi.offset), lambda xs: [np.sum(x) for x in xs], write,
                            markers=markers, batch_size=3, show_progress=False, io_threads=io_threads)
    assert summary.processed == 6 and summary.skipped == 0
    assert written == {b.block_id: sum(b.write_roi.offset) for b in blocks}  # each block got its own result
    assert reading.most == expected and writing.most == expected
    assert all(markers.is_done(b) for b in blocks)


def test_a_failed_write_stops_the_run_and_leaves_its_block_unmarked(tmp_path):
    blocks, markers = _setup(tmp_path)

    def write(block, value):  # noqa: ANN001, ANN202
        if block.block_id == "0-1-2":
            raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        run_pipelined(blocks, lambda b: 0, lambda xs: xs, write, markers=markers, batch_size=3, show_progress=False)
    done = {b.block_id for b in blocks if markers.is_done(b)}
    assert "0-1-2" not in done and {"0-0-0", "0-0-1", "0-0-2"} <= done
    # the next run computes only what is missing
    again = run_pipelined(blocks, lambda b: 0, lambda xs: xs, lambda b, v: None, markers=markers, batch_size=3,
                          show_progress=False)
    assert again.skipped == len(done) and again.processed == 6 - len(done)
