"""``axonseg evaluate``: score a run's segmentations (every LUT threshold) or any label array
against ground truth, blockwise: ERL/NERL (AxonEM), VOI, adapted Rand, split and merge lists.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator

from axonseg.blockwise import Roi
from axonseg.config import ShapeTriple, StrictModel, config_hash, load_config, save_resolved
from axonseg.errors import InputError
from axonseg.evaluate import SUMMARY_KEYS, EvaluationResult
from axonseg.io import Volume, group_exists, open_volume
from axonseg.skeleton import SkeletonParams
from axonseg.pipelines.evaluate._blocks import accumulate_blockwise
from axonseg.pipelines.evaluate._gt_skeletons import gt_skeletons
from axonseg.pipelines.evaluate.report import write_report
from axonseg.pipelines.labels import check_not_intensity, check_same_grid, open_labels, read_roi
from axonseg.pipelines.run_folder import RunFolder, remove_if_empty

logger = logging.getLogger(__name__)

STAGE = "evaluate"
CRITERION = "highest nerl; ties: lowest voi_split + voi_merge"


class EvaluateConfig(StrictModel):
    """How ``axonseg evaluate`` scores (one flat YAML, ``configs/evaluate.yaml``)."""

    merge_threshold: int = Field(0, ge=0, description="a segment merges skeletons when two have more than this many nodes in it")
    mask_threshold: int | None = Field(None, ge=0, description="non-axon mask voxels above which a segment merges; None: merge_threshold")
    erl_intervals: list[float] | None = Field(None, description="ascending skeleton-length bounds in nm for ERL per interval")
    block_shape: ShapeTriple = Field((64, 256, 256), description="block shape in voxels (z, y, x)")
    report_rows: int = Field(100, ge=1, description="rows of the split and merge lists kept in the JSON")
    skeleton: SkeletonParams = Field(default_factory=SkeletonParams, description="kimimaro settings for skeletonizing gt labels (AxonEM)")


    @field_validator("erl_intervals")
    @classmethod
    def _ascending(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) < 2 or any(b <= a for a, b in zip(value, value[1:]))):
            raise ValueError("erl_intervals needs at least two ascending bounds in nm")
        return value


def load_evaluate_config(path: str | Path | None = None) -> EvaluateConfig:
    """The config from a YAML file, or the defaults when ``path`` is None."""
    return EvaluateConfig() if path is None else load_config(path, EvaluateConfig)


@dataclass(frozen=True)
class EvaluationReport:
    """What an evaluation found and wrote.

    Attributes:
        rows: one summary dict per segmentation (key ``threshold``; None for a plain array).
        best: the chosen row.
        results: ``{threshold or None: EvaluationResult}``.
        json_path, html_path: files written (None where nothing was written).
        gt_skeletons: where the gt skeletons came from.
        config_hash: hash of the resolved config.
    """

    rows: list[dict]
    best: dict
    results: dict[Hashable, EvaluationResult]
    json_path: Path | None
    html_path: Path | None = None
    gt_skeletons: str = ""
    config_hash: str = ""

    @property
    def best_threshold(self) -> float | None:
        return self.best.get("threshold")


def choose_best(rows: list[dict]) -> dict:
    """The row with the highest NERL; ties (and rows without NERL) go to the lowest VOI sum."""

    def rank(row: dict) -> tuple[float, float]:
        nerl = row.get("nerl")
        nerl = -math.inf if nerl is None or not math.isfinite(nerl) else nerl
        return (-nerl, row["voi_split"] + row["voi_merge"])

    return min(rows, key=rank)


def _score(
    gt: Volume, read, keys, skeletons, config: EvaluateConfig, spool: Path, run_dir: Path, state: dict, mask,  # noqa: ANN001
    scheduler, show_progress, restart: bool = False,  # noqa: ANN001
) -> tuple[list[dict], dict[Hashable, EvaluationResult]]:
    accumulators = accumulate_blockwise(gt, read, keys, skeletons, config.block_shape, spool, run_dir, state, mask=mask,
                                        scheduler=scheduler, restart=restart, show_progress=show_progress)
    # the blocks, and so the skeleton nodes outside them, are the same for every segmentation: warn once
    results = {
        key: acc.finish(config.merge_threshold, config.mask_threshold, config.erl_intervals, warn_outside=i == 0)
        for i, (key, acc) in enumerate(accumulators.items())
    }
    rows = [{"threshold": key, **results[key].summary()} for key in keys]
    return rows, results


def _open_mask(mask: str | Path | None, gt: Volume) -> Volume | None:
    if mask is None:
        return None
    volume = open_volume(mask, voxel_size=gt.voxel_size)
    if volume.spatial_shape != gt.spatial_shape:
        raise InputError(f"mask {volume.source} has shape {volume.spatial_shape} but gt has {gt.spatial_shape}: expected equal shapes")
    return volume


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, allow_nan=False))
    os.replace(tmp, path)


def _headline(row: dict) -> dict:
    """The ``--json`` contract keys first (NaN as None), then the rest of the row."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    return {**{k: clean.get(k) for k in SUMMARY_KEYS}, **clean}


