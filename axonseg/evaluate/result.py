"""The combined evaluation result and its summary dict (the keys the CLI's --json promises)."""

from __future__ import annotations

from dataclasses import dataclass

from axonseg.evaluate.erl import ErlResult
from axonseg.evaluate.rand import RandResult
from axonseg.evaluate.split_merge import SplitMergeLists
from axonseg.evaluate.voi import VoiResult

#: Keys every summary has (``axonseg evaluate --json`` contract).
SUMMARY_KEYS = ("erl_nm", "gt_erl_nm", "nerl", "voi_split", "voi_merge", "arand", "n_split", "n_merge")


@dataclass(frozen=True)
class EvaluationResult:
    """All metrics of one segmentation against one ground truth.

    Attributes:
        voi: VOI split/merge in bits over gt != 0.
        rand: adapted Rand error over gt != 0.
        erl: ERL on the gt skeletons (None when no skeletons were given).
        split_merge: ranked split and merge lists (None without skeletons).
        merge_threshold, mask_threshold: the thresholds ERL used.
        n_nodes_outside: skeleton nodes that no block covered (scored as segment 0).
    """

    voi: VoiResult
    rand: RandResult
    erl: ErlResult | None
    split_merge: SplitMergeLists | None
    merge_threshold: int = 0
    mask_threshold: int | None = None
    n_nodes_outside: int = 0

    def summary(self) -> dict:
        """Flat dict of the headline figures; ERL entries are None without skeletons.

        Keys: ``erl_nm, gt_erl_nm, nerl, nerl_low, nerl_high, voi_split, voi_merge, voi_total, arand,
        arand_precision, arand_recall, n_split, n_split_edges, n_merge, n_skeletons,
        skeleton_length_nm, n_voxels, merge_threshold, mask_threshold``. ``nerl_low`` and
        ``nerl_high`` bound a 90% bootstrap interval of NERL over the skeletons
        (:attr:`ErlResult.nerl_bounds`): how far NERL would move with another draw of skeletons.
        """
        erl = self.erl.to_dict() if self.erl is not None else {}
        lists = self.split_merge
        return {
            "erl_nm": erl.get("erl_nm"),
            "gt_erl_nm": erl.get("gt_erl_nm"),
            "nerl": erl.get("nerl"),
            "nerl_low": erl.get("nerl_low"),
            "nerl_high": erl.get("nerl_high"),
            "voi_split": self.voi.split,
            "voi_merge": self.voi.merge,
            "voi_total": self.voi.total,
            "arand": self.rand.arand,
            "arand_precision": self.rand.precision,
            "arand_recall": self.rand.recall,
            "n_split": lists.n_split if lists is not None else 0,
            "n_split_edges": lists.n_split_edges if lists is not None else 0,
            "n_merge": lists.n_merge if lists is not None else 0,
            "n_skeletons": erl.get("n_skeletons", 0),
            "skeleton_length_nm": erl.get("total_length_nm", 0.0),
            "n_voxels": self.voi.n_voxels,
            "merge_threshold": self.merge_threshold,
            "mask_threshold": self.mask_threshold,
        }

    def to_dict(self, limit: int | None = 100) -> dict:
        """Summary plus every part, lists cut to their first ``limit`` rows."""
        return {
            "summary": self.summary(),
            "voi": self.voi.to_dict(),
            "rand": self.rand.to_dict(),
            "erl": self.erl.to_dict() if self.erl is not None else None,
            "split_merge": self.split_merge.to_dict(limit) if self.split_merge is not None else None,
            "n_nodes_outside": self.n_nodes_outside,
        }
