"""The evaluation report writes valid JSON and a self-contained HTML page."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from rich.console import Console

from axonseg.errors import OutputExistsError
from axonseg.evaluate import evaluate_arrays
from axonseg.pipelines.evaluate.report import print_summary, write_report


def _rows(tubes):
    gt, skeletons = tubes
    rows, results = [], []
    for threshold, cut in [(0.2, 10), (0.5, 20), (0.8, None)]:
        pred = gt.astype(np.uint64)
        if cut is not None:
            pred[:, :, cut:] += 100 * (pred[:, :, cut:] > 0).astype(np.uint64)
        else:
            pred[pred == 2] = 1  # a merge at the highest threshold
        result = evaluate_arrays(pred, gt, skeletons, (30, 6, 6))
        rows.append({"threshold": threshold, **result.summary()})
        results.append(result)
    return rows, results


def test_report_files_are_valid(tubes, tmp_path):
    rows, results = _rows(tubes)
    best_index = int(np.argmax([row["nerl"] for row in rows]))
    best = results[best_index]
    json_path, html_path = write_report(
        rows, rows[best_index], best.erl.skeleton_lengths_nm, best.erl.run_lengths_nm,
        results[0].split_merge.splits, results[2].split_merge.merges.to_records(), tmp_path / "reports",
    )
    payload = json.loads(json_path.read_text())
    assert payload["best"]["threshold"] == 0.8  # a merge of 2 of 6 tubes beats cutting all 6
    assert [row["threshold"] for row in payload["rows"]] == [0.2, 0.5, 0.8]
    assert payload["rows"][2]["n_merge"] == 1 and payload["merges"][0]["skeleton_ids"] == [1, 2]
    assert len(payload["splits"]) == 6 and payload["splits"][0]["location_nm"][2] == pytest.approx(57.0)
    assert payload["skeletons"]["count"] == 6 and payload["skeletons"]["total_nm"] == pytest.approx(6 * 210.0)

    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
    assert page.count('<tr class="best">') == 1
    best_row = payload["best"]
    assert best_row["nerl_low"] <= best_row["nerl"] <= best_row["nerl_high"]
    assert f"90% interval over the skeletons {best_row['nerl_low']:.3g}-{best_row['nerl_high']:.3g}" in page
    z, y, x = payload["splits"][0]["location_nm"]
    assert "Ten worst splits" in page and f"({z:.0f}, {y:.0f}, {x:.0f})" in page


def test_existing_report_is_not_overwritten(tubes, tmp_path):
    rows, results = _rows(tubes)
    args = (rows, rows[0], [210.0], [100.0, 110.0], [], [], tmp_path)
    write_report(*args)
    with pytest.raises(OutputExistsError, match="evaluation.json exists"):
        write_report(*args)
    write_report(*args, overwrite=True)


def test_rich_table_lists_every_row(tubes):
    rows, _ = _rows(tubes)
    console = Console(record=True, width=160)
    print_summary(rows, rows[2], console=console)
    text = console.export_text()
    assert "0.2" in text and "0.8" in text and "NERL" in text
    low, high = rows[2]["nerl_low"], rows[2]["nerl_high"]
    assert low < rows[2]["nerl"] < high  # 2 of 6 tubes merged: another draw of tubes moves NERL
    assert f"90% bootstrap interval over the 6 skeletons {low:.3g}-{high:.3g}" in text
    assert len([line for line in text.splitlines() if line.strip().startswith("│")]) >= 3
