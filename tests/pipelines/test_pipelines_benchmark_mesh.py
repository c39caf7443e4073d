"""``benchmarks/mesh.py --quick``: ours and zmesh on the whole volume at two tiny sizes, one
process per side, ending in one JSON line with sane figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mesh.py"


@pytest.mark.slow
def test_quick_mesh_benchmark_json_line() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["benchmark"] == "mesh" and figures["sizes"] == [32, 64]
    for size, sides in figures["sides"].items():
        assert set(sides) == {"ours", "peer"}
        # the same segmentation on both sides: every segment gets a mesh
        assert sides["ours"]["meshes"] == sides["peer"]["meshes"] > 0, size
        assert sides["ours"]["not_watertight"] == 0
        for row in sides.values():
            assert row["voxels_per_s"] == pytest.approx(int(size) ** 3 / row["seconds"])
            assert 50 < row["peak_rss_mb"] < 8000
    assert figures["ratio"] == pytest.approx(figures["sides"]["64"]["peer"]["seconds"] / figures["sides"]["64"]["ours"]["seconds"])
    assert 0.5 < figures["rss_ratio_512_vs_256"] < 3.0
    assert "peak RSS" in done.stdout and "ISA" in done.stdout
