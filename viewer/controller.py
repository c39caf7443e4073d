"""The proofreading actions behind the viewer's keys and buttons, without any Qt widget code.

Each action calls the edit session, then updates the display: only the LUT entries of the
moved fragments change, and the segmentation layers re-slice their visible plane.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from axonseg.errors import AxonsegError
from axonseg.proofread import EditRecord, ProofreadSession
from axonseg.viewer.lut_view import SegmentLut
from axonseg.viewer.run_data import RunData

logger = logging.getLogger(__name__)


class ProofreadController:
    """Selection, split seeds, edits and error navigation of one viewer.

    Args:
        viewer: the napari viewer (layers are added by :func:`axonseg.viewer.open_proofread_viewer`).
        run: the opened run.
        session: the edit session.
        lut: the display LUT shared by the segmentation layers.
    """

    def __init__(self, viewer, run: RunData, session: ProofreadSession, lut: SegmentLut) -> None:  # noqa: ANN001
        self.viewer = viewer
        self.run = run
        self.session = session
        self.lut = lut
        self.selected: list[int] = []
        self.seeds: dict[str, list[np.ndarray]] = {"a": [], "b": []}
        self.candidates = run.candidates(session)
        self.candidate_index = -1
        self.listeners: list[Callable[[], None]] = []
        self.message = ""

    # ---- display -----------------------------------------------------------------------------
    def _notify(self, message: str) -> None:
        self.message = message
        logger.info(message)
        try:
            self.viewer.status = message
        except Exception:  # noqa: BLE001 - a closed viewer has no status bar
            pass
        for listener in self.listeners:
            listener()

    def show_records(self, records: list[EditRecord]) -> None:
        """Update the display LUT for the fragments these rows moved, then re-slice."""
        for record in records:
            for move in record.moves:
                self.lut.update(move.fragments, move.target)
        self.refresh_layers()

    def refresh_layers(self) -> None:
        layer = self.viewer.layers["segmentation"]
        layer.refresh(thumbnail=False, extent=False)
        if self.selected:
            layer.selected_label = self.selected[-1]
        self._update_skeletons()

    def _update_skeletons(self) -> None:
        if "skeletons" not in self.viewer.layers:
            return
        vectors = []
        for segment in self.selected:
            graph = self.run.skeletons.get(int(segment))
            if graph is not None and len(graph.edges):
                start = graph.nodes_nm[graph.edges[:, 0]]
                vectors.append(np.stack([start, graph.nodes_nm[graph.edges[:, 1]] - start], axis=1))
        self.viewer.layers["skeletons"].data = np.concatenate(vectors) if vectors else np.zeros((0, 2, 3))

    def _edit(self, action: Callable[[], EditRecord]) -> EditRecord | None:
        self.show_records(self.session.refresh())  # rows other users wrote
        try:
            record = action()
        except AxonsegError as error:
            self.show_records(self.session.refresh())
            self._notify(str(error))
            return None
        self.show_records([record])
        self._notify(f"op {record.op_id}: {record.operation} {list(record.parents)} -> {list(record.children)}")
        return record

    # ---- actions -----------------------------------------------------------------------------
    def select_at(self, point_nm, add: bool = False) -> int:  # noqa: ANN001
        """Select the segment under a point (nm, zyx); ``add`` keeps the earlier selection."""
        segment = self.session.segment_at(point_nm)
        if segment == 0:
            return 0
        if not add:
            self.selected = []
        if segment not in self.selected:
            self.selected.append(segment)
        self.refresh_layers()
        self._notify(f"selected {self.selected}")
        return segment

    def merge_selected(self) -> EditRecord | None:
        if len(self.selected) < 2:
            self._notify("merge: select two or more segments first (shift-click adds)")
            return None
        record = self._edit(lambda: self.session.merge(self.selected))
        if record is not None:
            self.selected = [record.children[0]]
            self.refresh_layers()
        return record

    def add_seed(self, side: str, point_nm) -> None:  # noqa: ANN001
        self.seeds[side].append(np.asarray(point_nm, np.float64)[-3:])
        if "split seeds" in self.viewer.layers:
            points = self.seeds["a"] + self.seeds["b"]
            layer = self.viewer.layers["split seeds"]
            layer.data = np.asarray(points).reshape(-1, 3)
            layer.face_color = ["red"] * len(self.seeds["a"]) + ["cyan"] * len(self.seeds["b"])
        self._notify(f"split seeds: {len(self.seeds['a'])} on side A, {len(self.seeds['b'])} on side B")

    def split_selected(self) -> EditRecord | None:
        if not self.selected or not self.seeds["a"] or not self.seeds["b"]:
            self._notify("split: select a segment and place seeds on both sides (a / b keys)")
            return None
        segment, seeds_a, seeds_b = self.selected[-1], list(self.seeds["a"]), list(self.seeds["b"])
        record = self._edit(lambda: self.session.split(segment, seeds_a, seeds_b))
        if record is not None:
            self.seeds = {"a": [], "b": []}
            if "split seeds" in self.viewer.layers:
                self.viewer.layers["split seeds"].data = np.zeros((0, 3))
            self.selected = list(record.children)
            self.refresh_layers()
        return record

    def undo(self) -> EditRecord | None:
        return self._edit(self.session.undo)

    def redo(self) -> EditRecord | None:
        return self._edit(self.session.redo)

    def toggle_lock(self) -> EditRecord | None:
        if not self.selected:
            self._notify("lock: select a segment first")
            return None
        segment = self.selected[-1]
        unlock = segment in self.session.locked
        return self._edit(lambda: (self.session.unlock if unlock else self.session.lock)(segment))

    def flag(self, point_nm, note: str = "") -> EditRecord | None:  # noqa: ANN001
        return self._edit(lambda: self.session.flag(np.asarray(point_nm)[-3:], note))

    def next_error(self) -> np.ndarray | None:
        """Move the camera to the next ranked error candidate; returns its location (nm)."""
        if len(self.candidates) == 0:
            self._notify("no error candidates in this run")
            return None
        self.candidate_index = (self.candidate_index + 1) % len(self.candidates)
        location = self.candidates.location_nm[self.candidate_index]
        self.viewer.camera.center = tuple(location)
        step = self.viewer.dims.point
        self.viewer.dims.point = (float(location[0]), *step[1:])
        kind = self.candidates.kind[self.candidate_index]
        segments = [int(s) for s in self.candidates.segment_ids[self.candidate_index] if s]
        self._notify(f"candidate {self.candidate_index + 1}/{len(self.candidates)}: {kind} at "
                     f"{np.round(location).tolist()} nm, segments {segments}")
        return location

    def show_mesh(self) -> bool:
        """Show the last selected segment's mesh (``RUN/meshes``) in 3D; True when one is shown.
        Without a selection or a mesh the status bar says why."""
        from axonseg.viewer.mesh_view import show_segment_mesh

        if not self.selected:
            self._notify("mesh: select a segment first")
            return False
        segment = int(self.selected[-1])
        edited, _ = self.session.touched_segments(since_op=0)
        if segment in edited:  # a merge keeps a parent's id: its old mesh would be shown as the new segment
            self._notify(f"mesh: segment {segment} was changed by a proofreading edit; the meshes in "
                         f"{self.run.run_dir / 'meshes'} show the segmentation before the edits")
            return False
        colour = None
        if "segmentation" in self.viewer.layers:
            colour = self.viewer.layers["segmentation"].get_color(segment)
        message = show_segment_mesh(self.viewer, self.run.run_dir, segment, self.run.voxel_size, colour)
        self._notify(message)
        return not message.startswith("mesh:")

    def segment_info(self, segment_id: int) -> dict:
        """Size (voxels), skeleton length (nm), synapse count and history of a segment."""
        graph = self.run.skeletons.get(int(segment_id))
        return {
            "segment": int(segment_id),
            "size_voxels": self.session.segment_size(segment_id),
            "fragments": len(self.session.fragments_of(segment_id)),
            "skeleton_length_nm": None if graph is None else float(graph.path_length_nm),
            "synapses": self.run.synapse_counts.get(int(segment_id)) if self.run.synapse_counts else None,
            "locked_by": self.session.locked.get(int(segment_id)),
            "history": [f"op {r.op_id} {r.user}: {r.operation} {list(r.parents)}->{list(r.children)}"
                        for r in self.session.history(segment_id)],
        }
