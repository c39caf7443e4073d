"""axonseg segment chains every stage on one volume and resumes as a whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from axonseg.config import load_config
from axonseg.io import create_multiscale, group_attrs, mark_complete, open_level, write_block
from axonseg.model import ModelConfig, build_model, save_model
from axonseg.pipelines.segment.pipeline import PipelineConfig, run_segment

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _raw(tmp_path: Path) -> Path:
    """Dark-walled boxes: a raw the tiny model turns into affinities with some structure."""
    z, y, x = np.meshgrid(np.arange(16), np.arange(48), np.arange(48), indexing="ij")
    raw = np.where((y % 16 == 0) | (x % 16 == 0), 40, 200).astype(np.uint8)
    store = tmp_path / "in.zarr"
    create_multiscale(store, "raw", raw.shape, np.uint8, (10, 10, 10), chunk_shape=(16, 48, 48))
    write_block(open_level(store, "raw"), raw, (0, 0, 0))
    mark_complete(store, "raw")
    return store / "raw"


def test_segment_runs_every_stage_and_is_up_to_date_on_rerun(tmp_path: Path) -> None:
    model_config = ModelConfig(num_fmaps=2, fmap_inc_factor=2, downsample_factors=[[1, 2, 2]], voxel_size=(10, 10, 10))
    save_model(build_model(model_config, seed=0), tmp_path / "model.pt")
    config = PipelineConfig.model_validate({
        "predict": {"block_shape": [8, 24, 24]},
        "segment": {"block_shape": [8, 24, 24], "agglomerate": {"thresholds": [0.3, 0.6]}},
        "skeletonize": {"block_shape": [16, 48, 48]},
        "formats": ["csv"],
    })
    run = tmp_path / "run"
    result = run_segment(_raw(tmp_path), run, config, tmp_path / "model.pt", show_progress=False)
    for name in ("affinities", "fragments", "segmentation"):
        assert group_attrs(run / "volume.zarr", name)["complete"] is True
    assert (run / "luts" / "index.json").exists() and (run / "config.yaml").exists()
    assert (run / "skeletons" / "nodes.parquet").exists()
    log = (run / "run.log").read_text()
    assert "segment: run" in log and "INFO" in log
    assert result.summary["connectome"] == str(run / "connectome")
    first = open_level(run / "volume.zarr", "segmentation", mode="r")[:]
    rerun = run_segment(tmp_path / "in.zarr" / "raw", run, config, tmp_path / "model.pt", show_progress=False)
    assert rerun.config_hash == result.config_hash
    np.testing.assert_array_equal(open_level(run / "volume.zarr", "segmentation", mode="r")[:], first)


def test_shipped_pipeline_config_validates() -> None:
    config = load_config(CONFIGS / "pipeline.yaml", PipelineConfig)
    assert config.segment.agglomerate.thresholds[0] == pytest.approx(0.1)
