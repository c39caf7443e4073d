"""Validation through the segmentation pipeline while training: VOI and NERL on the validation ROI
(the `split: val` datasets: not trained on, and never the held-out test data).

Every ``segment_validation_every`` steps the current weights go through the same stages a user
runs (predict -> fragments -> region graph -> agglomeration at every threshold -> AxonEM ERL,
VOI and adapted Rand against ground-truth skeletons), on the first ``split: val`` dataset.
The figures are those of the best threshold (by NERL); they land in ``losses.csv`` as
``hook_nerl``, ``hook_voi_split``, ``hook_voi_merge`` and ``hook_threshold``.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np

from axonseg.io import write_array
from axonseg.model.checkpoint import save_model
from axonseg.model.sampler import TrainingVolume
from axonseg.model.train_config import TrainConfig
from axonseg.model.train_loop import ValidateHook
from axonseg.model.unet import AffinityNet

log = logging.getLogger(__name__)

#: The reported figures (best threshold by NERL); nerl_low / nerl_high bound its 90% bootstrap
#: interval over the validation skeletons (:func:`axonseg.evaluate.nerl_interval`).
METRICS = ("nerl", "nerl_low", "nerl_high", "voi_split", "voi_merge", "threshold")


def segmentation_validation_hook(volume: TrainingVolume, cfg: TrainConfig, work_dir: str | Path) -> ValidateHook:
    """A training ``validate_hook`` that scores the model on ``volume`` through the pipeline.

    Args:
        volume: the validation raw/labels (already cut to its ROI; zyx, voxel size in nm).
        cfg: the training config (``segment_validation_every``, ``segment_validation_thresholds``).
        work_dir: scratch folder for the model snapshot, the volume copy and the run (replaced
            at each validation).

    Returns:
        ``hook(step, model) -> {"nerl", "voi_split", "voi_merge", "threshold"}``; an empty dict
        on steps that are not a multiple of ``cfg.segment_validation_every`` unless ``force``
        (scoring a model file outside training: ``step`` is then only its label in the log).
    """
    from axonseg.model.adapt import CALIBRATION_STATISTICS
    from axonseg.pipelines.evaluate import evaluate_run
    from axonseg.pipelines.segment.config import SegmentConfig
    from axonseg.pipelines.segment.predict import PredictConfig, run_predict
    from axonseg.pipelines.segment.stages import run_segment_stages

    work_dir = Path(work_dir)
    store = work_dir / "heldout.zarr"
    if store.exists():
        shutil.rmtree(store)
    raw_address = write_array(store, "raw", np.ascontiguousarray(volume.raw), volume.voxel_size)
    labels_address = write_array(store, "labels", np.ascontiguousarray(volume.labels), volume.voxel_size)
    block = tuple(int(s) for s in volume.raw.shape)
    segment = SegmentConfig.model_validate(
        {"block_shape": list(block), "agglomerate": {"thresholds": list(cfg.segment_validation_thresholds)}}
    )

    def hook(step: int, model: AffinityNet, force: bool = False) -> dict[str, float]:
        every = cfg.segment_validation_every
        if not force and (every == 0 or step % every):
            return {}
        model_path = work_dir / "model.pt"
        save_model(model, model_path, extra={"step": step})
        run = work_dir / "run"
        if run.exists():
            shutil.rmtree(run)
        run_predict(run, raw_address, model_path, PredictConfig(block_shape=block, batchnorm=CALIBRATION_STATISTICS),
                    scheduler="synchronous", show_progress=False)
        run_segment_stages(run, segment, scheduler="synchronous", show_progress=False)
        best = evaluate_run(run, labels_address, scheduler="synchronous", show_progress=False).best
        metrics = {key: float(best[key]) if best.get(key) is not None else math.nan for key in METRICS}
        log.info("step %d validation %s: NERL %.3f (90%% interval %.3f-%.3f), VOI split %.3f merge %.3f at threshold %s",
                 step, volume.name, metrics["nerl"], metrics["nerl_low"], metrics["nerl_high"], metrics["voi_split"],
                 metrics["voi_merge"], best.get("threshold"))
        return metrics

    return hook


__all__ = ["METRICS", "segmentation_validation_hook"]
