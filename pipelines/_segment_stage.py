"""Plumbing shared by the segment stages: stage state (done / resume / fresh) keyed by a hash
of the stage's config and its upstream, and the checked opening of affinities and mask.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from axonseg.blockwise import DoneMarkers, Roi
from axonseg.blockwise.integrity import BlockNamedFiles, BlockOutputs, ZarrChunkFiles, summarize
from axonseg.errors import InputError
from axonseg.io import group_attrs, group_exists, open_level, open_volume
from axonseg.segment import check_affinities
from axonseg.pipelines.segment_config import SegmentConfig

logger = logging.getLogger(__name__)

StageStart = Literal["done", "resume", "fresh"]


def digest(payload: dict[str, Any]) -> str:
    """A short sha256 of ``payload``'s canonical JSON (the stage's config plus upstream hashes)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def stage_outputs(run_dir: Path, stage: str) -> tuple[BlockOutputs, Path] | None:
    """The files each block of a stage writes, and the stage's output (for messages), by the
    stage's marker name; None for stages whose blocks write nothing to verify."""
    store = Path(run_dir) / "volume.zarr"
    zarr_groups = {"predict": "affinities", "fragments": "fragments", "relabel": "segmentation"}
    if stage in zarr_groups:
        return ZarrChunkFiles(store / zarr_groups[stage] / "s0"), store / zarr_groups[stage]
    if stage == "graph":
        folder = Path(run_dir) / "graph"
        return BlockNamedFiles(folder, ("nodes/{block_id}.parquet", "edges/{block_id}.parquet")), folder
    return None


def begin_stage(markers: DoneMarkers, state: dict[str, Any] | None, config_hash: str, restart: bool) -> StageStart:
    """Decide how a stage starts from its output's recorded state and its done markers.

    ``done``: the output is complete for this very config and every file its blocks wrote is
    still there at its recorded size (nothing to do). ``resume``: an interrupted run of this
    config left markers, or a finished output lost or truncated files; done, intact blocks are
    skipped and the rest computed. ``fresh``: no usable output; markers and the manifest log are
    reset for this config and the caller (re)creates its output.

    The markers' run folder is ``markers.directory.parent.parent`` (``RUN/blocks/<stage>``).

    Raises:
        StageError: an interrupted run of another config left markers and ``restart`` is False.
    """
    run_dir = markers.directory.parent.parent
    outputs = stage_outputs(run_dir, markers.stage)
    if outputs is not None:
        markers.track(outputs[0], run_dir, where=str(outputs[1]))
    state = state or {}
    same = state.get("config_hash") == config_hash
    if same and state.get("complete") and not restart:
        markers.clear()  # left only if a run was killed between completing and clearing them
        damaged = markers.damaged_blocks()
        if not damaged:
            return "done"
        problems = [p for block_problems in damaged.values() for p in block_problems]
        logger.warning("%s: %d finished block(s) lost or truncated output files (%s); computing them again",
                       markers.stage, len(damaged), summarize(problems))
        markers.reopen(damaged)
        return "resume"
    markers.prepare(restart)
    if same and state.get("complete") is False and not restart:
        if outputs is not None and not markers.log_path.exists():
            markers.reset_log()  # an interrupted run from before manifests: record from now on
        return "resume"
    if state and not same:
        logger.info("%s: made with another config before; computing it again", markers.stage)
    markers.clear()
    markers.prepare()
    markers.reset_log()
    return "fresh"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def group_state(store: Path, name: str) -> dict[str, Any] | None:
    """The ``axonseg`` attrs of ``store/name`` (with ``complete`` and ``config_hash``), or None."""
    return group_attrs(store, name) if group_exists(store, name) else None


def chunk_shape_for(block_shape: tuple[int, int, int], limit: int = 128) -> tuple[int, int, int]:
    """Chunks that tile a block exactly, so no two blocks ever write into one chunk.

    Per axis the largest divisor of the block size that is at most ``limit`` voxels; a block
    size without a divisor of at least 16 gets one chunk per block along that axis.
    """
    chunks = []
    for size in block_shape:
        divisor = max(d for d in range(1, min(size, limit) + 1) if size % d == 0)
        chunks.append(divisor if divisor >= min(size, 16) else size)
    return tuple(chunks)  # type: ignore[return-value]


