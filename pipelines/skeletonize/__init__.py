"""``axonseg skeletonize`` (:mod:`.job`, ``configs/skeletonize.yaml``): skeletons of every
segment of a run. Its public parts serve other jobs too: :mod:`.blocks` (blockwise kimimaro)
and :mod:`.join` (joining the blocks' pieces) make evaluation's ground-truth skeletons, and
:mod:`.reskeletonize` re-traces the segments a proofreading edit touched.
"""

from axonseg.pipelines.skeletonize.job import (
    SkeletonizeConfig,
    SkeletonizeResult,
    load_skeletonize_config,
    open_run_skeletons,
    read_run_skeletons,
    run_skeletonize,
)
from axonseg.pipelines.skeletonize.reskeletonize import skeletonize_fragments

__all__ = [
    "SkeletonizeConfig",
    "SkeletonizeResult",
    "load_skeletonize_config",
    "open_run_skeletons",
    "read_run_skeletons",
    "run_skeletonize",
    "skeletonize_fragments",
]
