"""The proofreading viewer in a real napari window (run under ``xvfb-run``; skipped without a display)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a"),
]
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "proofread_merge.png"


@pytest.fixture
def run_copy(demo_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(demo_run, target)
    return target


def _open(make_napari_viewer, run_dir):
    from axonseg.viewer import open_proofread_viewer

    viewer = open_proofread_viewer(run_dir, viewer=make_napari_viewer(show=True), user="tester")
    return viewer, viewer.window._axonseg_controller


def _colour_mask(image: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return (np.abs(image[..., :3].astype(int) - np.round(np.asarray(colour[:3]) * 255)) <= 3).all(-1)


def test_merge_changes_canvas_colours(make_napari_viewer, run_copy):
    viewer, controller = _open(make_napari_viewer, run_copy)
    viewer.layers["raw"].visible = False
    segmentation = viewer.layers["segmentation"]
    segmentation.opacity = 1.0
    viewer.dims.point = (8 * 40.0 + 20.0, *viewer.dims.point[1:])  # z voxel 8 (40 nm voxels)
    plane = controller.lut.apply(np.asarray(controller.run.fragments[0].data[8]))
    ids, counts = np.unique(plane, return_counts=True)
    a, b = (int(i) for i in ids[np.argsort(counts)[::-1][:2]])
    colour_a, colour_b = segmentation.get_color(a), segmentation.get_color(b)
    assert not np.allclose(colour_a, colour_b)
    before = viewer.screenshot(canvas_only=True)
    mask_a, mask_b = _colour_mask(before, colour_a), _colour_mask(before, colour_b)
    assert mask_a.sum() > 100 and mask_b.sum() > 100

    controller.selected = [a, b]
    record = controller.merge_selected()
    assert record is not None and record.operation == "merge"
    child = record.children[0]
    after = viewer.screenshot(canvas_only=True)
    child_colour = np.round(np.asarray(segmentation.get_color(child)[:3]) * 255)
    for mask in (mask_a, mask_b):  # both segments' pixels now show the one merged colour
        assert np.abs(after[mask][:, :3].astype(int) - child_colour).max() <= 3
    assert not np.array_equal(before, after)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    gap = np.full((before.shape[0], 8, 4), 255, np.uint8)
    import imageio.v3 as iio

    iio.imwrite(SCREENSHOT, np.concatenate([before, gap, after], axis=1))
    # the data are fragments, never rewritten: the layer's store still holds fragment ids
    from axonseg.pipelines.proofread_demo import box_fragments

    assert np.array_equal(np.asarray(controller.run.fragments[0].data[8]), box_fragments((16, 64, 64), (4, 8, 8))[8])


def test_click_select_split_undo_redo_and_widget(make_napari_viewer, run_copy):
    viewer, controller = _open(make_napari_viewer, run_copy)
    widget = viewer.window._axonseg_widget
    run = controller.run
    graph = run.graph
    big = max(controller.session.state.members, key=lambda s: len(controller.session.state.members[s]))
    fragments = controller.session.fragments_of(big)
    centroid = dict(zip(graph.node_id.tolist(), graph.node_centroid))
    first, last = centroid[int(fragments[0])], centroid[int(fragments[-1])]
    assert controller.select_at(first) == big
    assert "history" in widget.history.objectName() or widget.info.text().startswith(f"segment {big}")
    controller.add_seed("a", first)
    controller.add_seed("b", last)
    assert len(viewer.layers["split seeds"].data) == 2
    record = controller.split_selected()
    assert record is not None and record.operation == "split"
    new = record.children[1]
    shown = controller.lut.apply(np.asarray(run.fragments[0].data))
    assert (shown == new).sum() == len(controller.session.fragments_of(new)) * 256
    assert controller.undo().operation == "undo"
    assert (controller.lut.apply(np.asarray(run.fragments[0].data)) == new).sum() == 0
    assert controller.redo().operation == "redo"
    assert widget.history.count() >= 1
    controller.selected = [big]
    controller.toggle_lock()
    assert controller.session.locked == {big: "tester"}
    other = next(s for s in controller.session.state.members if s != big)
    controller.selected = [big, other]
    assert controller.merge_selected() is None and "locked by tester" in controller.message
    controller.flag(first, "look here")
    assert controller.session.flags[-1].note == "look here"
    bound = {str(key).lower().replace("+", "-") for key in viewer.keymap}
    assert {"m", "x", "a", "b", "u", "shift-u", "l", "f", "n", "shift-e"} <= bound, bound


def test_next_error_follows_evaluation_ranking(make_napari_viewer, run_copy):
    report = {"splits": [{"location_nm": [80.0, 100.0, 200.0], "segment_ids": [3, 4], "erl_gain_nm": 500.0}],
              "merges": [{"location_nm": [120.0, 300.0, 40.0], "segment_id": 7, "erl_loss_nm": 900.0}]}
    (run_copy / "reports").mkdir()
    (run_copy / "reports" / "evaluation.json").write_text(json.dumps(report))
    viewer, controller = _open(make_napari_viewer, run_copy)
    assert list(controller.candidates.kind) == ["merge", "split"]  # larger ERL effect first
    assert np.allclose(controller.next_error(), [120.0, 300.0, 40.0])
    assert np.allclose(viewer.camera.center[-2:], [300.0, 40.0])
    assert np.allclose(controller.next_error(), [80.0, 100.0, 200.0])
    assert len(viewer.layers["error candidates"].data) == 2


def test_next_error_without_ground_truth_uses_uncertain_merges(make_napari_viewer, run_copy):
    viewer, controller = _open(make_napari_viewer, run_copy)
    candidates = controller.candidates
    assert len(candidates) > 0 and set(candidates.kind) == {"merge"}
    assert (np.diff(candidates.score) >= 0).all() and (candidates.score >= 0).all()
    location = controller.next_error()
    assert np.allclose(location, candidates.location_nm[0])
