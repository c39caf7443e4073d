"""``axonseg segment``: one command from raw EM to a connectome, chaining the stage pipelines.

predict -> fragments -> graph -> agglomerate -> relabel -> (evaluate, when ground truth is
given; the segmentation is then relabelled at the best threshold) -> skeletonize -> export.
Every stage keeps its own done markers and config hash, so re-running the same command after
an interruption resumes where it stopped.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pydantic import Field

from axonseg.config import StrictModel, load_config, save_resolved
from axonseg.pipelines.evaluate import EvaluateConfig, evaluate_run
from axonseg.pipelines.export import ExportConfig, run_export
from axonseg.pipelines.predict import PredictConfig, run_predict
from axonseg.pipelines.relabel import run_relabel
from axonseg.pipelines.segment_config import SegmentConfig
from axonseg.pipelines.segment_stages import run_segment_stages
from axonseg.pipelines.skeletonize import SkeletonizeConfig, run_skeletonize

logger = logging.getLogger(__name__)


class PipelineConfig(StrictModel):
    """The whole pipeline's config: one section per stage (see configs/pipeline.yaml)."""

    predict: PredictConfig = Field(default_factory=PredictConfig)
    segment: SegmentConfig = Field(default_factory=SegmentConfig)
    skeletonize: SkeletonizeConfig = Field(default_factory=SkeletonizeConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    formats: list[str] = Field(["sonata"], description="connectome formats: sonata, nir, csv, pynn or all")


@dataclass
class SegmentRun:
    """Where a pipeline run wrote what."""

    run_dir: Path
    config_hash: str
    threshold: float | None = None
    summary: dict = field(default_factory=dict)


def load_pipeline_config(path: str | Path | None) -> PipelineConfig:
    return PipelineConfig() if path is None else load_config(path, PipelineConfig)


def run_segment(
    raw: str | Path,
    run_dir: str | Path,
    config: PipelineConfig | None = None,
    model: str | Path | None = None,
    gt: str | Path | None = None,
    synapses: str | Path | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
) -> SegmentRun:
    """Run every stage on ``raw`` into ``run_dir``.

    Args:
        raw: the raw EM array (any address :func:`axonseg.io.open_volume` takes; voxel size in nm).
        run_dir: the run folder.
        config: per-stage settings; defaults everywhere when None.
        model: the U-Net (.pt); default: the shipped model for the raw's voxel size.
        gt: ground-truth labels; when given, every threshold is evaluated and the best is used.
        synapses: a synapse table for the export; default: the contact proxy.
        scheduler: dask scheduler spec for the blockwise stages.
        restart: start stages again after a config change.
        show_progress: draw progress bars.
    """
    config = config or PipelineConfig()
    run_dir = Path(run_dir)
    digest = save_resolved(config, run_dir / "config.yaml", job="segment")
    with run_log(run_dir / "run.log"):
        return _run_stages(raw, run_dir, config, digest, model, gt, synapses, scheduler, restart, show_progress)


@contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Append every axonseg log record (INFO and up) to ``path`` while the body runs."""
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("axonseg")
    previous = package.level
    package.addHandler(handler)
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)
        handler.close()


def _run_stages(raw, run_dir: Path, config: PipelineConfig, digest: str, model, gt, synapses,  # noqa: ANN001
                scheduler: str, restart: bool, show_progress: bool) -> SegmentRun:
    common = {"scheduler": scheduler, "restart": restart, "show_progress": show_progress}
    run_predict(run_dir, raw, model, config.predict, **common)
    stages = run_segment_stages(run_dir, config.segment, **common)
    threshold = stages["relabel"].details.get("threshold")
    summary: dict = {}
    if gt is not None:
        report = evaluate_run(run_dir, gt, config.evaluate, **common)
        summary = dict(report.best)
        if report.best_threshold is not None and report.best_threshold != threshold:
            threshold = report.best_threshold
            run_relabel(run_dir, config.segment, threshold=threshold, **common)
    skeletons = run_skeletonize(run_dir, config.skeletonize, **common)
    summary["skeletons"] = skeletons.n_segments
    export = run_export(run_dir, config.formats, synapses, overwrite=True, config=config.export)
    summary.update({"synapses": export.n_synapses, "edges": export.n_pairs, "neurons": export.n_nodes,
                    "proxy_synapses": export.proxy, "connectome": str(export.folder)})
    logger.info("segment: run %s finished (config %s, threshold %s)", run_dir, digest, threshold)
    return SegmentRun(run_dir, digest, threshold, summary)


__all__ = ["PipelineConfig", "SegmentRun", "load_pipeline_config", "run_segment"]