@dataclass(frozen=True)
class Affinities:
    """A run's affinities, checked: the s0 zarr array (czyx), offsets and geometry (nm, zyx)."""

    array: zarr.Array
    offsets: list[list[int]]
    voxel_size: tuple[float, float, float]
    offset_nm: tuple[float, float, float]
    source_hash: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape[1:])  # type: ignore[return-value]

    def read(self, roi: Roi) -> np.ndarray:
        """(C, Z, Y, X) affinities of ``roi`` (inside the volume); float16 comes back as float32,
        the narrowest float the numba kernels of axonseg.segment compile for."""
        values = np.asarray(self.array[(slice(None),) + roi.to_slices()])
        return values.astype(np.float32) if values.dtype == np.float16 else values


def open_affinities(store: Path, config: SegmentConfig) -> Affinities:
    """Open ``store/affinities`` and check it against the config.

    Raises:
        InputError: no or incomplete affinities, not czyx uint8/float, offsets missing from the
            group's ``axonseg`` attrs, offsets that disagree with ``config.offsets`` or with the
            channel count, or no nearest-neighbour offsets.
    """
    where = store / "affinities"
    if not group_exists(store, "affinities"):
        raise InputError(f"{where}: no affinities in the run; run the predict stage first")
    volume = open_volume(where)
    if volume.data.ndim != 4:
        raise InputError(f"{where} has shape {volume.shape}: expected 4 axes (channels, z, y, x)")
    if volume.dtype != np.uint8 and volume.dtype.kind != "f":
        raise InputError(f"{where} has dtype {volume.dtype}: expected uint8 (0-255) or float16/float32 in [0, 1]")
    attrs = group_attrs(store, "affinities")
    stored = attrs.get("offsets")
    expected = None if config.offsets is None else [list(o) for o in config.offsets]
    if stored is None:
        raise InputError(
            f"{where} has no 'offsets' in its axonseg attrs: expected the affinity offsets "
            f"(config offsets: {expected})"
        )
    stored = [[int(v) for v in o] for o in stored]
    if expected is not None and stored != expected:
        raise InputError(f"affinities offsets {stored} (stored in {where}) disagree with config offsets {expected}")
    check_affinities(np.zeros((volume.shape[0], 1, 1, 1), np.uint8), stored)
    array = open_level(store, "affinities", 0, mode="r")
    source_hash = str(attrs.get("config_hash", "")) or digest({"shape": volume.shape, "offsets": stored})
    return Affinities(array, stored, volume.voxel_size, volume.offset, source_hash)


def open_mask(store: Path, mask: str | None, shape: tuple[int, int, int]) -> zarr.Array | np.ndarray | None:
    """The mask (zyx, non-zero = segment) named by the config, or None.

    ``mask`` is a group of ``store`` (e.g. ``mask``) or any array address; it must have the
    affinities' spatial shape.
    """
    if mask is None:
        return None
    volume = open_volume(store / mask) if group_exists(store, mask) else open_volume(mask)
    if volume.spatial_shape != tuple(shape) or volume.data.ndim != 3:
        raise InputError(f"mask {volume.source} has shape {volume.shape}: expected {tuple(shape)} like the affinities (z, y, x)")
    if group_exists(store, mask):
        return open_level(store, mask, 0, mode="r")
    return volume.data  # a dask array; blocks compute their slice


def read_mask(mask, roi: Roi) -> np.ndarray | None:  # noqa: ANN001
    """The mask's ``roi`` as bool, or None without a mask."""
    if mask is None:
        return None
    block = mask[roi.to_slices()]
    if hasattr(block, "compute"):
        block = block.compute(scheduler="synchronous")
    return np.asarray(block).astype(bool, copy=False)


def median_threshold(thresholds: list[float]) -> float:
    """The middle threshold (the lower of the two middles for an even count)."""
    ordered = sorted(thresholds)
    return ordered[(len(ordered) - 1) // 2]


@dataclass(frozen=True)
class StageResult:
    """What one segment stage did.

    Attributes:
        stage: ``fragments``, ``graph``, ``agglomerate`` or ``relabel``.
        config_hash: hash of the stage's config and its upstream stages' hashes.
        blocks: blocks of the stage (1 for the global agglomeration).
        skipped: blocks skipped because an interrupted run had done them.
        seconds: wall time of this call.
        up_to_date: the output was already complete for this config; nothing was run.
        details: stage-specific figures (graph size, LUT thresholds, the relabel threshold).
    """

    stage: str
    config_hash: str
    blocks: int
    skipped: int
    seconds: float
    up_to_date: bool = False
    details: dict[str, Any] | None = None
