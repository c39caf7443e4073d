"""What a run has to show besides its segmentation: the raw EM (read where the run recorded it),
the precomputed meshes, and the skeletons as a precomputed folder (converted from the skeleton
tables once, again when the tables are newer). What is missing is a note, never an error.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from axonseg.errors import InputError
from axonseg.io import Volume, group_exists, open_levels, parse_address
from axonseg.pipelines.mesh import mesh_ids
from axonseg.pipelines.run_folder import RunFolder
from axonseg.pipelines.skeletonize.precomputed import (
    PRECOMPUTED_DIR,
    write_precomputed_skeletons,
)
from axonseg.pipelines.view.labels import ShownLabels, largest_segments

logger = logging.getLogger(__name__)

SKELETON_TABLES = ("nodes.parquet", "edges.parquet")


@dataclass
class RunContents:
    """The parts of a run a viewer shows beside the segmentation.

    Attributes:
        raw: the raw EM at full resolution (zyx), or None.
        mesh_dir: ``RUN/meshes`` when its meshes are finished, else None.
        skeleton_dir: a precomputed skeleton folder, else None.
        notes: one line per missing part: what is missing and the command that makes it.
    """

    raw: Volume | None = None
    mesh_dir: Path | None = None
    skeleton_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    def segment_ids(self) -> set[int] | None:
        """Segments that have every 3D item there is (a mesh, a skeleton), or None when the run
        has neither. A visible segment without its file would keep a screenshot waiting."""
        sets = []
        if self.mesh_dir is not None:
            sets.append(set(mesh_ids(self.mesh_dir.parent).tolist()))
        if self.skeleton_dir is not None:
            sets.append({int(p.name) for p in self.skeleton_dir.iterdir() if p.name.isdigit()})
        return set.intersection(*sets) if sets else None


def _missing(address: str | Path) -> Path | None:
    """The file or folder of ``address`` when it does not exist, else None."""
    try:
        path = parse_address(address).path
    except InputError:
        return Path(str(address))
    return None if path.exists() else path


def open_raw(run: RunFolder, voxel_size: tuple[float, float, float], raw: str | Path | None = None,
             notes: list[str] | None = None) -> Volume | None:
    """The raw EM to show with a run, at full resolution, opened lazily where it is.

    Args:
        run: the run folder.
        voxel_size: nm (zyx) for a raw file that carries none (npy, tif).
        raw: an address to use instead of the recorded one.
        notes: receives a line when the recorded raw is missing or none is recorded.

    Returns:
        ``raw``; else ``volume.zarr/raw``; else the raw the run recorded
        (:meth:`RunFolder.raw_address`); None when there is none to open.

    Raises:
        InputError: ``raw`` is given and missing or unreadable.
    """
    notes = notes if notes is not None else []
    if raw is not None:
        missing = _missing(raw)
        if missing is not None:
            raise InputError(f"{missing}: no such file or folder (--raw): expected the raw EM the run was made from")
        return open_levels(raw, voxel_size)[0]
    if group_exists(run.store, "raw"):
        return open_levels(run.store / "raw")[0]
    address = run.raw_address()
    if address is None:
        notes.append(f"{run.path}: the run records no raw EM: showing the segmentation alone (pass --raw ADDRESS)")
        return None
    missing = _missing(address)
    if missing is not None:
        notes.append(f"{missing}: the run's raw EM is missing (moved or deleted?): showing the segmentation alone "
                     "(pass --raw ADDRESS)")
        return None
    return open_levels(address, voxel_size)[0]


def skeleton_folder(run: RunFolder, notes: list[str] | None = None) -> Path | None:
    """``RUN/skeletons/precomputed``, written from the skeleton tables when it is missing or
    older than them (into a temporary folder when the run folder is read-only).

    Returns:
        The precomputed skeleton folder, or None (and a note) when the run has no skeletons.
    """
    notes = notes if notes is not None else []
    tables = [run.skeletons_dir / name for name in SKELETON_TABLES]
    if not all(path.is_file() for path in tables):
        notes.append(f"{run.path}: no skeletons (skeletons/nodes.parquet): run `axonseg skeletonize {run.path}`")
        return None
    folder = run.skeletons_dir / PRECOMPUTED_DIR
    info = folder / "info"
    if info.is_file() and info.stat().st_mtime >= max(path.stat().st_mtime for path in tables):
        return folder
    try:
        return write_precomputed_skeletons(run.path).folder
    except PermissionError:
        scratch = Path(tempfile.mkdtemp(prefix="axonseg-skeletons-"))
        logger.info("%s is read-only: precomputed skeletons go to %s", run.skeletons_dir, scratch)
        return write_precomputed_skeletons(run.path, scratch / PRECOMPUTED_DIR).folder


def mesh_folder(run: RunFolder, notes: list[str] | None = None) -> Path | None:
    """``RUN/meshes`` when ``axonseg mesh`` finished it, else None and a note."""
    notes = notes if notes is not None else []
    try:
        mesh_ids(run.path)
    except InputError:
        notes.append(f"{run.path}: no meshes (meshes/): run `axonseg mesh {run.path}`")
        return None
    return run.path / "meshes"


def run_contents(run_dir: str | Path, voxel_size: tuple[float, float, float], raw: str | Path | None = None,
                 with_raw: bool = True) -> RunContents:
    """Gather a run's raw, meshes and skeletons; log one warning per missing part.

    Args:
        run_dir: the run folder.
        voxel_size: the segmentation's voxel size in nm (zyx), for a raw file without one.
        raw: the raw EM address when it is not where the run recorded it.
        with_raw: open the raw (False: leave it out, no note).
    """
    run = RunFolder(Path(run_dir))
    contents = RunContents()
    if with_raw:
        contents.raw = open_raw(run, voxel_size, raw, contents.notes)
        if contents.raw is not None and len(contents.raw.shape) != 3:
            contents.notes.append(f"{contents.raw.source}: raw EM of shape {contents.raw.shape}: expected 3 axes "
                                  "(z y x); showing the segmentation alone")
            contents.raw = None
    contents.mesh_dir = mesh_folder(run, contents.notes)
    contents.skeleton_dir = skeleton_folder(run, contents.notes)
    for note in contents.notes:
        logger.warning("%s", note)
    return contents


def segments_to_show(labels: ShownLabels, contents: RunContents, count: int) -> list[int]:
    """The ``count`` largest segments at the volume's centre among those whose meshes and
    skeletons all exist (a merged segment's parts included)."""
    available = contents.segment_ids()
    if available is not None:
        available = {s for s in available if all(b in available for b in labels.merged.get(s, []))}
    return largest_segments(labels, count, available)
