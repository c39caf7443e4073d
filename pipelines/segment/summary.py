"""The table ``axonseg segment`` ends with: quality (when ground truth was given), counts,
where the outputs are, and the time taken. Mirrors the table of ``axonseg demo``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from axonseg.pipelines.segment.pipeline import SegmentRun

__all__ = ["print_segment_summary", "summary_rows"]


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def summary_rows(run: SegmentRun) -> list[tuple[str, str]]:
    """The table's rows: ``(name, value)``; lengths in um, VOI in bits."""
    summary = run.summary
    rows = [("run folder", str(run.run_dir)), ("threshold", _fmt(run.threshold))]
    if summary.get("nerl") is not None:
        erl, gt_erl = summary.get("erl_nm"), summary.get("gt_erl_nm")
        rows += [
            ("best threshold (evaluated)", f"{_fmt(summary.get('threshold'))} (the figures below are at it)"),
            ("ERL", f"{erl / 1000:.2f} um of {gt_erl / 1000:.2f} um (ground truth)" if erl is not None and gt_erl else "-"),
            ("NERL", _fmt(summary.get("nerl"))),
            ("VOI split / merge", f"{_fmt(summary.get('voi_split'))} / {_fmt(summary.get('voi_merge'))} bits"),
            ("adapted Rand error", _fmt(summary.get("arand"))),
            ("evaluation report", str(run.run_dir / "reports" / "evaluation.html")),
        ]
    source, count = summary.get("synapse_source"), _fmt(summary.get("synapses"))
    if summary.get("proxy_synapses"):
        synapses = f"{count} (contact PROXY: no synapse table)"
    elif source is not None and ".zarr" in (Path(source).suffix, Path(source).parent.suffix):  # export's rule
        synapses = f"{count} (ground truth of {source})"
    else:
        synapses = f"{count} (from {source})"
    rows += [
        ("segments (skeletonized)", _fmt(summary.get("skeletons"))),
        ("synapses", synapses),
        ("connectome edges (pairs)", _fmt(summary.get("edges"))),
        ("neurons in the connectome", _fmt(summary.get("neurons"))),
        ("connectome", _fmt(summary.get("connectome"))),
        ("run log", str(run.run_dir / "run.log")),
        ("time", f"{run.seconds:.0f} s"),
    ]
    return rows


def print_segment_summary(run: SegmentRun) -> None:
    """Print the closing table to stdout."""
    table = Table(title=f"axonseg segment (config {run.config_hash})", show_header=True)
    table.add_column("")
    table.add_column("value", overflow="fold")
    for name, value in summary_rows(run):
        table.add_row(name, value)
    Console(file=sys.stdout).print(table)
