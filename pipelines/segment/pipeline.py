"""``axonseg segment``, the pipeline (``configs/pipeline.yaml``): one command from raw EM to a
connectome, chaining the stages.

predict -> fragments -> graph -> agglomerate -> relabel -> (evaluate, when ground truth is
given; the segmentation is then relabelled at the best threshold unless the config sets
``segment.relabel_threshold``) -> skeletonize -> export.
Every stage keeps its own done markers and config hash, so re-running the same command after
an interruption resumes where it stopped. The run folder records the config and the inputs it
was made from; a different config, raw or model is refused (naming what changed) unless
``restart`` is given.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import yaml
from pydantic import Field

from axonseg.blockwise import changed_keys
from axonseg.config import StrictModel, load_config, save_resolved
from axonseg.errors import ConfigError, OutputExistsError
from axonseg.io import open_volume
from axonseg.blockwise.outputs import write_json
from axonseg.pipelines.evaluate import EvaluateConfig, evaluate_run
from axonseg.pipelines.export import ExportConfig, run_export
from axonseg.pipelines.run_folder import RunFolder
from axonseg.pipelines.segment.config import SegmentConfig
from axonseg.pipelines.segment.predict import PredictConfig, run_predict
from axonseg.pipelines.segment.relabel import run_relabel
from axonseg.pipelines.segment.stages import run_segment_stages
from axonseg.pipelines.skeletonize import SkeletonizeConfig, run_skeletonize

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
INPUTS_FILE = "inputs.json"
JOB = "segment"


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
        gt: ground-truth labels; when given, every threshold is evaluated and the best is used
            (unless ``config.segment.relabel_threshold`` sets one); recorded in ``inputs.json``.
        synapses: a synapse table for the export; default: the contact proxy.
        scheduler: dask scheduler spec for the blockwise stages.
        restart: accept a changed config, raw or model, and start the stages again from the
            first one whose settings changed (every stage when nothing changed).
        show_progress: draw progress bars.
    """
    config = config or PipelineConfig()
    run_dir = Path(run_dir)
    inputs = run_inputs(raw, model)
    changed = check_run_dir(run_dir, config, inputs, restart)
    digest = save_resolved(config, run_dir / CONFIG_FILE, job=JOB)
    # gt is recorded for the run folder's inputs() only: another gt re-evaluates, it is no new run
    write_json(run_dir / INPUTS_FILE, {**inputs, "gt": _resolved(gt) if gt is not None else None})
    with run_log(run_dir / "run.log"):
        plan = restart_plan(changed, restart)
        if restart:
            logger.warning("segment: --restart%s: starting %s again", f" with changed {', '.join(changed)}" if changed else "",
                           ", ".join(name for name, again in plan.items() if again) or "no stage (export only)")
        return _run_stages(raw, run_dir, config, digest, model, gt, synapses, scheduler, plan, show_progress)


def _resolved(address: str | Path) -> str:
    """An array address with its file part made absolute, so that a run started from another
    folder is recognised as the same run."""
    text = str(address)
    path = Path(text)
    if path.exists():
        return str(path.resolve())
    head, sep, tail = text.rpartition(":")
    if sep and Path(head).exists():
        return f"{Path(head).resolve()}:{tail}"
    return text


def run_inputs(raw: str | Path, model: str | Path | None) -> dict:
    """What a run is made from: the raw array (address, shape, voxel size in nm) and the model.

    Raises:
        InputError: the raw array is missing or unreadable.
    """
    volume = open_volume(raw)
    return {
        "raw": {"address": _resolved(raw), "shape": list(volume.shape), "voxel_size": list(volume.voxel_size)},
        "model": _resolved(model) if model is not None else "default",
    }


