"""One blockwise pass of evaluation statistics for several segmentations at once.

Each block's statistics (one :class:`~axonseg.evaluate.BlockStatistics` per segmentation) are
pickled to a spool folder, so workers in other processes can compute them and a killed run
resumes; the main process then sums them into one accumulator per segmentation.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import numpy as np

from axonseg.blockwise import Block, DoneMarkers, Roi, make_blocks, run_blockwise
from axonseg.errors import InputError, StageError
from axonseg.evaluate import EvaluationAccumulator, as_flat_skeletons
from axonseg.io import Volume
from axonseg.pipelines._segment_source import read_roi

logger = logging.getLogger(__name__)

ReadSegmentations = Callable[[Roi], dict[Hashable, np.ndarray]]


def accumulate_blockwise(
    gt: Volume,
    read_segmentations: ReadSegmentations,
    keys: Sequence[Hashable],
    skeletons,  # noqa: ANN001 - any form axonseg.evaluate.as_flat_skeletons takes, or None
    block_shape: Sequence[int],
    spool_dir: Path,
    markers: DoneMarkers | None = None,
    mask: Volume | None = None,
    scheduler: str = "threads",
    show_progress: bool = True,
) -> dict[Hashable, EvaluationAccumulator]:
    """Sum per-block evaluation statistics of every segmentation against ``gt``.

    Args:
        gt: ground-truth labels (zyx, integer); its voxel size and offset place the skeletons.
        read_segmentations: ``roi -> {key: labels}``, one block per segmentation, same grid as gt.
        keys: the keys ``read_segmentations`` returns (for example LUT thresholds).
        skeletons: gt skeletons in nm (zyx), or None to skip ERL.
        block_shape: block shape in voxels (zyx); blocks do not overlap.
        spool_dir: folder for per-block statistics (created; removed by the caller when done).
        markers: done markers for resuming; None computes every block.
        mask: optional non-axon mask on the same grid (nonzero = not an axon).
        scheduler: dask scheduler spec.
        show_progress: draw a progress bar.

    Returns:
        ``{key: EvaluationAccumulator}`` holding every block.

    Raises:
        InputError: the ground truth has no labelled voxel.
    """
    flat = as_flat_skeletons(skeletons) if skeletons is not None else None
    template = EvaluationAccumulator(flat, gt.voxel_size, gt.offset)
    blocks = make_blocks(gt.spatial_shape, block_shape)
    spool_dir = Path(spool_dir)
    if markers is None or markers.count() == 0:
        shutil.rmtree(spool_dir, ignore_errors=True)
    spool_dir.mkdir(parents=True, exist_ok=True)

    def process(block: Block) -> None:
        roi = block.write_roi
        gt_block = read_roi(gt, roi)
        mask_block = read_roi(mask, roi) if mask is not None else None
        segmentations = read_segmentations(roi)
        stats = {key: template.block_statistics(segmentations[key], gt_block, roi.offset, mask_block) for key in keys}
        target = spool_dir / f"{block.block_id}.pkl"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(pickle.dumps(stats, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, target)

    run_blockwise(blocks, process, description="evaluate", markers=markers, scheduler=scheduler,
                  show_progress=show_progress)
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
