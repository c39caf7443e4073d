"""``axonseg segment``, the pipeline (``configs/pipeline.yaml``): one command from raw EM to a
connectome, chaining the stages.

predict -> fragments -> graph -> agglomerate -> relabel -> (evaluate, when ground truth is
given; the segmentation is then relabelled at the best threshold unless the config sets
``segment.relabel_threshold``) -> skeletonize -> export.
Every input is checked before the first stage (:mod:`.inputs`), and the run folder is locked
while the pipeline writes into it (:mod:`axonseg.pipelines.run_lock`). Every stage keeps its
own done markers and config hash, so re-running the same command after an interruption
resumes where it stopped. The run folder records the config and every input; once a stage
has finished, a different config, raw or model is refused (naming what changed) unless
``restart`` is given.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import yaml
from pydantic import Field

from axonseg.blockwise import changed_keys
from axonseg.config import StrictModel, load_config, save_resolved
from axonseg.errors import ConfigError, OutputExistsError
from axonseg.blockwise.outputs import write_json
from axonseg.pipelines.evaluate import EvaluateConfig, evaluate_run
from axonseg.pipelines.export import ExportConfig, run_export
from axonseg.pipelines.run_folder import RunFolder
from axonseg.pipelines.run_lock import LOCK_FILE, run_lock
from axonseg.pipelines.segment.config import SegmentConfig
from axonseg.pipelines.segment.inputs import COMPARED, check_segment_inputs, open_raw, resolved_address
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
    formats: list[Literal["sonata", "nir", "csv", "pynn", "all"]] = Field(
        ["sonata"], description="connectome formats: sonata, nir, csv, pynn or all")


@dataclass
class SegmentRun:
    """Where a pipeline run wrote what."""

    run_dir: Path
    config_hash: str
    threshold: float | None = None
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0


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
    voxel_size: Sequence[float] | None = None,
) -> SegmentRun:
    """Run every stage on ``raw`` into ``run_dir``.

    Every input is checked before anything is written, and ``run_dir`` is locked while the
    stages run (``RUN/.lock``; a second writer is refused).

    Args:
        raw: the raw EM array (any address :func:`axonseg.io.open_volume` takes; voxel size in nm).
        run_dir: the run folder.
        config: per-stage settings; defaults everywhere when None.
        model: the U-Net (.pt); default: the shipped model for the raw's voxel size.
        gt: ground-truth labels; when given, every threshold is evaluated and the best is used
            (unless ``config.segment.relabel_threshold`` sets one); recorded in ``inputs.json``.
        synapses: a synapse table or synth store for the export; default: the ground-truth
            synapses of the raw's own synth store when it has them, else the contact proxy.
        scheduler: dask scheduler spec for the blockwise stages.
        restart: accept a changed config, raw or model, and start the stages again from the
            first one whose settings changed (every stage when nothing changed). Not needed
            while no stage of the earlier run has finished.
        show_progress: draw progress bars.
        voxel_size: nm (zyx), for a raw or gt whose file carries none (``--voxel-size``).

    Raises:
        InputError, ConfigError, StageError: a bad input (before anything is written), or a
            changed config or input of a run with a finished stage and ``restart`` False.
        RunLockedError: another process writes into ``run_dir``.
    """
    started = time.perf_counter()
    config = config or PipelineConfig()
    run_dir = Path(run_dir)
    inputs = check_segment_inputs(raw, model, gt, synapses, voxel_size, scheduler)
    with run_lock(run_dir, JOB):
        changed = check_run_dir(run_dir, config, inputs.compared(), restart)
        digest = save_resolved(config, run_dir / CONFIG_FILE, job=JOB)
        write_json(run_dir / INPUTS_FILE, inputs.record())
        with run_log(run_dir / "run.log"):
            plan = restart_plan(changed, restart or bool(changed))
            if restart:
                logger.warning("segment: --restart%s: starting %s again", f" with changed {', '.join(changed)}" if changed else "",
                               ", ".join(name for name, again in plan.items() if again) or "no stage (export only)")
            elif changed:
                logger.warning("segment: the earlier run in this folder finished no stage: starting again with the "
                               "changed %s", ", ".join(changed))
            if synapses is None and inputs.synapses is not None:
                logger.info("segment: the export uses the ground-truth synapses of the raw's store, %s", inputs.synapses)
            result = _run_stages(raw, run_dir, config, digest, inputs.model_path, gt, inputs.synapses, scheduler, plan,
                                 show_progress, inputs.voxel_size)
    result.seconds = time.perf_counter() - started
    return result


def run_inputs(raw: str | Path, model: str | Path | None, voxel_size: Sequence[float] | None = None) -> dict:
    """What makes a run another run: the raw array (address, shape, voxel size in nm) and the
    model. Reads the raw's metadata only (:func:`.inputs.check_segment_inputs` checks all).

    Raises:
        InputError: the raw array is missing or unreadable, or has no voxel size.
    """
    volume = open_raw(raw, voxel_size)
    return {
        "raw": {"address": resolved_address(raw), "shape": list(volume.shape), "voxel_size": list(volume.voxel_size)},
        "model": resolved_address(model) if model is not None else "default",
    }


def check_run_dir(run_dir: Path, config: PipelineConfig, inputs: dict, restart: bool) -> list[str]:
    """Refuse a run folder that another job, or (once a stage has finished) another raw, model
    or config made.

    Args:
        run_dir: the run folder (may not exist yet).
        config: the config of this call.
        inputs: the raw and model of this call (:func:`run_inputs`,
            :meth:`.inputs.SegmentInputs.compared`).
        restart: accept a changed config or input (the stages then start again).

    Returns:
        The changed keys that were accepted, by ``restart`` or because no stage of the earlier
        run has finished (empty for a new or unchanged run).

    Raises:
        OutputExistsError: the folder holds something that is not an axonseg segment run.
        ConfigError: the run was made with another config, raw or model, a stage of it has
            finished, and ``restart`` is False; the message names the changed keys (e.g.
            ``segment.agglomerate.thresholds``).
    """
    config_file = run_dir / CONFIG_FILE
    if not config_file.exists():
        held = [path for path in run_dir.iterdir() if path.name != LOCK_FILE] if run_dir.is_dir() else []
        if held and not (run_dir / "volume.zarr").is_dir():
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
    old = {"config": _with_defaults(previous.get("config") or {}, config)}
    new = {"config": config.model_dump(mode="json")}
    inputs_file = run_dir / INPUTS_FILE
    if inputs_file.exists():  # runs made before inputs were recorded are compared by config only
        recorded = json.loads(inputs_file.read_text())
        old.update({key: recorded.get(key) for key in COMPARED})
        new.update({key: inputs.get(key) for key in COMPARED})
    keys = [k.removeprefix("config.") for k in changed_keys(old, new)]
    if keys and not restart and _finished_stages(run_dir):
        raise ConfigError(
            f"{run_dir} was made with another config or input (changed: {', '.join(keys)}): "
            "pass --restart to redo it with these, or choose another --out"
        )
    return keys


def _finished_stages(run_dir: Path) -> list[str]:
    """The stages of the run that have finished (a run whose first stage failed has none)."""
    states = RunFolder(run_dir).stage_states()
    return [name for name, state in states.items() if state is not None and state.get("complete", True)]


#: What run.log and the terminal say when Ctrl-C stops a run.
INTERRUPTED = "interrupted; re-run the same command to resume"


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
        reason = INTERRUPTED if isinstance(err, KeyboardInterrupt) else str(err) or type(err).__name__
        handler.handle(logging.makeLogRecord({"name": __name__, "levelno": logging.ERROR, "levelname": "ERROR",
                                              "msg": "segment stopped: %s", "args": (reason,)}))
        raise
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)
        handler.close()


#: Stage groups in run order, and the changed keys (their first part) that start each one again.
STAGE_GROUPS = (("predict", {"raw", "model", "predict"}), ("segment", {"segment"}),
                ("evaluate", {"evaluate"}), ("skeletonize", {"skeletonize"}))


def _with_defaults(recorded: dict, config: PipelineConfig) -> dict:
    """A recorded config with today's defaults for the keys added since (a run made before a new
    setting existed did not change it); as recorded when it no longer validates."""
    try:
        return type(config).model_validate(recorded).model_dump(mode="json")
    except (ValueError, TypeError):
        return recorded


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
                scheduler: str, restart: dict[str, bool], show_progress: bool,
                voxel_size: Sequence[float] | None = None) -> SegmentRun:
    def common(group: str) -> dict:
        return {"scheduler": scheduler, "restart": restart[group], "show_progress": show_progress}

    run_predict(run_dir, raw, model, config.predict, voxel_size=voxel_size, **common("predict"))
    stages = run_segment_stages(run_dir, config.segment, **common("segment"))
    threshold = stages["relabel"].details.get("threshold")
    summary: dict = {}
    if gt is not None:
        report = evaluate_run(run_dir, gt, config.evaluate, voxel_size=voxel_size, **common("evaluate"))
        summary = dict(report.best)
        # the run folder's one rule, now with the evaluated best: the configured threshold, else the best
        chosen = RunFolder(run_dir).choose_threshold(configured=config.segment.relabel_threshold)
        if chosen != threshold:
            threshold = chosen
            run_relabel(run_dir, config.segment, threshold=threshold, **common("segment"))
    skeletons = run_skeletonize(run_dir, config.skeletonize, **common("skeletonize"))
    summary["skeletons"] = skeletons.n_segments
    export = run_export(run_dir, config.formats, synapses, overwrite=True, config=config.export, written_by="segment")
    summary.update({"synapses": export.n_synapses, "edges": export.n_pairs, "neurons": export.n_nodes,
                    "proxy_synapses": export.proxy, "connectome": str(export.folder),
                    "synapse_source": None if export.proxy else str(synapses if synapses is not None else config.export.synapses)})
    logger.info("segment: run %s finished (config %s, threshold %s)", run_dir, digest, threshold)
    return SegmentRun(run_dir, digest, threshold, summary)


__all__ = ["PipelineConfig", "SegmentRun", "check_run_dir", "load_pipeline_config", "run_inputs", "run_segment"]
