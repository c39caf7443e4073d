"""What ``axonseg segment`` says first (issue #17): a line at once, before the slow imports, and
no bfloat16 timing when predict is already done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CONFIG = """\
predict: {block_shape: [16, 64, 64], precision: auto}
segment:
  block_shape: [16, 64, 64]
  agglomerate: {thresholds: [0.5]}
skeletonize: {block_shape: [16, 64, 64], context: [2, 8, 8]}
formats: [csv]
"""


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory) -> dict[str, Path]:
    from axonseg.model import ModelConfig, build_model, save_model
    from axonseg.pipelines.synth import write_synth

    root = tmp_path_factory.mktemp("console_inputs")
    write_synth(root / "in.zarr", (16, 64, 64), (30.0, 8.0, 8.0), seed=0, show_progress=False)
    model_config = ModelConfig(num_fmaps=2, fmap_inc_factor=2, downsample_factors=[[1, 2, 2]], voxel_size=(30, 8, 8))
    save_model(build_model(model_config, seed=0), root / "model.pt")
    return {"raw": root / "in.zarr" / "raw", "model": root / "model.pt"}


def test_a_finished_predict_is_not_timed_again(tiny_inputs, tmp_path, monkeypatch):
    import axonseg.model.predict as predict_module
    from axonseg.io import group_state
    from axonseg.pipelines.segment.pipeline import PipelineConfig, run_segment

    timed = []
    monkeypatch.setattr(predict_module, "cpu_bf16_is_fast", lambda *args: timed.append(args) or False)
    config = PipelineConfig.model_validate(yaml.safe_load(CONFIG))
    run = tmp_path / "run"
    run_segment(tiny_inputs["raw"], run, config, tiny_inputs["model"], show_progress=False)
    assert len(timed) == 1  # "auto" on a CPU: timed once, float32 chosen
    assert group_state(run / "volume.zarr", "affinities")["config"]["precision"] == "float32"
    config_hash = group_state(run / "volume.zarr", "affinities")["config_hash"]
    run_segment(tiny_inputs["raw"], run, config, tiny_inputs["model"], show_progress=False)
    assert len(timed) == 1  # the finished predict reused its recorded precision: nothing timed, nothing printed
    assert group_state(run / "volume.zarr", "affinities")["config_hash"] == config_hash  # still up to date


def test_segment_says_it_started_before_anything_else(tmp_path):
    """The first line comes before the seconds of imports and input checks (here the input is
    missing, so the one-line error follows it)."""
    result = subprocess.run([sys.executable, "-m", "axonseg.cli", "segment", str(tmp_path / "raw.zarr/raw"),
                             "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "COLUMNS": "300"})
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1
    assert "segment:" in lines[0] and "checking the inputs" in lines[0]
    assert lines[-1].startswith("error: ") and "raw.zarr: no such file" in lines[-1]
