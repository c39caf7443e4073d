"""Open a run in the proofreading viewer and save a screenshot of the window, for the README.

Needs a display (``xvfb-run -a``):

    axonseg demo --out demo_out
    xvfb-run -a python scripts/proofread_screenshot.py demo_out/run docs/images/proofread_segment_run.png
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(run_dir: str, png: str, width: int = 1300, height: int = 820) -> None:
    import imageio.v3 as iio
    import napari

    from axonseg.viewer import open_proofread_viewer

    viewer = open_proofread_viewer(run_dir, show=True, user="screenshot")
    viewer.window._qt_window.resize(width, height)
    z_min, z_max, _ = viewer.dims.range[0]
    viewer.dims.point = ((z_min + z_max) / 2, *viewer.dims.point[1:])  # the middle section
    viewer.reset_view()
    napari.qt.get_qapp().processEvents()
    image = viewer.screenshot(canvas_only=False, flash=False)
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(png, image)
    viewer.close()
    print(f"wrote {png} ({image.shape[1]}x{image.shape[0]})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: proofread_screenshot.py RUN_DIR OUT.png")
    main(sys.argv[1], sys.argv[2])
