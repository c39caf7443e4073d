"""``axonseg export RUN --format neuroglancer --out DIR``: a run as a static folder any web server
can host: ``raw/`` and ``segmentation/`` (precomputed, the proofreading edits applied),
``meshes/``, ``skeletons/``, ``state.json`` and ``serve.py`` (a static server with CORS).
neuroglancer's Python package bundles only its Python-server build of the client (it stops
without a ``/v/TOKEN/`` server), so the folder is opened in any standard neuroglancer client.

The folder is written as ``DIR.tmp`` and renamed into place when complete.
"""

from __future__ import annotations

import json
import logging
import shutil
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from axonseg.errors import InputError, OutputExistsError
from axonseg.pipelines.view.contents import RunContents, run_contents, segments_to_show
from axonseg.pipelines.view.labels import ShownLabels, shown_labels
from axonseg.pipelines.view.live import N_SEGMENTS, PANEL_PX
from axonseg.pipelines.view.precomputed_volume import check_data_type, write_precomputed_volume
from axonseg.pipelines.view.state import Geometry, view_state

logger = logging.getLogger(__name__)

#: ``python DIR/serve.py`` serves the folder here
DEFAULT_BASE_URL = "http://localhost:8000"
#: a neuroglancer client that opens a state URL given after ``#!``
CLIENT_URL = "https://neuroglancer-demo.appspot.com"
HOW_TO = """\
A neuroglancer view of the axonseg run {run}.

Serve this folder with a web server that sends `Access-Control-Allow-Origin: *`, e.g. the
one beside this file (Python's standard library only):

    python {name}/serve.py {port}

and open {link}
(any neuroglancer client opens NEUROGLANCER/#!{base}/state.json).

state.json names its data at {base}; hosted elsewhere, export again with
`axonseg export RUN --format neuroglancer --out DIR --url BASE_URL`.
"""
SERVE_PY = """\
\"\"\"Serve this folder to neuroglancer: python serve.py [PORT [BIND]] (default 8000 127.0.0.1).

Sends the CORS headers a neuroglancer client on another origin needs; standard library only.
\"\"\"

import functools
import http.server
import sys
from pathlib import Path


class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Private-Network", "true")
        super().end_headers()

    def do_OPTIONS(self):
        self.send_response(204)
        self.send_header("Access-Control-Allow-Headers", "*")
        self.end_headers()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    bind = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    handler = functools.partial(Handler, directory=str(Path(__file__).resolve().parent))
    print(f"serving {{Path(__file__).resolve().parent}} at http://{{bind}}:{{port}} (Ctrl-C stops it)")
    http.server.ThreadingHTTPServer((bind, port), handler).serve_forever()
"""


@dataclass(frozen=True)
class NeuroglancerExport:
    """What :func:`export_neuroglancer` wrote.

    Attributes:
        folder: the exported folder.
        link: the address that opens the view in neuroglancer once the folder is served at
            the base URL.
        layers: the folders written (``raw``, ``segmentation``, ``meshes``, ``skeletons``).
        segments: the segment ids the state shows in 3D.
        n_edits: proofreading edits applied to the segmentation.
        notes: what the run lacked (meshes, skeletons, raw) and the command that makes it.
        serve: the command that serves the folder at the base URL's port.
    """

    folder: Path
    link: str
    layers: list[str]
    segments: list[int]
    n_edits: int
    notes: list[str]
    serve: str = ""


def viewer_link(base: str) -> str:
    """The address that opens ``base/state.json`` in neuroglancer's public client."""
    return f"{CLIENT_URL}/#!{base}/state.json"