def evaluate_run(
    run_dir: str | Path,
    gt: str | Path | None = None,
    config: EvaluateConfig | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
    mask: str | Path | None = None,
    voxel_size: tuple[float, float, float] | None = None,
) -> EvaluationReport:
    """Evaluate every agglomeration threshold of a run (or its segmentation) and pick the best.

    Args:
        run_dir: the run folder.
        gt: ground-truth labels address; None: the one ``axonseg segment --gt`` recorded
            (``inputs.json``, with its ``--voxel-size``), else ``RUN/volume.zarr/labels``.
        config: metric and block settings; defaults when None.
        scheduler: ``synchronous``, ``threads[:N]``, ``local[:N]`` or ``tcp://host:port``.
        restart: drop partial results of an interrupted evaluation.
        show_progress: draw progress bars.
        mask: optional non-axon mask address (nonzero = not an axon) for ERL's merge rule.
        voxel_size: nm (z, y, x) for a gt whose file carries none; must agree with one that does.

    Returns:
        An :class:`EvaluationReport`; ``RUN/reports/evaluation.{json,html}``,
        ``RUN/reports/best_threshold.json`` and ``RUN/reports/evaluate.config.yaml`` are written.

    Raises:
        InputError: no segmentation, gt not integer / all zero / image intensities, or on another
            grid than the run (refused before anything is written).
    """
    run_dir = Path(run_dir)
    config = config or EvaluateConfig()
    run = RunFolder(run_dir)
    store = run.store
    if gt is None:  # the gt `segment --gt` recorded (with its --voxel-size), else the run's own labels
        recorded = run.inputs()
        if recorded["gt"] is not None:
            gt, voxel_size = recorded["gt"], voxel_size if voxel_size is not None else recorded["voxel_size"]
            logger.info("evaluate: the ground truth this run was segmented with, %s", gt)
        elif group_exists(store, "labels"):
            gt = store / "labels"
        else:
            raise InputError(f"{run_dir}: no ground truth given, none recorded by `axonseg segment --gt` and no "
                             "volume.zarr/labels; pass --gt")
    labels = run.labels_for_evaluation()
    gt_volume = open_labels(gt, "gt", voxel_size)
    check_not_intensity(gt_volume, "gt")  # raw EM as gt would score, and replace the reports
    check_same_grid(labels.volume, gt_volume)
    mask_volume = _open_mask(mask, gt_volume)
    digest = config_hash(config)
    blocks_root = run.blocks_dir
    skeletons, skeleton_source = gt_skeletons(gt, gt_volume, config.skeleton, config.block_shape,
                                              run.skeletons_dir / "gt", blocks_root, scheduler, show_progress)
    state = {**config.model_dump(mode="json"), "gt": gt_volume.source, "pred": labels.describe(),
             "luts": run.lut_index(), "mask": None if mask is None else str(mask)}
    spool = blocks_root / f"{STAGE}-stats"
    rows, results = _score(gt_volume, labels.read, labels.keys, skeletons, config, spool, run.path, state, mask_volume,
                           scheduler, show_progress, restart)
    best = choose_best(rows)
    best_result = results[best["threshold"]]
    reports = run.reports_dir
    json_path, html_path = write_report(
        rows, best, _lengths(best_result, "skeleton_lengths_nm"), _lengths(best_result, "run_lengths_nm"),
        best_result.split_merge.splits.to_records(config.report_rows) if best_result.split_merge else [],
        best_result.split_merge.merges.to_records(config.report_rows) if best_result.split_merge else [],
        reports, overwrite=True, title=f"axonseg evaluation of {run_dir.name}",
        inputs={"run folder": run_dir.resolve(), "raw": run.raw_address(), "gt": gt_volume.source,
                "model": run.model_path()},
    )
    written = json.loads(json_path.read_text())
    _write_json(json_path, {**_headline(best), "best_threshold": best["threshold"], "criterion": CRITERION,
                            "gt": gt_volume.source, "pred": labels.describe(), "gt_skeletons": skeleton_source,
                            "config_hash": digest, **written})
    run.write_best_threshold({"threshold": best["threshold"], "criterion": CRITERION, **_headline(best)})
    save_resolved(config, reports / "evaluate.config.yaml", job=STAGE)
    shutil.rmtree(spool, ignore_errors=True)
    remove_if_empty(blocks_root)
    logger.info("evaluate: best threshold %s (nerl %s) of %d; report in %s", best["threshold"], best["nerl"],
                len(rows), reports)
    return EvaluationReport(rows, best, results, json_path, html_path, skeleton_source, digest)


