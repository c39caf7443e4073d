"""``axonseg evaluate`` (:mod:`.job`, ``configs/evaluate.yaml``): a run's segmentations, or any
label array, scored blockwise against ground truth; :mod:`.report` writes and prints the
report. Ground-truth skeletons come from the synth store or from :mod:`axonseg.pipelines.skeletonize.blocks`.
"""

from axonseg.pipelines.evaluate.job import (
    CRITERION,
    EvaluateConfig,
    EvaluationReport,
    choose_best,
    evaluate_arrays_blockwise,
    evaluate_run,
    load_evaluate_config,
)

__all__ = [
    "CRITERION",
    "EvaluateConfig",
    "EvaluationReport",
    "choose_best",
    "evaluate_arrays_blockwise",
    "evaluate_run",
    "load_evaluate_config",
]
