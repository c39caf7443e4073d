"""Re-export after proofreading: only touched segments are re-skeletonized, and the connectome
follows the edited LUT (no display needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from axonseg.pipelines.skeletonize import run_skeletonize
from axonseg.pipelines.proofread_demo import write_demo_run
from axonseg.viewer.export import export_touched
from axonseg.viewer.run_data import load_run


def test_export_after_merge_follows_the_edited_lut(tmp_path: Path) -> None:
    run_dir = write_demo_run(tmp_path / "run", shape=(16, 64, 64), box=(4, 8, 8))
    run_skeletonize(run_dir, show_progress=False)
    run = load_run(run_dir)
    session = run.open_session(user="test")
    lut_before = dict(zip(*session.current_lut()))
    segments = sorted(set(lut_before.values()))
    assert len(segments) >= 3
    first = export_touched(run, session, formats="csv")
    assert first["touched"] == [] and first["removed"] == []

    keep, absorbed = segments[0], segments[1]
    session.merge([keep, absorbed])
    survivor = int(session.segment_of(np.array([f for f, s in lut_before.items() if s == keep][:1]))[0])
    gone = absorbed if survivor == keep else keep
    second = export_touched(run, session, formats="csv")
    assert second["touched"] == [survivor] and second["removed"] == [gone]
    assert json.loads((run_dir / "connectome" / "proofread_export.json").read_text())["op_id"] == session.version

    # the merged segment has a fresh skeleton; the absorbed id is gone from skeletons and edges
    assert survivor in run.skeletons and gone not in run.skeletons
    edges = pd.concat(pd.read_csv(p) for p in (run_dir / "connectome").rglob("*.csv") if "bodyId_pre" in p.read_text()[:200])
    ids = set(edges["bodyId_pre"]) | set(edges["bodyId_post"])
    assert gone not in ids
    assert survivor in ids
