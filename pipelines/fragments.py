"""Fragments stage: watershed supervoxels from a run's affinities, blockwise and resumable.

Each block reads its write ROI plus context (clipped at the volume border), runs the
watershed, and writes only its write ROI into ``RUN/volume.zarr/fragments`` (uint64). Ids are
made globally unique by the block's linear index times the voxels of a full block. Blocks
outside the mask, or whose write ROI has all-zero affinities, write nothing (background).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import fastremap
import numpy as np

from axonseg.blockwise import Block, DoneMarkers, Roi, make_blocks, run_blockwise
from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.segment import watershed_fragments
from axonseg.pipelines._segment_source import remove_if_empty, run_store
from axonseg.pipelines._segment_stage import (
    Affinities,
    StageResult,
    begin_stage,
    chunk_shape_for,
    digest,
    group_state,
    open_affinities,
    open_mask,
    read_mask,
)
from axonseg.pipelines.segment_config import SegmentConfig

logger = logging.getLogger(__name__)

STAGE = "fragments"


def fragments_payload(affinities: Affinities, config: SegmentConfig) -> dict:
    """Everything the fragments depend on: the affinities, block grid, mask and settings."""
    return {
        "affinities": affinities.source_hash,
        "offsets": affinities.offsets,
        "block_shape": list(config.block_shape),
        "mask": config.mask,
        "fragments": config.fragments.model_dump(mode="json"),
    }


def _block_writer(
    affinities: Affinities, mask, target, config: SegmentConfig  # noqa: ANN001
) -> Callable[[Block], None]:
    """The per-block job: watershed on the read ROI, write the write ROI with unique ids."""
    volume = Roi.of((0, 0, 0), affinities.shape)
    grid = tuple(-(-s // b) for s, b in zip(affinities.shape, config.block_shape))
    ids_per_block = int(np.prod(config.block_shape))
    settings = config.fragments

    def process(block: Block) -> None:
        read = block.read_roi.intersect(volume)
        centre = block.write_roi.to_slices(read.offset)
        mask_block = read_mask(mask, read)
        # empty blocks write nothing: the array's fill value is already 0
        if mask_block is not None and not mask_block[centre].any():
            return
        values = affinities.read(read)
        # no prediction in the write ROI (e.g. outside the imaged area): leave it background,
        # rather than flooding it from seeds in the context
        if not values[(slice(None),) + centre].any():
            return
        fragments, _ = watershed_fragments(
            values, affinities.offsets, affinities.voxel_size,
            boundary_threshold=settings.boundary_threshold, seed_radius=settings.seed_radius,
            seed_method=settings.seed_method, min_size=settings.min_size,
            per_section=settings.per_section, mask=mask_block,
        )
        written = np.ascontiguousarray(fragments[centre])
        if not written.any():
            return
        # renumbering the write ROI alone bounds its ids by the voxels of a block, however many
        # fragments the context held, so block_index * ids_per_block keeps ids unique
        written, _ = fastremap.renumber(written, preserve_zero=True)
        ids = written.astype(np.uint64)
        id_offset = np.uint64(int(np.ravel_multi_index(block.index, grid)) * ids_per_block)
        ids[ids > 0] += id_offset
        write_block(target, ids, block.write_roi.offset)

    return process


def run_fragments(
    run_dir: str | Path,
    config: SegmentConfig | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Write ``RUN/volume.zarr/fragments`` (uint64, zyx) from ``RUN/volume.zarr/affinities``.

    Args:
        run_dir: the run folder.
        config: block shape (voxels), fragment settings, offsets and mask; defaults when None.
        scheduler: ``synchronous``, ``threads[:N]``, ``local[:N]`` or ``tcp://host:port``.
        restart: drop the done markers of an interrupted run with another config and start again.
        show_progress: draw a progress bar.

    Returns:
        A :class:`StageResult`; ``up_to_date`` when complete fragments of this config exist.

    Raises:
        InputError: no run folder, missing or mismatching affinities or mask.
        StageError: an interrupted run used another config and ``restart`` is False.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    config = config or SegmentConfig()
    store = run_store(run_dir)
    affinities = open_affinities(store, config)
    mask = open_mask(store, config.mask, affinities.shape)
    payload = fragments_payload(affinities, config)
    config_hash = digest(payload)
    markers = DoneMarkers(run_dir / "blocks", STAGE, payload, config_hash)
    blocks = make_blocks(affinities.shape, config.block_shape, config.fragments.context)
    start = begin_stage(markers, group_state(store, STAGE), config_hash, restart)
    if start == "done":
        logger.info("fragments: up to date (config %s)", config_hash)
        return StageResult(STAGE, config_hash, len(blocks), 0, time.perf_counter() - started, up_to_date=True)
    if start == "fresh":
        create_multiscale(
            store, STAGE, affinities.shape, np.uint64, affinities.voxel_size, affinities.offset_nm,
            chunk_shape_for(config.block_shape), factors=[], downsampling="mode",
            attrs={"config_hash": config_hash, "config": payload}, overwrite=True,
        )
    target = open_level(store, STAGE, 0)
    summary = run_blockwise(
        blocks, _block_writer(affinities, mask, target, config), description=STAGE,
        markers=markers, scheduler=scheduler, show_progress=show_progress,
    )
    mark_complete(store, STAGE)
    markers.clear()
    remove_if_empty(run_dir / "blocks")
    seconds = time.perf_counter() - started
    logger.info("fragments: %d blocks (%d resumed) in %.1f s -> %s", len(blocks), summary.skipped, seconds, store / STAGE)
    return StageResult(STAGE, config_hash, len(blocks), summary.skipped, seconds)
