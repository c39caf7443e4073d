"""``axonseg view``: a local neuroglancer on a run, checked in headless Chromium (the segments in
their own colours, a proofreading merge as one colour, meshes in 3D); the static server's CORS;
notes for missing meshes and skeletons; one-line errors; Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from segment_runs import ENV, error_lines, run_cli
from view_runs import (
    SIZE,
    copy_run,
    hue_distance,
    merge,
    panel_samples,
    require_chromium,
    segment_hue,
    typical_hue,
    write_view_run,
)

from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.pipelines.run_folder import Lut, RunFolder
from axonseg.pipelines.view import open_view
from axonseg.pipelines.view.contents import skeleton_folder
from axonseg.pipelines.view.labels import merged_segments, shown_labels


def _screenshot(run: Path, out: Path) -> None:
    result = run_cli(["view", str(run), "--screenshot", str(out), "--size", *map(str, SIZE)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: ") and out.is_file()


def _saturated_fraction(png: Path, left: int, right: int) -> float:
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB"), np.float64)[:, left:right]
    chroma = image.max(axis=2) - image.min(axis=2)
    return float((chroma > 60).mean())


def test_view_screenshot_shows_each_segment_in_its_own_colour(view_run: Path, tmp_path: Path) -> None:
    require_chromium()
    out = tmp_path / "view.png"
    _screenshot(view_run, out)
    samples = panel_samples(out, shown_labels(view_run))
    seen = {segment: hues for segment, hues in samples.items() if len(hues) >= 20}
    assert len(seen) >= 6, sorted(samples)  # the centre plane cuts 8 axons, some broken in two
    for segment, hues in seen.items():
        matching = np.mean([hue_distance(h, segment_hue(segment)) < 0.04 for h in hues])
        assert matching > 0.8, (segment, matching)
    distinct = []
    for hue in sorted(typical_hue(h) for h in seen.values()):
        if not distinct or hue_distance(hue, distinct[-1]) > 0.02:
            distinct.append(hue)
    assert len(distinct) >= 5, distinct  # not a blank or one-colour canvas
    assert _saturated_fraction(out, SIZE[0] // 2, SIZE[0]) > 0.05  # the meshes in the 3D panel


def test_a_proofreading_merge_shows_as_one_colour(view_run: Path, tmp_path: Path) -> None:
    require_chromium()
    run = copy_run(view_run, tmp_path / "run")
    before = shown_labels(run)
    plane = before.read((slice(8, 9), slice(None), slice(None)))[0]
    ids, counts = np.unique(plane, return_counts=True)
    large = [int(i) for i in ids[np.argsort(-counts)] if i != 0]
    a = large[0]
    b = next(s for s in large[1:] if hue_distance(segment_hue(s), segment_hue(a)) > 0.1)
    merge(run, a, b)
    after = shown_labels(run)
    assert after.n_edits == 1 and sorted([a, b]) == sorted([*after.merged, *next(iter(after.merged.values()))])
    out = tmp_path / "merged.png"
    _screenshot(run, out)
    samples = panel_samples(out, before)  # the pixels of the segments as they were
    hue_a, hue_b = typical_hue(samples[a]), typical_hue(samples[b])
    assert hue_distance(hue_a, hue_b) < 0.02, (hue_a, hue_b)
    assert min(hue_distance(hue_a, segment_hue(s)) for s in (a, b)) < 0.04
    # the other segments keep their colours
    other = next(s for s in large if s not in (a, b) and hue_distance(segment_hue(s), hue_a) > 0.1)
    assert hue_distance(typical_hue(samples[other]), segment_hue(other)) < 0.04


def test_view_serves_meshes_and_skeletons_with_cors_and_nothing_else(view_run: Path) -> None:
    view = open_view(view_run)
    try:
        assert view.contents.notes == [] and view.contents.raw is not None
        assert len(view.segments) == 6
        with urllib.request.urlopen(view.url, timeout=30) as response:
            assert response.status == 200
        port = view.static.port
        for path, kind in (("meshes/info", "neuroglancer_legacy_mesh"), ("skeletons/info", "neuroglancer_skeletons")):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=30) as response:
                assert response.headers["Access-Control-Allow-Origin"] == "*"
                assert kind in response.read().decode()
        segment = view.segments[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/meshes/{segment}:0", timeout=30) as response:
            assert response.status == 200
        for path in ("edits.sqlite", "luts/index.json", "meshes/../luts/index.json", "meshes/", "mesh.json"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=30)
    finally:
        view.close()


def test_run_without_meshes_or_skeletons_opens_and_says_what_makes_them(tmp_path: Path, caplog) -> None:
    run = write_view_run(tmp_path / "run", meshes=False, skeletons=False)
    with caplog.at_level("WARNING"):
        view = open_view(run)
    try:
        assert view.static is None and view.contents.raw is not None
        assert view.contents.notes == [
            f"{run}: no meshes (meshes/): run `axonseg mesh {run}`",
            f"{run}: no skeletons (skeletons/nodes.parquet): run `axonseg skeletonize {run}`",
        ]
        assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == view.contents.notes
        with urllib.request.urlopen(view.url, timeout=30) as response:
            assert response.status == 200
    finally:
        view.close()


def test_recorded_raw_that_moved_is_a_note_and_raw_given_missing_is_one_line(view_run: Path, tmp_path: Path) -> None:
    run = copy_run(view_run, tmp_path / "run")
    shutil.rmtree(run / "volume.zarr" / "raw")
    (run / "inputs.json").write_text('{"raw": {"address": "%s"}}' % (tmp_path / "moved.zarr" / "raw"))
    view = open_view(run)
    try:
        assert view.contents.raw is None
        assert view.contents.notes == [(f"{tmp_path / 'moved.zarr'}: the run's raw EM is missing (moved or deleted?): "
                                       "showing the segmentation alone (pass --raw ADDRESS)")]
    finally:
        view.close()
    result = run_cli(["view", str(run), "--raw", str(tmp_path / "gone.zarr" / "raw")])
    assert result.returncode == 1
    assert error_lines(result.stderr) == [(f"error: {tmp_path / 'gone.zarr'}: no such file or folder (--raw): "
                                          "expected the raw EM the run was made from")]


def test_port_in_use_is_one_line(view_run: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli(["view", str(view_run), "--port", str(port)])
    assert result.returncode == 1
    assert error_lines(result.stderr) == [(f"error: --port {port}: 127.0.0.1:{port} is in use by another program: "
                                          "choose another --port (0 picks a free one)")]


def test_run_without_a_segmentation_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    store = run / "volume.zarr"
    create_multiscale(store, "raw", (4, 16, 16), np.uint8, (30.0, 8.0, 8.0), chunk_shape=(4, 16, 16))
    write_block(open_level(store, "raw", 0), np.zeros((4, 16, 16), np.uint8), (0, 0, 0))
    mark_complete(store, "raw")
    result = run_cli(["view", str(run)])
    assert result.returncode == 1
    assert error_lines(result.stderr) == [(f"error: {run}: no segmentation and no fragments with LUTs; "
                                          "run the segment stage first")]
    result = run_cli(["view", str(tmp_path)])
    assert error_lines(result.stderr) == [f"error: {tmp_path}: not a run folder (no volume.zarr inside)"]


def test_screenshot_without_chromium_is_one_line(view_run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "view.png"
    result = run_cli(["view", str(view_run), "--screenshot", str(out)])
    assert result.returncode == 1 and not out.exists()
    assert error_lines(result.stderr) == [
        ("error: --screenshot needs Chromium, and none of chromium, chromium-browser, google-chrome, "
        "google-chrome-stable is on PATH: install the Debian package `chromium` (apt-get install chromium)")]


def test_ctrl_c_stops_the_viewer_with_exit_130(view_run: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "axonseg.cli", "view", str(view_run)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://\S+", line).group(0)
        assert line.startswith(f"neuroglancer on {view_run}: ")
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and stderr.rstrip().endswith("viewer stopped"), stderr
    assert "Traceback" not in stderr


def test_precomputed_skeletons_are_written_once_and_again_when_the_tables_change(view_run: Path, tmp_path: Path) -> None:
    run = RunFolder(copy_run(view_run, tmp_path / "run"))
    folder = skeleton_folder(run)
    info = folder / "info"
    assert folder == run.skeletons_dir / "precomputed" and info.is_file()
    written = info.stat().st_mtime_ns
    assert skeleton_folder(run) == folder and info.stat().st_mtime_ns == written  # reused
    later = time.time() + 5
    os.utime(run.skeletons_dir / "nodes.parquet", (later, later))
    assert skeleton_folder(run) == folder and info.stat().st_mtime_ns > written


def test_view_help_states_units_and_options() -> None:
    from typer.testing import CliRunner

    from axonseg.cli import app

    text = CliRunner().invoke(app, ["view", "--help"], terminal_width=200).output
    assert "nm" in text and "zyx" in text and "Ctrl-C" in text
    for option in ("--port", "--bind", "--raw", "--screenshot", "--size"):
        assert option in text


def test_merged_segments_lists_only_segments_absorbed_whole() -> None:
    fragments = np.arange(1, 8, dtype=np.uint64)
    base = Lut(fragments, np.array([1, 1, 2, 2, 3, 3, 4], np.uint64))
    # 2 merged into 1; 3 split into 3 and 9; 4 untouched
    current = Lut(fragments, np.array([1, 1, 1, 1, 3, 9, 4], np.uint64))
    assert merged_segments(base, current) == {1: [2]}
    # 5 gets all of 1 and 2: both absorbed
    assert merged_segments(base, Lut(fragments, np.array([5, 5, 5, 5, 3, 3, 4], np.uint64))) == {5: [1, 2]}