def evaluate_arrays_blockwise(
    pred_address: str | Path,
    gt_address: str | Path,
    voxel_size: tuple[float, float, float] | None = None,
    json_out: str | Path | None = None,
    config: EvaluateConfig | None = None,
    scheduler: str = "threads",
    show_progress: bool = True,
    mask: str | Path | None = None,
) -> EvaluationReport:
    """Score any label array (from any tool) against ground truth, block by block.

    Args:
        pred_address: the segmentation (``store.zarr/ds``, ``file.h5:ds``, tif, npy, n5).
        gt_address: ground-truth labels (0 = unlabelled); a zarr store with a ``skeletons``
            group (``axonseg synth``) supplies the skeletons, else gt is skeletonized.
        voxel_size: nm (z, y, x) for arrays whose files carry none; must agree with files that do.
        json_out: write the summary here (plus ``<stem>.config.yaml`` and the gt skeleton cache
            ``<stem>.gt_skeletons/`` beside it); None writes nothing.
        config: metric and block settings; defaults when None.
        scheduler: dask scheduler spec.
        show_progress: draw progress bars.
        mask: optional non-axon mask address.

    Returns:
        An :class:`EvaluationReport` with one row (``threshold`` None).

    Raises:
        InputError: shape, voxel-size or offset mismatch, float labels, image intensities, all-zero gt.
    """
    config = config or EvaluateConfig()
    pred = open_labels(pred_address, "pred", voxel_size)
    gt = open_labels(gt_address, "gt", voxel_size)
    check_not_intensity(gt, "gt")
    check_not_intensity(pred, "pred")
    check_same_grid(pred, gt)
    mask_volume = _open_mask(mask, gt)
    json_path = Path(json_out) if json_out is not None else None
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
    # Beside the output, the scratch folder is on a file system that cluster workers share.
    with tempfile.TemporaryDirectory(prefix=".axonseg-evaluate-", dir=json_path.parent if json_path else None) as scratch:
        work = Path(scratch)
        cache = json_path.with_name(json_path.stem + ".gt_skeletons") if json_path else work / "gt_skeletons"
        skeletons, skeleton_source = gt_skeletons(gt_address, gt, config.skeleton, config.block_shape, cache,
                                                  None, scheduler, show_progress)

        def read(roi: Roi) -> dict:
            return {None: read_roi(pred, roi)}

        state = {**config.model_dump(mode="json"), "gt": gt.source, "pred": pred.source}
        rows, results = _score(gt, read, [None], skeletons, config, work / "stats", work, state, mask_volume, scheduler,
                               show_progress)
    digest = config_hash(config)
    if json_path is not None:
        payload = {**_headline(rows[0]), "pred": pred.source, "gt": gt.source, "voxel_size": list(gt.voxel_size),
                   "offset_nm": list(gt.offset), "gt_skeletons": skeleton_source, "config_hash": digest,
                   "details": results[None].to_dict(config.report_rows)}
        _write_json(json_path, _json_safe(payload))
        save_resolved(config, json_path.with_name(json_path.stem + ".config.yaml"), job=STAGE)
    return EvaluationReport(rows, rows[0], results, json_path, None, skeleton_source, digest)


def _lengths(result: EvaluationResult, name: str):  # noqa: ANN202
    return getattr(result.erl, name) if result.erl is not None else []


def _json_safe(value):  # noqa: ANN001, ANN202
    """NaN and inf become None, recursively (JSON has neither)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
