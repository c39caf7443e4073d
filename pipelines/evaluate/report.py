"""Evaluation report files: ``evaluation.json`` and a one-page ``evaluation.html`` with plots,
and a rich table of the same figures for the terminal.

Input is what :mod:`axonseg.evaluate` computes (summary dicts, per-skeleton lengths, run
lengths, ranked split/merge lists); this module only formats and writes it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from axonseg.errors import OutputExistsError

#: Columns of the summary table, in order (missing keys show as "-").
TABLE_COLUMNS = ("threshold", "erl_nm", "gt_erl_nm", "nerl", "voi_split", "voi_merge", "arand", "n_split", "n_merge")
_HEADERS = {"threshold": "thr", "erl_nm": "ERL", "gt_erl_nm": "GT ERL", "nerl": "NERL", "voi_split": "VOI s",
            "voi_merge": "VOI m", "arand": "ARAND", "n_split": "splits", "n_merge": "merges"}
_WORST_ROWS = 10
#: Marks the best row of the terminal table.
BEST_MARKER = "\u2605"


def write_report(
    summary_rows: Sequence[dict],
    best: dict,
    skeleton_lengths_nm: np.ndarray | Sequence[float],
    run_lengths_nm: np.ndarray | Sequence[float],
    split_list: Any,
    merge_list: Any,
    out_dir: Path,
    overwrite: bool = False,
    title: str = "axonseg evaluation",
    inputs: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``evaluation.json`` and ``evaluation.html`` into ``out_dir``.

    Args:
        summary_rows: one summary dict per evaluated segmentation (e.g. per agglomeration
            threshold, key ``threshold``), each with at least the
            :data:`axonseg.evaluate.SUMMARY_KEYS`.
        best: the chosen row (drawn highlighted).
        skeleton_lengths_nm: gt skeleton lengths L_s, nm (``ErlResult.skeleton_lengths_nm``).
        run_lengths_nm: correct run lengths C[s, k] of the best segmentation, nm
            (``ErlResult.run_lengths_nm``).
        split_list: ranked splits, a ``SplitList`` or its ``to_records()`` list.
        merge_list: ranked merges, a ``MergeList`` or its ``to_records()`` list.
        out_dir: directory to write into (created if missing).
        overwrite: replace existing report files; otherwise raise.
        title: page title.
        inputs: what was evaluated, for the page's header table, e.g. ``{"run folder": ...,
            "raw": ..., "gt": ..., "model": ...}`` (None values show as "-"); the date and the
            axonseg version are added, and the same header goes into the JSON as ``header``.

    Returns:
        Paths of the JSON and HTML files.

    Raises:
        OutputExistsError: a report file exists and ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    json_path, html_path = out_dir / "evaluation.json", out_dir / "evaluation.html"
    for path in (json_path, html_path):
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists: pass overwrite=True to replace the report")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [_jsonable(dict(row)) for row in summary_rows]
    best_row = _jsonable(dict(best))
    splits = _records(split_list)
    merges = _records(merge_list)
    lengths = np.asarray(skeleton_lengths_nm, dtype=np.float64)
    runs = np.asarray(run_lengths_nm, dtype=np.float64)

    header = report_header(inputs)
    payload = {
        "header": header,
        "best": best_row,
        "rows": rows,
        "skeletons": _length_stats(lengths),
        "runs": _length_stats(runs),
        "splits": splits,
        "merges": merges,
    }
    json_path.write_text(json.dumps(payload, indent=2, allow_nan=False))
    figures = {
        "ERL and NERL against threshold": _plot_erl(rows, best_row),
        "VOI split against VOI merge": _plot_voi(rows, best_row),
        "Skeleton and run lengths": _plot_lengths(lengths, runs),
    }
    html_path.write_text(_html_page(title, rows, best_row, figures, splits[:_WORST_ROWS], merges[:_WORST_ROWS], header))
    return json_path, html_path


def report_header(inputs: dict[str, Any] | None = None) -> dict[str, str]:
    """The report's header rows: ``inputs`` as text (None as "-"), then the date (local time,
    with its zone) and the axonseg version."""
    from datetime import datetime
    from importlib.metadata import PackageNotFoundError, version

    try:
        axonseg_version = version("axonseg")
    except PackageNotFoundError:  # a source tree that was never installed
        from axonseg import __version__ as axonseg_version
    rows = {str(name): "-" if value is None else str(value) for name, value in (inputs or {}).items()}
    rows["date"] = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    rows["axonseg version"] = axonseg_version
    return rows


def summary_table(summary_rows: Sequence[dict], best: dict | None = None, marker: str = BEST_MARKER):
    """A ``rich.table.Table`` of the summary rows; the best one carries ``marker`` in the first
    column (visible without colour too) and is drawn in bold green."""
    from rich.table import Table

    table = Table(title="evaluation (ERL in um, VOI in bits)",
                  caption=f"{marker} = the best row" if best is not None else None)
    table.add_column("", justify="center", no_wrap=True)  # the mark; the caption says what it means
    for column in TABLE_COLUMNS:
        table.add_column(_HEADERS.get(column, column), justify="right", no_wrap=True)
    for row in summary_rows:
        chosen = best is not None and _same_row(row, best)
        cells = [_format(row.get(c) / 1000 if c.endswith("_nm") and row.get(c) is not None else row.get(c)) for c in TABLE_COLUMNS]
        table.add_row(marker if chosen else "", *cells, style="bold green" if chosen else None)
    return table


def print_summary(summary_rows: Sequence[dict], best: dict | None = None, console=None) -> None:
    """Print :func:`summary_table` on a rich console (stdout by default); the best row's mark
    is ``*`` where the console cannot encode ``★``."""
    from rich.console import Console

    console = console or Console()
    try:
        BEST_MARKER.encode(console.encoding or "ascii")
        marker = BEST_MARKER
    except (UnicodeEncodeError, LookupError):
        marker = "*"
    console.print(summary_table(summary_rows, best, marker))
    spread = _nerl_interval(best) if best is not None else None
    if spread is not None:
        console.print(f"NERL {_format(best['nerl'])}: 90% bootstrap interval over the "
                      f"{best.get('n_skeletons', '?')} skeletons {spread}")


def _nerl_interval(row: dict) -> str | None:
    """A row's 90% NERL interval as "low-high", or None when it has none (no skeletons)."""
    if row.get("nerl_low") is None or row.get("nerl_high") is None:
        return None
    return f"{_format(row['nerl_low'])}-{_format(row['nerl_high'])}"


