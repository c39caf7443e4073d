"""Compare segmentations of one volume on the same ground-truth skeletons, paired (#15).

Each segmentation is a run folder and a LUT threshold (``RUN@THRESHOLD``; without ``@`` the
run's ``reports/best_threshold.json``). The first is the reference A; for every other B the
script prints NERL with its 90% bootstrap interval, B - A with a paired bootstrap interval, and
the share of resamples in which B scores higher (:mod:`axonseg.evaluate.bootstrap`). NERL on a
few dozen skeletons moves by a merge or two, so a difference is only read as real when its
interval excludes 0.

    python scripts/paired_nerl.py --labels data/models/fib_v4/validation/heldout.zarr/labels \\
        /tmp/edge_study/default/val_run@0.4 /tmp/edge_study/default/val_learned@0.1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from axonseg.evaluate import evaluate_arrays, paired_nerl_difference
from axonseg.io import open_volume
from axonseg.io.luts import read_luts
from axonseg.pipelines.skeletonize.blocks import read_skeletons
from axonseg.segment import apply_lut


def parse(spec: str) -> tuple[Path, float | None]:
    run, _, threshold = spec.partition("@")
    return Path(run), (float(threshold) if threshold else None)


def per_skeleton(run: Path, threshold: float | None, gt: np.ndarray, skeletons, voxel_size, offset):  # noqa: ANN001, ANN201
    """(skeleton ids, lengths nm, per-skeleton ERL nm, summary) of one run at one threshold."""
    luts = read_luts(run)
    if not luts:
        raise SystemExit(f"{run / 'luts'}: no LUTs; run the agglomerate stage first")
    if threshold is None:
        best = json.loads((run / "reports" / "best_threshold.json").read_text())
        threshold = float(best["threshold"])
    chosen = min(luts, key=lambda t: abs(t - threshold))
    fragments = np.asarray(open_volume(str(run / "volume.zarr" / "fragments")).data)
    result = evaluate_arrays(apply_lut(fragments, luts[chosen]), gt, skeletons, voxel_size, offset)
    order = np.argsort(result.erl.skeleton_ids)
    erl = result.erl
    return erl.skeleton_ids[order], erl.skeleton_lengths_nm[order], erl.skeleton_erl_nm[order], {
        "threshold": chosen, **result.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="RUN[@THRESHOLD]; the first is the reference A")
    parser.add_argument("--labels", required=True, help="ground-truth labels address over the runs' grid")
    parser.add_argument("--skeletons", type=Path, default=None,
                        help="folder of gt skeletons (default: the first run's skeletons/gt)")
    args = parser.parse_args()
    if len(args.runs) < 2:
        raise SystemExit("give at least two runs: the reference and one to compare")
    labels = open_volume(args.labels)
    gt = np.asarray(labels.data)
    first = parse(args.runs[0])[0]
    skeletons = read_skeletons(args.skeletons or first / "skeletons" / "gt")
    ids, lengths, erl_a, summary_a = per_skeleton(*parse(args.runs[0]), gt, skeletons, labels.voxel_size, labels.offset)
    rows = {args.runs[0]: {"summary": {k: summary_a[k] for k in ("threshold", "nerl", "nerl_low", "nerl_high")}}}
    print(f"A {args.runs[0]}: NERL {summary_a['nerl']:.3f} ({summary_a['nerl_low']:.3f}-{summary_a['nerl_high']:.3f}), "
          f"{len(ids)} skeletons")
    for spec in args.runs[1:]:
        other_ids, _, erl_b, summary_b = per_skeleton(*parse(spec), gt, skeletons, labels.voxel_size, labels.offset)
        if not np.array_equal(other_ids, ids):
            raise SystemExit(f"{spec}: scored on other skeletons than {args.runs[0]}: expected the same ground truth")
        paired = paired_nerl_difference(lengths, erl_a, erl_b)
        rows[spec] = {"summary": {k: summary_b[k] for k in ("threshold", "nerl", "nerl_low", "nerl_high")}, "paired": paired}
        print(f"B {spec}: NERL {summary_b['nerl']:.3f} ({summary_b['nerl_low']:.3f}-{summary_b['nerl_high']:.3f}); "
              f"B - A {paired['difference']:+.3f} ({paired['low']:+.3f} … {paired['high']:+.3f}), "
              f"B higher in {paired['p_b_better']:.0%} of resamples")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
