"""The evaluation report of ``axonseg segment --gt`` names what it evaluated: the run folder, the
raw, the ground truth and the model file, with the date and the axonseg version."""

from __future__ import annotations

import json

import yaml

CONFIG = """\
predict: {block_shape: [16, 64, 64], precision: float32}
segment:
  block_shape: [16, 64, 64]
  agglomerate: {thresholds: [0.4, 0.6]}
skeletonize: {block_shape: [16, 64, 64], context: [2, 8, 8]}
evaluate: {block_shape: [16, 64, 64]}
formats: [csv]
"""


def test_segment_report_header_names_the_inputs(tmp_path):
    from axonseg.model import ModelConfig, build_model, save_model
    from axonseg.pipelines.segment.pipeline import PipelineConfig, run_segment
    from axonseg.pipelines.synth import write_synth

    write_synth(tmp_path / "in.zarr", (16, 64, 64), (30.0, 8.0, 8.0), seed=0, show_progress=False)
    model_config = ModelConfig(num_fmaps=2, fmap_inc_factor=2, downsample_factors=[[1, 2, 2]], voxel_size=(30, 8, 8))
    save_model(build_model(model_config, seed=0), tmp_path / "model.pt")
    run = tmp_path / "run"
    run_segment(tmp_path / "in.zarr" / "raw", run, PipelineConfig.model_validate(yaml.safe_load(CONFIG)),
                tmp_path / "model.pt", gt=tmp_path / "in.zarr" / "labels", show_progress=False)
    header = json.loads((run / "reports" / "evaluation.json").read_text())["header"]
    assert header["run folder"] == str(run.resolve())
    assert header["raw"] == str((tmp_path / "in.zarr" / "raw").resolve())
    assert header["gt"].startswith(str(tmp_path / "in.zarr" / "labels"))
    assert header["model"] == str(tmp_path / "model.pt")
    page = (run / "reports" / "evaluation.html").read_text()
    assert f"<tr><th>model</th><td>{tmp_path / 'model.pt'}</td></tr>" in page