def _copy_precomputed(source: Path, target: Path) -> None:
    """Copy a precomputed mesh or skeleton folder: ``info`` and the segment files, nothing else."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file() and (path.name == "info" or path.name.split(":")[0].isdigit()):
            shutil.copyfile(path, target / path.name)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: a file, not a folder: expected a folder for the neuroglancer export")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"--out {out}: exists and is not empty: pass --overwrite to replace it")


def _progress(label: str, show: bool) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    if not show:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(desc=label, unit="voxel", unit_scale=True, leave=False)
    return bar.update, bar.close


def _write(run_dir: Path, tmp: Path, labels: ShownLabels, contents: RunContents, base: str,
           show_progress: bool) -> tuple[list[str], list[int]]:
    """Write every part into ``tmp``; returns the layer folders written and the segments shown."""
    geometry = Geometry.of(labels.volume)
    layers = []
    if contents.raw is not None:
        raw_geometry = Geometry.of(contents.raw)
        update, close = _progress("raw", show_progress)
        write_precomputed_volume(tmp / "raw", contents.raw.read, raw_geometry.shape,
                                 contents.raw.dtype, raw_geometry.voxel_size, raw_geometry.voxel_offset, "image",
                                 progress=update)
        close()
        layers.append("raw")
    update, close = _progress("segmentation", show_progress)
    write_precomputed_volume(tmp / "segmentation", labels.read, geometry.shape, "uint64", geometry.voxel_size,
                             geometry.voxel_offset, "segmentation", progress=update)
    close()
    layers.append("segmentation")
    extra = []
    for name, folder in (("meshes", contents.mesh_dir), ("skeletons", contents.skeleton_dir)):
        if folder is not None:
            _copy_precomputed(folder, tmp / name)
            extra.append(f"precomputed://{base}/{name}")
            layers.append(name)
    segments = segments_to_show(labels, contents, N_SEGMENTS)
    raw_source = f"precomputed://{base}/raw" if contents.raw is not None else None
    state = view_state(geometry, raw_source, f"precomputed://{base}/segmentation", extra, segments, labels.merged,
                       PANEL_PX)
    (tmp / "state.json").write_text(json.dumps(state.to_json(), indent=1))
    (tmp / "serve.py").write_text(SERVE_PY)
    port = urllib.parse.urlsplit(base).port or 80
    (tmp / "README.txt").write_text(HOW_TO.format(run=run_dir.resolve(), name=tmp.name.removesuffix(".tmp"),
                                                  link=viewer_link(base), base=base, port=port))
    return layers, segments


def export_neuroglancer(run_dir: str | Path, out: str | Path, base_url: str = DEFAULT_BASE_URL,
                        overwrite: bool = False, raw: str | Path | None = None,
                        show_progress: bool = True) -> NeuroglancerExport:
    """Write a run as a self-contained neuroglancer folder.

    Args:
        run_dir: the run folder.
        out: the folder to write (``DIR``; built as ``DIR.tmp``).
        base_url: where ``DIR`` will be served; ``state.json`` names its data under it.
        overwrite: replace an existing, non-empty ``DIR``.
        raw: the raw EM address when it has moved from where the run recorded it.
        show_progress: draw progress bars.

    Raises:
        InputError: not a run folder, a run without a segmentation, or ``out`` is a file.
        OutputExistsError: ``out`` exists, is not empty, and ``overwrite`` is False.
    """
    out = Path(out)
    _check_out(out, overwrite)
    labels = shown_labels(run_dir)
    geometry = Geometry.of(labels.volume)
    contents: RunContents = run_contents(run_dir, geometry.voxel_size, raw)
    if contents.raw is not None:
        check_data_type(contents.raw.dtype, f"raw {contents.raw.source}")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        layers, segments = _write(Path(run_dir), tmp, labels, contents, base_url.rstrip("/"), show_progress)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-written folder beside the output
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    logger.info("neuroglancer export of %s -> %s (%s)", run_dir, out, ", ".join(layers))
    base = base_url.rstrip("/")
    serve = f"python {out}/serve.py {urllib.parse.urlsplit(base).port or 80}"
    return NeuroglancerExport(out, viewer_link(base), layers, segments, labels.n_edits, contents.notes, serve)