def check_run_dir(run_dir: Path, config: PipelineConfig, inputs: dict, restart: bool) -> list[str]:
    """Refuse a run folder that another job, another raw/model or another config made.

    Args:
        run_dir: the run folder (may not exist yet).
        config: the config of this call.
        inputs: :func:`run_inputs` of this call.
        restart: accept a changed config or input (the stages then start again).

    Returns:
        The changed keys that ``restart`` accepted (empty for a new or unchanged run).

    Raises:
        OutputExistsError: the folder holds something that is not an axonseg segment run.
        ConfigError: the run was made with another config, raw or model and ``restart`` is
            False; the message names the changed keys (e.g. ``segment.agglomerate.thresholds``).
    """
    config_file = run_dir / CONFIG_FILE
    if not config_file.exists():
        if run_dir.is_dir() and any(run_dir.iterdir()) and not (run_dir / "volume.zarr").is_dir():
            raise OutputExistsError(
                f"{run_dir} is not empty and holds no axonseg run (no {CONFIG_FILE}, no volume.zarr): choose another --out"
            )
        return []
    try:
        previous = yaml.safe_load(config_file.read_text()) or {}
    except yaml.YAMLError:
        previous = {}
    if not isinstance(previous, dict) or previous.get("job") != JOB:
        job = previous.get("job") if isinstance(previous, dict) else None
        raise OutputExistsError(f"{run_dir} holds the output of another job ({job or 'unknown'}), not a segment run: choose another --out")
    old = {"config": previous.get("config") or {}}
    new = {"config": config.model_dump(mode="json")}
    inputs_file = run_dir / INPUTS_FILE
    if inputs_file.exists():  # runs made before inputs were recorded are compared by config only
        recorded = json.loads(inputs_file.read_text())
        old.update({key: value for key, value in recorded.items() if key != "gt"})
        new.update(inputs)
    keys = [k.removeprefix("config.") for k in changed_keys(old, new)]
    if keys and not restart:
        raise ConfigError(
            f"{run_dir} was made with another config or input (changed: {', '.join(keys)}): "
            "pass --restart to redo it with these, or choose another --out"
        )
    return keys


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
    except BaseException as err:
        # into the file only: the CLI prints the error itself, in one line
        handler.handle(logging.makeLogRecord({"name": __name__, "levelno": logging.ERROR, "levelname": "ERROR",
                                              "msg": "segment stopped: %s", "args": (err or type(err).__name__,)}))
        raise
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)
        handler.close()


#: Stage groups in run order, and the changed keys (their first part) that start each one again.
STAGE_GROUPS = (("predict", {"raw", "model", "predict"}), ("segment", {"segment"}),
                ("evaluate", {"evaluate"}), ("skeletonize", {"skeletonize"}))


def restart_plan(changed: list[str], restart: bool) -> dict[str, bool]:
    """Which stage groups ``restart`` starts again: every group from the first one whose keys
    changed (later stages depend on it); every group when nothing changed. A changed export
    setting alone restarts nothing (the export is always rewritten)."""
    if not restart:
        return {name: False for name, _ in STAGE_GROUPS}
    heads = {key.split(".", 1)[0] for key in changed}
    if not changed:
        first = 0
    else:
        hits = [i for i, (_, keys) in enumerate(STAGE_GROUPS) if keys & heads]
        first = hits[0] if hits else len(STAGE_GROUPS)
    return {name: i >= first for i, (name, _) in enumerate(STAGE_GROUPS)}


def _run_stages(raw, run_dir: Path, config: PipelineConfig, digest: str, model, gt, synapses,  # noqa: ANN001
                scheduler: str, restart: dict[str, bool], show_progress: bool) -> SegmentRun:
    def common(group: str) -> dict:
        return {"scheduler": scheduler, "restart": restart[group], "show_progress": show_progress}

    run_predict(run_dir, raw, model, config.predict, **common("predict"))
    stages = run_segment_stages(run_dir, config.segment, **common("segment"))
    threshold = stages["relabel"].details.get("threshold")
    summary: dict = {}
    if gt is not None:
        report = evaluate_run(run_dir, gt, config.evaluate, **common("evaluate"))
        summary = dict(report.best)
        # the run folder's one rule, now with the evaluated best: the configured threshold, else the best
        chosen = RunFolder(run_dir).choose_threshold(configured=config.segment.relabel_threshold)
        if chosen != threshold:
            threshold = chosen
            run_relabel(run_dir, config.segment, threshold=threshold, **common("segment"))
    skeletons = run_skeletonize(run_dir, config.skeletonize, **common("skeletonize"))
    summary["skeletons"] = skeletons.n_segments
    export = run_export(run_dir, config.formats, synapses, overwrite=True, config=config.export)
    summary.update({"synapses": export.n_synapses, "edges": export.n_pairs, "neurons": export.n_nodes,
                    "proxy_synapses": export.proxy, "connectome": str(export.folder)})
    logger.info("segment: run %s finished (config %s, threshold %s)", run_dir, digest, threshold)
    return SegmentRun(run_dir, digest, threshold, summary)


__all__ = ["PipelineConfig", "SegmentRun", "check_run_dir", "load_pipeline_config", "run_inputs", "run_segment"]
