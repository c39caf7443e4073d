"""Test helpers for ``axonseg view`` and the neuroglancer export: a small proofreading demo run
with meshes and skeletons, a proofreading merge, and reading segment colours off a screenshot.
"""

from __future__ import annotations

import colorsys
import shutil
from pathlib import Path

import numpy as np
import pytest

from axonseg.errors import ConfigError
from axonseg.pipelines.mesh import MeshConfig, run_mesh
from axonseg.pipelines.proofread_demo import write_demo_run
from axonseg.pipelines.run_folder import RunFolder
from axonseg.pipelines.skeletonize import SkeletonizeConfig, run_skeletonize
from axonseg.pipelines.view.labels import ShownLabels
from axonseg.pipelines.view.state import Geometry

#: voxels, zyx: 4 x 8 x 8 boxes give 8 "axons" per z layer (rows along x), 46 segments in all
SHAPE = (16, 64, 64)
BOX = (4, 8, 8)
#: screenshot width and height in pixels; the xy panel is the left half
SIZE = (800, 400)


def require_chromium() -> None:
    """Skip the calling test when headless Chromium is not installed."""
    from axonseg.pipelines.view.browser import find_browser

    try:
        find_browser()
    except ConfigError as error:
        pytest.skip(f"no Chromium for the screenshot ({error})")


def write_view_run(run_dir: Path, meshes: bool = True, skeletons: bool = True) -> Path:
    """A demo run (raw, fragments, one LUT, region graph) with meshes and skeletons (~3 s)."""
    run = write_demo_run(run_dir, shape=SHAPE, box=BOX)
    if meshes:
        run_mesh(run, MeshConfig(block_shape=SHAPE), scheduler="synchronous", show_progress=False)
    if skeletons:
        run_skeletonize(run, SkeletonizeConfig(block_shape=SHAPE), scheduler="synchronous", show_progress=False)
    return run


def copy_run(run: Path, target: Path) -> Path:
    shutil.copytree(run, target)
    return target


def merge(run_dir: Path, a: int, b: int) -> None:
    """Merge segments ``a`` and ``b`` through the edit log, as the napari plugin does."""
    from axonseg.proofread import ProofreadSession

    run = RunFolder(run_dir)
    threshold = run.default_threshold()
    base = run.lut(threshold)
    session = ProofreadSession(run_dir / "edits.sqlite", (base.fragment_ids, base.segment_ids), user="test",
                               base_id=f"threshold={threshold}")
    session.merge([a, b])
    session.log.close()


def segment_hue(segment_id: int) -> float:
    """Hue (0..1) of neuroglancer's colour for a segment (colour seed 0)."""
    from neuroglancer.segment_colors import hex_string_from_segment_id

    text = hex_string_from_segment_id(0, segment_id)
    rgb = [int(text[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    return colorsys.rgb_to_hsv(*rgb)[0]


def hue_distance(a: float, b: float) -> float:
    return min(abs(a - b), 1 - abs(a - b))


def panel_samples(png: Path, labels: ShownLabels, size: tuple[int, int] = SIZE, step: int = 4,
                  fit_px: tuple[int, int] | None = None) -> dict[int, np.ndarray]:
    """Hues of the xy panel's pixels, by the segment under each pixel.

    The view is centred on the middle voxel and zoomed to fit (Geometry's own rules, for a
    panel of half the screenshot's width); only pixels whose voxel's 3 x 3 neighbourhood is one
    segment are kept, so the mapping may be off by a voxel. A segment's colour is blended with
    the grey raw below it, which keeps its hue. ``fit_px``: the panel size the state's zoom was
    made for, when it is not the screenshot's (an exported state.json).

    Returns:
        ``{segment id: hues of its pixels}``.
    """
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB"), np.float64) / 255
    width, height = size[0] // 2, size[1]
    geometry = Geometry.of(labels.volume)
    cx, cy, cz = geometry.centre_xyz()
    nm_per_pixel = geometry.cross_section_scale(fit_px or (width, height)) * min(geometry.voxel_size[1:])
    plane = labels.read((slice(int(cz), int(cz) + 1), slice(None), slice(None)))[0]
    hues: dict[int, list[float]] = {}
    for v in range(step // 2, height, step):
        for u in range(step // 2, width, step):
            x = int(np.floor(cx + (u + 0.5 - width / 2) * nm_per_pixel / geometry.voxel_size[2]))
            y = int(np.floor(cy + (v + 0.5 - height / 2) * nm_per_pixel / geometry.voxel_size[1]))
            if not (1 <= x < plane.shape[1] - 1 and 1 <= y < plane.shape[0] - 1):
                continue
            around = plane[y - 1:y + 2, x - 1:x + 2]
            if (around != around[1, 1]).any() or around[1, 1] == 0:
                continue
            r, g, b = image[v, u]
            hue, saturation, _ = colorsys.rgb_to_hsv(r, g, b)
            if saturation > 0.05:
                hues.setdefault(int(around[1, 1]), []).append(hue)
    return {segment: np.asarray(values) for segment, values in hues.items()}


def typical_hue(hues: np.ndarray) -> float:
    """The circular median of hues: the hue closest to most others."""
    distances = np.minimum(np.abs(hues[:, None] - hues[None, :]), 1 - np.abs(hues[:, None] - hues[None, :]))
    return float(hues[np.argmin(np.median(distances, axis=1))])
