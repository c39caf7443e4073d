"""``axonseg proofread`` on a run that ``axonseg segment`` made, in a real napari window: the
canvas shows the raw EM (read where the run recorded it) under the segmentation
(run under ``xvfb-run -a``; skipped without a display)."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display: run under xvfb-run -a"),
]
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")


def _canvas(viewer) -> np.ndarray:  # noqa: ANN001
    return viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)


def test_segment_run_shows_raw_and_segments(make_napari_viewer, segment_run):
    from axonseg.viewer import open_proofread_viewer

    viewer = open_proofread_viewer(segment_run["run"], viewer=make_napari_viewer(show=True), user="tester")
    assert [layer.name for layer in viewer.layers][:2] == ["raw", "segmentation"]
    raw, segmentation = viewer.layers["raw"], viewer.layers["segmentation"]
    # both layers are placed in nm on the same grid (30 x 8 x 8 nm voxels)
    assert np.allclose(raw.scale, (30.0, 8.0, 8.0)) and np.allclose(raw.scale, segmentation.scale)
    assert np.allclose(raw.translate, segmentation.translate)
    viewer.dims.point = (8 * 30.0, *viewer.dims.point[1:])

    segmentation.visible = False
    gray = _canvas(viewer)
    inside = gray[(gray != gray[0, 0]).any(-1)]  # the image, not the canvas background
    assert len(inside) > 1000
    assert (inside[:, 0] == inside[:, 1]).all() and (inside[:, 1] == inside[:, 2]).all()  # gray
    assert len(np.unique(inside[:, 0])) >= 20  # the EM texture, not a blank plane

    segmentation.visible, segmentation.opacity, raw.visible = True, 1.0, False
    labels = _canvas(viewer)
    colours = np.unique(labels.reshape(-1, 3), axis=0)
    coloured = colours[(colours.max(1) - colours.min(1)) > 30]  # not gray
    assert len(coloured) >= 10  # many segments, each in its own colour
