"""One blockwise pass of evaluation statistics for several segmentations at once.

Each block's statistics (one :class:`~axonseg.evaluate.BlockStatistics` per segmentation) are
pickled to a spool folder, so workers in other processes can compute them and a killed run
resumes; the main process then sums them into one accumulator per segmentation.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from axonseg.blockwise import Roi
from axonseg.blockwise.outputs import BlockFiles
from axonseg.blockwise.stage import BlockData, Input, Stage, run_stage
from axonseg.errors import InputError, StageError
from axonseg.evaluate import EvaluationAccumulator, as_flat_skeletons
from axonseg.io import Volume
from axonseg.pipelines.labels import read_roi

logger = logging.getLogger(__name__)

ReadSegmentations = Callable[[Roi], dict[Hashable, np.ndarray]]


def _save_statistics(folder: Path, block_id: str, stats: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{block_id}.pkl"
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(pickle.dumps(stats, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, target)


def accumulate_blockwise(
    gt: Volume,
    read_segmentations: ReadSegmentations,
    keys: Sequence[Hashable],
    skeletons,  # noqa: ANN001 - any form axonseg.evaluate.as_flat_skeletons takes, or None
    block_shape: Sequence[int],
    spool_dir: Path,
    run_dir: Path,
    config: dict,
    mask: Volume | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
) -> dict[Hashable, EvaluationAccumulator]:
    """Sum per-block evaluation statistics of every segmentation against ``gt``.

    The blocks run as the declared stage ``evaluate`` (markers in ``run_dir/blocks``); its
    per-block statistics are only a cache, so an interrupted run of another config is dropped.

    Args:
        gt: ground-truth labels (zyx, integer); its voxel size and offset place the skeletons.
        read_segmentations: ``roi -> {key: labels}``, one block per segmentation, same grid as gt.
        keys: the keys ``read_segmentations`` returns (for example LUT thresholds).
        skeletons: gt skeletons in nm (zyx), or None to skip ERL.
        block_shape: block shape in voxels (zyx); blocks do not overlap.
        spool_dir: folder for per-block statistics (created; removed by the caller when done).
        run_dir: the folder whose ``blocks/`` holds the done markers (resume).
        config: everything the statistics depend on (keys the markers).
        mask: optional non-axon mask on the same grid (nonzero = not an axon).
        scheduler: dask scheduler spec.
        restart: start again even where an interrupted run of this config left blocks.
        show_progress: draw a progress bar.

    Returns:
        ``{key: EvaluationAccumulator}`` holding every block.

    Raises:
        InputError: the ground truth has no labelled voxel.
    """
    flat = as_flat_skeletons(skeletons) if skeletons is not None else None
    template = EvaluationAccumulator(flat, gt.voxel_size, gt.offset)
    spool_dir = Path(spool_dir)
    inputs = {"gt": Input(lambda roi: read_roi(gt, roi), gt.spatial_shape),
              "segmentations": Input(read_segmentations, gt.spatial_shape)}
    if mask is not None:
        inputs["mask"] = Input(lambda roi: read_roi(mask, roi), gt.spatial_shape)

    def process(data: BlockData) -> dict:
        segmentations, mask_block = data["segmentations"], data.arrays.get("mask")
        offset = data.block.write_roi.offset
        return {key: template.block_statistics(segmentations[key], data["gt"], offset, mask_block) for key in keys}

    stage = Stage(
        name="evaluate", volume_shape=gt.spatial_shape, block_shape=tuple(block_shape), inputs=inputs,
        output=BlockFiles(spool_dir, ("{block_id}.pkl",), _save_statistics), process=process, config=config,
        cache=True,
    )
    blocks = stage.blocks()
    run_stage(stage, run_dir, scheduler=scheduler, restart=restart, show_progress=show_progress)
    accumulators = {key: EvaluationAccumulator(flat, gt.voxel_size, gt.offset) for key in keys}
    for block in blocks:
        path = spool_dir / f"{block.block_id}.pkl"
        if not path.exists():
            raise StageError(f"{path}: block statistics missing although the block is marked done; pass --restart")
        stats = pickle.loads(path.read_bytes())
        for key in keys:
            accumulators[key].add(stats[key])
    pairs, counts = accumulators[keys[0]].contingency()
    if int(counts[pairs[:, 0] != 0].sum()) == 0:
        raise InputError(f"gt {gt.source} is all zero: expected labelled voxels (gt != 0) to evaluate against")
    return accumulators
