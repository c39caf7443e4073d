"""The proofreading dock widget: action buttons, the selected segment's facts and its history."""

from __future__ import annotations

from qtpy.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QListWidget, QPushButton, QVBoxLayout, QWidget

from axonseg.viewer.controller import ProofreadController

KEYS = {
    "merge": "m", "split": "x", "seed A": "a", "seed B": "b", "undo": "u", "redo": "Shift-U",
    "lock": "l", "flag": "f", "next error": "n", "mesh 3D": "Shift-M", "export": "Shift-E",
}


class ProofreadWidget(QWidget):
    """Buttons for every action (with their keys), and facts about the selected segment."""

    def __init__(self, controller: ProofreadController, export=None, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.controller = controller
        layout = QVBoxLayout(self)
        self.info = QLabel("click a segment to select it (shift-click adds)")
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        self.note = QLineEdit()
        self.note.setPlaceholderText("note for the next flag")
        layout.addWidget(self.note)
        actions = {
            "merge": controller.merge_selected, "split": controller.split_selected, "undo": controller.undo,
            "redo": controller.redo, "lock": controller.toggle_lock, "next error": controller.next_error,
            "flag": lambda: controller.flag(controller.viewer.cursor.position, self.note.text()),
            "mesh 3D": controller.show_mesh,
        }
        if export is not None:
            actions["export"] = export
        row = QHBoxLayout()
        self.buttons = {}
        for index, (name, action) in enumerate(actions.items()):
            button = QPushButton(f"{name} [{KEYS[name]}]")
            button.clicked.connect(lambda _checked=False, act=action: act())
            self.buttons[name] = button
            row.addWidget(button)
            if index % 3 == 2:
                layout.addLayout(row)
                row = QHBoxLayout()
        layout.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("edit history of the selected segment"))
        self.history = QListWidget()
        layout.addWidget(self.history)
        controller.listeners.append(self.update_view)

    def update_view(self) -> None:
        """Show the last selected segment's size, skeleton length, synapses and history."""
        self.status.setText(self.controller.message)
        if not self.controller.selected:
            return
        info = self.controller.segment_info(self.controller.selected[-1])
        length = "no skeleton" if info["skeleton_length_nm"] is None else f"{info['skeleton_length_nm'] / 1000:.2f} um"
        synapses = "unknown (no export)" if info["synapses"] is None else str(info["synapses"])
        lock = f", locked by {info['locked_by']}" if info["locked_by"] else ""
        self.info.setText(f"segment {info['segment']}: {info['size_voxels']} voxels in {info['fragments']} fragments, "
                          f"skeleton {length}, synapses {synapses}{lock}; selected {self.controller.selected}")
        self.history.clear()
        self.history.addItems(info["history"] or ["(no edits)"])
