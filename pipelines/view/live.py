"""``axonseg view``: a local neuroglancer on one run. The raw EM and the segmentation (with the
proofreading edits) are served lazily from where they are; the meshes and skeletons as
precomputed folders over a small static server.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axonseg.errors import ConfigError
from axonseg.pipelines.view.arrays import label_array, volume_array
from axonseg.pipelines.view.contents import RunContents, run_contents, segments_to_show
from axonseg.pipelines.view.labels import ShownLabels, shown_labels
from axonseg.pipelines.view.state import Geometry, layer_dimensions, view_state
from axonseg.pipelines.view.static_server import StaticServer, check_port_free

logger = logging.getLogger(__name__)

#: segments shown in 3D at first (the largest at the volume's centre)
N_SEGMENTS = 6
#: the xy panel of a browser window, for the first zoom
PANEL_PX = (900, 900)


@dataclass
class RunView:
    """A running viewer of one run.

    Attributes:
        viewer: the ``neuroglancer.Viewer``.
        url: the address to open in a browser.
        labels: the segmentation shown.
        contents: raw, meshes, skeletons and the notes on what is missing.
        segments: the segment ids shown in 3D.
        static: the server of the precomputed folders (None when there are none).
    """

    viewer: Any
    url: str
    labels: ShownLabels
    contents: RunContents
    segments: list[int] = field(default_factory=list)
    static: StaticServer | None = None

    def close(self) -> None:
        """Stop both servers."""
        import neuroglancer

        if self.static is not None:
            self.static.close()
        neuroglancer.stop()


def _local_volume(array: Any, geometry: Geometry, volume_type: str) -> Any:
    import neuroglancer

    return neuroglancer.LocalVolume(array, dimensions=layer_dimensions(geometry),
                                    voxel_offset=list(geometry.voxel_offset), volume_type=volume_type)


def open_view(run_dir: str | Path, port: int = 0, bind: str = "127.0.0.1", raw: str | Path | None = None,
              panel_px: Sequence[int] = PANEL_PX, n_segments: int = N_SEGMENTS) -> RunView:
    """Start neuroglancer on a run and return it (the servers run in background threads).

    Args:
        run_dir: the run folder.
        port: the viewer's port; 0 picks a free one.
        bind: the address to listen on (``0.0.0.0`` shares it on the network).
        raw: the raw EM address when it has moved from where the run recorded it.
        panel_px: the xy panel's width and height in pixels, for the first zoom.
        n_segments: how many segments to show in 3D.

    Raises:
        InputError: not a run folder, a run without a segmentation, or ``raw`` missing.
        ConfigError: ``port`` is in use.
    """
    labels = shown_labels(run_dir)  # a run without a segmentation fails here, before any server
    check_port_free(bind, port)
    geometry = Geometry.of(labels.volume)
    contents = run_contents(run_dir, geometry.voxel_size, raw)
    if labels.n_edits:
        logger.info("showing %d proofreading edit(s); meshes and skeletons are from before them (a merged "
                    "segment shows its parts' meshes together)", labels.n_edits)
    import neuroglancer

    if neuroglancer.server.is_server_running():
        neuroglancer.stop()
    neuroglancer.set_server_bind_address(bind, port)
    viewer = neuroglancer.Viewer()
    url = viewer.get_viewer_url()
    view = RunView(viewer, url, labels, contents)
    try:
        host = urllib.parse.urlsplit(url).hostname or "127.0.0.1"
        parts = (("meshes", contents.mesh_dir), ("skeletons", contents.skeleton_dir))
        folders = {name: folder for name, folder in parts if folder is not None}
        view.static = StaticServer(folders, bind=bind) if folders else None
        extra = [f"precomputed://{view.static.url(host, name)}" for name in folders] if view.static else []
        segmentation = neuroglancer.LayerDataSource(
            url=_local_volume(label_array(labels), geometry, "segmentation"),
            # our precomputed meshes replace the ones LocalVolume would compute from the whole array
            enable_default_subsources=False, subsources={"default": True, "bounds": True, "meshes": False},
        )
        raw_source = None
        if contents.raw is not None:
            raw_source = _local_volume(volume_array(contents.raw), Geometry.of(contents.raw), "image")
        view.segments = segments_to_show(labels, contents, n_segments)
        viewer.set_state(view_state(geometry, raw_source, segmentation, extra, view.segments, labels.merged, panel_px))
    except BaseException:
        view.close()  # no server left behind
        raise
    logger.info("neuroglancer on %s: %s", run_dir, url)
    return view


def serve_until_interrupted(view: RunView, poll_s: float = 0.5) -> None:
    """Keep the viewer up until Ctrl-C (SIGINT), then stop both servers and return."""
    try:
        while True:
            time.sleep(poll_s)
    except KeyboardInterrupt:
        logger.info("viewer stopped (Ctrl-C)")
    finally:
        view.close()


def screenshot_run(run_dir: str | Path, out: str | Path, size: Sequence[int] = (1280, 720), port: int = 0,
                   bind: str = "127.0.0.1", raw: str | Path | None = None,
                   timeout_s: float | None = None) -> tuple[Path, RunView]:
    """Open the run's viewer, write its screenshot (PNG, ``size`` = width, height in pixels) and
    stop the servers.

    Raises:
        ConfigError: Chromium is not installed (checked before the viewer starts), the port
            is in use, or ``size`` is under 64 pixels.
        StageError: the view did not load in time.
    """
    from axonseg.pipelines.view.browser import (
        SCREENSHOT_TIMEOUT_S,
        find_browser,
        screenshot,
    )

    width, height = (int(v) for v in size)
    if min(width, height) < 64:
        raise ConfigError(f"--size {width} {height}: expected a width and height of at least 64 pixels")
    find_browser()
    view = open_view(run_dir, port, bind, raw, panel_px=(width // 2, height))
    try:
        path = screenshot(view.viewer, out, (width, height), SCREENSHOT_TIMEOUT_S if timeout_s is None else timeout_s)
    finally:
        view.close()
    return path, view
