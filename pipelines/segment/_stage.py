"""What the segment stages share: their one runner (signature and Args written once), the
checked opening of a run's affinities and mask, the state of a finished group, and chunks that
tile a block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from axonseg.blockwise import Roi
from axonseg.blockwise.stage import Stage, StageResult, digest, run_stage
from axonseg.errors import InputError
from axonseg.io import group_attrs, group_exists, open_level, open_volume
from axonseg.segment import check_affinities
from axonseg.pipelines.segment.config import SegmentConfig

logger = logging.getLogger(__name__)


#: A segment step: ``step(run_dir, config, scheduler=..., restart=..., show_progress=..., **options)``.
Step = Callable[..., StageResult]

_ARGS = """
    Args:
        run_dir: the run folder{needs}.
        config: {config}; None: the defaults (those of ``configs/agglomerate.yaml``).
        scheduler: ``synchronous``, ``threads[:N]``, ``local[:N]`` or ``tcp://host:port``{scheduler}.
        restart: start the stage again, also where its output of this config exists or an
            interrupted run used another config.
        show_progress: draw a progress bar.{options}

    Returns:
        A :class:`StageResult`; ``up_to_date`` when the output of this config exists{returns}.

    Raises:
        InputError: {raises}.
        StageError: an interrupted run of a blockwise stage used another config and
            ``restart`` is False.
"""


def declared(factory: Callable[..., Stage], details: Sequence[str] = ()) -> Step:
    """The step that runs the blockwise stage ``factory(run_dir, config, **options)`` declares;
    ``details`` names keys of the stage's config that its result reports."""

    def step(run_dir: Path, config: SegmentConfig, *, scheduler: str, restart: bool, show_progress: bool,
             **options: Any) -> StageResult:
        stage = factory(run_dir, config, **options)
        figures = {key: stage.config[key] for key in details} or None
        return run_stage(stage, run_dir, scheduler=scheduler, restart=restart, show_progress=show_progress,
                         details=figures)

    step.__module__ = factory.__module__
    return step


def stage_runner(step: Step, name: str, summary: str, *, needs: str = "", config: str = "the segment config",
                 scheduler: str = "", options: str = "", returns: str = "", raises: str) -> Step:
    """The public ``run_<stage>(run_dir, config=None, scheduler="threads", restart=False,
    show_progress=True, **options)`` of a segment stage, documented from the parts given.

    Args:
        step: what runs (:func:`declared` for a blockwise stage).
        name: the function's name (``run_fragments``).
        summary: its first docstring line; ``needs``, ``config``, ``scheduler``, ``options``,
            ``returns`` and ``raises`` fill the shared Args, Returns and Raises text.
    """

    def run(run_dir: str | Path, config: SegmentConfig | None = None, scheduler: str = "threads",
            restart: bool = False, show_progress: bool = True, **options: Any) -> StageResult:
        return step(Path(run_dir), config or SegmentConfig(), scheduler=scheduler, restart=restart,
                    show_progress=show_progress, **options)

    run.__name__ = run.__qualname__ = name
    run.__module__ = step.__module__
    run.__doc__ = summary + "\n" + _ARGS.format(needs=needs, config=config, scheduler=scheduler, options=options,
                                                returns=returns, raises=raises)
    return run


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
