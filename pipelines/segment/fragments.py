"""Fragments stage: watershed supervoxels from a run's affinities, blockwise and resumable.

Each block reads its write ROI plus context (clipped at the volume border), runs the
watershed, and writes only its write ROI into ``RUN/volume.zarr/fragments`` (uint64). Ids are
made globally unique by the block's linear index times the voxels of a full block. Blocks
outside the mask, or whose write ROI has all-zero affinities, write nothing (background).
"""

from __future__ import annotations

import logging
from pathlib import Path

import fastremap
import numpy as np

from axonseg.blockwise.outputs import ZarrOutput
from axonseg.blockwise.stage import BlockData, Input, Stage
from axonseg.segment import watershed_fragments
from axonseg.pipelines.run_folder import run_store
from axonseg.pipelines.segment._stage import (
    Affinities,
    chunk_shape_for,
    declared,
    open_affinities,
    open_mask,
    read_mask,
    stage_runner,
)
from axonseg.pipelines.segment.config import SegmentConfig

logger = logging.getLogger(__name__)

STAGE = "fragments"


def fragments_payload(affinities: Affinities, config: SegmentConfig) -> dict:
    """Everything the fragments depend on: the affinities, block grid, mask and settings."""
    return {
        "affinities": affinities.source_hash,
        "offsets": affinities.offsets,
        "block_shape": list(config.block_shape),
        "mask": config.mask,
        "fragments": _settings(config),
    }


def _settings(config: SegmentConfig) -> dict:
    """The fragment settings as hashed. ``flood`` came later: left out while off, so runs made
    before it keep their hashes (and their finished fragments)."""
    settings = config.fragments.model_dump(mode="json")
    if not settings["flood"]:
        del settings["flood"]
    return settings


def _watershed(affinities: Affinities, settings, ids_per_block: int, grid: tuple[int, ...]):  # noqa: ANN001, ANN202
    """``process`` of the stage: watershed on the read ROI, the write ROI with unique ids."""

    def process(data: BlockData) -> np.ndarray | None:
        mask_block = data["mask"].astype(bool, copy=False) if "mask" in data.arrays else None
        # empty blocks write nothing: the array's fill value is already 0
        if mask_block is not None and not data.crop(mask_block).any():
            return None
        values = data["affinities"]
        # no prediction in the write ROI (e.g. outside the imaged area): leave it background,
        # rather than flooding it from seeds in the context
        if not data.crop(values).any():
            return None
        fragments, _ = watershed_fragments(
            values, affinities.offsets, affinities.voxel_size,
            boundary_threshold=settings.boundary_threshold, seed_radius=settings.seed_radius,
            seed_method=settings.seed_method, min_size=settings.min_size,
            per_section=settings.per_section, mask=mask_block, flood=settings.flood,
            attach_threshold=settings.attach_threshold,
        )
        written = np.ascontiguousarray(data.crop(fragments))
        if not written.any():
            return None
        # renumbering the write ROI alone bounds its ids by the voxels of a block, however many
        # fragments the context held, so block_index * ids_per_block keeps ids unique
        written, _ = fastremap.renumber(written, preserve_zero=True)
        ids = written.astype(np.uint64)
        id_offset = np.uint64(int(np.ravel_multi_index(data.block.index, grid)) * ids_per_block)
        ids[ids > 0] += id_offset
        return ids

    return process


def fragments_stage(run_dir: Path, config: SegmentConfig) -> Stage:
    """The fragments stage of a run, declared: affinities (and mask) in, uint64 fragments out."""
    store = run_store(run_dir)
    affinities = open_affinities(store, config)
    mask = open_mask(store, config.mask, affinities.shape)
    inputs = {"affinities": Input(affinities.read, affinities.shape)}
    if mask is not None:
        inputs["mask"] = Input(lambda roi: read_mask(mask, roi), affinities.shape)
    context = config.fragments.context
    grid = tuple(-(-s // b) for s, b in zip(affinities.shape, config.block_shape))
    output = ZarrOutput(store, STAGE, affinities.shape, np.uint64, affinities.voxel_size, affinities.offset_nm,
                        chunk_shape_for(config.block_shape))
    return Stage(
        name=STAGE, volume_shape=affinities.shape, block_shape=tuple(config.block_shape), inputs=inputs,
        output=output, process=_watershed(affinities, config.fragments, int(np.prod(config.block_shape)), grid),
        config=fragments_payload(affinities, config), context=(tuple(context), tuple(context)), border="clip",
    )


run_fragments = stage_runner(
    declared(fragments_stage), "run_fragments",
    "Write ``RUN/volume.zarr/fragments`` (uint64, zyx) from ``RUN/volume.zarr/affinities``.",
    config="block shape (voxels), fragment settings, offsets and mask",
    raises="no run folder, missing or mismatching affinities or mask",
)
