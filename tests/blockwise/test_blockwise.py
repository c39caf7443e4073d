"""Blocks tile the volume exactly; done markers resume; a changed config refuses to resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from axonseg.blockwise import DoneMarkers, Roi, make_blocks, parse_scheduler, run_blockwise
from axonseg.errors import ConfigError, StageError


def test_write_rois_tile_the_volume_once() -> None:
    blocks = make_blocks((10, 33, 20), (4, 16, 16), context=(1, 2, 2))
    cover = np.zeros((10, 33, 20), dtype=int)
    for block in blocks:
        cover[block.write_roi.to_slices()] += 1
        assert block.read_roi == block.write_roi.grow((1, 2, 2))
        assert block.context_before == (1, 2, 2)
    assert (cover == 1).all()
    assert len(blocks) == 3 * 3 * 2
    assert blocks[-1].write_roi == Roi.of((8, 32, 16), (2, 1, 4))


def test_asymmetric_context() -> None:
    block = make_blocks((8, 8, 8), (4, 4, 4), context=((1, 1, 1), (0, 0, 0)))[0]
    assert block.read_roi == Roi.of((-1, -1, -1), (5, 5, 5))


def test_bad_block_shape() -> None:
    with pytest.raises(ConfigError, match="block_shape"):
        make_blocks((8, 8, 8), (0, 4, 4))


@pytest.mark.parametrize("scheduler", ["synchronous", "threads", "threads:2"])
def test_run_and_resume(tmp_path: Path, scheduler: str) -> None:
    output = np.zeros((8, 8, 8), dtype=int)
    blocks = make_blocks(output.shape, (4, 4, 4))
    markers = DoneMarkers(tmp_path, "stage", {"a": 1}, "h1")
    markers.prepare()
    markers.mark_done(blocks[0])

    def process(block) -> None:  # noqa: ANN001
        output[block.write_roi.to_slices()] += 1

    summary = run_blockwise(blocks, process, markers=markers, scheduler=scheduler, show_progress=False)
    assert (summary.skipped, summary.processed) == (1, 7)
    assert output[:4, :4, :4].sum() == 0 and (output[4:] == 1).all()
    assert markers.count() == 8


def test_changed_config_refuses_to_resume_and_names_keys(tmp_path: Path) -> None:
    DoneMarkers(tmp_path, "stage", {"block": {"shape": [4, 4, 4]}, "t": 0.5}, "h1").prepare()
    with pytest.raises(StageError, match=r"changed: block\.shape.*--restart"):
        DoneMarkers(tmp_path, "stage", {"block": {"shape": [8, 8, 8]}, "t": 0.5}, "h2").prepare()
    restarted = DoneMarkers(tmp_path, "stage", {"block": {"shape": [8, 8, 8]}, "t": 0.5}, "h2")
    restarted.prepare(restart=True)
    assert restarted.count() == 0


def test_scheduler_specs() -> None:
    assert parse_scheduler("local:4") == ("local", 4, None)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", None, "tcp://10.0.0.1:8786")
    with pytest.raises(ConfigError, match="scheduler='gpu'"):
        parse_scheduler("gpu")


@pytest.mark.timeout(120)
def test_local_cluster_runs_blocks(tmp_path: Path) -> None:
    blocks = make_blocks((4, 4, 8), (4, 4, 4))
    markers = DoneMarkers(tmp_path, "stage", {}, "h")
    markers.prepare()
    # a builtin as the block function: worker processes cannot import test modules
    summary = run_blockwise(blocks, repr, markers=markers, scheduler="local:1", show_progress=False)
    assert summary.processed == 2 and markers.count() == 2  # markers written by the workers
