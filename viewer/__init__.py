"""napari plugin for proofreading axonseg runs (npe2 manifest: napari.yaml).

``open_proofread_viewer(run_dir)`` opens a run; ``axonseg proofread RUN_DIR`` calls it.
"""

from axonseg.viewer.app import open_proofread_viewer

__all__ = ["open_proofread_viewer", "make_proofread_widget"]


def make_proofread_widget(napari_viewer):  # noqa: ANN001, ANN201
    """npe2 widget contribution: a folder picker that opens a run into this viewer."""
    from qtpy.QtWidgets import QFileDialog, QPushButton

    button = QPushButton("Open axonseg run for proofreading...")

    def choose() -> None:
        folder = QFileDialog.getExistingDirectory(button, "axonseg run folder")
        if folder:
            open_proofread_viewer(folder, viewer=napari_viewer)

    button.clicked.connect(choose)
    return button
