"""Relabel stage: one LUT applied to the fragments, blockwise, giving
``RUN/volume.zarr/segmentation`` (uint64). It is a cache: the LUTs are the result, and the
segmentation records which threshold and LUT file it was made from.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from axonseg.blockwise.outputs import ZarrOutput
from axonseg.blockwise.stage import BlockData, Input, Stage
from axonseg.errors import InputError
from axonseg.io import open_level, open_volume
from axonseg.segment import Lut, apply_lut
from axonseg.pipelines.run_folder import RunFolder
from axonseg.io import group_state
from axonseg.pipelines.segment._stage import chunk_shape_for, declared, stage_runner
from axonseg.pipelines.segment.config import SegmentConfig

logger = logging.getLogger(__name__)

STAGE = "relabel"
OUTPUT = "segmentation"


def _relabelled(lut: Lut):  # noqa: ANN202
    def process(data: BlockData) -> np.ndarray:
        return apply_lut(data["fragments"], lut)

    return process


def relabel_stage(run_dir: Path, config: SegmentConfig, threshold: float | None = None) -> Stage:
    """The relabel stage of a run, declared: fragments in, the LUT of ``threshold`` (chosen by
    :meth:`RunFolder.choose_threshold`) applied, uint64 segmentation out. Its config records
    the ``threshold`` and ``lut_file``.

    Raises:
        InputError: no fragments or LUTs, or a threshold outside [0, 1] or without a LUT.
    """
    run = RunFolder(run_dir)
    store = run.store
    fragments_info = group_state(store, "fragments")
    if not fragments_info or not fragments_info.get("complete"):
        raise InputError(f"{store / 'fragments'}: no complete fragments; run the fragments stage first")
    if not run.thresholds():
        raise InputError(f"{run_dir}: no lookup tables (luts/index.json); run the agglomerate stage first")
    chosen = run.choose_threshold(threshold, config.relabel_threshold)
    lut = run.lut(chosen)
    lut_file = run.lut_file(chosen)
    # the LUT's content hash: a re-made LUT of the same threshold is a new cache
    payload = {"fragments": fragments_info.get("config_hash"), "lut": lut.digest(), "threshold": chosen,
               "lut_file": lut_file, "block_shape": list(config.block_shape)}
    geometry = open_volume(store / "fragments")
    fragments = open_level(store, "fragments", 0, mode="r")
    logger.info("relabel: threshold %s (%s) -> %s", chosen, lut_file, store / OUTPUT)
    return Stage(
        name=STAGE, volume_shape=geometry.spatial_shape, block_shape=tuple(config.block_shape),
        inputs={"fragments": Input(lambda roi: np.asarray(fragments[roi.to_slices()]), geometry.spatial_shape)},
        output=ZarrOutput(store, OUTPUT, geometry.spatial_shape, np.uint64, geometry.voxel_size, geometry.offset,
                          chunk_shape_for(config.block_shape), attrs={"threshold": chosen, "lut_file": lut_file}),
        process=_relabelled(lut), config=payload,
        skip_empty=True,  # all-background fragments: the output's fill value is 0 already
    )


run_relabel = stage_runner(
    declared(relabel_stage, details=("threshold", "lut_file")), "run_relabel",
    "Write ``RUN/volume.zarr/segmentation`` = the LUT of one threshold applied to the fragments.",
    needs="; fragments and LUTs must exist", config="block shape (voxels) and ``relabel_threshold``",
    options="""
        threshold: keyword only; the LUT threshold in [0, 1]; default ``config.relabel_threshold``,
            else ``reports/best_threshold.json``, else the median of the run's thresholds (the
            run folder's one rule, :meth:`RunFolder.choose_threshold`).""",
    returns="; ``details`` hold ``threshold`` and ``lut_file``",
    raises="no fragments or LUTs, or a threshold outside [0, 1] or without a LUT",
)
