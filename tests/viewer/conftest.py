"""A small demo run folder for the viewer tests (written once per module)."""

from __future__ import annotations

import pytest

from axonseg.pipelines.proofread_demo import write_demo_run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return write_demo_run(tmp_path_factory.mktemp("run") / "run", shape=(16, 64, 64), box=(4, 8, 8))


SEGMENT_CONFIG = """\
predict: {block_shape: [16, 64, 64], precision: float32}
segment:
  block_shape: [16, 64, 64]
  agglomerate: {thresholds: [0.3, 0.6]}
skeletonize: {block_shape: [16, 64, 64], context: [2, 8, 8]}
formats: [csv]
"""


@pytest.fixture(scope="session")
def segment_run(tmp_path_factory):
    """A real ``axonseg segment`` run (tiny random-weights model) on a 16 x 64 x 64 synthetic
    volume at 30 x 8 x 8 nm; its raw stays in ``in.zarr`` beside the run folder.

    Returns:
        ``{"run": run folder, "raw": raw address, "root": folder of both}``.
    """
    import yaml

    from axonseg.model import ModelConfig, build_model, save_model
    from axonseg.pipelines.segment.pipeline import PipelineConfig, run_segment
    from axonseg.pipelines.synth import write_synth

    root = tmp_path_factory.mktemp("segment_run")
    write_synth(root / "in.zarr", (16, 64, 64), (30.0, 8.0, 8.0), seed=0, show_progress=False)
    model_config = ModelConfig(num_fmaps=2, fmap_inc_factor=2, downsample_factors=[[1, 2, 2]], voxel_size=(30, 8, 8))
    save_model(build_model(model_config, seed=0), root / "model.pt")
    config = PipelineConfig.model_validate(yaml.safe_load(SEGMENT_CONFIG))
    run_segment(root / "in.zarr" / "raw", root / "run", config, root / "model.pt", show_progress=False)
    return {"run": root / "run", "raw": root / "in.zarr" / "raw", "root": root}
