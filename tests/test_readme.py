"""The README's Python example runs as written (in a scratch folder) and gives real output."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_api_example_runs(tmp_path, capsys, monkeypatch):
    code = re.search(r"## From Python.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own documentation
    threshold, segments, raw = namespace["threshold"], namespace["segments"], namespace["raw"]
    assert 0.0 <= threshold <= 1.0
    assert segments.shape == (10, 64, 64) and segments.dtype == np.uint64
    assert len(np.unique(segments[segments > 0])) > 5  # a real segmentation, not one label
    assert raw.shape == (13, 64, 64)  # three sections mirrored before z = 0
    np.testing.assert_array_equal(raw[2], raw[4])  # section -1 mirrors section 1
    assert str(threshold) in capsys.readouterr().out
    assert os.path.isdir("run/luts")
