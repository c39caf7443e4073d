"""The HTML report reads well (issue #17): a header table of what was evaluated, and an ERL/NERL
plot with one y axis per panel and the best threshold's star at its own values."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib.metadata import version

import numpy as np

from axonseg.pipelines.evaluate.report import _erl_figure, write_report

ROWS = [  # three thresholds; the best (0.5) has NERL 0.62, far from the 1.0 a twin axis drew it at
    {"threshold": 0.3, "erl_nm": 1800.0, "gt_erl_nm": 6400.0, "nerl": 0.28, "voi_split": 2.1, "voi_merge": 0.2,
     "arand": 0.3, "n_split": 9, "n_merge": 0},
    {"threshold": 0.5, "erl_nm": 3970.0, "gt_erl_nm": 6400.0, "nerl": 0.62, "voi_split": 1.2, "voi_merge": 0.4,
     "arand": 0.2, "n_split": 4, "n_merge": 1},
    {"threshold": 0.7, "erl_nm": 2900.0, "gt_erl_nm": 6400.0, "nerl": 0.45, "voi_split": 0.6, "voi_merge": 1.3,
     "arand": 0.35, "n_split": 1, "n_merge": 3},
]
INPUTS = {"run folder": "/runs/medulla", "raw": "/data/fib.h5:raw", "gt": "/data/fib.h5:labels",
          "model": "/models/fib_default/model.pt"}


class _HeaderRows(HTMLParser):
    """``(th, td)`` text pairs of ``<table class="header">``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._inside = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        if tag == "table" and ("class", "header") in attrs:
            self._inside = True
        elif self._inside and tag == "tr":
            self.rows.append([])
        elif self._inside and tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag):  # noqa: ANN001
        if tag == "table":
            self._inside = False
        elif self._inside and tag in ("th", "td") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):  # noqa: ANN001
        if self._cell is not None:
            self._cell.append(data)


def test_header_is_a_table_of_inputs_date_and_version(tmp_path):
    json_path, html_path = write_report(ROWS, ROWS[1], [6400.0], [3970.0], [], [], tmp_path, inputs=INPUTS)
    page = html_path.read_text()
    parser = _HeaderRows()
    parser.feed(page)
    header = dict(parser.rows)
    assert [row[0] for row in parser.rows] == ["run folder", "raw", "gt", "model", "date", "axonseg version"]
    assert all(header[name] == value for name, value in INPUTS.items())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} \S+", header["date"])
    assert header["axonseg version"] == version("axonseg")
    assert "threshold = " not in page and "erl_nm = " not in page  # no raw key=value line
    assert "Best: threshold <b>0.5</b>: NERL 0.62, ERL 3.97 um of 6.4 um" in page
    assert json.loads(json_path.read_text())["header"] == header


def test_missing_inputs_show_as_a_dash(tmp_path):
    _, html_path = write_report(ROWS, ROWS[1], [6400.0], [3970.0], [], [], tmp_path, inputs={"raw": None})
    parser = _HeaderRows()
    parser.feed(html_path.read_text())
    assert parser.rows[0] == ["raw", "-"] and [row[0] for row in parser.rows[1:]] == ["date", "axonseg version"]


def _stars(axis) -> list:  # noqa: ANN001
    return [line for line in axis.get_lines() if line.get_marker() == "*"]


def test_erl_plot_has_one_y_axis_per_panel_and_the_star_at_the_best_values():
    figure = _erl_figure(ROWS, ROWS[1])
    erl_axis, nerl_axis = figure.axes  # two panels, no twin axis
    assert erl_axis.get_position().bounds != nerl_axis.get_position().bounds
    assert erl_axis.get_ylabel() == "ERL (um)" and nerl_axis.get_ylabel() == "NERL"
    for axis, expected in ((erl_axis, 3.97), (nerl_axis, 0.62)):
        (star,) = _stars(axis)
        assert np.allclose(star.get_xdata(), [0.5]) and np.allclose(star.get_ydata(), [expected])
    curve = [line for line in nerl_axis.get_lines() if line.get_marker() == "s"][0]
    assert np.allclose(curve.get_ydata(), [0.28, 0.62, 0.45])
    assert nerl_axis.get_ylim() == (0.0, 1.05)


def test_summary_table_names_columns_with_units(tmp_path):
    _, html_path = write_report(ROWS, ROWS[1], [6400.0], [3970.0], [], [], tmp_path)
    page = html_path.read_text()
    summary = page.split("<h2>Summary</h2>", 1)[1].split("</table>", 1)[0]
    headers = re.findall(r"<th>([^<]*)</th>", summary)
    assert headers[:4] == ["threshold", "ERL (um)", "GT ERL (um)", "NERL"] and "erl_nm" not in summary
    best_row = re.search(r'<tr class="best">(.*?)</tr>', summary).group(1)
    assert re.findall(r"<td>([^<]*)</td>", best_row)[:4] == ["0.5", "3.97", "6.4", "0.62"]
