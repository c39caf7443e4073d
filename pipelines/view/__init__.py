"""``axonseg view`` and ``axonseg export --format neuroglancer``: share a run the way connectomics
labs do. :mod:`.live` serves a local neuroglancer (raw, segmentation with the proofreading edits,
meshes, skeletons); :mod:`.export` writes the same as a static folder any web server can host.
"""

from axonseg.pipelines.view.live import (
    RunView,
    open_view,
    screenshot_run,
    serve_until_interrupted,
)

__all__ = ["RunView", "open_view", "screenshot_run", "serve_until_interrupted"]