def _records(items: Any) -> list[dict]:
    records = items.to_records() if hasattr(items, "to_records") else list(items or [])
    return [_jsonable(dict(record)) for record in records]


def _jsonable(value: Any) -> Any:
    """Numpy scalars/arrays to Python, NaN/inf to None, recursively."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(item) for item in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _length_stats(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"count": 0}
    return {
        "count": int(len(values)),
        "total_nm": float(values.sum()),
        "mean_nm": float(values.mean()),
        "median_nm": float(np.median(values)),
        "max_nm": float(values.max()),
        "length_weighted_mean_nm": float(np.dot(values, values) / values.sum()) if values.sum() > 0 else None,
    }


def _same_row(row: dict, best: dict) -> bool:
    return all(row.get(key) == best.get(key) for key in TABLE_COLUMNS if key in best)


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _figure():
    from matplotlib.figure import Figure

    return Figure(figsize=(6.0, 4.0), dpi=100, layout="constrained")


def _png_base64(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")  # Figure has its own Agg canvas: no pyplot, no display
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _x_values(rows: list[dict]) -> tuple[list[float], str]:
    if rows and all(isinstance(row.get("threshold"), (int, float)) for row in rows):
        return [float(row["threshold"]) for row in rows], "threshold"
    return [float(i) for i in range(len(rows))], "row"


def _erl_figure(rows: list[dict], best: dict):
    """ERL (um, top) and NERL (bottom) against threshold, one y axis per panel; the best row is
    a star at its own value in each."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 5.0), dpi=100, layout="constrained")
    erl_axis, nerl_axis = figure.subplots(2, 1, sharex=True)
    x, label = _x_values(rows)
    erl = [np.nan if row.get("erl_nm") is None else row["erl_nm"] / 1000 for row in rows]
    nerl = [np.nan if row.get("nerl") is None else row["nerl"] for row in rows]
    erl_axis.plot(x, erl, "o-", color="tab:blue")
    nerl_axis.plot(x, nerl, "s-", color="tab:orange")
    gt_erl = next((row["gt_erl_nm"] / 1000 for row in rows if row.get("gt_erl_nm")), None)
    for row, xi, erl_um, nerl_value in zip(rows, x, erl, nerl):
        if _same_row(row, best):
            for axis, value in ((erl_axis, erl_um), (nerl_axis, nerl_value)):
                if np.isfinite(value):
                    axis.plot([xi], [value], "*", color="tab:green", markersize=16, zorder=3)
    erl_axis.set_ylabel("ERL (um)")
    erl_axis.set_ylim(bottom=0)
    # the ground truth's ERL is NERL's 1.0; a line at it would squash the ERL curve
    erl_axis.set_title("ERL and NERL by threshold (star: best)"
                       + (f"; ground truth ERL {gt_erl:.3g} um" if gt_erl is not None else ""), fontsize=10)
    nerl_axis.set_ylabel("NERL")
    nerl_axis.set_ylim(0, 1.05)
    nerl_axis.set_xlabel(label)
    return figure


def _plot_erl(rows: list[dict], best: dict) -> str:
    return _png_base64(_erl_figure(rows, best))


