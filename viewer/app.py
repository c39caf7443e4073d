"""``open_proofread_viewer``: a napari viewer over a run with the proofreading layers, keys and dock.

Layers: raw (multiscale, lazy), segmentation (fragments through the LUT, never rewritten),
ground truth when present, skeletons of the selected segments, error candidates, split seeds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from axonseg.viewer.controller import ProofreadController
from axonseg.viewer.lut_view import LutLabels, SegmentLut
from axonseg.viewer.run_data import RunData, load_run

logger = logging.getLogger(__name__)


def _cursor(viewer) -> np.ndarray:  # noqa: ANN001
    return np.asarray(viewer.cursor.position, np.float64)[-3:]


def add_layers(viewer, run: RunData, lut: SegmentLut) -> None:  # noqa: ANN001
    """Add the run's layers; all in world nm (scale = voxel size, translate = offset)."""
    def geometry(volume) -> dict:  # noqa: ANN001
        return {"scale": tuple(volume.voxel_size), "translate": tuple(volume.offset)}

    raw = [level.data for level in run.raw]
    viewer.add_image(raw if len(raw) > 1 else raw[0], name="raw", multiscale=len(raw) > 1, **geometry(run.raw[0]))
    segmentation = [LutLabels(level.data, lut) for level in run.fragments]
    viewer.add_labels(segmentation if len(segmentation) > 1 else segmentation[0], name="segmentation",
                      multiscale=len(segmentation) > 1, opacity=0.5, **geometry(run.fragments[0]))
    if run.labels is not None:
        viewer.add_labels(run.labels.data, name="ground truth", visible=False, opacity=0.4, **geometry(run.labels))
    viewer.add_vectors(np.zeros((0, 2, 3)), name="skeletons", edge_width=2, edge_color="yellow", vector_style="line")
    viewer.add_points(np.zeros((0, 3)), name="split seeds", size=6 * float(run.voxel_size[-1]), face_color="red")


def _add_candidates(viewer, controller: ProofreadController, voxel: float) -> None:  # noqa: ANN001
    candidates = controller.candidates
    colours = np.where(candidates.kind == "merge", "magenta", "orange") if len(candidates) else "magenta"
    viewer.add_points(candidates.location_nm.reshape(-1, 3), name="error candidates", size=8 * voxel,
                      face_color=colours, visible=len(candidates) > 0)


def bind_keys(viewer, controller: ProofreadController, export=None) -> None:  # noqa: ANN001
    """Keys and clicks of the proofreading actions (also bound on the segmentation layer,
    whose own label-painting keys would otherwise win while it is the active layer)."""
    actions = {
        "m": lambda v: controller.merge_selected(),
        "x": lambda v: controller.split_selected(),
        "a": lambda v: controller.add_seed("a", _cursor(v)),
        "b": lambda v: controller.add_seed("b", _cursor(v)),
        "u": lambda v: controller.undo(),
        "Shift-U": lambda v: controller.redo(),
        "l": lambda v: controller.toggle_lock(),
        "f": lambda v: controller.flag(_cursor(v), ""),
        "n": lambda v: controller.next_error(),
        "Shift-M": lambda v: controller.show_mesh(),
    }
    if export is not None:
        actions["Shift-E"] = lambda v: export()
    layer = viewer.layers["segmentation"]
    for key, action in actions.items():
        viewer.bind_key(key, action, overwrite=True)
        layer.bind_key(key, lambda _layer, act=action: act(viewer), overwrite=True)

    def on_click(source, event) -> None:  # noqa: ANN001
        if event.type == "mouse_press" and event.button == 1 and layer.mode == "pan_zoom":
            controller.select_at(np.asarray(event.position)[-3:], add="Shift" in event.modifiers)

    viewer.mouse_drag_callbacks.append(on_click)


def open_proofread_viewer(run_dir: str | Path, show: bool = True, user: str | None = None, viewer=None,  # noqa: ANN001, ANN201
                          raw: str | Path | None = None):
    """Open a run in napari for proofreading.

    Args:
        run_dir: the run folder.
        show: show the window (False for scripts and benchmarks).
        user: recorded in the edit log; default the login name.
        viewer: an existing viewer to use (tests pass ``make_napari_viewer()``).
        raw: the raw EM address when it has moved from where the run recorded it.

    Returns:
        The napari viewer; its proofreading state is ``viewer.window._axonseg_controller``.
    """
    run = load_run(run_dir, raw)  # a missing run or raw fails in one line before napari loads
    import napari

    from axonseg.viewer.export import export_touched
    from axonseg.viewer.widget import ProofreadWidget

    session = run.open_session(user)
    lut = SegmentLut(*session.current_lut())
    viewer = viewer or napari.Viewer(title=f"axonseg proofread {run_dir}", ndisplay=2, show=show)
    add_layers(viewer, run, lut)
    controller = ProofreadController(viewer, run, session, lut)
    _add_candidates(viewer, controller, float(run.voxel_size[-1]))
    viewer.layers.selection.active = viewer.layers["segmentation"]

    def export() -> dict | None:
        try:
            summary = export_touched(run, session)
        except Exception as error:  # noqa: BLE001 - shown to the user, the viewer stays open
            controller._notify(f"export failed: {error}")
            return None
        controller._notify(f"exported: {len(summary['touched'])} touched segments re-skeletonized -> {summary['export']}")
        return summary

    bind_keys(viewer, controller, export)
    widget = ProofreadWidget(controller, export)
    viewer.window.add_dock_widget(widget, name="axonseg proofreading", area="right")
    viewer.window._axonseg_controller = controller
    viewer.window._axonseg_widget = widget
    return viewer
