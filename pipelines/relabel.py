"""Relabel stage: one LUT applied to the fragments, blockwise, giving
``RUN/volume.zarr/segmentation`` (uint64). It is a cache: the LUTs are the result, and the
segmentation records which threshold and LUT file it was made from.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Callable

import fastremap
import numpy as np

from axonseg.blockwise import Block, DoneMarkers, make_blocks, run_blockwise
from axonseg.errors import InputError
from axonseg.io import create_multiscale, mark_complete, open_level, open_volume, write_block
from axonseg.segment import relabel
from axonseg.pipelines._segment_source import lut_index, read_best_threshold, remove_if_empty, run_store
from axonseg.pipelines._segment_stage import (
    StageResult,
    begin_stage,
    chunk_shape_for,
    digest,
    group_state,
    median_threshold,
)
from axonseg.pipelines.segment_config import SegmentConfig

logger = logging.getLogger(__name__)

STAGE = "relabel"
OUTPUT = "segmentation"


def _matching(value: float, available: list[float]) -> float | None:
    match = [t for t in available if np.isclose(t, value)]
    return match[0] if match else None


def choose_threshold(run_dir: Path, available: list[float], threshold: float | None, configured: float | None) -> float:
    """The LUT threshold to apply: ``threshold``, else the config's, else the evaluated best
    (``reports/best_threshold.json``), else the median of the run's thresholds.

    Raises:
        InputError: an asked-for threshold outside [0, 1] or without a LUT in the run.
    """
    for name, value in (("threshold", threshold), ("relabel_threshold", configured)):
        if value is None:
            continue
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{name}={value}: expected a value in [0, 1]")
        match = _matching(value, available)
        if match is None:
            raise InputError(f"{name}={value}: the run has LUTs only for thresholds {available}")
        return match
    best = read_best_threshold(run_dir)
    if best is not None:
        match = _matching(best, available)
        if match is not None:
            return match
        logger.warning("reports/best_threshold.json names %s, which has no LUT now; using the median", best)
    return median_threshold(available)


def _load_lut(run_dir: Path, file_name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """The LUT sorted by fragment id, and a hash of its content (a changed LUT is a new cache)."""
    with np.load(Path(run_dir) / "luts" / file_name) as data:
        fragment_ids = np.asarray(data["fragment_ids"], np.uint64)
        segment_ids = np.asarray(data["segment_ids"], np.uint64)
    order = np.argsort(fragment_ids, kind="stable")
    fragment_ids, segment_ids = fragment_ids[order], segment_ids[order]
    content = hashlib.sha256(fragment_ids.tobytes() + segment_ids.tobytes()).hexdigest()[:16]
    return fragment_ids, segment_ids, content


def _block_writer(fragments, target, fragment_ids: np.ndarray, segment_ids: np.ndarray) -> Callable[[Block], None]:  # noqa: ANN001
    def process(block: Block) -> None:
        block_fragments = np.asarray(fragments[block.write_roi.to_slices()])
        if not block_fragments.any():
            return
        # only the block's own ids go to relabel: a LUT of millions costs a search per block
        present = fastremap.unique(block_fragments)
        position = np.minimum(np.searchsorted(fragment_ids, present), max(len(fragment_ids) - 1, 0))
        found = fragment_ids[position] == present if len(fragment_ids) else np.zeros(len(present), bool)
        segmentation = relabel(block_fragments, present[found], segment_ids[position[found]])
        write_block(target, segmentation, block.write_roi.offset)

    return process


def run_relabel(
    run_dir: str | Path,
    config: SegmentConfig | None = None,
    threshold: float | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Write ``RUN/volume.zarr/segmentation`` = the LUT of one threshold applied to the fragments.

    Args:
        run_dir: the run folder; fragments and LUTs must exist.
        config: block shape (voxels) and ``relabel_threshold``; defaults when None.
        threshold: the LUT threshold in [0, 1]; default ``config.relabel_threshold``, else
            ``reports/best_threshold.json``, else the median of the run's thresholds.
        scheduler: ``synchronous``, ``threads[:N]``, ``local[:N]`` or ``tcp://host:port``.
        restart: drop the done markers of an interrupted run with another config and start again.
        show_progress: draw a progress bar.

    Returns:
        A :class:`StageResult`; ``details`` hold ``threshold`` and ``lut_file``.

    Raises:
        InputError: no fragments or LUTs, or a threshold outside [0, 1] or without a LUT.
        StageError: an interrupted run used another config and ``restart`` is False.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    config = config or SegmentConfig()
    store = run_store(run_dir)
    fragments_info = group_state(store, "fragments")
    if not fragments_info or not fragments_info.get("complete"):
        raise InputError(f"{store / 'fragments'}: no complete fragments; run the fragments stage first")
    entries = {float(e["threshold"]): e["file"] for e in lut_index(run_dir).get("luts", [])}
    if not entries:
        raise InputError(f"{run_dir}: no lookup tables (luts/index.json); run the agglomerate stage first")
    chosen = choose_threshold(run_dir, sorted(entries), threshold, config.relabel_threshold)
    fragment_ids, segment_ids, lut_hash = _load_lut(run_dir, entries[chosen])
    lut_file = f"luts/{entries[chosen]}"
    payload = {"fragments": fragments_info.get("config_hash"), "lut": lut_hash, "threshold": chosen,
               "lut_file": lut_file, "block_shape": list(config.block_shape)}
    config_hash = digest(payload)
    geometry = open_volume(store / "fragments")
    markers = DoneMarkers(run_dir / "blocks", STAGE, payload, config_hash)
    blocks = make_blocks(geometry.spatial_shape, config.block_shape)
    details = {"threshold": chosen, "lut_file": lut_file}
    start = begin_stage(markers, group_state(store, OUTPUT), config_hash, restart)
    if start == "done":
        logger.info("relabel: segmentation of threshold %s is up to date", chosen)
        return StageResult(STAGE, config_hash, len(blocks), 0, time.perf_counter() - started, True, details)
    if start == "fresh":
        create_multiscale(
            store, OUTPUT, geometry.spatial_shape, np.uint64, geometry.voxel_size, geometry.offset,
            chunk_shape_for(config.block_shape), factors=[], downsampling="mode",
            attrs={"config_hash": config_hash, "config": payload, **details}, overwrite=True,
        )
    process = _block_writer(open_level(store, "fragments", 0, mode="r"), open_level(store, OUTPUT, 0),
                            fragment_ids, segment_ids)
    summary = run_blockwise(blocks, process, description=STAGE, markers=markers, scheduler=scheduler,
                            show_progress=show_progress)
    mark_complete(store, OUTPUT)
    markers.clear()
    remove_if_empty(run_dir / "blocks")
    seconds = time.perf_counter() - started
    logger.info("relabel: threshold %s (%s) applied in %.1f s -> %s", chosen, lut_file, seconds, store / OUTPUT)
    return StageResult(STAGE, config_hash, len(blocks), summary.skipped, seconds, details=details)