def _plot_voi(rows: list[dict], best: dict) -> str:
    figure = _figure()
    axis = figure.add_subplot()
    merge = [row.get("voi_merge", np.nan) for row in rows]
    split = [row.get("voi_split", np.nan) for row in rows]
    axis.plot(merge, split, "o-", color="tab:purple")
    x, _ = _x_values(rows)
    for xi, m, s in zip(x, merge, split):
        axis.annotate(f"{xi:g}", (m, s), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if best.get("voi_merge") is not None:
        axis.plot([best["voi_merge"]], [best["voi_split"]], "*", color="tab:green", markersize=16)
    axis.set_xlabel("VOI merge (bits)")
    axis.set_ylabel("VOI split (bits)")
    axis.set_title("VOI split against merge")
    return _png_base64(figure)


def _plot_lengths(lengths: np.ndarray, runs: np.ndarray) -> str:
    figure = _figure()
    axis = figure.add_subplot()
    positive = np.concatenate([lengths[lengths > 0], runs[runs > 0]])
    if len(positive):
        low, high = positive.min(), positive.max()
        bins = np.geomspace(low, high * 1.001, 40) if high > low else np.array([low * 0.9, high * 1.1])
        axis.hist(lengths[lengths > 0], bins=bins, alpha=0.6, label="gt skeleton length")
        axis.hist(runs[runs > 0], bins=bins, alpha=0.6, label="correct run length")
        axis.set_xscale("log")
        axis.legend()
    axis.set_xlabel("length (nm)")
    axis.set_ylabel("count")
    axis.set_title("Skeleton lengths with run lengths")
    return _png_base64(figure)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], highlight: Sequence[bool] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = ' class="best"' if i < len(highlight) and highlight[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(_format(v))}</td>" for v in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _nm(values: Any) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in values) + ")" if values is not None else "-"


#: Column headers of the page's summary table (ERL columns are shown in um).
_PAGE_HEADERS = {"threshold": "threshold", "erl_nm": "ERL (um)", "gt_erl_nm": "GT ERL (um)", "nerl": "NERL",
                 "voi_split": "VOI split (bits)", "voi_merge": "VOI merge (bits)", "arand": "adapted Rand error",
                 "n_split": "splits", "n_merge": "merges"}


def _best_sentence(best: dict) -> str:
    """The chosen row in words: threshold, NERL and ERL against the ground truth's."""
    parts = []
    if best.get("nerl") is not None:
        spread = _nerl_interval(best)
        parts.append(f"NERL {_format(best['nerl'])}" + (f" (90% interval over the skeletons {spread})" if spread else ""))
    if best.get("erl_nm") is not None:
        of = f" of {best['gt_erl_nm'] / 1000:.3g} um" if best.get("gt_erl_nm") is not None else ""
        parts.append(f"ERL {best['erl_nm'] / 1000:.3g} um{of}")
    threshold = f"threshold <b>{html.escape(_format(best.get('threshold')))}</b>" if best.get("threshold") is not None else "the row"
    figures = f": {html.escape(', '.join(parts))}" if parts else ""
    return f"<p>Best: {threshold}{figures} (highlighted in the summary, a star in the plots).</p>"


def _html_page(title, rows, best, figures, splits, merges, header=None) -> str:  # noqa: ANN001
    header_table = ('<table class="header"><tbody>' + "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>" for name, value in (header or {}).items()
    ) + "</tbody></table>") if header else ""
    summary = _html_table(
        [_PAGE_HEADERS.get(c, c) for c in TABLE_COLUMNS],
        [[row.get(c) / 1000 if c.endswith("_nm") and row.get(c) is not None else row.get(c) for c in TABLE_COLUMNS]
         for row in rows],
        [_same_row(r, best) for r in rows],
    )
    split_table = _html_table(
        ["rank", "skeleton", "segments", "location zyx (nm)", "split edges", "ERL gain (nm)"],
        [[i + 1, s["skeleton_id"], " + ".join(map(str, s["segment_ids"])), _nm(s["location_nm"]), s["n_edges"],
          s["erl_gain_nm"]] for i, s in enumerate(splits)],
    )
    merge_table = _html_table(
        ["rank", "segment", "skeletons", "location zyx (nm)", "involved length (nm)", "ERL loss (nm)", "mask voxels"],
        [[i + 1, m["segment_id"], ", ".join(map(str, m["skeleton_ids"])), _nm(m["location_nm"]),
          m["involved_length_nm"], m["erl_loss_nm"], m["mask_voxels"]] for i, m in enumerate(merges)],
    )
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"/>'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, data in figures.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
tr.best {{ background: #d8f5d0; font-weight: bold; }}
table.header th {{ text-align: left; background: #f3f3f3; }}
table.header td {{ text-align: left; font-family: monospace; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{header_table}
{_best_sentence(best)}
<h2>Summary</h2>{summary}
<h2>Plots</h2>{images}
<h2>Ten worst splits</h2><p>Ranked by ERL gained when the two segments are joined.</p>{split_table}
<h2>Ten worst merges</h2><p>Ranked by ERL lost to the merge.</p>{merge_table}
</body></html>
"""
