"""Segmentation metrics: ERL (AxonEM protocol), VOI, adapted Rand, split/merge lists.

Pure numpy, no file I/O. Whole arrays: :func:`evaluate_arrays`. Volumes larger than memory:
:class:`EvaluationAccumulator` (or the pieces: :func:`contingency_block`,
:func:`merge_contingency`, :func:`lookup_segments_block`, :func:`mask_voxel_counts`).
"""

from axonseg.evaluate.accumulate import BlockStatistics, EvaluationAccumulator, evaluate_arrays
from axonseg.evaluate.contingency import Contingency, contingency_block, merge_contingency
from axonseg.evaluate.edges import EdgeClassification, classify_edges
from axonseg.evaluate.erl import ErlInterval, ErlResult, erl_from_classification, expected_run_length
from axonseg.evaluate.lookup import (
    lookup_segments,
    lookup_segments_block,
    mask_voxel_counts,
    merge_counts,
    node_voxel_indices,
)
from axonseg.evaluate.bootstrap import nerl_interval, paired_nerl_difference
from axonseg.evaluate.rand import RandResult, adapted_rand, adapted_rand_from_contingency
from axonseg.evaluate.result import SUMMARY_KEYS, EvaluationResult
from axonseg.evaluate.skeletons import FlatSkeletons, as_flat_skeletons, flat_skeletons
from axonseg.evaluate.split_merge import (
    MergeList,
    SplitList,
    SplitMergeLists,
    lists_from_classification,
    split_merge_lists,
)
from axonseg.evaluate.voi import VoiResult, variation_of_information, voi_from_contingency

__all__ = [
    "SUMMARY_KEYS",
    "BlockStatistics",
    "Contingency",
    "EdgeClassification",
    "ErlInterval",
    "ErlResult",
    "EvaluationAccumulator",
    "EvaluationResult",
    "FlatSkeletons",
    "MergeList",
    "RandResult",
    "SplitList",
    "SplitMergeLists",
    "VoiResult",
    "adapted_rand",
    "adapted_rand_from_contingency",
    "as_flat_skeletons",
    "classify_edges",
    "contingency_block",
    "erl_from_classification",
    "evaluate_arrays",
    "expected_run_length",
    "flat_skeletons",
    "lists_from_classification",
    "lookup_segments",
    "lookup_segments_block",
    "mask_voxel_counts",
    "merge_contingency",
    "merge_counts",
    "nerl_interval",
    "node_voxel_indices",
    "paired_nerl_difference",
    "split_merge_lists",
    "variation_of_information",
    "voi_from_contingency",
]
